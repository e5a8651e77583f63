"""The interpreter: ash's semantics over the AST, its builtins, and program lookup.

``World`` is what every process of one run shares: the file system, the
credentials, the hostname, the (fake) clock.  ``Shell`` is one ash process:
variables (in ash's hash-table order, so ``env`` prints what busybox
prints), positional parameters, functions, cwd, options.  Subshells,
pipeline stages and command substitutions run on a copy of it.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat as _stat
from collections.abc import Mapping
from dataclasses import dataclass

from sim.containers.shell._applets import APPLETS, passwd_entry
from sim.containers.shell._expand import Expander, ExpansionError, match_pattern
from sim.containers.shell._parser import (
    AndOr,
    Case,
    CmdList,
    Command,
    For,
    FuncDef,
    Group,
    If,
    Pipeline,
    Redir,
    ShellSyntaxError,
    Simple,
    While,
    Word,
    _Parser,
)
from sim.containers.shell._proc import (
    BufferOut,
    BytesIn,
    FsStream,
    NullStream,
    Proc,
    Stream,
    decode,
    encode,
    fs_join,
)
from sim.containers.shell._usage import BUSYBOX_APPLETS
from sim.errors import UnsupportedCommandError
from sim.interface import FileSystem

__all__ = ["World", "Shell", "DEFAULT_PATH", "ASH_DEFAULT_PATH", "FAKE_PID"]

#: The PATH Docker gives a container whose image sets none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: What ash uses (and exports) when its environment has no PATH.
ASH_DEFAULT_PATH = "/sbin:/usr/sbin:/bin:/usr/bin"
#: ``$$``: the shell is PID 1 of its container.
FAKE_PID = 1
_BIN_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# ash's fixed variables (varinit order); they sit first in their hash bucket, last-declared first
_FIXED = ("IFS", "MAIL", "MAILPATH", "PATH", "PS1", "PS2", "PS4", "OPTIND", "LINENO", "FUNCNAME", "RANDOM", "SECONDS",
          "HISTFILE")
_SPECIAL_BUILTINS = frozenset({":", ".", "break", "continue", "eval", "exec", "exit", "export", "readonly", "return",
                               "set", "shift", "unset", "source", "times", "trap"})
_REGULAR_BUILTINS = frozenset({"cd", "chdir", "echo", "false", "true", "printf", "pwd", "read", "test", "[", "command",
                               "type", "local", "wait", "umask", "hash", "getopts", "kill", "alias", "unalias", "ulimit",
                               "jobs", "fg", "bg", "let", "history", "help", "[["})
_UNSUPPORTED_BUILTINS = frozenset({"times", "trap", "getopts", "kill", "alias", "unalias", "ulimit", "jobs", "fg", "bg",
                                   "let", "history", "help", "[["})


def _ash_bucket(name: str) -> int:
    raw = encode(name)
    if not raw:
        return 0
    h = raw[0] << 4
    for b in raw:
        h += b
    return h % 39


class ShellExit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class ShellError(Exception):
    """An error ash raises: printed with the shell's prefix; a non-interactive shell exits 2."""

    def __init__(self, msg: str, *, command: str | None = None, status: int = 2) -> None:
        super().__init__(msg)
        self.msg = msg
        self.command = command
        self.status = status


class _LoopControl(Exception):
    def __init__(self, kind: str, count: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.count = count


class _Return(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class _Var:
    value: str | None
    exported: bool = False
    readonly: bool = False
    seq: int = 0


class World:
    """What the processes of one run share."""

    def __init__(self, fs: FileSystem, *, uid: int, gid: int, hostname: str, builtin_applets: bool) -> None:
        self.fs = fs
        self.uid = uid
        self.gid = gid
        self.hostname = hostname
        self.builtin_applets = builtin_applets
        self.slept = 0.0
        self.open_streams: list[Stream] = []
        self.next_pid = 2

    # time ------------------------------------------------------------------------

    def now(self) -> float:
        import time

        return time.time() + self.slept

    def advance_clock(self, seconds: float) -> None:
        """``sleep``: the model does not wait; it only counts the time that would have passed."""
        self.slept += seconds

    # paths -----------------------------------------------------------------------

    def realpath(self, path: str) -> str:
        """Resolve every symlink of an absolute path through the FileSystem (``realpath(3)``)."""
        parts = [p for p in path.split("/") if p not in ("", ".")]
        resolved: list[str] = []
        links = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/" + "/".join([*resolved, name])
            st = self.fs.lstat(candidate)
            if _stat.S_ISLNK(st.st_mode):
                links += 1
                if links > 40:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = self.fs.readlink(candidate)
                if target.startswith("/"):
                    resolved = []
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            resolved.append(name)
        return "/" + "/".join(resolved)

    def open_stream(self, cwd: str, name: str, flags: int, fds: Mapping[int, Stream] | None = None, *,
                    mode: int = 0o666) -> Stream:
        """Open a file as a process would: ``/dev/null`` and ``/dev/std*`` are the container's /dev."""
        path = posixpath.normpath(fs_join(cwd, name)) if name else name
        if path in ("/dev/null", "/dev/zero"):
            return NullStream()
        if fds is not None:
            for dev, fd in (("/dev/stdin", 0), ("/dev/stdout", 1), ("/dev/stderr", 2)):
                if path == dev or path == f"/dev/fd/{fd}" or path == f"/proc/self/fd/{fd}":
                    stream = fds.get(fd)
                    if stream is None:
                        raise OSError(errno.EBADF, os.strerror(errno.EBADF), name)
                    return _Shared(stream)
        access = flags & os.O_ACCMODE
        fd = self.fs.open(fs_join(cwd, name), flags, mode)
        return FsStream(self.fs, fd, name, readable=access != os.O_WRONLY, writable=access != os.O_RDONLY)

    # programs --------------------------------------------------------------------

    def run_applet(self, applet: str, argv: list[str], env: dict[str, str], cwd: str, fds: dict[int, Stream],
                   *, path: str | None = None) -> int:
        fn = APPLETS.get(applet)
        if fn is None:
            where = f" ({path})" if path else ""
            raise UnsupportedCommandError(
                f"the model's shell cannot run '{applet}'{where}: a busybox applet the model does not implement; "
                "run it with BACKEND='real'")
        name = applet if applet not in ("sh", "ash") else posixpath.basename(argv[0]) or applet
        proc = Proc(self, name, list(argv), dict(env), cwd, fds)
        return fn(proc)

    def search_path(self, name: str, path_var: str, cwd: str) -> str | None:
        """ash's PATH walk: the first entry naming a regular file (executable or not)."""
        for entry in path_var.split(":"):
            candidate = f"{entry.rstrip('/')}/{name}" if entry else name
            try:
                st = self.fs.stat(fs_join(cwd, candidate))
            except OSError:
                continue
            if _stat.S_ISREG(st.st_mode):
                return candidate
        return None

    def execve(self, path: str, argv: list[str], env: dict[str, str], cwd: str, fds: dict[int, Stream],
               depth: int = 0, *, script_fallback: bool = True) -> int:
        """Run the program file at ``path``; raises OSError (ENOENT, EACCES, ENOEXEC) when it cannot start.

        ``script_fallback``: a text file without ``#!`` runs as a shell script
        (what ash and execvp do on ENOEXEC); the runtime's exec has no such fallback.
        """
        fs = self.fs
        full = fs_join(cwd, path)
        try:
            st = fs.stat(full)
        except OSError as e:
            base = posixpath.basename(path)
            if (e.errno == errno.ENOENT and self.builtin_applets and base in BUSYBOX_APPLETS
                    and posixpath.dirname(posixpath.normpath(full)) in _BIN_DIRS):
                return self.run_applet(base, argv, env, cwd, fds)
            raise
        if not _stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), path)
        try:
            real = self.realpath(posixpath.normpath(full) if full.startswith("/") else "/" + full)
        except OSError:
            real = full
        invoked = posixpath.basename(argv[0]) if argv else posixpath.basename(path)
        if posixpath.basename(real) == "busybox":
            return self.busybox(argv, env, cwd, fds, path=real)
        try:
            fd = fs.open(full, os.O_RDONLY)
            try:
                head = fs.read(fd, 256)
            finally:
                fs.close(fd)
        except OSError:
            head = b""
        if head.startswith(b"#!"):
            if depth > 4:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            line = decode(head[2:].split(b"\n", 1)[0]).strip()
            interp, _, arg = line.partition(" ")
            arg = arg.strip()
            if not interp:
                raise OSError(errno.ENOEXEC, os.strerror(errno.ENOEXEC), path)
            new_argv = [interp, *([arg] if arg else []), path, *argv[1:]]
            return self.execve(interp, new_argv, env, cwd, fds, depth + 1, script_fallback=script_fallback)
        for candidate in (posixpath.basename(path), posixpath.basename(real)):
            if candidate in BUSYBOX_APPLETS:
                return self.run_applet(candidate, argv, env, cwd, fds, path=real)
        if head and not head.startswith(b"\x7fELF") and b"\0" not in head:
            if not script_fallback:
                raise OSError(errno.ENOEXEC, os.strerror(errno.ENOEXEC), path)
            return self.run_applet("sh", ["sh", path, *argv[1:]], env, cwd, fds)
        raise UnsupportedCommandError(
            f"the model's shell cannot run '{invoked}' ({real}); run it with BACKEND='real'")

    def busybox(self, argv: list[str], env: dict[str, str], cwd: str, fds: dict[int, Stream], *, path: str) -> int:
        """The multi-call binary: dispatch on argv[0], or on argv[1] for ``busybox APPLET``."""
        name = posixpath.basename(argv[0]) if argv else "busybox"
        if name == "busybox":
            if len(argv) < 2 or argv[1] in ("--help",):
                out = fds.get(1)
                if out is not None:
                    out.write(b"BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.\n")
                return 0
            if argv[1] in ("--list", "--list-full"):
                out = fds.get(1)
                if out is not None:
                    out.write(encode("".join(f"{n}\n" for n in sorted(BUSYBOX_APPLETS))))
                return 0
            argv = argv[1:]
            name = posixpath.basename(argv[0])
        if name not in BUSYBOX_APPLETS:
            err = fds.get(2)
            if err is not None:
                err.write(encode(f"{name}: applet not found\n"))
            return 127
        return self.run_applet(name, argv, env, cwd, fds, path=path)

    def exec_from_applet(self, p: Proc, argv: list[str], env: dict[str, str]) -> int:
        """``BB_EXECVP`` (env PROG ...): applets first when the build prefers them, else PATH."""
        name = argv[0]
        try:
            if "/" not in name:
                if self.builtin_applets and name in BUSYBOX_APPLETS:
                    return self.run_applet(name, argv, env, p.cwd, p.fds)
                found = self.search_path(name, env.get("PATH", ASH_DEFAULT_PATH), p.cwd)
                if found is None:
                    raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), name)
                return self.execve(found, argv, env, p.cwd, p.fds)
            return self.execve(name, argv, env, p.cwd, p.fds)
        except OSError as e:
            p.perror(f"can't execute '{name}'", e)
            return 127 if e.errno == errno.ENOENT else 126


class _Shared(Stream):
    """``/dev/stdout`` and friends: the caller's descriptor, not closed with this one."""

    def __init__(self, inner: Stream) -> None:
        self.inner = inner
        self.readable = inner.readable
        self.writable = inner.writable

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def read(self, n: int = -1) -> bytes:
        return self.inner.read(n)

    def readline(self) -> bytes:
        return self.inner.readline()


class Shell:
    """One ash process."""

    def __init__(self, world: World, env: Mapping[str, str], cwd: str, *, applet_name: str = "sh") -> None:
        self.world = world
        self.applet_name = applet_name
        self.arg0 = applet_name
        # ash's commandname: the script (or ``sh -c CMD NAME``), or the running builtin; when
        # set, messages carry "line N: " (and the name itself when it is not $0)
        self.commandname: str | None = None
        self.vars: dict[str, _Var] = {}
        self.seq = 0
        self.funcs: dict[str, Command] = {}
        self.positional: list[str] = []
        self.status = 0
        self.opts: set[str] = set()
        self.lineno = 0
        self.loop_depth = 0
        self.func_depth = 0
        self.errexit_off = 0
        self.last_bg = ""
        self.locals: list[dict[str, _Var | None]] = []
        self.cmdsub_status: int | None = None
        self.expander = Expander(self)
        for i, name in enumerate(_FIXED):
            self.vars[name] = _Var(None, seq=-1 - i)
        self.vars["IFS"].value = " \t\n"
        self.vars["PS1"].value = "\\w \\$ "
        self.vars["PS2"].value = "> "
        self.vars["PS4"].value = "+ "
        self.vars["OPTIND"].value = "1"
        for name, value in env.items():
            if "=" in name or not name:
                continue
            self._set_raw(name, value, export=True)
        if self.vars["PATH"].value is None:
            self._set_raw("PATH", ASH_DEFAULT_PATH, export=True)
        self.vars["PATH"].exported = True
        self.cwd = cwd if cwd.startswith("/") else "/" + cwd
        pwd = env.get("PWD")
        if pwd and pwd.startswith("/"):
            try:
                same = world.realpath(pwd) == world.realpath(self.cwd)
            except OSError:
                same = False
            if same:
                self.cwd = _normalize(pwd)
        self._set_raw("PWD", self.cwd, export=True)
        level = env.get("SHLVL", "0")
        try:
            shlvl = int(level.strip() or "0")
        except ValueError:
            shlvl = 0
        self._set_raw("SHLVL", str(shlvl + 1), export=True)

    # -- variables -----------------------------------------------------------------

    def _set_raw(self, name: str, value: str | None, *, export: bool = False) -> None:
        var = self.vars.get(name)
        if var is None:
            self.seq += 1
            var = self.vars[name] = _Var(value, seq=self.seq)
        else:
            var.value = value
        if export:
            var.exported = True

    def getvar(self, name: str) -> str | None:
        if name == "LINENO":
            return str(self.lineno)
        var = self.vars.get(name)
        return var.value if var is not None else None

    def setvar(self, name: str, value: str, *, export: bool = False) -> None:
        var = self.vars.get(name)
        if var is not None and var.readonly:
            raise ShellError(f"{name}: is read only")
        self._set_raw(name, value, export=export)

    def unsetvar(self, name: str) -> None:
        var = self.vars.get(name)
        if var is None:
            return
        if var.readonly:
            raise ShellError(f"{name}: is read only", command="unset")
        if name in _FIXED:
            var.value = None
            var.exported = False
        else:
            del self.vars[name]

    def special(self, name: str) -> str | list[str] | None:
        if name in ("@", "*"):
            return list(self.positional)
        if name == "#":
            return str(len(self.positional))
        if name == "?":
            return str(self.status)
        if name == "$":
            return str(FAKE_PID)
        if name == "!":
            return self.last_bg
        if name == "-":
            return "".join(sorted(self.opts))
        if name == "0":
            return self.arg0
        if name.isdigit():
            k = int(name)
            return self.positional[k - 1] if k <= len(self.positional) else None
        return None

    @property
    def nounset(self) -> bool:
        return "u" in self.opts

    @property
    def noglob(self) -> bool:
        return "f" in self.opts

    @property
    def fs(self) -> FileSystem:
        return self.world.fs

    def fs_path(self, path: str) -> str:
        return fs_join(self.cwd, path)

    def home_of(self, user: str) -> str | None:
        entry = passwd_entry(self._proc([]), user)
        return entry[5] if entry else None

    def environment(self, extra: list[tuple[str, str]] = ()) -> dict[str, str]:  # type: ignore[assignment]
        """The exported variables in ash's order (hash bucket, then bucket position)."""
        table = {name: (var.value, var.seq, var.exported) for name, var in self.vars.items()}
        seq = self.seq
        for name, value in extra:
            if name in table:
                _old, s, _e = table[name]
                table[name] = (value, s, True)
            else:
                seq += 1
                table[name] = (value, seq, True)
        items = [(_ash_bucket(n), s, n, v) for n, (v, s, e) in table.items() if e and v is not None]
        items.sort()
        return {n: v for _b, _s, n, v in items}

    # -- forking -------------------------------------------------------------------

    def fork(self) -> Shell:
        child = Shell.__new__(Shell)
        child.__dict__.update(self.__dict__)
        child.vars = {k: _Var(v.value, v.exported, v.readonly, v.seq) for k, v in self.vars.items()}
        child.funcs = dict(self.funcs)
        child.positional = list(self.positional)
        child.opts = set(self.opts)
        child.locals = []
        child.loop_depth = 0
        child.func_depth = 0
        child.expander = Expander(child)
        return child

    def subshell(self, fn: object, *args: object) -> int:
        """Run ``fn(*args)`` as a forked child: its exit, errors and changes stay inside."""
        try:
            status = fn(*args)  # type: ignore[operator]
            assert isinstance(status, int)
            return status
        except ShellExit as e:
            return e.status
        except ShellError as e:
            self.report(e, {2: self._stderr_of(args)})
            return e.status
        except (_LoopControl, _Return):
            return self.status

    def _stderr_of(self, args: tuple[object, ...]) -> Stream:
        for a in args:
            if isinstance(a, dict) and 2 in a:
                return a[2]  # type: ignore[no-any-return]
        return NullStream()

    # -- messages ------------------------------------------------------------------

    def _prefix(self, command: str | None, line: int) -> str:
        """ash's ``ash_vmsg``: ``arg0: [commandname: ][line N: ]``."""
        name = command if command is not None else self.commandname
        if name is None:
            return f"{self.arg0}: "
        return f"{self.arg0}: " + (f"{name}: " if name != self.arg0 else "") + f"line {line}: "

    def message(self, fds: Mapping[int, Stream], text: str, *, command: str | None = None) -> None:
        self._err(fds, self._prefix(command, self.lineno) + text + "\n")

    def _err(self, fds: Mapping[int, Stream], text: str) -> None:
        stream = fds.get(2)
        if stream is not None:
            try:
                stream.write(encode(text))
            except OSError:
                pass

    def report(self, e: ShellError, fds: Mapping[int, Stream]) -> None:
        self.message(fds, e.msg, command=e.command)

    # -- running scripts -------------------------------------------------------------

    def run_source(self, src: str, fds: dict[int, Stream], *, first_line: int) -> int:
        """Parse and run one complete command at a time, as ash does (earlier lines run first)."""
        parser = _Parser(src, first_line)
        while True:
            try:
                items = parser.parse_next()
            except ShellSyntaxError as e:
                self._err(fds, self._prefix(None, e.line) + f"syntax error: {e}\n")
                self.status = 2
                raise ShellExit(2) from None
            if items is None:
                break
            self.exec_list(items, fds)
        return self.status

    def main(self, argv: list[str], fds: dict[int, Stream], env: Mapping[str, str]) -> int:
        """``sh [-eux] -c SCRIPT [ARG0 ARGS...] | sh FILE ARGS... | sh [-s] ARGS...`` (script on stdin).

        ``argv[0]`` is ``$0`` and prefixes ash's own messages, so a container's
        ``/bin/sh -c foo`` says ``/bin/sh: foo: not found``.
        """
        self.arg0 = argv[0] if argv else self.applet_name
        args = argv[1:]
        command: str | None = None
        read_stdin = False
        i = 0
        while i < len(args):
            a = args[i]
            if a == "--":
                i += 1
                break
            if a == "-" :
                i += 1
                break
            if not (a.startswith("-") or a.startswith("+")) or len(a) < 2:
                break
            on = a[0] == "-"
            j = 1
            stop = False
            while j < len(a):
                c = a[j]
                j += 1
                if c == "c":
                    if on:
                        command = ""
                elif c == "s":
                    read_stdin = True
                elif c in "eufx":
                    (self.opts.add if on else self.opts.discard)(c)
                elif c in "ilmvC":
                    pass
                elif c == "o":
                    if i + 1 >= len(args):
                        stop = True
                        break
                    i += 1
                    opt = args[i]
                    letter = {"errexit": "e", "nounset": "u", "noglob": "f", "xtrace": "x"}.get(opt)
                    if letter is None and opt not in ("pipefail", "noclobber", "verbose", "monitor", "interactive"):
                        self._err(fds, f"{self.arg0}: illegal option {a[0]}o {opt}\n")
                    if opt == "pipefail":
                        raise UnsupportedCommandError("the model's shell does not implement 'set -o pipefail'; run it with BACKEND='real'")
                    if letter:
                        (self.opts.add if on else self.opts.discard)(letter)
                else:
                    self._err(fds, f"{self.arg0}: illegal option {a[0]}{c}\n")
                    return 2
            if stop:
                break
            i += 1
        rest = args[i:]
        try:
            if command is not None:
                if not rest:
                    self._err(fds, f"{self.arg0}: -c requires an argument\n")
                    return 2
                command = rest[0]
                if len(rest) > 1:
                    self.arg0 = self.commandname = rest[1]
                    self.positional = rest[2:]
                return self.run_source(command, fds, first_line=0)
            if rest and not read_stdin:
                name = rest[0]
                try:
                    stream = self.world.open_stream(self.cwd, name, os.O_RDONLY, fds)
                    data = stream.read()
                    stream.close()
                except OSError as e:
                    self._err(fds, f"{self.arg0}: can't open '{name}': {os.strerror(e.errno or errno.EIO)}\n")
                    return 2
                self.arg0 = self.commandname = name
                self.positional = rest[1:]
                return self.run_source(decode(data), fds, first_line=1)
            self.positional = rest
            stdin = fds.get(0)
            data = stdin.read() if stdin is not None else b""
            return self.run_source(decode(data), fds, first_line=1)
        except ShellExit as e:
            return e.status
        except ShellError as e:
            self.report(e, fds)
            return e.status
        except (_LoopControl, _Return):
            return self.status

    # -- execution -------------------------------------------------------------------

    def exec_list(self, cmds: CmdList, fds: dict[int, Stream]) -> int:
        for item in cmds.items:
            if item.background:
                self.world.next_pid += 1
                self.last_bg = str(self.world.next_pid)
                child = self.fork()
                child.subshell(child.exec_andor, item.andor, fds)
                self.status = 0
            else:
                self.exec_andor(item.andor, fds)
        return self.status

    def exec_andor(self, andor: AndOr, fds: dict[int, Stream]) -> int:
        pipelines = [("", andor.first), *andor.rest]
        status = 0
        last_run = -1
        for k, (op, pl) in enumerate(pipelines):
            if k and (op == "&&") != (status == 0):
                continue
            last_run = k
            suppress = k < len(pipelines) - 1
            status = self.exec_pipeline(pl, fds, suppress=suppress)
        self.status = status
        if (status and "e" in self.opts and self.errexit_off == 0 and last_run == len(pipelines) - 1
                and not pipelines[last_run][1].negate):
            raise ShellExit(status)
        return status

    def exec_pipeline(self, pl: Pipeline, fds: dict[int, Stream], *, suppress: bool = False) -> int:
        off = pl.negate or suppress
        if off:
            self.errexit_off += 1
        try:
            if len(pl.cmds) == 1:
                status = self.exec_command(pl.cmds[0], fds)
            else:
                data: bytes | None = None
                status = 0
                for k, cmd in enumerate(pl.cmds):
                    stage = dict(fds)
                    if k:
                        stage[0] = BytesIn(data or b"")
                    out = None
                    if k < len(pl.cmds) - 1:
                        out = BufferOut()
                        stage[1] = out
                    child = self.fork()
                    status = child.subshell(child.exec_command, cmd, stage)
                    data = out.getvalue() if out is not None else None
        finally:
            if off:
                self.errexit_off -= 1
        if pl.negate:
            status = 0 if status else 1
        self.status = status
        return status

    def exec_command(self, cmd: Command, fds: dict[int, Stream]) -> int:
        self._current_fds = fds  # where a command substitution in this command's words sends stderr
        if isinstance(cmd, Simple):
            status = self.exec_simple(cmd, fds)
            self.status = status
            return status
        if isinstance(cmd, FuncDef):
            self.funcs[cmd.name] = cmd.body
            self.status = 0
            return 0
        redirs: list[Redir] = getattr(cmd, "redirs", [])
        if redirs:
            try:
                cmd_fds, opened = self.apply_redirs(redirs, fds)
            except _RedirError as e:
                self.message(fds, e.msg)
                self.status = 1
                return 1
        else:
            cmd_fds, opened = fds, []
        self._current_fds = cmd_fds
        try:
            status = self._exec_compound(cmd, cmd_fds)
        finally:
            for stream in opened:
                stream.close()
        self.status = status
        return status

    def _loop_body(self, body: CmdList, fds: dict[int, Stream]) -> tuple[int, bool]:
        """Run one pass of a for/while/until body: its status, and whether a `break` ends the loop.

        A break or continue aimed at an outer loop (count > 1) is passed on with its count less one.
        """
        try:
            return self.exec_list(body, fds), False
        except _LoopControl as lc:
            if lc.count > 1:
                lc.count -= 1
                raise
            return self.status, lc.kind == "break"

    def _exec_compound(self, cmd: Command, fds: dict[int, Stream]) -> int:
        if isinstance(cmd, If):
            for cond, body in cmd.clauses:
                self.errexit_off += 1
                try:
                    st = self.exec_list(cond, fds)
                finally:
                    self.errexit_off -= 1
                if st == 0:
                    return self.exec_list(body, fds)
            if cmd.else_ is not None:
                return self.exec_list(cmd.else_, fds)
            return 0
        if isinstance(cmd, For):
            values = list(self.positional) if cmd.words is None else self.expand_fields(cmd.words)
            status = 0
            self.loop_depth += 1
            try:
                for value in values:
                    self.setvar(cmd.var, value)
                    status, stop = self._loop_body(cmd.body, fds)
                    if stop:
                        break
            finally:
                self.loop_depth -= 1
            return status
        if isinstance(cmd, While):
            status = 0
            self.loop_depth += 1
            try:
                while True:
                    self.errexit_off += 1
                    try:
                        st = self.exec_list(cmd.cond, fds)
                    finally:
                        self.errexit_off -= 1
                    if (st == 0) == cmd.until:
                        break
                    status, stop = self._loop_body(cmd.body, fds)
                    if stop:
                        break
            finally:
                self.loop_depth -= 1
            return status
        if isinstance(cmd, Case):
            word = self.expand_single(cmd.word)
            for patterns, body in cmd.arms:
                for pat in patterns:
                    if match_pattern(self.expander.pattern(pat), word):
                        return self.exec_list(body, fds) if body.items else 0
            return 0
        if isinstance(cmd, Group):
            if cmd.subshell:
                child = self.fork()
                return child.subshell(child.exec_list, cmd.body, fds)
            return self.exec_list(cmd.body, fds)
        raise AssertionError(cmd)

    # -- expansion hooks -------------------------------------------------------------

    def expand_fields(self, words: list[Word]) -> list[str]:
        try:
            return self.expander.fields(words)
        except ExpansionError as e:
            raise ShellError(str(e)) from None

    def expand_single(self, word: Word, *, tilde: bool = True) -> str:
        try:
            return self.expander.single(word, tilde=tilde)
        except ExpansionError as e:
            raise ShellError(str(e)) from None

    def command_substitution(self, body: CmdList) -> str:
        child = self.fork()
        out = BufferOut()
        fds = dict(self._current_fds)
        fds[1] = out
        status = child.subshell(child.exec_list, body, fds)
        self.cmdsub_status = status
        self.status = status
        return decode(out.getvalue()).rstrip("\n")

    _current_fds: dict[int, Stream] = {}

    # -- simple commands -------------------------------------------------------------

    def exec_simple(self, cmd: Simple, fds: dict[int, Stream]) -> int:
        self.lineno = cmd.line
        self._current_fds = fds
        self.cmdsub_status = None
        argv = self.expand_fields(cmd.words)
        if not argv:
            try:
                cmd_fds, opened = self.apply_redirs(cmd.redirs, fds)
            except _RedirError as e:
                self.message(fds, e.msg)
                return 1
            for stream in opened:
                stream.close()
            for name, word in cmd.assigns:
                self.setvar(name, self.expand_single(word))
            if "x" in self.opts and cmd.assigns:
                self._xtrace(fds, [f"{n}={self.getvar(n)}" for n, _ in cmd.assigns])
            return self.cmdsub_status if self.cmdsub_status is not None else 0
        assigns = [(name, self.expand_single(word)) for name, word in cmd.assigns]
        if "x" in self.opts:
            self._xtrace(fds, [f"{n}={v}" for n, v in assigns] + argv)
        try:
            cmd_fds, opened = self.apply_redirs(cmd.redirs, fds)
        except _RedirError as e:
            self.message(fds, e.msg)
            return 1
        keep = False
        try:
            if argv == ["exec"] and not assigns:
                fds.clear()
                fds.update(cmd_fds)
                self.world.open_streams.extend(opened)
                keep = True
                return 0
            return self.dispatch(argv, assigns, cmd_fds)
        finally:
            if not keep:
                for stream in opened:
                    stream.close()

    def _xtrace(self, fds: Mapping[int, Stream], words: list[str]) -> None:
        ps4 = self.getvar("PS4") or ""
        self._err(fds, ps4 + " ".join(_quote(w) for w in words) + "\n")

    def dispatch(self, argv: list[str], assigns: list[tuple[str, str]], fds: dict[int, Stream]) -> int:
        name = argv[0]
        if name in _SPECIAL_BUILTINS:
            for n, v in assigns:
                self.setvar(n, v)
            return self.builtin(name, argv, fds)
        if name in self.funcs:
            return self._with_temp(assigns, lambda: self.call_function(name, argv, fds))
        if name in _REGULAR_BUILTINS:
            return self._with_temp(assigns, lambda: self.builtin(name, argv, fds))
        return self.run_program(argv, self.environment(assigns), fds)

    def _with_temp(self, assigns: list[tuple[str, str]], fn: object) -> int:
        saved: list[tuple[str, _Var | None]] = []
        for n, v in assigns:
            old = self.vars.get(n)
            if old is not None and old.readonly:
                raise ShellError(f"{n}: is read only")
            saved.append((n, None if old is None else _Var(old.value, old.exported, old.readonly, old.seq)))
            self._set_raw(n, v, export=True)
        try:
            return fn()  # type: ignore[operator,no-any-return]
        finally:
            for n, old in reversed(saved):
                if old is None:
                    self.vars.pop(n, None)
                else:
                    self.vars[n] = old

    def call_function(self, name: str, argv: list[str], fds: dict[int, Stream]) -> int:
        body = self.funcs[name]
        saved_pos = self.positional
        self.positional = argv[1:]
        self.locals.append({})
        self.func_depth += 1
        try:
            status = self.exec_command(body, fds)
        except _Return as r:
            status = r.status
        finally:
            self.func_depth -= 1
            frame = self.locals.pop()
            for n, old in frame.items():
                if old is None:
                    self.vars.pop(n, None)
                else:
                    self.vars[n] = old
            self.positional = saved_pos
        self.status = status
        return status

    def run_program(self, argv: list[str], env: dict[str, str], fds: dict[int, Stream]) -> int:
        """An external command: an applet (busybox's standalone shell) or a file found on $PATH."""
        world = self.world
        name = argv[0]
        try:
            if "/" in name:
                return world.execve(name, argv, env, self.cwd, fds)
            if world.builtin_applets and name in BUSYBOX_APPLETS:
                return world.run_applet(name, argv, env, self.cwd, fds)
            path_var = env.get("PATH", self.getvar("PATH") or "")
            found = world.search_path(name, path_var, self.cwd)
            if found is None:
                self.message(fds, f"{name}: not found")
                return 127
            return world.execve(found, argv, env, self.cwd, fds)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                self.message(fds, f"{name}: not found")
                return 127
            self.message(fds, f"{name}: {os.strerror(e.errno or errno.EIO)}")
            return 126

    # -- redirections -----------------------------------------------------------------

    def apply_redirs(self, redirs: list[Redir], fds: dict[int, Stream]) -> tuple[dict[int, Stream], list[Stream]]:
        if not redirs:
            return fds, []
        new = dict(fds)
        opened: list[Stream] = []
        try:
            for r in redirs:
                if r.op in ("<<", "<<-"):
                    assert r.heredoc is not None
                    body = self.expand_single(r.heredoc, tilde=False) if r.heredoc.parts else ""
                    new[r.fd] = BytesIn(encode(body))
                    continue
                target = self.expand_single(r.target)
                if r.op in ("<&", ">&"):
                    if target == "-":
                        new.pop(r.fd, None)
                        continue
                    if not target.isdigit():
                        if r.op == ">&" and r.fd == 1:  # ">&file" is bash's "&>file"; ash: a file name
                            raise _RedirError(f"{target}: bad number")
                        raise _RedirError(f"{target}: bad number")
                    src = new.get(int(target))
                    if src is None:
                        raise _RedirError(f"{target}: Bad file descriptor")
                    new[r.fd] = src
                    continue
                flags = {
                    "<": os.O_RDONLY,
                    ">": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                    ">|": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                    ">>": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                    "<>": os.O_RDWR | os.O_CREAT,
                }[r.op]
                try:
                    stream = self.world.open_stream(self.cwd, target, flags, new)
                except OSError as e:
                    verb = "open" if r.op == "<" else "create"
                    if e.errno in (errno.ENOENT, errno.ENOTDIR):
                        why = "no such file" if r.op == "<" else "nonexistent directory"
                    else:
                        why = os.strerror(e.errno or errno.EIO)
                    raise _RedirError(f"can't {verb} {target}: {why}") from None
                opened.append(stream)
                new[r.fd] = stream
        except BaseException:
            for stream in opened:
                stream.close()
            raise
        return new, opened

    # -- builtins ---------------------------------------------------------------------

    def _proc(self, argv: list[str], fds: dict[int, Stream] | None = None) -> Proc:
        return Proc(self.world, self.applet_name, argv, self.environment(), self.cwd, fds if fds is not None else {}, shell=self)

    def builtin(self, name: str, argv: list[str], fds: dict[int, Stream]) -> int:
        if name in _UNSUPPORTED_BUILTINS:
            raise UnsupportedCommandError(f"the model's shell does not implement the builtin '{name}'; run it with BACKEND='real'")
        if name in ("echo", "printf", "test", "[", "true", "false"):
            fn = APPLETS[name]
            return fn(self._proc(argv, fds))
        method = getattr(self, "b_" + {":": "colon", ".": "dot", "[": "test"}.get(name, name))
        saved = self.commandname
        self.commandname = name
        try:
            return method(argv, fds)  # type: ignore[no-any-return]
        except ShellError as e:
            if name in _SPECIAL_BUILTINS:
                if e.command is None:
                    e.command = name
                raise
            e.command = e.command or name
            self.report(e, fds)
            return 2
        finally:
            self.commandname = saved

    def _out(self, fds: Mapping[int, Stream], text: str) -> None:
        stream = fds.get(1)
        if stream is not None:
            try:
                stream.write(encode(text))
            except OSError:
                pass

    def b_colon(self, argv: list[str], fds: dict[int, Stream]) -> int:
        return 0

    def b_exit(self, argv: list[str], fds: dict[int, Stream]) -> int:
        if len(argv) > 1:
            raise ShellExit(self._number(argv[1]) & 0xFF)
        raise ShellExit(self.status)

    def _number(self, text: str) -> int:
        if not re.fullmatch(r"[0-9]+", text):
            raise ShellError(f"Illegal number: {text}")
        return int(text)

    def b_return(self, argv: list[str], fds: dict[int, Stream]) -> int:
        status = self._number(argv[1]) & 0xFF if len(argv) > 1 else self.status
        if self.func_depth == 0:
            raise ShellExit(status)
        raise _Return(status)

    def b_break(self, argv: list[str], fds: dict[int, Stream]) -> int:
        return self._loopctl("break", argv)

    def b_continue(self, argv: list[str], fds: dict[int, Stream]) -> int:
        return self._loopctl("continue", argv)

    def _loopctl(self, kind: str, argv: list[str]) -> int:
        n = self._number(argv[1]) if len(argv) > 1 else 1
        if n == 0:
            raise ShellError(f"Illegal number: {argv[1]}")
        if self.loop_depth == 0:
            return 0
        raise _LoopControl(kind, min(n, self.loop_depth))

    def b_export(self, argv: list[str], fds: dict[int, Stream], *, readonly: bool = False) -> int:
        args = argv[1:]
        if args and args[0] == "-p":
            args = args[1:]
        if not args:
            for n in sorted(self.vars, key=encode):
                v = self.vars[n]
                if (v.readonly if readonly else v.exported) and (v.value is not None or readonly):
                    word = "readonly" if readonly else "export"
                    self._out(fds, f"{word} {n}" + (f"={_single_quote(v.value)}" if v.value is not None else "") + "\n")
            return 0
        for a in args:
            name, eq, value = a.partition("=")
            if not _NAME.fullmatch(name):
                raise ShellError(f"{name}: bad variable name")
            if eq:
                self.setvar(name, value)
            var = self.vars.get(name)
            if var is None:
                self.seq += 1
                var = self.vars[name] = _Var(None, seq=self.seq)
            if readonly:
                var.readonly = True
            else:
                var.exported = True
        return 0

    def b_readonly(self, argv: list[str], fds: dict[int, Stream]) -> int:
        return self.b_export(argv, fds, readonly=True)

    def b_unset(self, argv: list[str], fds: dict[int, Stream]) -> int:
        args = argv[1:]
        functions = False
        while args and args[0].startswith("-") and len(args[0]) > 1:
            for c in args[0][1:]:
                if c not in "fv":
                    raise ShellError(f"illegal option -{c}")
                functions = c == "f"
            args = args[1:]
        for name in args:
            if functions:
                self.funcs.pop(name, None)
            else:
                self.unsetvar(name)
        return 0

    def b_set(self, argv: list[str], fds: dict[int, Stream]) -> int:
        args = argv[1:]
        if not args:
            for n in sorted(self.vars, key=encode):
                v = self.vars[n]
                if v.value is not None:
                    self._out(fds, f"{n}={_single_quote(v.value)}\n")
            return 0
        while args:
            a = args[0]
            if a == "--":
                self.positional = args[1:]
                return 0
            if a in ("-o", "+o"):
                if len(args) < 2:
                    for long, letter in (("errexit", "e"), ("noglob", "f"), ("nounset", "u"), ("xtrace", "x")):
                        self._out(fds, f"{long:<16s}{'on' if letter in self.opts else 'off'}\n")
                    return 0
                chosen = {"errexit": "e", "nounset": "u", "noglob": "f", "xtrace": "x"}.get(args[1])
                if chosen is None:
                    if args[1] == "pipefail":
                        raise UnsupportedCommandError("the model's shell does not implement 'set -o pipefail'; run it with BACKEND='real'")
                    self.message(fds, f"illegal option {a} {args[1]}", command="set")
                    return 1
                (self.opts.add if a == "-o" else self.opts.discard)(chosen)
                args = args[2:]
                continue
            if (a.startswith("-") or a.startswith("+")) and len(a) > 1:
                for c in a[1:]:
                    if c not in "eufxvC":
                        raise ShellError(f"illegal option {a[0]}{c}")
                    if c in "eufx":
                        (self.opts.add if a[0] == "-" else self.opts.discard)(c)
                args = args[1:]
                continue
            self.positional = args
            return 0
        return 0

    def b_shift(self, argv: list[str], fds: dict[int, Stream]) -> int:
        n = self._number(argv[1]) if len(argv) > 1 else 1
        if n > len(self.positional):
            return 1
        self.positional = self.positional[n:]
        return 0

    def b_eval(self, argv: list[str], fds: dict[int, Stream]) -> int:
        src = " ".join(argv[1:])
        if not src.strip():
            return 0
        saved = self.lineno
        try:
            return self.run_source(src, fds, first_line=self.lineno)
        finally:
            self.lineno = saved

    def b_dot(self, argv: list[str], fds: dict[int, Stream]) -> int:
        if len(argv) < 2:
            return 2
        name = argv[1]
        path = name
        if "/" not in name:
            found = self.world.search_path(name, self.getvar("PATH") or "", self.cwd)
            path = found if found is not None else name
        try:
            stream = self.world.open_stream(self.cwd, path, os.O_RDONLY, fds)
            data = stream.read()
            stream.close()
        except OSError as e:
            raise ShellError(f"can't open '{name}': {os.strerror(e.errno or errno.EIO)}") from None
        saved = (self.positional, self.lineno, self.commandname)
        if len(argv) > 2:
            self.positional = argv[2:]
        self.commandname = path
        try:
            return self.run_source(decode(data), fds, first_line=1)
        finally:
            if len(argv) > 2:
                self.positional = saved[0]
            self.lineno = saved[1]
            self.commandname = saved[2]

    b_source = b_dot

    def b_exec(self, argv: list[str], fds: dict[int, Stream]) -> int:
        args = argv[1:]
        if not args:
            return 0
        status = self.run_program(args, self.environment(), fds)
        raise ShellExit(status)

    def b_cd(self, argv: list[str], fds: dict[int, Stream]) -> int:
        args = argv[1:]
        physical = False
        while args and args[0] in ("-L", "-P"):
            physical = args[0] == "-P"
            args = args[1:]
        print_dir = False
        if not args:
            dest = self.getvar("HOME") or ""
            if not dest:
                dest = "/"
        else:
            dest = args[0]
        if dest == "-":
            dest = self.getvar("OLDPWD") or ""
            print_dir = True
            if not dest:
                dest = self.cwd
        target = dest if dest.startswith("/") else (self.cwd.rstrip("/") + "/" + dest)
        new = _normalize(target)
        try:
            st = self.fs.stat(target if physical else new)
        except OSError as e:
            raise ShellError(f"can't cd to {dest}: {os.strerror(e.errno or errno.EIO)}") from None
        if not _stat.S_ISDIR(st.st_mode):
            raise ShellError(f"can't cd to {dest}: {os.strerror(errno.ENOTDIR)}")
        if physical:
            new = self.world.realpath(target)
        old = self.cwd
        self.cwd = new
        self.setvar("OLDPWD", old, export=True)
        self.setvar("PWD", new, export=True)
        if print_dir:
            self._out(fds, new + "\n")
        return 0

    b_chdir = b_cd

    def b_pwd(self, argv: list[str], fds: dict[int, Stream]) -> int:
        if "-P" in argv[1:]:
            self._out(fds, self.world.realpath(self.cwd) + "\n")
        else:
            self._out(fds, self.cwd + "\n")
        return 0

    def b_read(self, argv: list[str], fds: dict[int, Stream]) -> int:
        args = argv[1:]
        raw = False
        while args and args[0].startswith("-") and len(args[0]) > 1:
            a = args.pop(0)
            if a == "-r":
                raw = True
            elif a == "-p":
                if args:
                    args.pop(0)
            elif a == "--":
                break
            elif a[1:2] in ("t", "n", "s", "u", "d", "a"):
                raise UnsupportedCommandError(f"the model's shell does not implement 'read {a}'; run it with BACKEND='real'")
            else:
                raise ShellError(f"illegal option {a[:2]}")
        names = args or ["REPLY"]
        stream = fds.get(0)
        if stream is None:
            raise ShellError("read error: Bad file descriptor")
        chars: list[str] = []
        quoted: list[bool] = []
        eof = True
        while True:
            line = stream.readline()
            if not line:
                break
            text = decode(line)
            ended = text.endswith("\n")
            if ended:
                text = text[:-1]
            i = 0
            continued = False
            while i < len(text):
                c = text[i]
                if c == "\\" and not raw:
                    if i + 1 < len(text):
                        chars.append(text[i + 1])
                        quoted.append(True)
                        i += 2
                        continue
                    if ended:
                        continued = True
                        break
                    i += 1
                    continue
                chars.append(c)
                quoted.append(False)
                i += 1
            if ended and not continued:
                eof = False
                break
            if not ended:
                break
        ifs = self.getvar("IFS")
        ifs = " \t\n" if ifs is None else ifs
        fields = _read_split(chars, quoted, ifs, len(names))
        for k, n in enumerate(names):
            self.setvar(n, fields[k] if k < len(fields) else "")
        return 1 if eof else 0

    def b_local(self, argv: list[str], fds: dict[int, Stream]) -> int:
        if not self.locals:
            raise ShellError("not in a function")
        frame = self.locals[-1]
        for a in argv[1:]:
            name, eq, value = a.partition("=")
            if not _NAME.fullmatch(name):
                raise ShellError(f"{name}: bad variable name")
            if name not in frame:
                old = self.vars.get(name)
                frame[name] = None if old is None else _Var(old.value, old.exported, old.readonly, old.seq)
            if eq:
                self.setvar(name, value)
        return 0

    def b_command(self, argv: list[str], fds: dict[int, Stream]) -> int:
        args = argv[1:]
        mode = None
        while args and args[0] in ("-v", "-V", "-p"):
            mode = args[0] if args[0] != "-p" else mode
            args = args[1:]
        if not args:
            return 0
        if mode is None:
            name = args[0]
            if name in _SPECIAL_BUILTINS or name in _REGULAR_BUILTINS:
                return self.builtin(name, args, fds)
            return self.run_program(args, self.environment(), fds)
        name = args[0]  # ash describes only the first name
        kind, where = self._describe(name)
        if kind is None:
            if mode == "-V":
                self._out(fds, f"{name}: not found\n")
            return 127
        if mode == "-v":
            self._out(fds, (where if kind == "file" else name) + "\n")
        else:
            self._out(fds, _describe_text(name, kind, where) + "\n")
        return 0

    def b_type(self, argv: list[str], fds: dict[int, Stream]) -> int:
        status = 0
        for name in argv[1:]:
            kind, where = self._describe(name)
            if kind is None:
                self._out(fds, f"{name}: not found\n")
                status = 127
            else:
                self._out(fds, _describe_text(name, kind, where) + "\n")
        return status

    def _describe(self, name: str) -> tuple[str | None, str]:
        if name in self.funcs:
            return "function", ""
        if name in _SPECIAL_BUILTINS:
            return "special", ""
        if name in _REGULAR_BUILTINS:
            return "builtin", ""
        if "/" not in name and self.world.builtin_applets and name in BUSYBOX_APPLETS:
            return "applet", name
        if "/" in name:
            try:
                st = self.fs.stat(self.fs_path(name))
            except OSError:
                return None, ""
            return ("file", name) if _stat.S_ISREG(st.st_mode) else (None, "")
        found = self.world.search_path(name, self.getvar("PATH") or "", self.cwd)
        return ("file", found) if found else (None, "")

    def b_wait(self, argv: list[str], fds: dict[int, Stream]) -> int:
        return 0

    def b_hash(self, argv: list[str], fds: dict[int, Stream]) -> int:
        return 0

    def b_umask(self, argv: list[str], fds: dict[int, Stream]) -> int:
        options = getattr(self.fs, "options", None)
        umask = getattr(options, "umask", 0o022)
        if len(argv) > 1 and argv[1] != "-S":
            if argv[1] == f"{umask:04o}" or argv[1] == f"{umask:o}" or argv[1] == f"{umask:03o}":
                return 0
            raise UnsupportedCommandError("the model's shell cannot change the umask (the union applies a fixed one); "
                                          "run it with BACKEND='real'")
        self._out(fds, f"{umask:04o}\n")
        return 0


class _RedirError(Exception):
    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


def _normalize(path: str) -> str:
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/" + "/".join(out)


def _single_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _quote(word: str) -> str:
    if word and re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", word):
        return word
    return _single_quote(word)


def _describe_text(name: str, kind: str, where: str) -> str:
    if kind == "function":
        return f"{name} is a function"
    if kind == "special":
        return f"{name} is a special shell builtin"
    if kind == "builtin":
        return f"{name} is a shell builtin"
    if kind == "applet":
        return f"{name} is {name}"
    return f"{name} is {where}"


def _read_split(chars: list[str], quoted: list[bool], ifs: str, count: int) -> list[str]:
    ws = set(c for c in ifs if c in " \t\n")
    nws = set(c for c in ifs if c not in " \t\n")
    fields: list[str] = []
    i = 0
    n = len(chars)
    while i < n and chars[i] in ws and not quoted[i]:
        i += 1
    while i < n:
        if len(fields) == count - 1:
            rest = chars[i:]
            q = quoted[i:]
            while rest and rest[-1] in ws and not q[-1]:
                rest.pop()
                q.pop()
            fields.append("".join(rest))
            return fields
        cur: list[str] = []
        while i < n and not ((chars[i] in ws or chars[i] in nws) and not quoted[i]):
            cur.append(chars[i])
            i += 1
        fields.append("".join(cur))
        while i < n and chars[i] in ws and not quoted[i]:
            i += 1
        if i < n and chars[i] in nws and not quoted[i]:
            i += 1
            while i < n and chars[i] in ws and not quoted[i]:
                i += 1
    return fields


def _sh_applet(p: Proc) -> int:
    shell = Shell(p.world, p.env, p.cwd, applet_name=posixpath.basename(p.argv[0]) if p.argv else "sh")
    return shell.main(p.argv, p.fds, p.env)


APPLETS["sh"] = _sh_applet
APPLETS["ash"] = _sh_applet

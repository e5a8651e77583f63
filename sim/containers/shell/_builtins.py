"""ash's builtins, special (POSIX XCU 2.14) and regular, as methods over the shell's state.

A special builtin's error aborts the script (the executor reports it); a
regular builtin's is reported here and returns 2.  ``eval``, ``.``,
``exec`` and ``command`` run code through the executor, which implements
:meth:`Builtins.run_source` and :meth:`Builtins.run_program`.
"""

from __future__ import annotations

import errno
import os
import re
import stat as _stat
from abc import abstractmethod

from sim.containers.shell._applets import APPLETS
from sim.containers.shell._control import FunctionReturn, LoopControl, ShellError, ShellExit
from sim.containers.shell._proc import Stream, decode, encode
from sim.containers.shell._state import ShellState, Var, normalize
from sim.containers.shell._usage import BUSYBOX_APPLETS
from sim.errors import UnsupportedCommandError

__all__ = ["Builtins", "SPECIAL_BUILTINS", "REGULAR_BUILTINS", "quote"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SPECIAL_BUILTINS = frozenset({":", ".", "break", "continue", "eval", "exec", "exit", "export", "readonly", "return",
                              "set", "shift", "unset", "source", "times", "trap"})
REGULAR_BUILTINS = frozenset({"cd", "chdir", "echo", "false", "true", "printf", "pwd", "read", "test", "[", "command",
                              "type", "local", "wait", "umask", "hash", "getopts", "kill", "alias", "unalias", "ulimit",
                              "jobs", "fg", "bg", "let", "history", "help", "[["})
_UNSUPPORTED_BUILTINS = frozenset({"times", "trap", "getopts", "kill", "alias", "unalias", "ulimit", "jobs", "fg", "bg",
                                   "let", "history", "help", "[["})


class Builtins(ShellState):
    """The builtins of one ash process (``b_NAME``), and how a builtin is called."""

    # -- what the executor supplies ---------------------------------------------------

    @abstractmethod
    def run_source(self, src: str, fds: dict[int, Stream], *, first_line: int) -> int:
        """Parse and run ``src`` in this shell."""

    @abstractmethod
    def run_program(self, argv: list[str], env: dict[str, str], fds: dict[int, Stream]) -> int:
        """Run an external command (an applet or a file on ``$PATH``)."""

    # -- calling a builtin -------------------------------------------------------------

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
            if name in SPECIAL_BUILTINS:
                if e.command is None:
                    e.command = name
                raise
            e.command = e.command or name
            self.report(e, fds)
            return 2
        finally:
            self.commandname = saved

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
        raise FunctionReturn(status)

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
        raise LoopControl(kind, min(n, self.loop_depth))

    def b_export(self, argv: list[str], fds: dict[int, Stream], *, readonly: bool = False) -> int:
        args = argv[1:]
        if args and args[0] == "-p":
            args = args[1:]
        if not args:
            for n in sorted(self.vars, key=encode):
                v = self.vars[n]
                if (v.readonly if readonly else v.exported) and (v.value is not None or readonly):
                    word = "readonly" if readonly else "export"
                    self._out(fds, f"{word} {n}" + (f"={single_quote(v.value)}" if v.value is not None else "") + "\n")
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
                var = self.vars[name] = Var(None, seq=self.seq)
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
                    self._out(fds, f"{n}={single_quote(v.value)}\n")
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
        new = normalize(target)
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
        for a in argv[1:]:
            if a == "--" or not a.startswith("-"):
                break
            bad = [c for c in a[1:] if c not in "LP"]
            if bad:
                raise ShellError(f"illegal option -{bad[0]}")  # ash's nextopt("LP")
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
                frame[name] = None if old is None else Var(old.value, old.exported, old.readonly, old.seq)
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
            if name in SPECIAL_BUILTINS or name in REGULAR_BUILTINS:
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
        if name in SPECIAL_BUILTINS:
            return "special", ""
        if name in REGULAR_BUILTINS:
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


def single_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def quote(word: str) -> str:
    """``word`` as ``set -x`` shows it: bare when it is safe to, else single-quoted."""
    if word and re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", word):
        return word
    return single_quote(word)


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


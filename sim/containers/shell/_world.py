"""What every process of one run shares: the file system, the credentials, the hostname, the (fake) clock.

:class:`World` also finds and starts programs (``execve``, the busybox
multi-call binary, ``PATH`` lookup) and opens files as a process would.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as _stat
from collections.abc import Mapping, Sequence

from sim.containers.shell._applets import APPLETS
from sim.containers.shell._proc import BytesIn, FsStream, NullStream, Proc, Stream, decode, encode, fs_join
from sim.containers.shell._usage import BANNER, BUSYBOX_APPLETS, USAGE
from sim.containers.userns import HOST_MAPS, IdMaps
from sim.errors import UnsupportedCommandError
from sim.interface import FileSystem

__all__ = ["World", "DEFAULT_PATH", "ASH_DEFAULT_PATH"]

#: The PATH Docker gives a container whose image sets none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: What ash uses (and exports) when its environment has no PATH.
ASH_DEFAULT_PATH = "/sbin:/usr/sbin:/bin:/usr/bin"
_BIN_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
#: Applets whose "--help" is an ordinary argument (POSIX says so for test; the shell's echo and printf)
_OWN_HELP = frozenset({"test", "[", "true", "false", "echo", "printf", "sh", "ash"})
#: The files of /proc the model answers (the container's tree has an empty /proc): the id maps.
_PROC_MAPS = {f"/proc/{who}/{kind}_map": kind for who in ("self", "thread-self") for kind in ("uid", "gid")}


class World:
    """What the processes of one run share."""

    def __init__(self, fs: FileSystem, *, uid: int, gid: int, hostname: str, builtin_applets: bool,
                 groups: Sequence[int] | None = None, id_maps: IdMaps = HOST_MAPS) -> None:
        self.fs = fs
        self.uid = uid
        self.gid = gid
        # The runtime's supplementary groups (None: every /etc/group entry naming the user, as Docker
        # gives), sorted as the kernel keeps them (setgroups sorts; getgroups returns that order).
        self.groups = tuple(sorted(set(groups))) if groups is not None else None
        self.id_maps = id_maps
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
        if path in _PROC_MAPS:
            if flags & os.O_ACCMODE != os.O_RDONLY:
                raise OSError(errno.EPERM, os.strerror(errno.EPERM), name)  # a map is written once, by its maker
            maps = self.id_maps
            return BytesIn(encode(maps.proc_uid_map() if _PROC_MAPS[path] == "uid" else maps.proc_gid_map()))
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
        if len(argv) == 2 and argv[1] == "--help" and applet in USAGE and applet not in _OWN_HELP:
            # libbb's run_applet: "APPLET --help" is the usage text on stderr, and success
            err = fds.get(2)
            if err is not None:
                err.write(encode(f"{BANNER}\n\n{USAGE[applet]}"))
            return 0
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


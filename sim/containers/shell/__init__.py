"""A small POSIX shell over a :class:`~sim.interface.FileSystem`: what ``RUN`` does in the model.

``run(script, fs)`` interprets ``script`` as busybox's ash would run
``/bin/sh -c script`` inside a container whose root is ``fs``; ``run(argv, fs)``
runs an exec-form command (no shell).  Nothing touches the host: every file
operation is a call on ``fs``, so a union sees the same copy-ups and
whiteouts the real commands cause.  ``docs/shell.md`` lists the grammar,
the commands and where the model differs from busybox 1.35.

Programs the model does not implement raise
:class:`~sim.errors.UnsupportedCommandError`, which names them and points
to the real backend.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from sim.containers.shell._applets import APPLETS
from sim.containers.shell._interp import Shell
from sim.containers.shell._owner import OwnedFS
from sim.containers.shell._proc import BufferOut, BytesIn, Stream
from sim.containers.shell._state import FAKE_PID
from sim.containers.shell._usage import BUSYBOX_APPLETS
from sim.containers.shell._world import ASH_DEFAULT_PATH, DEFAULT_PATH, World
from sim.containers.userns import HOST_MAPS, IdMaps
from sim.errors import UnsupportedCommandError
from sim.interface import FileSystem

__all__ = ["run", "ShellResult", "DEFAULT_PATH", "ASH_DEFAULT_PATH", "FAKE_PID", "IMPLEMENTED", "BUSYBOX_APPLETS"]

#: The applets the model implements (a subset of :data:`BUSYBOX_APPLETS`).
IMPLEMENTED: frozenset[str] = frozenset(APPLETS)


@dataclass(frozen=True)
class ShellResult:
    """What a run left: exit status, captured output, the final exported environment and cwd."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    cwd: str = "/"

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def run(
    script: str | Sequence[str],
    fs: FileSystem,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str = "/",
    uid: int = 0,
    gid: int = 0,
    hostname: str = "localhost",
    stdin: bytes = b"",
    builtin_applets: bool = True,
    groups: Sequence[int] | None = None,
    id_maps: IdMaps = HOST_MAPS,
) -> ShellResult:
    """Run a shell-form command line (a ``str``) or an exec-form argv (a sequence) in ``fs``.

    ``env`` is the process environment (``None``: just Docker's default ``PATH``);
    ``cwd`` the working directory (the image's WORKDIR).  With
    ``builtin_applets`` (the default) every busybox applet runs without a
    file in ``fs``, as Debian's busybox-static shell does; with it off,
    commands must be found on ``$PATH`` in ``fs`` and shell form needs
    ``/bin/sh``.  ``groups`` are the process's groups as the runtime set them (``None``: the
    user's /etc/group entries); ``id_maps`` is what ``/proc/self/uid_map`` and ``gid_map`` read
    (default: no user namespace, see :mod:`sim.containers.userns`).
    """
    environ = dict(env) if env is not None else {"PATH": DEFAULT_PATH}
    # What another user creates is its own (the model's file systems create everything as 0:0).
    world = World(OwnedFS(fs, uid, gid) if (uid, gid) != (0, 0) else fs, uid=uid, gid=gid, hostname=hostname, builtin_applets=builtin_applets, groups=groups,
                  id_maps=id_maps)
    out, err = BufferOut(), BufferOut()
    fds: dict[int, Stream] = {0: BytesIn(stdin), 1: out, 2: err}
    cwd = cwd if cwd.startswith("/") else "/" + cwd
    try:
        if isinstance(script, str):
            if not builtin_applets and not _can_exec(fs, "/bin/sh"):
                err.write(b'exec: "/bin/sh": stat /bin/sh: no such file or directory\n')
                return ShellResult(127, out.getvalue(), err.getvalue(), MappingProxyType(environ), cwd)
            shell = Shell(world, environ, cwd)
            status = shell.main(["/bin/sh", "-c", script], fds, environ)
            final_env = shell.environment()
            final_cwd = shell.cwd
        else:
            argv = [str(a) for a in script]
            if not argv:
                raise ValueError("exec form needs at least the program name")
            status = _exec_form(world, argv, environ, cwd, fds)
            final_env, final_cwd = environ, cwd
    except RecursionError:
        raise UnsupportedCommandError(
            "the model's shell cannot nest functions, subshells or command substitutions this deep "
            "(Python's recursion limit); run it with BACKEND='real'") from None
    finally:
        for stream in world.open_streams:
            stream.close()
    return ShellResult(status, out.getvalue(), err.getvalue(), MappingProxyType(dict(final_env)), final_cwd)


def _can_exec(fs: FileSystem, path: str) -> bool:
    try:
        return bool(fs.stat(path).st_mode & 0o111)
    except OSError:
        return False


def _exec_form(world: World, argv: list[str], env: dict[str, str], cwd: str, fds: dict[int, Stream]) -> int:
    """What the runtime does with an exec-form command: look it up on the container's PATH and exec it."""
    name = argv[0]
    err = fds[2]
    if "/" not in name:
        if world.builtin_applets and name in BUSYBOX_APPLETS:
            return world.run_applet(name, argv, env, cwd, fds)
        found = world.search_path(name, env.get("PATH", DEFAULT_PATH), cwd)
        if found is None:
            err.write(f'exec: "{name}": executable file not found in $PATH\n'.encode())
            return 127
        path = found
    else:
        path = name
    try:
        return world.execve(path, argv, env, cwd, fds, script_fallback=False)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            err.write(f'exec: "{name}": stat {path}: no such file or directory\n'.encode())
            return 127
        err.write(f'exec: "{name}": {os.strerror(e.errno or errno.EIO).lower()}\n'.encode())
        return 126

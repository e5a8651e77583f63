"""A detached model run, computed at once on the virtual clock (see :mod:`sim.containers._vclock`):
the model's shell with a world whose ``sleep`` moves a clock instead of waiting, and whose stdout and
stderr stamp every write with the virtual time it was made at.  Imported only when a model container
starts detached (the shell is large)."""

from __future__ import annotations

import math
from typing import Any

from sim.containers._vclock import Timeline
from sim.containers.shell import _exec_form
from sim.containers.shell._interp import Shell
from sim.containers.shell._owner import OwnedFS
from sim.containers.shell._proc import BytesIn, Stream
from sim.containers.shell._world import World
from sim.containers.userns import HOST_MAPS, IdMaps
from sim.errors import UnsupportedCommandError
from sim.interface import FileSystem

__all__ = ["run_timed", "HORIZON"]

#: How far ahead a detached run is modelled (virtual seconds): a run still going then blocks forever.
HORIZON = 24 * 3600.0
#: Output beyond this many bytes ends the modelled run as blocked (a loop printing without sleeping).
_MAX_OUTPUT = 16 << 20


class _Blocked(BaseException):
    """The run reached the horizon (or blocked forever): unwind the shell, keep what it wrote."""


class _ClockedWorld(World):
    """The shell's world with the virtual clock: ``sleep`` moves it; sleeping forever blocks."""

    def __init__(self, fs: FileSystem, origin: float, horizon: float, **kw: Any) -> None:
        super().__init__(fs, **kw)
        self.origin = origin
        self.horizon = horizon
        self.written = 0  # bytes to stdout and stderr together

    def now(self) -> float:
        return self.origin + self.slept

    def advance_clock(self, seconds: float) -> None:
        if self.slept + seconds > self.horizon:
            self.slept = math.inf
            raise _Blocked
        self.slept += seconds

    def run_applet(self, applet: str, argv: list[str], env: dict[str, str], cwd: str, fds: dict[int, Stream],
                   *, path: str | None = None) -> int:
        if applet == "sleep" and any(a in ("inf", "infinity") for a in argv[1:]):
            self.advance_clock(math.inf)  # what a daemon's "sleep infinity" is: blocked until a signal
        return super().run_applet(applet, argv, env, cwd, fds, path=path)


class _Stamped(Stream):
    """stdout or stderr of a detached run: every write kept with the virtual time it was made at."""

    writable = True

    def __init__(self, world: _ClockedWorld, tag: int, chunks: list[tuple[float, int, bytes]]) -> None:
        self.world, self.tag, self.chunks = world, tag, chunks

    def write(self, data: bytes) -> None:
        if data:
            self.chunks.append((self.world.slept, self.tag, bytes(data)))
            self.world.written += len(data)
            if self.world.written > _MAX_OUTPUT:
                raise _Blocked


def run_timed(argv: tuple[str, ...], fs: FileSystem, *, env: dict[str, str], cwd: str, uid: int, gid: int,
              hostname: str, stdin: bytes, groups: tuple[int, ...], id_maps: IdMaps = HOST_MAPS,
              origin: float = 0.0, horizon: float = HORIZON) -> Timeline:
    """Run ``argv`` (``sh -c SCRIPT`` runs the script in the model's shell, anything else as an exec-form
    command) in ``fs`` as :func:`sim.containers.shell.run` does, on a virtual clock starting at
    ``origin``: each write stamped, the end at the total time slept.  A program the model cannot run
    raises :class:`UnsupportedCommandError` as in a foreground run."""
    world = _ClockedWorld(OwnedFS(fs, uid, gid) if (uid, gid) != (0, 0) else fs, origin, horizon, uid=uid, gid=gid,
                          hostname=hostname, builtin_applets=True, groups=groups, id_maps=id_maps)
    chunks: list[tuple[float, int, bytes]] = []
    fds: dict[int, Stream] = {0: BytesIn(stdin), 1: _Stamped(world, 1, chunks), 2: _Stamped(world, 2, chunks)}
    cwd = cwd if cwd.startswith("/") else "/" + cwd
    try:
        if len(argv) == 3 and argv[0] in ("/bin/sh", "sh") and argv[1] == "-c":
            status = Shell(world, dict(env), cwd).main(["/bin/sh", "-c", argv[2]], fds, dict(env))
        else:
            status = _exec_form(world, list(argv), dict(env), cwd, fds)
    except _Blocked:
        return Timeline(tuple(chunks), math.inf, 0)
    except RecursionError:
        raise UnsupportedCommandError("the model's shell cannot nest this deep; run it with BACKEND='real'") from None
    finally:
        for stream in world.open_streams:
            stream.close()
    return Timeline(tuple(chunks), world.slept, status)

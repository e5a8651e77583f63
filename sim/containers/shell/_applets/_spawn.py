"""Starting a program from an applet (``xargs``, ``find -exec``): busybox's ``BB_EXECVP`` then ``wait``.

The standalone busybox build prefers its own applets to files on ``PATH``,
exactly as the shell does, so ``xargs sed ...`` runs the model's ``sed``.
"""

from __future__ import annotations

import errno
import os

from sim.containers.shell._proc import Proc, Stream
from sim.containers.shell._usage import BUSYBOX_APPLETS

__all__ = ["spawn"]

# ash's PATH when the environment has none (sim.containers.shell._world imports the applets, so not from there)
_DEFAULT_PATH = "/sbin:/usr/sbin:/bin:/usr/bin"


def spawn(p: Proc, argv: list[str], fds: dict[int, Stream] | None = None) -> int:
    """Run ``argv`` as a child of ``p`` and return its exit status.

    Raises :class:`OSError` (``ENOENT``, ``EACCES`` ...) when the program
    cannot start, so the caller prints its own message, as busybox's callers do.
    """
    world = p.world
    name = argv[0]
    fds = dict(p.fds) if fds is None else fds
    if "/" not in name:
        if world.builtin_applets and name in BUSYBOX_APPLETS:
            status: int = world.run_applet(name, argv, dict(p.env), p.cwd, fds)
            return status
        found = world.search_path(name, p.env.get("PATH", _DEFAULT_PATH), p.cwd)
        if found is None:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        name = found
    status = world.execve(name, argv, dict(p.env), p.cwd, fds)
    return status

"""``layerlab stop``, ``kill`` and ``wait``: the lifecycle of detached containers (``run -d``, ``start -d``).

Each call is a new engine: on the real backend a detached container is run by its monitor process and
these commands reach it through the store (:mod:`realrt.containers._remote`); in the model the
container's run is kept in the state folder on the virtual clock, which ``wait`` and ``stop`` move.
"""

from __future__ import annotations

import argparse
from typing import Any

from sim.cli._command import Wrap, command_factory
from sim.containers._policy import parse_signal

__all__ = ["add_lifecycle_commands"]


def _stop(args: argparse.Namespace, eng: Any) -> int:
    for ref in args.container:
        eng.stop(ref, grace=args.time)
        print(ref)
    return 0


def _kill(args: argparse.Namespace, eng: Any) -> int:
    signal = parse_signal(args.signal)  # InvalidSpecError ("Invalid signal") before any container is touched
    for ref in args.container:
        eng.kill(ref, signal)
        print(ref)
    return 0


def _wait(args: argparse.Namespace, eng: Any) -> int:
    for ref in args.container:
        print(eng.wait(ref), flush=True)
    return 0


def add_lifecycle_commands(sub: Any, wrap: Wrap) -> None:
    """Register ``stop``, ``kill`` and ``wait`` on ``sub``."""
    command = command_factory(sub, wrap)
    p = command("stop", _stop, "stop running containers: SIGTERM, then SIGKILL after the grace period")
    p.add_argument("-t", "--time", type=float, default=10.0, metavar="SECONDS",
                   help="seconds to wait before SIGKILL (default 10; -1: never)")
    p.add_argument("container", nargs="+")
    p = command("kill", _kill, "send a signal to running containers' PID 1 (default SIGKILL)")
    p.add_argument("-s", "--signal", default="KILL", metavar="SIG", help="a name (TERM, SIGHUP) or a number")
    p.add_argument("container", nargs="+")
    p = command("wait", _wait, "block until containers stop, then print their exit codes")
    p.add_argument("container", nargs="+")

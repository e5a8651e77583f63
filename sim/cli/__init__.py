"""The ``layerlab`` command.

``layerlab tour [--backend sim|real] [--chapter N]`` prints the guided tour
(:mod:`sim.tour`): what the union file system does, chapter by chapter.
The docker-like commands (``build``, ``images``, ``history``, ``run`` ...) are
in :mod:`sim.cli._docker`.  The backend defaults to ``$LAYERLAB_BACKEND``, else ``sim``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sim.backends import DEFAULT_BACKEND_VARIABLE, KNOWN_BACKENDS, connect
from sim.errors import BackendUnavailableError, LayerlabError, UnknownBackendError

__all__ = ["main", "build_parser"]

#: Exit codes: 0 ok, 1 the backend cannot run here (or a layerlab error stopped the tour),
#: 2 bad usage (argparse's own code, also for an unknown backend).
EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    from sim.tour import CHAPTERS

    parser = argparse.ArgumentParser(
        prog="layerlab",
        description="Learn how Docker really works: a model (sim) and the real Linux kernel (real), one interface.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    chapters = "; ".join(f"{i} {c.zh} {c.en}" for i, c in enumerate(CHAPTERS, start=1))
    tour = sub.add_parser(
        "tour",
        help="print a guided tour, chapter by chapter",
        description=f"Print what happens, chapter by chapter. Chapters: {chapters}.",
    )
    tour.add_argument(
        "--backend",
        default=None,
        metavar="{" + ",".join(sorted(KNOWN_BACKENDS)) + "}",
        help=f"which engine runs the tour (default: ${DEFAULT_BACKEND_VARIABLE}, else sim)",
    )
    tour.add_argument(
        "--chapter",
        type=int,
        action="append",
        metavar="N",
        help=f"only chapter N (1..{len(CHAPTERS)}); repeat for several",
    )
    tour.set_defaults(handler=_tour, subparser=tour)
    from sim.cli._docker import add_commands
    from sim.cli._exercises import add_exercise_commands
    from sim.cli._lifecycle import add_lifecycle_commands
    from sim.cli._maintenance import add_maintenance_commands
    from sim.cli._network import add_network_commands
    from sim.cli._registry import add_registry_commands

    add_commands(sub, _with_engine)
    add_registry_commands(sub, _with_engine)
    add_maintenance_commands(sub, _with_engine)
    add_network_commands(sub, _with_engine)
    add_lifecycle_commands(sub, _with_engine)
    add_exercise_commands(sub)
    return parser


def _with_engine(handler: Callable[[argparse.Namespace, Any], int]) -> Callable[[argparse.Namespace], int]:
    """A docker-like command gets an engine for --backend, and unavailable backends a clear message."""

    def run(args: argparse.Namespace) -> int:
        from sim.cli._docker import _engine

        backend = args.backend or os.environ.get(DEFAULT_BACKEND_VARIABLE) or "sim"
        try:
            engine = _engine(args)
        except UnknownBackendError as exc:
            print(f"layerlab: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except BackendUnavailableError as exc:
            print(f"layerlab: error: the {backend!r} backend cannot run here: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        try:
            return handler(args, engine)
        finally:
            engine.close()  # type: ignore[attr-defined]

    return run


def _tour(args: argparse.Namespace) -> int:
    from sim.tour import CHAPTERS, run_tour

    parser: argparse.ArgumentParser = args.subparser
    backend = args.backend or os.environ.get(DEFAULT_BACKEND_VARIABLE) or "sim"
    if args.chapter:
        bad = [n for n in args.chapter if not 1 <= n <= len(CHAPTERS)]
        if bad:
            parser.error(f"no chapter {bad[0]}; chapters are 1..{len(CHAPTERS)}")
    try:
        engine = connect(backend)
    except UnknownBackendError as exc:
        source = "--backend" if args.backend else f"${DEFAULT_BACKEND_VARIABLE}"
        print(f"layerlab: error: {exc} (from {source})", file=sys.stderr)
        return EXIT_USAGE
    except BackendUnavailableError as exc:
        print(f"layerlab: error: the {backend!r} backend cannot run here: {exc}", file=sys.stderr)
        if backend != "sim":
            print("layerlab: hint: `layerlab tour --backend sim` runs everywhere", file=sys.stderr)
        return EXIT_UNAVAILABLE
    run_tour(engine, backend, sys.stdout, args.chapter)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code instead of raising ``SystemExit``."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.handler(args))
    except SystemExit as exc:  # --help, or a usage error argparse has already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except LayerlabError as exc:
        print(f"layerlab: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


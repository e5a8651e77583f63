"""The housekeeping subcommands of ``layerlab``: fsck, image/container/builder prune, system prune and df.

Each prune prints what it removed (Docker's ``Deleted Images:`` ... listing) and
``Total reclaimed space: N``.  ``fsck`` prints one line per problem with what to do and exits 1
while a problem remains (after ``--repair``: one that the repair could not remove).  There is
no confirmation prompt: ``-f/--force`` is accepted so Docker's command lines work unchanged.
``volume prune`` is an action of ``volume`` (:mod:`sim.cli._docker`), printed the same way.
"""

from __future__ import annotations

import argparse
from typing import Any

from sim.cli._command import Wrap, command_factory

__all__ = ["add_maintenance_commands", "print_prune"]


def _size(n: int) -> str:
    from sim.cli._docker import _size as size

    return size(n)


def print_prune(result: Any) -> None:
    """A :class:`~sim.containers._maintenance.PruneResult` as Docker prints it."""
    lines = result.lines()
    if lines:
        print("\n".join(lines))
        print()
    print(f"Total reclaimed space: {_size(result.freed_bytes)}")


def _fsck(args: argparse.Namespace, eng: Any) -> int:
    report = eng.fsck(repair=args.repair)
    print(f"checked {report.blobs_checked} blobs and {report.images_checked} images")
    for problem in report.problems:
        print(problem.line())
    for line in report.repaired:
        print(line)
    if args.repair and report.remaining:
        print(f"{len(report.remaining)} problems remain:")
        for problem in report.remaining:
            print(problem.line())
    print("no problems found" if not report.problems else
          "repaired" if report.ok else f"{len(report.remaining)} problems")
    return 0 if report.ok else 1


def _image(args: argparse.Namespace, eng: Any) -> int:
    print_prune(eng.image_prune(all=args.all))
    return 0


def _container(args: argparse.Namespace, eng: Any) -> int:
    print_prune(eng.container_prune())
    return 0


def _builder(args: argparse.Namespace, eng: Any) -> int:
    print_prune(eng.builder_prune(all=args.all))
    return 0


def _system(args: argparse.Namespace, eng: Any) -> int:
    from sim.cli._docker import _json, _table

    if args.action == "df":
        usage = eng.system_df()
        if args.json:
            print(_json(usage))
            return 0

        def part(row: Any) -> str:
            share = f" ({100 * row.reclaimable // row.size}%)" if row.size else ""
            return f"{_size(row.reclaimable)}{share}"

        print(_table([(r.type, str(r.total), str(r.active), _size(r.size), part(r)) for r in usage.rows],
                     ("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE")))
        return 0
    result = eng.system_prune(all=args.all, volumes=args.volumes)
    for part_result in result.parts:
        lines = part_result.lines()
        if lines:
            print("\n".join(lines))
            print()
    print(f"Total reclaimed space: {_size(result.freed_bytes)}")
    return 0


def _force(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="accepted for Docker's command lines (there is no prompt)")


def add_maintenance_commands(sub: Any, wrap: Wrap) -> None:
    command = command_factory(sub, wrap)
    p = command("fsck", _fsck, "check every blob, image, tag and container of the store; exit 1 on a problem")
    p.add_argument("--repair", action="store_true", help="remove what cannot be trusted (never a tagged image's intact blobs)")
    p = command("image", _image, "image prune [-a]: remove dangling images (-a: every image no container uses)")
    p.add_argument("action", choices=["prune"])
    p.add_argument("-a", "--all", action="store_true", help="also tagged images no container uses")
    _force(p)
    p = command("container", _container, "container prune: remove every container that is not running")
    p.add_argument("action", choices=["prune"])
    _force(p)
    p = command("builder", _builder, "builder prune [-a]: remove the build cache and resumable downloads")
    p.add_argument("action", choices=["prune"])
    p.add_argument("-a", "--all", action="store_true", help="every cache entry, not only those whose layer no image keeps")
    _force(p)
    p = command("system", _system, "system df (disk usage, reclaimable) or system prune [-a] [--volumes]", json_flag=True)
    p.add_argument("action", choices=["df", "prune"])
    p.add_argument("-a", "--all", action="store_true", help="prune: every unused image and all of the build cache")
    p.add_argument("--volumes", action="store_true", help="prune: also unused anonymous volumes")
    _force(p)

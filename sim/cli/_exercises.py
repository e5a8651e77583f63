"""``layerlab exercises list | start CHAPTER [DIR] | check [NOTEBOOK|DIR] [--backend sim|real]``.

``start`` writes the student notebooks (generated from the instructor's source; ``--instructor``
writes the teacher's version for nbgrader instead); ``check`` grades notebooks headless with
nbclient and prints each check passed or failed with its hint, then the score; it exits 1 when a
check fails or a notebook cannot run, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sim.backends import KNOWN_BACKENDS
from sim.errors import InvalidSpecError, LayerlabError

__all__ = ["add_exercise_commands"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_exercise_commands(sub: Any) -> None:
    """Register ``exercises`` and its three subcommands on the top-level subparsers."""
    parser = sub.add_parser("exercises", help="graded exercises per chapter: list, start, check",
                            description="Exercises a teacher can hand out and grade offline (nbgrader conventions).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="the exercise sets and their checks")
    listing.set_defaults(handler=_list)
    start = actions.add_parser("start", help="write a chapter's student notebook into a folder")
    start.add_argument("chapter", metavar="CHAPTER", help="number (1), slug (layers) or NN_slug, or 'all'")
    start.add_argument("folder", metavar="DIR", nargs="?", default="exercises", help="where to write (default: ./exercises)")
    start.add_argument("--instructor", action="store_true", help="write the instructor version (solutions, hidden tests)")
    start.add_argument("--force", action="store_true", help="overwrite a notebook that is already there")
    start.set_defaults(handler=_start)
    check = actions.add_parser("check", help="grade notebooks headless; exits 1 when a check fails")
    check.add_argument("target", metavar="NOTEBOOK|DIR", nargs="?", default="exercises",
                       help="a notebook, or a folder of them (default: ./exercises)")
    check.add_argument("--backend", default="sim", choices=sorted(KNOWN_BACKENDS), help="run the checks on (default: sim)")
    check.add_argument("--timeout", type=int, default=300, metavar="S", help="seconds a cell may take (default: 300)")
    check.set_defaults(handler=_check)


def _list(args: argparse.Namespace) -> int:
    from sim.exercises import EXERCISE_SETS, graded_cells, instructor_notebook

    for ex in EXERCISE_SETS:
        cells = graded_cells(instructor_notebook(ex))
        print(f"{ex.number:02d}_{ex.slug}  {ex.title}  ({len(cells)} checks, {sum(p for _, p, _ in cells):g} points)")
        for grade_id, points, title in cells:
            print(f"    {grade_id:<20} {points:>4g}  {title}")
    return EXIT_OK


def _start(args: argparse.Namespace) -> int:
    import nbformat

    from sim.exercises import EXERCISE_SETS, exercise_set, instructor_notebook, student_notebook

    try:
        sets = list(EXERCISE_SETS) if args.chapter == "all" else [exercise_set(args.chapter)]
    except InvalidSpecError as exc:
        print(f"layerlab: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    folder = Path(args.folder)
    targets = [(ex, folder / ex.notebook_name) for ex in sets]
    existing = [str(t) for _, t in targets if t.exists()]
    if existing and not args.force:  # checked before anything is written
        print(f"layerlab: error: {', '.join(existing)} exists; --force overwrites", file=sys.stderr)
        return EXIT_FAILED
    folder.mkdir(parents=True, exist_ok=True)
    for ex, target in targets:
        nb = instructor_notebook(ex) if args.instructor else student_notebook(ex)
        nbformat.validate(nb)
        write: Any = nbformat.write  # untyped upstream
        write(nb, str(target))
        print(f"wrote {target} ({'instructor' if args.instructor else 'student'} version of {ex.title})")
    if not args.instructor:
        print(f"open it in Jupyter, answer, then: layerlab exercises check {folder}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from sim.exercises import check_notebook

    target = Path(args.target)
    notebooks = sorted(target.glob("*.ipynb")) if target.is_dir() else [target]
    if not notebooks:
        print(f"layerlab: error: no notebook in {target}", file=sys.stderr)
        return EXIT_FAILED
    failed = False
    score = total = 0.0
    for path in notebooks:
        try:
            report = check_notebook(path, args.backend, timeout=args.timeout)
        except LayerlabError as exc:
            print(f"layerlab: error: {exc}", file=sys.stderr)
            failed = True
            continue
        print(f"{path} on {report.backend} ({report.seconds:.1f} s)")
        if report.setup_error:
            print(f"  setup failed: {report.setup_error}")
        for r in report.results:
            mark = "passed" if r.passed else "FAILED"
            print(f"  {mark:<7}{r.grade_id:<20}{r.points:>4g} pt  {r.title}")
            if not r.passed:
                print(f"         hint: {r.hint}")
        print(f"  score {report.score:g}/{report.total:g}")
        failed = failed or not report.passed or bool(report.setup_error)
        score, total = score + report.score, total + report.total
    if len(notebooks) > 1:
        print(f"total {score:g}/{total:g}")
    return EXIT_FAILED if failed else EXIT_OK

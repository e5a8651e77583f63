"""Grading a notebook headless: every cell run in a fresh kernel with nbclient (no Jupyter server,
no network), each graded cell passed when it ran without an error, as nbgrader's autograder does.

The backend reaches the notebook as ``$LAYERLAB_BACKEND`` in the kernel's environment, which is
what :func:`sim.connect` and :func:`sim.exercises.scratch_engine` read.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.backends import DEFAULT_BACKEND_VARIABLE, KNOWN_BACKENDS
from sim.errors import InvalidSpecError, NotFoundError, UnknownBackendError
from sim.exercises._source import _nbgrader, graded_cells

__all__ = ["CheckResult", "NotebookReport", "check_notebook", "run_notebook", "NOT_ANSWERED"]

#: The hint of a check whose answer cell still raises the student version's NotImplementedError.
NOT_ANSWERED = "not answered yet: the answer cell still raises NotImplementedError"


@dataclass(frozen=True)
class CheckResult:
    """One graded cell's outcome: ``hint`` is empty when it passed, else the concept the answer
    misses (the check's AssertionError message) or why the check could not run."""

    grade_id: str
    title: str
    points: float
    passed: bool
    hint: str = ""


@dataclass(frozen=True)
class NotebookReport:
    """A graded notebook: one :class:`CheckResult` per graded cell, in order; ``setup_error`` is the
    first error of an ungraded cell (a backend that cannot run here, a broken import), else ``""``."""

    path: Path
    backend: str
    results: tuple[CheckResult, ...]
    seconds: float
    setup_error: str = ""

    @property
    def score(self) -> float:
        """Points of the checks that passed."""
        return sum(r.points for r in self.results if r.passed)

    @property
    def total(self) -> float:
        """Points of every graded check."""
        return sum(r.points for r in self.results)

    @property
    def passed(self) -> bool:
        """Every check passed (and there was at least one)."""
        return bool(self.results) and all(r.passed for r in self.results)


def _error(cell: Any) -> tuple[str, str] | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return str(output.get("ename", "")), str(output.get("evalue", ""))
    return None


def run_notebook(nb: Any, folder: Path, backend: str, *, timeout: int = 300) -> Any:
    """Execute ``nb`` in place in a new kernel whose working folder is ``folder``; errors stay in the
    cells' outputs (``allow_errors``) so every check is graded.  Returns ``nb``."""
    from nbclient import NotebookClient

    env = dict(os.environ)
    env[DEFAULT_BACKEND_VARIABLE] = backend
    env.setdefault("SOURCE_DATE_EPOCH", "1700000000")  # the same DiffIDs on every run and backend
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})
    client.execute(env=env)
    return nb


def check_notebook(path: str | os.PathLike[str], backend: str = "sim", *, timeout: int = 300) -> NotebookReport:
    """Grade the notebook at ``path`` on ``backend``: run it headless, one :class:`CheckResult` per
    graded cell.  The file is read, never written.

    Raises :class:`~sim.errors.UnknownBackendError` for an unknown backend,
    :class:`~sim.errors.NotFoundError` when there is no such file and
    :class:`~sim.errors.InvalidSpecError` when it is not a notebook or has no graded cell,
    all before a kernel starts.
    """
    import nbformat

    if backend not in KNOWN_BACKENDS:
        raise UnknownBackendError(f"unknown backend {backend!r}; known: {', '.join(sorted(KNOWN_BACKENDS))}")
    where = Path(path)
    if not where.is_file():
        raise NotFoundError(f"no notebook at {where}")
    try:
        read: Any = nbformat.read  # untyped upstream
        nb = read(str(where), as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for a file that is not a notebook
        raise InvalidSpecError(f"{where} is not a notebook: {exc}") from exc
    graded = graded_cells(nb)
    if not graded:
        raise InvalidSpecError(f"{where} has no graded cell (nbgrader metadata with \"grade\": true)")
    start = time.monotonic()
    run_notebook(nb, where.resolve().parent, backend, timeout=timeout)
    results: list[CheckResult] = []
    setup_error = ""
    unanswered = False  # an answer cell since the previous check raised NotImplementedError
    titles = iter(graded)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = _nbgrader(cell)
        error = _error(cell)
        if meta.get("grade"):
            grade_id, points, title = next(titles)
            if error is None:
                results.append(CheckResult(grade_id, title, points, True))
            else:
                ename, evalue = error
                if unanswered:
                    hint = NOT_ANSWERED
                elif ename == "AssertionError" and evalue:
                    hint = evalue
                else:
                    hint = f"{ename}: {evalue}" if evalue else ename
                results.append(CheckResult(grade_id, title, points, False, hint))
            unanswered = False
        elif error is not None:
            if meta.get("solution") and error[0] == "NotImplementedError":
                unanswered = True
            elif not meta.get("solution") and not setup_error:  # a wrong answer is graded by its check
                setup_error = f"cell {cell.get('id', '?')}: {error[0]}: {error[1]}"
    return NotebookReport(where, backend, tuple(results), time.monotonic() - start, setup_error)

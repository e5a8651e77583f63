"""Instructor sources and the two notebooks made from them.

An exercise set is one jupytext percent-format file, ``instructor/NN_slug.py``: the only copy.
The instructor notebook is that file read as a notebook; the student notebook is made from it by
the rules nbgrader's ``generate_assignment`` applies, so a teacher who uses nbgrader (or
otter-grader) can take either as it is:

* a cell whose nbgrader metadata says ``"solution": true`` has every region between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION`` replaced by ``# YOUR CODE HERE`` and
  ``raise NotImplementedError()`` (at the marker's indentation);
* a cell with ``"grade": true`` loses every region between ``### BEGIN HIDDEN TESTS`` and
  ``### END HIDDEN TESTS``;
* every cell gets a stable id: its ``grade_id`` where it has one (nbgrader's one id per graded
  cell), else ``cell-<index>``.
"""

from __future__ import annotations

import copy
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import InvalidSpecError

__all__ = ["ExerciseSet", "EXERCISE_SETS", "exercise_set", "instructor_notebook", "student_notebook",
           "graded_cells"]

INSTRUCTOR_DIR = Path(__file__).resolve().parent / "instructor"
_NAME = re.compile(r"^(\d\d)_([a-z][a-z0-9_]*)\.py$")
_CELL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_BEGIN_SOLUTION, _END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
_BEGIN_HIDDEN, _END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


@dataclass(frozen=True)
class ExerciseSet:
    """One chapter's exercises: ``number`` and ``slug`` come from the file name ``NN_slug.py``,
    ``title`` from the first markdown heading, ``source`` is the instructor's percent-format file."""

    number: int
    slug: str
    title: str
    source: Path

    @property
    def notebook_name(self) -> str:
        """The file name both notebooks are written under: ``NN_slug.ipynb``."""
        return f"{self.number:02d}_{self.slug}.ipynb"


def _title(source: Path) -> str:
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.startswith("# # "):
            return line[4:].strip()
    return source.stem


def _discover() -> tuple[ExerciseSet, ...]:
    found = []
    for path in sorted(INSTRUCTOR_DIR.glob("*.py")):
        match = _NAME.match(path.name)
        if match:
            found.append(ExerciseSet(int(match[1]), match[2], _title(path), path))
    return tuple(found)


#: Every chapter's exercise set, in chapter order (read once from the files in ``instructor/``).
EXERCISE_SETS: tuple[ExerciseSet, ...] = _discover()


def exercise_set(name: str) -> ExerciseSet:
    """The set called ``name``: its number (``"1"``, ``"01"``), slug (``"layers"``) or ``NN_slug``.

    Raises :class:`~sim.errors.InvalidSpecError` naming the known sets when none matches.
    """
    for ex in EXERCISE_SETS:
        if name in (ex.slug, f"{ex.number:02d}_{ex.slug}") or (name.isdigit() and int(name) == ex.number):
            return ex
    known = ", ".join(f"{ex.number:02d}_{ex.slug}" for ex in EXERCISE_SETS)
    raise InvalidSpecError(f"no exercise set {name!r}; known: {known}")


def _nbgrader(cell: Any) -> dict[str, Any]:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def _stable_ids(nb: Any) -> None:
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        grade_id = _nbgrader(cell).get("grade_id")
        cell_id = grade_id if isinstance(grade_id, str) and _CELL_ID.match(grade_id) else f"cell-{index}"
        if cell_id in seen:
            raise InvalidSpecError(f"two cells share the id {cell_id!r}: nbgrader needs one id per graded cell")
        seen.add(cell_id)
        cell["id"] = cell_id


def instructor_notebook(ex: ExerciseSet) -> Any:
    """The instructor notebook (an ``nbformat.NotebookNode``, v4.5): solutions and hidden tests in."""
    # jupytext ships no type information; through importlib it is plainly Any.
    jupytext: Any = importlib.import_module("jupytext")
    nb = jupytext.read(str(ex.source), fmt="py:percent")
    nb.metadata.pop("jupytext", None)  # the .ipynb stands alone; it is not paired with the source
    _stable_ids(nb)
    for cell in nb.cells:
        if _nbgrader(cell).get("solution") and _BEGIN_SOLUTION not in cell.source:
            raise InvalidSpecError(f"{ex.source.name}: solution cell {cell['id']} has no {_BEGIN_SOLUTION}")
    return nb


def _replace_regions(source: str, begin: str, end: str, replacement: list[str] | None, where: str) -> str:
    out: list[str] = []
    inside = False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == begin:
            if inside:
                raise InvalidSpecError(f"{where}: {begin} inside another")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + r for r in replacement or [])
        elif stripped == end:
            if not inside:
                raise InvalidSpecError(f"{where}: {end} without {begin}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise InvalidSpecError(f"{where}: {begin} never ended")
    return "\n".join(out)


def student_notebook(ex: ExerciseSet) -> Any:
    """The student notebook, made from the instructor's: solutions replaced by
    ``raise NotImplementedError()``, hidden tests removed, everything else as written."""
    nb = copy.deepcopy(instructor_notebook(ex))
    for cell in nb.cells:
        meta = _nbgrader(cell)
        where = f"{ex.source.name} cell {cell['id']}"
        if meta.get("solution") and cell.cell_type == "code":
            cell.source = _replace_regions(cell.source, _BEGIN_SOLUTION, _END_SOLUTION,
                                           ["# YOUR CODE HERE", "raise NotImplementedError()"], where)
        if meta.get("grade") and cell.cell_type == "code":
            cell.source = _replace_regions(cell.source, _BEGIN_HIDDEN, _END_HIDDEN, None, where).rstrip()
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def graded_cells(nb: Any) -> list[tuple[str, float, str]]:
    """``(grade_id, points, title)`` of every graded code cell, in order; the title is the first
    heading of the markdown cell before it (the exercise's statement)."""
    found = []
    title = ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    title = line.lstrip("#").strip()
                    break
        meta = _nbgrader(cell)
        if cell.cell_type == "code" and meta.get("grade"):
            found.append((str(meta.get("grade_id", cell["id"])), float(meta.get("points", 0)), title))
    return found

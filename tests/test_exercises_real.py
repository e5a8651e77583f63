"""The instructor's notebooks pass every check on the kernel too (``--backend real``)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

import sim.exercises as ex

pytestmark = pytest.mark.real


@pytest.mark.parametrize("exercise_set", [pytest.param(s, id=s.slug) for s in ex.EXERCISE_SETS])
def test_instructor_passes_on_the_kernel(exercise_set: ex.ExerciseSet, tmp_path: Path) -> None:
    path = tmp_path / exercise_set.notebook_name
    nbformat.write(ex.instructor_notebook(exercise_set), str(path))
    report = ex.check_notebook(path, "real")
    assert report.setup_error == ""  # a machine without the real backend fails here, never skips
    assert [r.grade_id for r in report.results if not r.passed] == []
    assert report.score == report.total > 0

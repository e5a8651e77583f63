"""Graded exercises, one set a chapter, that a teacher can hand out and grade offline.

Each set is one instructor notebook in jupytext percent format (``instructor/NN_slug.py``) written
with nbgrader's conventions: ``### BEGIN SOLUTION`` / ``### END SOLUTION`` in answer cells,
``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` in graded cells, nbgrader cell metadata
with one ``grade_id`` per graded cell.  The student notebook is generated from it
(:func:`student_notebook`), never written by hand.  A check runs the answer on the model (or on
the kernel with ``$LAYERLAB_BACKEND=real``) and raises :class:`AssertionError` with a hint that
names the concept a wrong answer misses.  :func:`check_notebook` grades a notebook headless with
nbclient; ``layerlab exercises list | start | check`` is the command line.
"""

from __future__ import annotations

from sim.exercises._engine import backend_name, scratch_engine
from sim.exercises._grade import NOT_ANSWERED, CheckResult, NotebookReport, check_notebook
from sim.exercises._image_checks import (
    cached_steps,
    check_cached_steps,
    check_history,
    check_layer_count,
    check_smaller_image,
    check_stored_layers,
    layer_count,
    stored_layers,
)
from sim.exercises._layer_checks import (
    KINDS,
    check_container_layer,
    check_layer_effect,
    check_listing,
    check_sizes,
    container_layer,
    merged_listing,
    visible_bytes,
)
from sim.exercises._source import (
    EXERCISE_SETS,
    ExerciseSet,
    exercise_set,
    graded_cells,
    instructor_notebook,
    student_notebook,
)

__all__ = [
    # the sets and their two notebooks
    "ExerciseSet", "EXERCISE_SETS", "exercise_set", "instructor_notebook", "student_notebook", "graded_cells",
    # grading
    "check_notebook", "CheckResult", "NotebookReport", "NOT_ANSWERED", "backend_name", "scratch_engine",
    # chapter 1: layers and whiteouts
    "merged_listing", "check_listing", "visible_bytes", "check_sizes", "check_layer_effect", "container_layer",
    "check_container_layer", "KINDS",
    # chapter 2: images and builds
    "layer_count", "check_layer_count", "cached_steps", "check_cached_steps", "check_history",
    "check_smaller_image", "stored_layers", "check_stored_layers",
]

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

from sim.exercises._container_checks import (
    Handoff,
    check_committed,
    check_diff,
    check_exit,
    check_handoff,
    committed_paths,
    container_diff,
)
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
from sim.exercises._network_checks import (
    IPAM_MUTANTS,
    NAMESPACE_KINDS_ASKED,
    addresses,
    check_addresses,
    check_ipam_property,
    check_namespaces,
    check_publish,
    check_reachability,
    check_uid_map,
    namespaces_shared,
    reachability,
)
from sim.exercises._properties import (
    Built,
    Mutant,
    check_build_property,
    check_copy_up_property,
    check_property,
    check_registry_property,
    check_union_property,
)
from sim.exercises._registry_checks import (
    TRAFFIC,
    check_mirror_traffic,
    check_reference_parts,
    check_tag_targets,
    check_uploads,
    layer_uploads,
    mirror_traffic,
    reference_parts,
    tag_targets,
)
from sim.exercises._source import (
    EXERCISE_SETS,
    ExerciseSet,
    exercise_set,
    graded_cells,
    instructor_notebook,
    student_notebook,
)
from sim.exercises._vm_checks import (
    PLACEMENT_MUTANTS,
    check_density,
    check_fleet_fit,
    check_held_memory,
    check_hog_outcome,
    check_placement_property,
    check_start_order,
    held_memory,
    hog_outcome,
)

__all__ = [
    # the sets and their two notebooks
    "ExerciseSet", "EXERCISE_SETS", "exercise_set", "instructor_notebook", "student_notebook", "graded_cells",
    # grading
    "check_notebook", "CheckResult", "NotebookReport", "NOT_ANSWERED", "backend_name", "scratch_engine",
    # write-a-property exercises: the student's property against the correct engine and mutants
    "check_property", "Mutant", "check_union_property", "check_build_property", "Built", "check_copy_up_property",
    "check_registry_property",
    # chapter 1: layers and whiteouts
    "merged_listing", "check_listing", "visible_bytes", "check_sizes", "check_layer_effect", "container_layer",
    "check_container_layer", "KINDS",
    # chapter 2: images and builds
    "layer_count", "check_layer_count", "cached_steps", "check_cached_steps", "check_history",
    "check_smaller_image", "stored_layers", "check_stored_layers",
    # chapter 3: containers, the container layer and volumes
    "container_diff", "check_diff", "Handoff", "check_handoff", "committed_paths", "check_committed", "check_exit",
    # chapter 5: repositories and registries
    "reference_parts", "check_reference_parts", "layer_uploads", "check_uploads", "tag_targets", "check_tag_targets",
    "mirror_traffic", "check_mirror_traffic", "TRAFFIC",
    # chapter 4: containers and virtual machines
    "check_density", "held_memory", "check_held_memory", "hog_outcome", "check_hog_outcome", "check_start_order",
    "check_fleet_fit", "PLACEMENT_MUTANTS", "check_placement_property",
    # chapter 6: namespaces, user ids and networks
    "NAMESPACE_KINDS_ASKED", "namespaces_shared", "check_namespaces", "check_uid_map", "reachability",
    "check_reachability", "addresses", "check_addresses", "check_publish", "IPAM_MUTANTS", "check_ipam_property",
]

"""A deliberately wrong property, to see what a shrunk counterexample looks like.

"Deleting a file leaves no trace in the upper layer" is false: a file that lives in a lower layer
cannot be removed from it (layers are read-only), so the union records a whiteout instead.
Hypothesis finds a stack where this fails and shrinks it to the smallest one it can.
"""

from __future__ import annotations

from hypothesis import given, note, settings

import sim
from sim import Layer
from sim.testing import file_trees, names


@settings(database=None, derandomize=True, deadline=None)  # the same counterexample on every run
@given(lower=file_trees(), name=names())
def test_deleting_leaves_no_trace(lower: Layer, name: str) -> None:
    note(f"lower layer: {lower.items()}")
    with sim.connect("sim").union([lower]) as fs:
        try:
            fs.unlink("/" + name)
        except OSError:
            return  # nothing to delete at this name (or a directory): the claim is about files
        assert fs.upper.items() == [], f"upper layer after unlink: {fs.upper.items()}"

"""Your first state machine: random deletes and writes, on two backends, which must agree.

``DifferentialMachine`` mounts the same random layers on both engines, runs every rule on both,
and compares each answer, the merged trees after every step and the upper layers at the end.
The right engine is ``$LAYERLAB_BACKEND`` (default "sim"; "real" compares against the kernel).
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

import sim
from sim.testing import DifferentialMachine, mount_paths


class DeleteAndWrite(DifferentialMachine):
    @rule(path=mount_paths())
    def delete(self, path: str) -> None:
        left, _ = self.both("unlink", path)  # asserts both backends give the same result
        if left[0] == "ok":
            assert not self.left.exists(path), "a deleted file is still visible"

    @rule(path=mount_paths(), data=st.binary(max_size=16))
    def write(self, path: str, data: bytes) -> None:
        left, _ = self.both("write_bytes", path, data)
        if left[0] == "ok":
            assert self.left.read_bytes(path) == data


Machine = DeleteAndWrite.bind(sim.connect("sim"), sim.connect())
Machine.TestCase.settings = settings(max_examples=25, stateful_step_count=10, deadline=None)
TestDeleteAndWrite = Machine.TestCase

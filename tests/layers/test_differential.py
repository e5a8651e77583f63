"""The model against the kernel: random lower stacks, random operations, same answers.

Built on :class:`sim.testing.DifferentialMachine`: each inherited ``operate`` step runs one
path-level call on :class:`sim.layers.unionfs.UnionFS` and on a real overlay mount of the same
layers; every call must give the same value or the same errno, and after every step the merged
trees must match.  At teardown the upper layers must match too (whiteouts, opaque directories,
redirects, copied-up data).  This module adds what the base leaves to a subclass: descriptors
(open, read/write, close), the mount options, and the owners a rootless kernel can hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

import sim
from sim.layers.layer import Layer
from sim.testing import DifferentialMachine, mount_paths, mountable_layers, open_flags, outcome
from tests.backends import require_real

paths = mount_paths(("a", "b", "c"))


class UnionMachine(DifferentialMachine):
    """The base machine plus descriptors; ``rootless`` mounts take neither redirect_dir nor index."""

    rootless = False
    uids = [0, 1000]

    def __init__(self) -> None:
        super().__init__()
        self.fds: list[tuple[int, int]] = []

    def draw_layers(self, data: st.DataObject) -> list[Layer]:
        return data.draw(st.lists(mountable_layers(self.uids), min_size=1, max_size=4), label="layers")

    def draw_options(self, data: st.DataObject) -> dict[str, Any]:
        if self.rootless:
            # userxattr mounts only take redirect_dir=nofollow, and fall back to index=off
            # (no file handles in a user namespace).
            return {"redirect_dir": False, "index": False}
        return {"redirect_dir": data.draw(st.booleans(), label="redirect_dir"),
                "index": data.draw(st.booleans(), label="index")}

    @rule(path=paths, flags=open_flags(), mode=st.sampled_from([0o666, 0o600, 0o777]))
    def open(self, path: str, flags: int, mode: int) -> None:
        m, k = self.both("open", path, flags, mode)
        if m[0] == "ok":
            self.fds.append((m[1], k[1]))

    @precondition(lambda self: self.fds)
    @rule(data=st.data(), payload=st.sampled_from([b"", b"new", b"longer content\n"]), n=st.sampled_from([1, 3, 100000]))
    def use_fd(self, data: st.DataObject, payload: bytes, n: int) -> None:
        fm, fk = data.draw(st.sampled_from(self.fds))
        for name, arg in (("write", payload), ("read", n)):
            m = outcome(lambda: getattr(self.left, name)(fm, arg))
            k = outcome(lambda: getattr(self.right, name)(fk, arg))
            assert m == k, f"{name} on fd: model {m} kernel {k}"

    @precondition(lambda self: self.fds)
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        pair = data.draw(st.sampled_from(self.fds))
        self.fds.remove(pair)
        self.left.close(pair[0])
        self.right.close(pair[1])

    def teardown(self) -> None:
        try:
            for fm, fk in self.fds:  # the upper layers are compared with every write flushed
                self.left.close(fm)
                self.right.close(fk)
        finally:
            super().teardown()


def _machine(rootless: bool, uids: list[int], examples_factor: float, kernel: sim.Engine) -> type[UnionMachine]:
    class Machine(UnionMachine):
        pass

    Machine.rootless = rootless
    Machine.uids = uids
    current = settings()
    return Machine.bind(sim.connect("sim"), kernel, labels=("model", "kernel"),
                        max_examples=max(10, int(current.max_examples * examples_factor)), stateful_step_count=25)


@pytest.mark.real
@pytest.mark.root_only
def test_model_matches_kernel_overlayfs(tmp_path: Path) -> None:
    machine = _machine(False, [0, 1000], 5, require_real(rootless=False, state_dir=str(tmp_path)))
    machine.TestCase().runTest()
    print(f"differential (root): {machine.examples} stacks, {machine.steps} compared calls, "
          f"{machine.double_faults} double-fault calls")
    assert machine.examples >= machine.TestCase.settings.max_examples
    assert machine.double_faults > 0


@pytest.mark.real
def test_model_matches_rootless_overlayfs(tmp_path: Path) -> None:
    """The unprivileged form: a user namespace, ``userxattr``, everything owned by the caller."""
    machine = _machine(True, [0], 1, require_real(rootless=True, state_dir=str(tmp_path)))
    machine.TestCase().runTest()
    print(f"differential (rootless): {machine.examples} stacks, {machine.steps} compared calls, "
          f"{machine.double_faults} double-fault calls")
    assert machine.examples >= machine.TestCase.settings.max_examples
    assert machine.double_faults > 0

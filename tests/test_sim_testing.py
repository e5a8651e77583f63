"""sim.testing: importable without its extras, and its pieces keep their contracts."""

from __future__ import annotations

import errno
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import Phase, find, given
from hypothesis import strategies as st

import sim
import sim.backends
import sim.testing
from sim.engine import SimEngine
from sim.errors import InvalidSpecError, LayerFormatError
from sim.layers.layer import Directory, Layer, Whiteout
from sim.layers.unionfs import UnionFS
from sim.testing import (
    DifferentialMachine,
    Operation,
    both_backends,
    file_trees,
    layers,
    mount_paths,
    mountable_layers,
    operation_sequences,
    outcome,
    tree,
)

__all__ = ["both_backends"]


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_needs_neither_hypothesis_nor_pytest() -> None:
    assert _python("import sys, sim, sim.testing; print('hypothesis' in sys.modules, 'pytest' in sys.modules)") \
        == "False False"


def test_a_missing_extra_is_named() -> None:
    code = ("import sys; sys.modules['hypothesis'] = None; import sim.testing as t; print(t.outcome(lambda: 1))\n"
            "try:\n    t.layers\nexcept ModuleNotFoundError as exc:\n    print(exc)")
    assert _python(code).splitlines() == [
        "('ok', 1)", "sim.testing.layers needs hypothesis: pip install 'layerlab[testing]'"]


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        sim.testing.nothing_here
    assert dir(sim.testing) == sorted(sim.testing.__all__)


def test_names_refuses_a_bad_pool() -> None:
    with pytest.raises(LayerFormatError):
        sim.testing.names(["a/b"])


@given(file_trees())
def test_file_trees_hold_no_whiteout_nor_opaque_dir(layer: Layer) -> None:
    assert layer.frozen
    assert not any(isinstance(e, Whiteout) or (isinstance(e, Directory) and e.opaque) for _, e in layer.items())


def test_layers_reach_whiteouts_and_opaque_dirs() -> None:
    found = find(layers(), lambda layer: any(isinstance(e, Whiteout) for _, e in layer.items()))
    assert [e for _, e in found.items()] == [Whiteout()] or any(isinstance(e, Whiteout) for _, e in found.items())
    found = find(layers(), lambda layer: any(isinstance(e, Directory) and e.opaque for _, e in layer.items()))
    assert any(isinstance(e, Directory) and e.opaque for _, e in found.items())


@given(mount_paths(odd=False))
def test_mount_paths_are_absolute(path: str) -> None:
    assert path.startswith("/") and ".." not in path.split("/")


@given(st.lists(mountable_layers(), min_size=1, max_size=3), operation_sequences(max_size=10))
def test_operations_run_on_a_union(stack: list[Layer], ops: list[Operation]) -> None:
    with sim.connect("sim").union(stack) as fs:
        for op in ops:
            assert outcome(lambda: op(fs))[0] in ("ok", "err")
        tree(fs, 0)


def test_operation_reads_as_the_call() -> None:
    assert repr(Operation("link", ("/a", "/b"), (("follow_symlinks", False),))) == "link('/a', '/b', follow_symlinks=False)"


def test_machine_on_two_models_agrees() -> None:
    machine = DifferentialMachine.bind(sim.connect("sim"), sim.connect("sim"), max_examples=15, stateful_step_count=8)
    machine.TestCase().runTest()
    assert machine.examples >= 15 and machine.steps > 0
    assert DifferentialMachine.examples == 0  # counters live on the bound class


def test_machine_unbound_or_bound_to_no_engine_is_refused() -> None:
    with pytest.raises(InvalidSpecError):
        DifferentialMachine.bind(sim.connect("sim"), "real")  # type: ignore[arg-type]
    with pytest.raises(InvalidSpecError):
        DifferentialMachine.TestCase().runTest()


def test_machine_catches_a_backend_that_disagrees() -> None:
    """A mutant whose ``unlink`` never deletes is caught, and the failure names the call."""

    class NeverDeletes(SimEngine):
        name = "mutant"

        def union(self, layers: Sequence[Layer], upper: Layer | None = None, **options: Any) -> UnionFS:
            mount = super().union(layers, upper, **options)

            def unlink(path: str) -> None:
                raise FileNotFoundError(errno.ENOENT, "mutant: unlink deletes nothing", path)

            mount.unlink = unlink  # type: ignore[method-assign]
            return mount

    machine = DifferentialMachine.bind(sim.connect("sim"), NeverDeletes(), max_examples=300, stateful_step_count=10,
                                       database=None, report_multiple_bugs=False, phases=[Phase.generate])
    with pytest.raises(AssertionError, match=r"unlink\(.*\): sim \(.*\), mutant \('err', 'ENOENT'\)"):
        machine.TestCase().runTest()


def test_both_backends_gives_each_engine(both_backends: sim.Engine) -> None:
    """``[sim]`` here; ``[real]`` too when not deselected with ``-m "not real"``."""
    assert both_backends.name in ("sim", "real")
    with both_backends.union([]) as fs:
        fs.write_bytes("/f", b"x")
        assert fs.read_bytes("/f") == b"x"


@pytest.mark.real
def test_a_throwaway_kernel_engine_removes_its_whole_state_folder(tmp_path: Any) -> None:
    """What ``both_backends`` does after a real engine: its state folder goes whole, also the layer
    folders a rootless engine filled with files of subordinate ids (which pytest could not delete)."""
    from tests.backends import require_real

    state = tmp_path / "state"
    engine: Any = require_real(state_dir=str(state))
    assert engine.run("busybox", "echo hi", remove=True).stdout == b"hi\n"
    engine.close()
    assert any((state / "layers").iterdir())
    engine._discard_state()
    assert not state.exists()


@pytest.mark.parametrize(("required", "outcome_type"), [("1", pytest.fail.Exception), ("0", pytest.skip.Exception)])
def test_an_unavailable_backend_skips_or_fails(monkeypatch: pytest.MonkeyPatch, required: str,
                                                 outcome_type: type[BaseException]) -> None:
    monkeypatch.setitem(sim.backends.KNOWN_BACKENDS, "real", ("layerlab_no_such_module", "X", "a test's absence"))  # type: ignore[index]
    monkeypatch.setenv("LAYERLAB_REQUIRE_REAL", required)
    with pytest.raises(outcome_type, match="a test's absence"):
        sim.testing.connect_or_skip("real")
    with pytest.raises(sim.UnknownBackendError):
        sim.testing.connect_or_skip("nope")

"""The public surface is small and pinned: adding a name is a decision, not an accident."""

from __future__ import annotations

import subprocess
import sys

import realrt
import sim


def test_sim_public_names_are_pinned() -> None:
    assert sorted(sim.__all__) == sorted([
        "connect", "KNOWN_BACKENDS", "Engine", "FileSystem", "UnionMount", "UnionOptions", "UnionFS",
        "Layer", "Entry", "RegularFile", "Directory", "Symlink", "Whiteout", "Event", "EventKind",
        "Digest", "EMPTY_LAYER_DIFF_ID", "chain_id", "chain_ids",
        "LayerlabError", "LayerFormatError", "UnsafeLayerError", "UnsupportedEntryError", "FrozenLayerError",
        "TargetNotEmptyError", "UnknownBackendError", "BackendUnavailableError", "MountError",
        "BuildfileError", "BuildError", "InvalidReferenceError", "NotFoundError", "ImageNotFoundError",
        "ContainerNotFoundError", "VolumeNotFoundError", "NetworkNotFoundError", "ConflictError", "ContainerStateError",
        "InvalidLimitError", "InvalidSpecError", "InvalidNetworkError", "DigestMismatchError",
        "RegistryError", "AuthenticationError", "RegistryUnavailableError", "UnsupportedOperationError",
        "RegistryConfigError", "UnsupportedCommandError",
    ])
    for name in sim.__all__:
        assert hasattr(sim, name), name


def test_realrt_public_names_are_pinned() -> None:
    assert sorted(realrt.__all__) == ["Journal", "KernelUnionFS", "RealEngine", "check_host"]


def test_import_sim_does_not_import_the_real_backend() -> None:
    code = "import sys, sim; sim.connect('sim'); print('realrt' in sys.modules, 'pyroute2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_unknown_backend_is_a_lookup_error() -> None:
    try:
        sim.connect("nope")
    except LookupError as exc:
        assert isinstance(exc, sim.UnknownBackendError) and "known: real, sim" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("connect('nope') did not raise")


def test_error_tree_inherits_builtins() -> None:
    assert issubclass(sim.LayerFormatError, ValueError)
    assert issubclass(sim.UnsafeLayerError, sim.LayerFormatError)
    assert issubclass(sim.FrozenLayerError, TypeError)
    assert issubclass(sim.MountError, OSError)
    assert all(issubclass(getattr(sim, n), sim.LayerlabError) for n in sim.__all__ if n.endswith("Error") and n != "LayerlabError")


def test_sim_never_imports_realrt() -> None:
    """realrt builds on sim's interface and formats, never the reverse (the registry names it as a string)."""
    import ast
    from pathlib import Path

    for source in (Path(sim.__file__).parent).rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            assert not any(n == "realrt" or n.startswith("realrt.") for n in names), f"{source} imports {names}"


def test_capacity_public_names_are_pinned() -> None:
    import sim.capacity

    assert sorted(sim.capacity.__all__) == sorted([
        "simulate", "Run", "Metrics", "InstanceTotals",
        "Host", "VMSpec", "ContainerSpec", "Workload", "Instance", "vm", "microvm", "container",
        "Profile", "flat", "diurnal", "step", "trace",
        "POLICIES", "place", "Placement", "density", "Density",
        "DEFAULTS", "Sourced", "MB", "MiB", "GiB",
        "UsageSeries", "StartMeasurement",
        "Hog", "cpu_hog", "memory_hog", "fork_bomb",
        "predict_hog", "predict_start", "this_host",
        "ScenarioResult", "same_service", "flash_crowd", "noisy_neighbour", "overcommit_sweep", "idle_waste_day",
        "consolidation_power",
    ])
    for name in sim.capacity.__all__:
        assert hasattr(sim.capacity, name), name


def test_the_model_draws_without_pyplot_and_imports_without_matplotlib() -> None:
    code = ("import sys, sim.capacity; print('matplotlib' in sys.modules); "
            "import sim.capacity.plots; print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]

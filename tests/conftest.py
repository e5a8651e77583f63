from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from .backends import require_real
from .realcheck import leftovers, mounts_below

# Profiles: "default" keeps CI fast; "deep" is for local runs (LAYERLAB_PROFILE=deep ./dev test).
settings.register_profile("default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "deep", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
PROFILE = os.environ.get("LAYERLAB_PROFILE", "default")
settings.load_profile(PROFILE)


def _root_only(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return "root_only" in item.keywords or (callspec is not None and callspec.params.get("engine") == "root")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (never skip): slow property runs outside the deep profile, and, for an
    unprivileged user (./dev test runs the real suite again as one), what only root can do."""
    drop = [item for item in items if PROFILE != "deep" and "slow" in item.keywords]
    if os.geteuid() != 0:
        drop += [item for item in items if _root_only(item) and item not in drop]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if item not in drop]


@pytest.fixture(scope="session", autouse=True)
def _rootless_layer_folders_go(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """An unprivileged run leaves layer folders of subordinate ids in its state folders, which
    neither the user nor pytest's clean-up can delete: they go at the end, from a user namespace
    with the engine's mapping, as the engine removes volumes (the rest of the run's folders stay)."""
    yield
    if os.geteuid() == 0:
        return
    from realrt._idmap import detect, remove_tree

    maps = detect(rootless=True)
    for folder, subfolders, _ in os.walk(tmp_path_factory.getbasetemp()):
        for name in [n for n in subfolders if n.startswith("idmap-") and folder.endswith("layers")]:
            remove_tree(os.path.join(folder, name), maps)
            subfolders.remove(name)


@pytest.fixture
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A root engine with a state folder of its own; afterwards no cgroup, record or mount is left."""
    from realrt.containers import cgroups

    state = tmp_path_factory.mktemp("limits-state")
    engine: Any = require_real(rootless=False, state_dir=str(state))
    if cgroups.detect() is None:
        pytest.skip("no cgroup hierarchy with memory/cpu/pids is mounted")
    before, mounts = leftovers(), mounts_below(state)
    try:
        yield engine
    finally:
        engine.close()
    assert list(engine.journal.records()) == [], "a journal record is left"
    assert leftovers() == before == [], f"cgroup folders are left: {leftovers()}"
    assert mounts_below(state) == mounts

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

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

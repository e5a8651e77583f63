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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow property runs are deselected (not skipped) outside the deep profile."""
    if PROFILE == "deep":
        return
    slow = [item for item in items if "slow" in item.keywords]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if "slow" not in item.keywords]

"""Fixture classes, one per backend, mixed into the abstract suites (the fsspec pattern).

``class TestSimUnion(UnionSuite, SimBackend)`` runs every test of ``UnionSuite``
against the model; ``RealBackend`` and ``RootlessBackend`` against the kernel.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import sim
from sim.errors import BackendUnavailableError
from sim.interface import Engine


def require_real(*, rootless: bool | None = None, state_dir: str | None = None) -> Engine:
    """The real engine, or a skip with the reason; with LAYERLAB_REQUIRE_REAL=1 a failure instead.

    ``rootless=None`` takes what this user gets: root mounts as root, a user namespace otherwise."""
    try:
        return sim.connect("real", rootless=rootless, **({"state_dir": state_dir} if state_dir else {}))
    except BackendUnavailableError as exc:
        if os.environ.get("LAYERLAB_REQUIRE_REAL") == "1":
            pytest.fail(f"LAYERLAB_REQUIRE_REAL=1 but the real backend is unavailable: {exc}")
        pytest.skip(f"real backend unavailable: {exc}")


def sim_at(state: Path) -> Engine:
    """A model engine over the state folder ``state``."""
    return sim.connect("sim", state_dir=str(state))


def real_at(state: Path) -> Engine:
    """A kernel engine over the state folder ``state`` (see :func:`require_real`)."""
    return require_real(state_dir=str(state))


#: ``@pytest.mark.parametrize("connect", OVER_A_STATE_FOLDER)``: an engine factory per backend, for
#: tests that open several engines on one state folder.
OVER_A_STATE_FOLDER = [pytest.param(sim_at, id="sim"), pytest.param(real_at, id="real", marks=pytest.mark.real)]


class SimBackend:
    backend = "sim"

    @pytest.fixture
    def engine(self) -> Engine:
        return sim.connect("sim")


class RealBackend:
    """The kernel as this user gets it: mounted as root, or from a user namespace when unprivileged
    (so the same suite runs both ways; see ``./dev test``)."""

    backend = "real"

    @pytest.fixture
    def engine(self, tmp_path_factory: pytest.TempPathFactory) -> Engine:
        # A fresh state folder per test: images and volumes persist on disk between engines.
        return require_real(state_dir=str(tmp_path_factory.mktemp("state")))


class RootlessBackend:
    """The kernel mounted from a user namespace with ``userxattr`` (as an unprivileged user would)."""

    backend = "real-rootless"

    @pytest.fixture
    def engine(self, tmp_path_factory: pytest.TempPathFactory) -> Engine:
        return require_real(rootless=True, state_dir=str(tmp_path_factory.mktemp("state")))

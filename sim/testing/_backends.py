"""Both backends for a pytest test: a parametrized fixture and the skip-or-fail rule behind it.

This module imports pytest; :mod:`sim.testing` loads it only when one of its names is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from sim.backends import connect
from sim.errors import BackendUnavailableError
from sim.interface import Engine

#: Set to "1" (as CI does) and an unavailable real backend fails the test instead of skipping it.
REQUIRE_REAL_VARIABLE = "LAYERLAB_REQUIRE_REAL"


def connect_or_skip(backend: str, **options: Any) -> Engine:
    """``sim.connect(backend, **options)``; when that raises :class:`~sim.BackendUnavailableError`,
    ``pytest.skip`` with the reason, or ``pytest.fail`` when ``$LAYERLAB_REQUIRE_REAL`` is ``"1"``.
    An unknown backend name raises :class:`~sim.UnknownBackendError` (a mistake, never a skip)."""
    try:
        return connect(backend, **options)
    except BackendUnavailableError as exc:
        if os.environ.get(REQUIRE_REAL_VARIABLE) == "1":
            pytest.fail(f"{REQUIRE_REAL_VARIABLE}=1 but backend {backend!r} is unavailable: {exc}")
        pytest.skip(f"backend {backend!r} unavailable: {exc}")


@pytest.fixture(scope="module", params=["sim", pytest.param("real", marks=pytest.mark.real)])
def both_backends(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An engine, once per backend: the test runs as ``[sim]`` and as ``[real]``.

    Import it into a test module or a ``conftest.py`` (``from sim.testing import both_backends``)
    and name it as an argument.  Module-scoped, so it works under ``@given`` (hypothesis refuses
    function-scoped fixtures) and each backend starts once per test module, with a state folder of
    its own that is removed afterwards.  The ``real`` case carries the ``real`` marker (deselect it with
    ``-m "not real"``) and skips, or fails, as :func:`connect_or_skip` says.  The engine is closed
    afterwards when it has a ``close`` method."""
    backend: str = request.param
    engine = connect_or_skip(backend, state_dir=str(tmp_path_factory.mktemp(f"{backend}-state")))
    try:
        yield engine
    finally:
        close = getattr(engine, "close", None)
        if callable(close):
            close()
        # A rootless kernel engine's layers hold files of subordinate ids, which pytest cannot delete:
        # the engine removes its own folder (from a user namespace of its mapping).
        discard = getattr(engine, "_discard_state", None)
        if callable(discard):
            discard()

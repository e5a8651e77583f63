"""The engine a check runs an answer on: a fresh one of ``$LAYERLAB_BACKEND`` (default the model),
its state in a temporary folder that is removed afterwards, so grading never touches the state of
the student's own ``layerlab`` commands."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.backends import DEFAULT_BACKEND_VARIABLE, KNOWN_BACKENDS
from sim.errors import UnknownBackendError

if TYPE_CHECKING:
    from sim.containers.core import EngineCore

__all__ = ["backend_name", "scratch_engine"]


def backend_name() -> str:
    """The backend checks run on: ``$LAYERLAB_BACKEND``, else ``"sim"``; raises
    :class:`~sim.errors.UnknownBackendError` for a name no backend has."""
    name = os.environ.get(DEFAULT_BACKEND_VARIABLE) or "sim"
    if name not in KNOWN_BACKENDS:
        raise UnknownBackendError(f"unknown backend {name!r} in ${DEFAULT_BACKEND_VARIABLE}")
    return name


@contextmanager
def scratch_engine(**options: Any) -> Iterator[EngineCore]:
    """A new engine of :func:`backend_name`'s backend and a temporary folder for its state, both
    gone when the block ends (also when a check fails inside it).  ``options`` go to the engine
    (``registries=RegistryConfig(...)``)."""
    import importlib

    module_name, factory, _ = KNOWN_BACKENDS[backend_name()]
    cls: Any = getattr(importlib.import_module(module_name), factory)
    folder = Path(tempfile.mkdtemp(prefix="layerlab-exercise-"))
    try:
        # The model keeps its state in memory; the real engine needs a folder of its own.
        if backend_name() != "sim":
            options["state_dir"] = str(folder / "state")
        engine: EngineCore = cls(**options)
        try:
            yield engine
        finally:
            engine.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

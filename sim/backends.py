"""The lazy backend registry: names map to import paths, imported on first use.

As with fsspec's ``known_implementations``, ``import sim`` never imports a
backend, so the model runs where pyroute2 or root are missing.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from sim.errors import BackendUnavailableError, UnknownBackendError
from sim.interface import Engine

#: backend name -> (module, factory, what the user must install if the import fails)
KNOWN_BACKENDS: Mapping[str, tuple[str, str, str]] = {
    "sim": ("sim.engine", "SimEngine", "nothing: it is pure Python"),
    "real": ("realrt.engine", "RealEngine", "the 'real' extra (pip install 'layerlab[real]') and Linux"),
}

DEFAULT_BACKEND_VARIABLE = "LAYERLAB_BACKEND"


def connect(backend: str | None = None, **options: Any) -> Engine:
    """Return an engine for ``backend`` ("sim" or "real"; default ``$LAYERLAB_BACKEND`` or "sim").

    Raises :class:`UnknownBackendError` for an unknown name and
    :class:`BackendUnavailableError` when the backend cannot run here.
    """
    name = backend or os.environ.get(DEFAULT_BACKEND_VARIABLE) or "sim"
    try:
        module_name, factory, needs = KNOWN_BACKENDS[name]
    except KeyError:
        raise UnknownBackendError(f"unknown backend {name!r}; known: {', '.join(sorted(KNOWN_BACKENDS))}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailableError(f"backend {name!r} needs {needs}: {exc}") from exc
    engine: Engine = getattr(module, factory)(**options)
    return engine

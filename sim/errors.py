"""Every error layerlab raises on purpose.

Each class also inherits the built-in exception a Python programmer would
catch for the same mistake, so ``except ValueError`` keeps working::

    LayerlabError
    ├── LayerFormatError (ValueError)         a layer's bytes or tree break the format
    │   ├── UnsafeLayerError                  ... in a way that could touch the host
    │   └── UnsupportedEntryError             ... with an entry type the model omits
    ├── FrozenLayerError (TypeError)          mutating a frozen Layer
    ├── TargetNotEmptyError (FileExistsError) to_directory() into a non-empty folder
    ├── UnknownBackendError (LookupError)     connect("nope")
    ├── BackendUnavailableError (RuntimeError) the backend cannot run on this machine
    └── MountError (OSError)                  the kernel refused an overlay mount

File-system calls (``open``, ``stat``, ``rename`` ...) do not use this tree:
like ``os`` they raise plain :class:`OSError` with the kernel's errno, so code
written against ``os`` runs unchanged on either backend.
"""

from __future__ import annotations

__all__ = [
    "LayerlabError",
    "LayerFormatError",
    "UnsafeLayerError",
    "UnsupportedEntryError",
    "FrozenLayerError",
    "TargetNotEmptyError",
    "UnknownBackendError",
    "BackendUnavailableError",
    "MountError",
]


class LayerlabError(Exception):
    """Root of every error layerlab raises on purpose."""


class LayerFormatError(LayerlabError, ValueError):
    """A layer (tar, directory or in-memory build) violates the layer format."""


class UnsafeLayerError(LayerFormatError):
    """A layer entry would resolve outside the layer root (``../``, absolute, link escapes)."""


class UnsupportedEntryError(LayerFormatError):
    """An entry type the model does not represent (devices, FIFOs, sockets, sparse files)."""


class FrozenLayerError(LayerlabError, TypeError):
    """A frozen Layer is immutable; build a new one instead."""


class TargetNotEmptyError(LayerlabError, FileExistsError):
    """``Layer.to_directory`` writes only into an empty or missing folder."""


class UnknownBackendError(LayerlabError, LookupError):
    """``connect`` was given a backend name no registry entry has."""


class BackendUnavailableError(LayerlabError, RuntimeError):
    """The backend exists but this machine cannot run it (no root, no user namespaces...)."""


class MountError(LayerlabError, OSError):
    """The kernel refused to mount an overlay; ``errno`` is the kernel's."""

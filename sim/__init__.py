"""layerlab's model of Docker: layers, union mounts and (later) images and containers.

``sim.connect("sim")`` gives the pure-Python engine; ``sim.connect("real")``
the Linux one from :mod:`realrt`, behind the same interface.
"""

from __future__ import annotations

from sim.backends import KNOWN_BACKENDS, connect
from sim.digest import EMPTY_LAYER_DIFF_ID, Digest, chain_id, chain_ids
from sim.errors import (
    AuthenticationError,
    BackendUnavailableError,
    BuildError,
    BuildfileError,
    ConflictError,
    ContainerNotFoundError,
    ContainerStateError,
    DigestMismatchError,
    FrozenLayerError,
    ImageNotFoundError,
    InvalidLimitError,
    InvalidNetworkError,
    InvalidReferenceError,
    InvalidSpecError,
    LayerFormatError,
    LayerlabError,
    MountError,
    NetworkNotFoundError,
    NotFoundError,
    RegistryConfigError,
    RegistryError,
    RegistryUnavailableError,
    TargetNotEmptyError,
    UnknownBackendError,
    UnsafeLayerError,
    UnsupportedCommandError,
    UnsupportedEntryError,
    UnsupportedOperationError,
    VolumeNotFoundError,
)
from sim.interface import Engine, FileSystem, UnionMount, UnionOptions
from sim.layers.layer import Directory, Entry, Layer, RegularFile, Symlink, Whiteout
from sim.layers.trace import Event, EventKind
from sim.layers.unionfs import UnionFS

__all__ = [
    "connect",
    "KNOWN_BACKENDS",
    "Engine",
    "FileSystem",
    "UnionMount",
    "UnionOptions",
    "UnionFS",
    "Layer",
    "Entry",
    "RegularFile",
    "Directory",
    "Symlink",
    "Whiteout",
    "Event",
    "EventKind",
    "Digest",
    "EMPTY_LAYER_DIFF_ID",
    "chain_id",
    "chain_ids",
    "LayerlabError",
    "LayerFormatError",
    "UnsafeLayerError",
    "UnsupportedEntryError",
    "FrozenLayerError",
    "TargetNotEmptyError",
    "UnknownBackendError",
    "BackendUnavailableError",
    "MountError",
    "BuildfileError",
    "BuildError",
    "InvalidReferenceError",
    "NotFoundError",
    "ImageNotFoundError",
    "ContainerNotFoundError",
    "VolumeNotFoundError",
    "NetworkNotFoundError",
    "ConflictError",
    "ContainerStateError",
    "InvalidLimitError",
    "InvalidSpecError",
    "InvalidNetworkError",
    "DigestMismatchError",
    "RegistryError",
    "AuthenticationError",
    "RegistryUnavailableError",
    "UnsupportedOperationError",
    "RegistryConfigError",
    "UnsupportedCommandError",
]

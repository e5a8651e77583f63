"""Layers and the union mount that stacks them (the chapter 分层 layers).

:class:`Layer` is a changeset of entries (:class:`RegularFile`, :class:`Directory`,
:class:`Symlink`, :class:`Whiteout`, and the special files :class:`Fifo`, :class:`CharDevice`,
:class:`BlockDevice`) with an OCI tar and an overlay directory form;
:class:`UnionFS` models overlayfs over a stack of them; :func:`upper_changes` is
``docker diff`` read from an upper layer; :class:`Event` records what a union did.
"""

from __future__ import annotations

from sim.layers.changes import Change, ChangeKind, upper_changes
from sim.layers.layer import (
    BlockDevice,
    CharDevice,
    Device,
    Directory,
    Entry,
    Fifo,
    Layer,
    RegularFile,
    Symlink,
    Whiteout,
    source_date_epoch,
)
from sim.layers.trace import Event, EventKind
from sim.layers.unionfs import MAXSYMLINKS, UnionFS

__all__ = [
    "Layer",
    "Entry",
    "RegularFile",
    "Directory",
    "Symlink",
    "Whiteout",
    "Fifo",
    "Device",
    "CharDevice",
    "BlockDevice",
    "source_date_epoch",
    "UnionFS",
    "MAXSYMLINKS",
    "Change",
    "ChangeKind",
    "upper_changes",
    "Event",
    "EventKind",
]

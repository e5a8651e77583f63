"""The folder form's shared state: ``index.json`` re-read when another process changed it, the
locks every change takes, damaged entries and what keeps a blob from collection.

:class:`IndexState` is the base of :class:`~sim.images.store.ImageStore`; see that class and
docs/concurrency.md for the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sim.digest import Digest
from sim.images._faults import fault_point
from sim.images._image_record import RemoveResult
from sim.images._layout import (
    ANNOTATION_PARENT,
    DamagedImage,
    ParsedCache,
    StoredImage,
    read_index_bytes,
    read_store_index,
    store_index,
    write_store_index,
)
from sim.images._sha256 import as_sha256
from sim.images.blobs import ContentStore
from sim.images.oci import ANNOTATION_CONTAINERD_IMAGE_NAME
from sim.images.reference import parse_reference

__all__ = ["IndexState"]


class IndexState:
    """Images, tags and damaged entries as ``index.json`` holds them, kept current (see the module docstring)."""

    def __init__(self, content: ContentStore) -> None:
        self.content = content
        self._images: dict[Digest, StoredImage] = {}
        self._tags: dict[str, Digest] = {}  # full reference -> image ID
        self._damaged: list[DamagedImage] = []
        self._counter = 0
        self._index_bytes: bytes | None = None  # index.json as last read or written
        self._parsed: ParsedCache = {}
        self._refresh()

    # -- persistence (folder form) ------------------------------------------------------------

    def lease(self) -> AbstractContextManager[None]:
        """``with store.lease():`` blobs written, downloaded or found present in the block are kept
        by every collection until it ends (see :meth:`ContentStore.lease`): open one around a pull
        or a build, whose blobs are stored before the image that references them."""
        return self.content.lease()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The block holds the store alone (the exclusive lock), over the index as it is now:
        decisions made in it (what a prune removes) and the changes they make see no one else's."""
        with self.content.lock.exclusive():
            self._refresh()
            try:
                yield
            except BaseException:
                # A change that failed part-way (ENOSPC writing index.json, a refused remove) may have
                # left this handle's memory ahead of the disk: the disk is the truth, read it again,
                # or the next unrelated write would commit the failed change.
                self._index_bytes = None
                self._refresh()
                raise

    def _write_index(self) -> None:
        if self.content.root is None:
            return
        self._index_bytes = write_store_index(self.content.root, store_index(self._images, self._tags, self._damaged))

    def _refresh(self) -> None:
        """Re-read ``index.json`` if another handle changed it (under the shared lock: no writer
        replaces it, nor deletes the blobs it names, while it is read)."""
        root = self.content.root
        if root is None:
            return
        with self.content.lock.shared():
            data = read_index_bytes(root)
            if data == self._index_bytes:
                return
            images: dict[Digest, StoredImage] = {}
            tags: dict[str, Digest] = {}
            good, damaged = read_store_index(self.content, data, self._parsed) if data is not None else ([], [])
            for n, entry in enumerate(good, start=1):
                image_id = as_sha256(entry.manifest.config.digest)
                if image_id not in images:
                    parent = entry.descriptor.annotations.get(ANNOTATION_PARENT)
                    images[image_id] = StoredImage(as_sha256(entry.descriptor.digest), entry.manifest_bytes, entry.manifest,
                                                   entry.config, as_sha256(parent) if parent else None, n)
                name = entry.descriptor.annotations.get(ANNOTATION_CONTAINERD_IMAGE_NAME)
                if name:
                    tags[str(parse_reference(name))] = image_id
            self._images, self._tags, self._damaged = images, tags, damaged
            self._counter = len(good)
            self._index_bytes = data

    def damaged(self) -> tuple[DamagedImage, ...]:
        """Index entries whose manifest or config cannot be read whole (``fsck`` reports them)."""
        self._refresh()
        return tuple(self._damaged)

    def drop_damaged(self) -> RemoveResult:
        """Remove every damaged entry from the index, then the blobs nothing else references (their
        intact blobs that a readable image uses stay).  What ``fsck --repair`` does with them."""
        with self.transaction():
            if not self._damaged:
                return RemoveResult()
            untagged = tuple(parse_reference(d.name).familiar for d in self._damaged if d.name)
            self._damaged = []
            self._write_index()
            freed, gone = self._delete_unreferenced()
        return RemoveResult(untagged, (), tuple(gone), freed)

    def _forget_damaged_names(self, names: Iterable[str]) -> None:
        """A tag given to a readable image no longer names a damaged entry (the damaged one goes)."""
        names = set(names)
        self._damaged = [d for d in self._damaged if d.name is None or d.name not in names]

    def _owners(self) -> dict[object, list[Digest]]:
        """What keeps blobs: each image, each damaged entry (until repaired) and the live leases."""
        owners: dict[object, list[Digest]] = {i: image.blobs() for i, image in self._images.items()}
        for n, damaged in enumerate(self._damaged):
            owners[("damaged", n)] = list(damaged.blobs)
        owners["leases"] = [Digest("sha256:" + h) for h in sorted(self.content.leases.live())]
        return owners

    def _delete_unreferenced(self) -> tuple[int, list[Digest]]:
        """Delete what nothing keeps; call it inside :meth:`transaction` (after the index is written)."""
        freed, gone = 0, []
        fault_point("gc.start")
        for d in self.content.unreferenced(self._owners()):
            size = self.content.size(d)
            if self.content.delete(d):
                freed += size
                gone.append(d)
        return freed, gone

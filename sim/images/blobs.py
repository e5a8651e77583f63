"""Content-addressed blob storage: every blob kept under its sha256, verified on the way in and out.

:class:`ContentStore` keeps blobs (layer tars, configs, manifests) under their
sha256, in memory or in a folder laid out like an OCI image layout
(``blobs/sha256/<hex>``).  Every write is verified **before** the blob becomes
visible: bytes go to ``ingest/``, are hashed and counted while written,
fsync'ed, compared with the promised size and digest, and only then renamed
into ``blobs/``.  Too short, too long or a wrong digest raise
:class:`~sim.errors.DigestMismatchError` and leave nothing behind.  A writer
killed half-way leaves a partial file in ``ingest/`` (never in ``blobs/``);
the next :class:`ContentStore` opened on the folder removes it.  Reads verify
the sha256 (and the size when known) again.  Several processes may share a
folder: a blob is published under the shared store lock (:attr:`ContentStore.lock`)
and, inside :meth:`ContentStore.lease`, written down in the handle's lease first
(docs/concurrency.md).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import stat
import threading
import uuid
from collections.abc import Hashable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from sim.digest import Digest, sha256_digest
from sim.errors import DigestMismatchError, NotFoundError
from sim.images._download import DOWNLOAD_SUFFIX, Download, open_locked
from sim.images._durable import fsync_dir
from sim.images._faults import fault_point
from sim.images._lock import Leases, StoreLock
from sim.images._sha256 import HEX64, as_sha256
from sim.images.oci import Descriptor

__all__ = ["BlobNotFoundError", "Usage", "ContentStore", "Download"]

_OCTET_STREAM = "application/octet-stream"
_CHUNK = 1 << 20

K = TypeVar("K", bound=Hashable)


class BlobNotFoundError(NotFoundError):
    """The content store holds no blob with that digest."""


def _chunks(source: bytes | bytearray | memoryview | IO[bytes], limit: int | None) -> Iterator[bytes]:
    """Chunks of ``source``, stopping after ``limit`` bytes (so a too-long stream is caught early)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        if limit is not None:
            view = view[:limit]
        for i in range(0, len(view), _CHUNK):
            yield bytes(view[i:i + _CHUNK])
        return
    left = limit
    while left is None or left > 0:
        chunk = source.read(_CHUNK if left is None else min(_CHUNK, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
        yield chunk


@dataclass(frozen=True)
class Usage:
    """What one owner (an image) uses of the store: ``docker system df -v``'s three columns."""

    size: int  # every blob it references
    shared_size: int  # blobs some other owner references too
    unique_size: int  # blobs only it references: freed when it goes


# -- the two blob backends ------------------------------------------------------------------------


class _Writer:
    def write(self, chunk: bytes) -> None:
        raise NotImplementedError

    def commit(self, hex_digest: str) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class _MemoryWriter(_Writer):
    def __init__(self, blobs: dict[str, bytes]) -> None:
        self._blobs = blobs
        self._parts: list[bytes] = []

    def write(self, chunk: bytes) -> None:
        self._parts.append(chunk)

    def commit(self, hex_digest: str) -> None:
        self._blobs.setdefault(hex_digest, b"".join(self._parts))
        self._parts = []

    def abort(self) -> None:
        self._parts = []


class _FolderWriter(_Writer):
    """One ingest: a locked file in ``ingest/`` that is renamed into ``blobs/sha256/`` once verified."""

    def __init__(self, ingest: Path, blobs: Path, store: ContentStore) -> None:
        self._blobs = blobs
        self._store = store
        self._written = 0
        while True:
            path = ingest / f"{uuid.uuid4().hex}.partial"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A cleaner that opened the store between our create and our lock may have removed the
            # name (it found the file unlocked): then start again under a new one.
            try:
                same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._path: Path | None = path
        self._fd = fd

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view):]
        self._written += len(chunk)
        fault_point("blob.write", self._written)

    def commit(self, hex_digest: str) -> None:
        assert self._path is not None
        os.fchmod(self._fd, 0o444)  # blobs are read-only, as containerd keeps them; before the fsync, so it is durable
        os.fsync(self._fd)
        self._store._publish(self._path, hex_digest)
        self._path = None
        os.close(self._fd)

    def abort(self) -> None:
        if self._path is not None:
            try:
                os.unlink(self._path)  # unlink before close: the lock keeps cleaners off until then
            except FileNotFoundError:
                pass
            self._path = None
            os.close(self._fd)


# -- ContentStore --------------------------------------------------------------------------------


class ContentStore:
    """sha256-addressed blobs; ``ContentStore()`` in memory, ``ContentStore(folder)`` on disk."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self._memory: dict[str, bytes] | None = None
        self._partials: dict[str, bytearray] = {}  # the in-memory store's resumable downloads
        self._partials_busy: set[str] = set()  # ...the digests a Download holds (the twin of its file lock)
        self._partials_cond = threading.Condition()
        self._root: Path | None = None
        self.cleaned_up: list[str] = []  # what clean_ingest() removed when the folder was opened
        self._published = 0  # blobs this handle renamed into blobs/ (the detail of the fault point)
        #: Shared while reading or publishing, exclusive while rewriting the index or deleting blobs.
        self.lock = StoreLock(None)
        #: Blobs a running operation wrote or relies on, kept by every collection (``lease()``).
        self.leases = Leases(None)
        if root is None:
            self._memory = {}
            return
        self._root = Path(root)
        self.lock = StoreLock(self._root)
        self.leases = Leases(self._root / "leases")
        self._blobs = self._root / "blobs" / "sha256"
        self._ingest = self._root / "ingest"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(exist_ok=True)
        self.cleaned_up = self.clean_ingest()

    @property
    def root(self) -> Path | None:
        """The folder, or ``None`` for an in-memory store."""
        return self._root

    def lease(self) -> AbstractContextManager[None]:
        """``with store.lease():`` every blob written, downloaded or found by :meth:`has` in the block
        survives any collection (this process's or another's) until the block ends; by then the
        caller has committed the image that references them, or they are garbage again."""
        return self.leases.scope()

    @property
    def ingest_folder(self) -> Path:
        """``<root>/ingest``, where blobs are written before they are verified (a folder store only)."""
        if self._root is None:
            raise ValueError("an in-memory store has no ingest folder")
        return self._ingest

    def _publish(self, path: Path, hex_digest: str, *, fault: str = "blob.committed", replace: bool = True) -> bool:
        """Rename a verified ingest file into ``blobs/``, written down in the open lease first; then
        the fault point ``fault`` (detail: how many blobs this handle published).

        ``replace=False`` (a download, as containerd's writer commits): if the blob is stored
        already the ingest file is removed instead and ``False`` returned; the stored blob is kept
        (and leased).  ``True``: the file was renamed into place."""
        target = self._blobs / hex_digest
        with self.lock.shared():
            self.leases.protect(hex_digest)
            if not replace and os.path.lexists(target):
                os.unlink(path)
                return False
            # Two publishers of one digest may both pass the look above: a rename over an identical,
            # verified blob is harmless (a reader keeps the inode it opened).
            os.rename(path, target)  # atomic: the name appears with all its bytes, or not at all
        fsync_dir(self._blobs)
        self._published += 1
        fault_point(fault, self._published)
        return True

    # -- integrity of the folder form

    def clean_ingest(self) -> list[str]:
        """Remove what interrupted writers left in ``ingest/``; files a live writer holds are kept,
        and so are downloads (``<hex>.download``): a pull resumes them, and verifies them on commit.

        Runs when the store is opened.  Returns the names removed.
        """
        if self._root is None:
            return []
        removed = []
        for name in sorted(os.listdir(self._ingest)):
            path = self._ingest / name
            if name.endswith(DOWNLOAD_SUFFIX) and HEX64.match(name[:-len(DOWNLOAD_SUFFIX)]) and not path.is_symlink():
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # a symlink has no business here
                    os.unlink(path)
                    removed.append(name)
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a writer is alive and holds it
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    continue
                os.unlink(path)
                removed.append(name)
            finally:
                os.close(fd)
        return removed

    def ingests(self) -> list[str]:
        """Names now in ``ingest/`` (in progress or left over)."""
        return [] if self._root is None else sorted(os.listdir(self._ingest))

    # -- writing

    def _writer(self) -> _Writer:
        if self._memory is not None:
            return _MemoryWriter(self._memory)
        return _FolderWriter(self._ingest, self._blobs, self)

    def ingest(
        self,
        source: bytes | IO[bytes],
        media_type: str = _OCTET_STREAM,
        *,
        digest: str | None = None,
        size: int | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Descriptor:
        """Store ``source`` (bytes or a readable file); with ``digest``/``size``, only if it matches them.

        Reads at most ``size + 1`` bytes of a stream, so an endless or too long
        source fails without filling the disk.  On any failure nothing is
        visible and the ingest file is gone.
        """
        expected = as_sha256(digest) if digest is not None else None
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValueError(f"size must be a non-negative int, got {size!r}")
        what = f"blob {expected}" if expected is not None else "blob"
        writer = self._writer()
        try:
            hasher = hashlib.sha256()
            count = 0
            for chunk in _chunks(source, None if size is None else size + 1):
                count += len(chunk)
                if size is not None and count > size:
                    raise DigestMismatchError(f"{what} is longer than the promised {size} bytes")
                hasher.update(chunk)
                writer.write(chunk)
            if size is not None and count < size:
                raise DigestMismatchError(f"{what} is truncated: {count} of {size} bytes")
            actual = Digest("sha256:" + hasher.hexdigest())
            if expected is not None and actual != expected:
                raise DigestMismatchError(f"blob digest mismatch: expected {expected}, got {actual}")
            writer.commit(actual.hex)
        except BaseException:
            writer.abort()
            raise
        return Descriptor(media_type, actual, count, annotations or {})

    def download(self, digest: str, size: int) -> Download:
        """Start or resume downloading the blob ``digest`` of ``size`` bytes (see :class:`Download`)."""
        return Download(self, digest, size)

    def discard_downloads(self) -> list[str]:
        """Remove every resumable download nobody holds (``docker builder prune`` of ingest); the names."""
        with self._partials_cond:
            removed = [name for name in self._partials if name not in self._partials_busy]
            for name in removed:
                del self._partials[name]
        if self._root is None:
            return removed
        for name in sorted(os.listdir(self._ingest)):
            if not name.endswith(DOWNLOAD_SUFFIX):
                continue
            try:  # a pull may commit (rename) or discard the file between the listing and here
                fd = open_locked(self._ingest / name, os.O_RDONLY | os.O_NONBLOCK, blocking=False)
            except OSError:
                continue  # not a file of ours (a symlink, a fifo): left alone, as clean_ingest does
            if fd is None:
                continue  # held by a live download, or gone
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    os.unlink(self._ingest / name)  # the file we locked is still at this name: ours to drop
                    removed.append(name)
            finally:
                os.close(fd)
        return removed

    def open(self, digest: str) -> IO[bytes]:
        """The blob as a file to stream from (not verified: whoever reads it checks the digest)."""
        d = as_sha256(digest)
        if self._memory is not None:
            if d.hex not in self._memory:
                raise BlobNotFoundError(f"blob {d} not found")
            return io.BytesIO(self._memory[d.hex])
        try:
            fd = os.open(self._blobs / d.hex, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {d} not found") from None
        return os.fdopen(fd, "rb")

    def put(
        self,
        data: bytes,
        media_type: str = _OCTET_STREAM,
        *,
        digest: str | None = None,
        size: int | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Descriptor:
        """Store ``data``; returns its descriptor.  Storing a blob twice keeps one copy."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("put() takes bytes; use ingest() for a file object")
        return self.ingest(bytes(data), media_type, digest=digest, size=size, annotations=annotations)

    # -- reading

    def get(self, digest: str, *, size: int | None = None) -> bytes:
        """The blob's bytes, verified against ``digest`` (and ``size``) on every read."""
        d = as_sha256(digest)
        if self._memory is not None:
            try:
                data = self._memory[d.hex]
            except KeyError:
                raise BlobNotFoundError(f"blob {d} not found") from None
        else:
            try:
                fd = os.open(self._blobs / d.hex, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                raise BlobNotFoundError(f"blob {d} not found") from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise DigestMismatchError(f"blob {d} is a symlink, not stored content") from None
                raise
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise DigestMismatchError(f"blob {d} is not a regular file")
                data = f.read() if size is None else f.read(size + 1)
        if size is not None and len(data) != size:
            raise DigestMismatchError(f"blob {d} has {len(data)} bytes, expected {size}: the store is corrupt")
        actual = sha256_digest(data)
        if actual != d:
            raise DigestMismatchError(f"blob {d} reads back as {actual}: the store is corrupt")
        return data

    def has(self, digest: str) -> bool:
        """Whether the blob is stored; inside :meth:`lease`, a blob found is kept until the lease ends."""
        d = as_sha256(digest)
        if self._memory is not None:
            return d.hex in self._memory
        if not self.leases.active:
            return (self._blobs / d.hex).is_file()
        with self.lock.shared():
            self.leases.protect(d.hex)
            return (self._blobs / d.hex).is_file()

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and self.has(digest)

    def size(self, digest: str) -> int:
        d = as_sha256(digest)
        if self._memory is not None:
            if d.hex not in self._memory:
                raise BlobNotFoundError(f"blob {d} not found")
            return len(self._memory[d.hex])
        try:
            return (self._blobs / d.hex).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {d} not found") from None

    def delete(self, digest: str) -> bool:
        """Remove a blob; ``False`` if it was not there."""
        d = as_sha256(digest)
        if self._memory is not None:
            return self._memory.pop(d.hex, None) is not None
        try:
            os.unlink(self._blobs / d.hex)
        except FileNotFoundError:
            return False
        fsync_dir(self._blobs)
        return True

    def digests(self) -> list[Digest]:
        if self._memory is not None:
            names: Iterable[str] = self._memory
        else:
            names = os.listdir(self._blobs)
        return sorted(Digest("sha256:" + n) for n in names if HEX64.match(n))

    def __iter__(self) -> Iterator[Digest]:
        return iter(self.digests())

    def __len__(self) -> int:
        return len(self.digests())

    def sizes(self) -> dict[Digest, int]:
        return {d: self.size(d) for d in self.digests()}

    def total_size(self) -> int:
        return sum(self.sizes().values())

    def verify(self) -> list[Digest]:
        """Re-hash every blob (``fsck``); returns the corrupt ones."""
        bad = []
        for d in self.digests():
            try:
                self.get(d)
            except DigestMismatchError:
                bad.append(d)
        return bad

    # -- reference counting (docker system df)

    @staticmethod
    def reference_counts(owners: Mapping[K, Iterable[str]]) -> dict[Digest, int]:
        """How many owners reference each blob (an owner naming a blob twice counts once)."""
        counts: dict[Digest, int] = {}
        for blobs in owners.values():
            for d in {as_sha256(b) for b in blobs}:
                counts[d] = counts.get(d, 0) + 1
        return counts

    def usage(self, owners: Mapping[K, Iterable[str]]) -> dict[K, Usage]:
        """Per owner: total, shared (referenced by 2+ owners) and unique bytes."""
        owned = {k: {as_sha256(b) for b in blobs} for k, blobs in owners.items()}
        counts = self.reference_counts(owned)
        sizes = {d: self.size(d) for d in counts}
        out: dict[K, Usage] = {}
        for key, blobs in owned.items():
            total = sum(sizes[d] for d in blobs)
            shared = sum(sizes[d] for d in blobs if counts[d] > 1)
            out[key] = Usage(total, shared, total - shared)
        return out

    def unreferenced(self, owners: Mapping[K, Iterable[str]]) -> list[Digest]:
        """Blobs no owner references (what a garbage collection would delete)."""
        used = set(self.reference_counts(owners))
        return [d for d in self.digests() if d not in used]

    def __repr__(self) -> str:
        where = "memory" if self._root is None else str(self._root)
        return f"<ContentStore {where}: {len(self)} blobs>"

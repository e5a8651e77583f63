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
import uuid
from collections.abc import Hashable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from sim.digest import Digest, sha256_digest
from sim.errors import DigestMismatchError, NotFoundError
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
        os.fsync(self._fd)
        os.fchmod(self._fd, 0o444)  # blobs are read-only, as containerd keeps them
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


# -- resumable downloads ---------------------------------------------------------------------------

_DOWNLOAD_SUFFIX = ".download"


class Download:
    """A blob being downloaded under its promised digest and size, resumable across runs.

    The bytes so far live in ``ingest/<hex>.download`` (held under an exclusive
    lock while this object is open) and are hashed as they arrive.  ``offset``
    is how many are there: a puller asks the registry for the rest with
    ``Range``.  :meth:`commit` checks size and sha256 and only then renames the
    file into ``blobs/``; a wrong digest, too few or too many bytes raise
    :class:`~sim.errors.DigestMismatchError` and delete the partial file.
    :meth:`close` without a commit keeps it for the next attempt.
    """

    def __init__(self, store: ContentStore, digest: str, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"size must be a non-negative int, got {size!r}")
        self.digest = as_sha256(digest)
        self.size = size
        self._store = store
        self._hasher = hashlib.sha256()
        self._fd: int | None = None
        self._memory: bytearray | None = None
        if store._memory is not None:
            self._memory = store._partials.setdefault(self.digest.hex, bytearray())
            self._hasher.update(self._memory)
            self.offset = len(self._memory)
        else:
            self._path = store._ingest / f"{self.digest.hex}{_DOWNLOAD_SUFFIX}"
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)  # a second puller of the same blob waits for the first
            self._fd = fd
            self.offset = 0
            while chunk := os.read(fd, _CHUNK):
                self._hasher.update(chunk)
                self.offset += len(chunk)
        if self.offset > size:
            self.restart()

    def restart(self) -> None:
        """Drop what is there (the registry ignored the range, or the partial file is too long)."""
        self._hasher = hashlib.sha256()
        self.offset = 0
        if self._memory is not None:
            del self._memory[:]
        elif self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)

    def write(self, chunk: bytes) -> None:
        if self.offset + len(chunk) > self.size:
            self.discard()
            raise DigestMismatchError(f"blob {self.digest} is longer than the promised {self.size} bytes")
        self._hasher.update(chunk)
        self.offset += len(chunk)
        if self._memory is not None:
            self._memory += chunk
        elif self._fd is not None:
            view = memoryview(chunk)
            while view:
                view = view[os.write(self._fd, view):]

    def commit(self, media_type: str = _OCTET_STREAM) -> Descriptor:
        """Verify and publish; on a mismatch nothing is published and the partial file is gone."""
        actual = Digest("sha256:" + self._hasher.hexdigest())
        if self.offset != self.size or actual != self.digest:
            self.discard()
            if self.offset != self.size:
                raise DigestMismatchError(f"blob {self.digest} is truncated: {self.offset} of {self.size} bytes")
            raise DigestMismatchError(f"blob digest mismatch: expected {self.digest}, got {actual}")
        if self._memory is not None:
            assert self._store._memory is not None
            self._store._memory.setdefault(self.digest.hex, bytes(self._memory))
            self._store._partials.pop(self.digest.hex, None)
            self._memory = None
        elif self._fd is not None:
            os.fsync(self._fd)
            os.fchmod(self._fd, 0o444)
            self._store._publish(self._path, self.digest.hex, fault="download.committed")
            os.close(self._fd)
            self._fd = None
        return Descriptor(media_type, self.digest, self.size)

    def discard(self) -> None:
        """Delete the partial bytes (they cannot be trusted) and release the lock."""
        if self._memory is not None:
            self._store._partials.pop(self.digest.hex, None)
            self._memory = None
        elif self._fd is not None:
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """Keep the partial bytes for a resumed download; release the lock.  Idempotent."""
        self._memory = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- ContentStore --------------------------------------------------------------------------------


class ContentStore:
    """sha256-addressed blobs; ``ContentStore()`` in memory, ``ContentStore(folder)`` on disk."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self._memory: dict[str, bytes] | None = None
        self._partials: dict[str, bytearray] = {}  # the in-memory store's resumable downloads
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

    def _publish(self, path: Path, hex_digest: str, *, fault: str = "blob.committed") -> None:
        """Rename a verified ingest file into ``blobs/``, written down in the open lease first; then
        the fault point ``fault`` (detail: how many blobs this handle published)."""
        with self.lock.shared():
            self.leases.protect(hex_digest)
            os.rename(path, self._blobs / hex_digest)  # atomic: the name appears with all its bytes, or not at all
        fsync_dir(self._blobs)
        self._published += 1
        fault_point(fault, self._published)

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
            if name.endswith(_DOWNLOAD_SUFFIX) and HEX64.match(name[:-len(_DOWNLOAD_SUFFIX)]) and not path.is_symlink():
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
        removed = [name for name in self._partials]
        self._partials.clear()
        if self._root is None:
            return removed
        for name in sorted(os.listdir(self._ingest)):
            if not name.endswith(_DOWNLOAD_SUFFIX):
                continue
            fd = os.open(self._ingest / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                os.unlink(self._ingest / name)
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

"""Resumable downloads into a content store: one holder per digest, verified before publishing.

:class:`Download` lives here, out of :mod:`sim.images.blobs` (which re-exports it), and reaches
the store only through :class:`DownloadHost`, so this module imports nothing of ``blobs``.

Several pullers of one digest (threads of one process, or processes) meet on one file,
``ingest/<hex>.download``.  Each opens it (creating it if missing) and waits for an exclusive
``flock``; when the lock is granted the holder checks that the file it locked is still the one
at that name (``stat`` against ``fstat``), because the previous holder may have renamed it into
``blobs/`` (commit) or unlinked it (discard) while the next one waited: a waiter that went on
would resume from, and later publish, a file no longer at the path.  Then, with the lock, it
looks for the blob in the store: if someone else stored it meanwhile the download is
:attr:`Download.present` and fetches nothing.  :meth:`Download.commit` never renames over a blob
already stored (containerd's local writer does the same): it drops its own copy and reports it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path
from typing import Protocol

from sim.digest import Digest
from sim.errors import DigestMismatchError
from sim.images._sha256 import as_sha256
from sim.images.oci import Descriptor

__all__ = ["DOWNLOAD_SUFFIX", "Download", "DownloadHost", "open_locked"]

DOWNLOAD_SUFFIX = ".download"
_OCTET_STREAM = "application/octet-stream"
_CHUNK = 1 << 20


class DownloadHost(Protocol):
    """What a :class:`Download` needs of its store (a :class:`~sim.images.blobs.ContentStore`)."""

    _memory: dict[str, bytes] | None
    _partials: dict[str, bytearray]
    _partials_busy: set[str]
    _partials_cond: threading.Condition

    @property
    def ingest_folder(self) -> Path: ...

    def has(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int: ...

    def _publish(self, path: Path, hex_digest: str, *, fault: str = ..., replace: bool = ...) -> bool: ...


def open_locked(path: Path, flags: int, *, blocking: bool = True) -> int | None:
    """Open ``path`` and hold an exclusive ``flock`` on the file that is *still* at ``path``.

    ``flags`` are given to :func:`os.open` (with ``O_NOFOLLOW | O_CLOEXEC``); with ``O_CREAT`` the
    file is made when missing.  A lock granted on a file that was renamed or unlinked while this
    waited is dropped and the open starts again.  ``blocking=False``: ``None`` if a live holder
    has it or the file is gone (without ``O_CREAT``); errors of the open itself are raised.
    """
    while True:
        try:
            fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            if flags & os.O_CREAT:
                raise
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
        if not flags & os.O_CREAT:
            return None  # the file we locked has gone; what is there now is another's


class Download:
    """A blob being downloaded under its promised digest and size, resumable across runs.

    The bytes so far live in ``ingest/<hex>.download`` (held under an exclusive lock while this
    object is open; a second :class:`Download` of the same digest, in this process or another,
    waits until the first is closed) and are hashed as they arrive.  ``offset`` is how many are
    there: a puller asks the registry for the rest with ``Range``.  :attr:`present` is true when
    the store held the blob once the lock was granted (then ``offset == size``, nothing is to be
    fetched, :meth:`write` refuses bytes and :meth:`commit` only returns the descriptor).
    :meth:`commit` checks size and sha256 and only then renames the file into ``blobs/``; if the
    blob was stored meanwhile it drops its file instead and sets :attr:`present`.  A wrong
    digest, too few or too many bytes raise :class:`~sim.errors.DigestMismatchError` and delete
    the partial file.  :meth:`close` without a commit keeps it for the next attempt.
    """

    def __init__(self, store: DownloadHost, digest: str, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"size must be a non-negative int, got {size!r}")
        self.digest = as_sha256(digest)
        self.size = size
        #: The store held the blob already: nothing to fetch, nothing published by this download.
        self.present = False
        self._store = store
        self._hasher = hashlib.sha256()
        self._fd: int | None = None
        self._memory: bytearray | None = None
        self._claimed = False  # the in-memory store: this holds the digest's partial bytes
        self.offset = 0
        if store._memory is not None:
            with store._partials_cond:  # the in-memory twin of the file lock
                while self.digest.hex in store._partials_busy:
                    store._partials_cond.wait()
                store._partials_busy.add(self.digest.hex)
            self._claimed = True
            if self._stored():
                self._drop_partial()
                return
            self._memory = store._partials.setdefault(self.digest.hex, bytearray())
            self._hasher.update(self._memory)
            self.offset = len(self._memory)
        else:
            self._path = store.ingest_folder / f"{self.digest.hex}{DOWNLOAD_SUFFIX}"
            fd = open_locked(self._path, os.O_RDWR | os.O_CREAT)
            assert fd is not None  # a blocking open with O_CREAT always returns one
            self._fd = fd
            if self._stored():
                self._drop_partial()
                return
            while chunk := os.read(fd, _CHUNK):
                self._hasher.update(chunk)
                self.offset += len(chunk)
        if self.offset > size:
            self.restart()

    def _stored(self) -> bool:
        """Whether the store holds the blob (inside a lease, it is then kept: ``has`` protects it)."""
        try:
            return self._store.has(self.digest) and self._store.size(self.digest) == self.size
        except LookupError:  # collected between the two looks
            return False

    def _drop_partial(self) -> None:
        """The blob is stored: our partial bytes are not needed; the lock is released."""
        self.present = True
        self.offset = self.size
        self.discard()

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
        if self.present:
            raise DigestMismatchError(f"blob {self.digest} is stored already: no bytes are expected")
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
        """Verify and publish; on a mismatch nothing is published and the partial file is gone.

        If the blob is stored already (:attr:`present`, or stored by someone else since the lock
        was granted) this download's bytes are dropped and the stored blob is left as it is."""
        if self.present:
            return Descriptor(media_type, self.digest, self.size)
        actual = Digest("sha256:" + self._hasher.hexdigest())
        if self.offset != self.size or actual != self.digest:
            self.discard()
            if self.offset != self.size:
                raise DigestMismatchError(f"blob {self.digest} is truncated: {self.offset} of {self.size} bytes")
            raise DigestMismatchError(f"blob digest mismatch: expected {self.digest}, got {actual}")
        if self._memory is not None:
            store = self._store
            assert store._memory is not None
            self.present = self.digest.hex in store._memory
            store._memory.setdefault(self.digest.hex, bytes(self._memory))
            self.discard()
        elif self._fd is not None:
            os.fchmod(self._fd, 0o444)  # before the fsync, so the mode is as durable as the bytes
            os.fsync(self._fd)
            try:
                published = self._store._publish(self._path, self.digest.hex, fault="download.committed",
                                                 replace=False)
            except BaseException:
                self.close()
                raise
            self.present = not published
            os.close(self._fd)  # _publish renamed or removed the file while we held its lock
            self._fd = None
        return Descriptor(media_type, self.digest, self.size)

    def discard(self) -> None:
        """Delete the partial bytes (they cannot be trusted) and release the lock."""
        if self._memory is not None or self._claimed:
            self._store._partials.pop(self.digest.hex, None)
            self._memory = None
            self._release_claim()
        elif self._fd is not None:
            try:
                os.unlink(self._path)  # ours: we hold the lock on the file at this name
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """Keep the partial bytes for a resumed download; release the lock.  Idempotent."""
        self._memory = None
        self._release_claim()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _release_claim(self) -> None:
        if self._claimed:
            self._claimed = False
            with self._store._partials_cond:
                self._store._partials_busy.discard(self.digest.hex)
                self._store._partials_cond.notify_all()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

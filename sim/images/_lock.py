"""Several processes on one store folder: a reader/writer lock and leases (see docs/concurrency.md).

:class:`StoreLock` is ``flock(2)`` on the store folder itself (no file of its own, so a
folder that turns out to be another tool's layout is left as it was): *shared* while a process reads the
index and the blobs it names, or publishes a blob; *exclusive* while it rewrites ``index.json``
and deletes blobs.  Between the threads of one process a condition variable plays the same
part (``flock`` locks belong to an open file, which all threads share).  The lock is
re-entrant: a shared section inside an exclusive one of the same thread is free; an exclusive
section inside a shared one is a programming error (it could never be granted) and raises
:class:`RuntimeError`.

:class:`Leases` are containerd's leases in files: while a lease is open (``with
leases.scope():``) every blob the handle writes or finds present is written down in
``<store>/leases/<pid>-<random>.lease``, a file its owner holds under an exclusive ``flock``.
Garbage collection runs under the exclusive store lock and keeps every blob a *held* lease
names; a lease file no process holds (its owner died) is deleted.  A blob is written down
under the shared store lock before its presence is checked or its name published, so a
collection either sees it in the lease or runs wholly before it is there.
"""

from __future__ import annotations

import fcntl
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sim.images._sha256 import HEX64

__all__ = ["StoreLock", "Leases"]

_LEASE_SUFFIX = ".lease"


def create_locked(fresh_name: Callable[[], Path], flags: int, mode: int) -> tuple[Path, int]:
    """A new file under a name ``fresh_name()`` gives (``O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW``
    added to ``flags``), held under an exclusive ``flock``: its path and descriptor.  A cleaner that
    removes unlocked files may take the name between the create and the lock: then another name."""
    while True:
        path = fresh_name()
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return path, fd
        os.close(fd)

class StoreLock:
    """The reader/writer lock of one store handle on the folder ``path``; None (an in-memory store): threads only."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._cond = threading.Condition()
        self._fd: int | None = None  # the folder, open while this handle holds its flock
        self._shared = 0  # threads of this process in a shared section (outside an exclusive one)
        self._owner: int | None = None  # the thread in an exclusive section
        self._depth = 0  # its nesting depth (shared sections inside it included)
        self._local = threading.local()

    def _flock(self, op: int) -> None:
        """Take (``LOCK_SH``/``LOCK_EX``) or drop (``LOCK_UN``) the folder's flock.  The folder is
        opened for each outermost hold and closed when it ends, so a handle never keeps a
        descriptor between calls (nor carries one across a fork)."""
        if self._path is None:
            return
        if op == fcntl.LOCK_UN:
            if self._fd is not None:
                os.close(self._fd)  # closing the only descriptor of the open file drops its flock
                self._fd = None
            return
        fd = os.open(self._path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, op)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _mine(self) -> int:
        return int(getattr(self._local, "shared", 0))

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock shared (other readers may hold it too; no writer can)."""
        me = threading.get_ident()
        with self._cond:
            nested = self._owner == me
            if nested:
                self._depth += 1
            else:
                while self._owner is not None:
                    self._cond.wait()
                if self._shared == 0:
                    self._flock(fcntl.LOCK_SH)
                self._shared += 1
            self._local.shared = self._mine() + 1
        try:
            yield
        finally:
            with self._cond:
                self._local.shared = self._mine() - 1
                if nested:
                    self._depth -= 1
                else:
                    self._shared -= 1
                    if self._shared == 0:
                        self._flock(fcntl.LOCK_UN)
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the lock alone (no reader, no other writer, in any process)."""
        me = threading.get_ident()
        with self._cond:
            nested = self._owner == me
            if nested:
                self._depth += 1
            else:
                if self._mine():
                    raise RuntimeError("an exclusive store lock was asked for inside a shared one")
                while self._owner is not None or self._shared:
                    self._cond.wait()
                self._flock(fcntl.LOCK_EX)
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not nested or self._depth == 0:
                    self._owner, self._depth = None, 0
                    self._flock(fcntl.LOCK_UN)
                    self._cond.notify_all()


class Leases:
    """This handle's lease (one file, open while any :meth:`scope` is) and everyone's, for collection."""

    def __init__(self, folder: Path | None) -> None:
        self._folder = folder
        self._mutex = threading.Lock()
        self._depth = 0
        self._fd: int | None = None
        self._path: Path | None = None
        self._held: set[str] = set()

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Keep what is written or found in this block until it ends (nested blocks share one lease)."""
        with self._mutex:
            self._depth += 1
        try:
            yield
        finally:
            with self._mutex:
                self._depth -= 1
                if self._depth == 0:
                    self._end()

    @property
    def active(self) -> bool:
        return self._depth > 0

    def protect(self, hex_digest: str) -> None:
        """Write ``hex_digest`` down in this handle's lease if one is open (call it under the shared store lock)."""
        if self._folder is None or self._depth == 0:
            return
        with self._mutex:
            if hex_digest in self._held or self._depth == 0:
                return
            fd = self._open()
            os.write(fd, f"{hex_digest}\n".encode())  # O_APPEND: one short line, written whole
            self._held.add(hex_digest)

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        assert self._folder is not None
        self._folder.mkdir(exist_ok=True)
        folder = self._folder
        path, fd = create_locked(lambda: folder / f"{os.getpid()}-{uuid.uuid4().hex}{_LEASE_SUFFIX}",
                                 os.O_WRONLY | os.O_APPEND, 0o644)
        self._fd, self._path = fd, path
        return fd

    def _end(self) -> None:
        if self._fd is not None and self._path is not None:
            try:
                os.unlink(self._path)  # unlink before unlock: a collector never reads a half-ended lease as stale
            except FileNotFoundError:
                pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
        self._fd, self._path = None, None
        self._held.clear()

    def live(self) -> set[str]:
        """Every digest a held lease names; lease files nobody holds are deleted.  Call it under the
        exclusive store lock (so no lease grows while it is read)."""
        if self._folder is None or not self._folder.is_dir():
            return set()
        digests: set[str] = set()
        for name in sorted(os.listdir(self._folder)):
            if not name.endswith(_LEASE_SUFFIX):
                continue
            path = self._folder / name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # held: its owner is alive
                    with os.fdopen(os.dup(fd), "rb") as fh:
                        text = fh.read().decode("ascii", "replace")
                    digests.update(line for line in text.split() if HEX64.match(line))
                    continue
                os.unlink(path)  # its owner died: what it protected is garbage unless something else keeps it
            finally:
                os.close(fd)
        return digests

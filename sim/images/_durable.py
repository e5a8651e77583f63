"""Writes that survive a crash: a file appears under its name whole, or not at all.

:class:`AtomicFile` writes into an unnamed file (``O_TMPFILE``) in the target's folder, so a
writer killed half-way leaves nothing anyone can see: the kernel frees the inode when the
process dies.  Only once every byte is written and fsync'ed is the inode linked under a
temporary name and renamed over the target, and the folder fsync'ed (a rename is durable only
then).  Linking an unnamed file goes through ``/proc/self/fd`` (``linkat(AT_EMPTY_PATH)``
needs ``CAP_DAC_READ_SEARCH``).  On a file system without ``O_TMPFILE``, or where ``/proc`` is
not mounted (a chroot, a pid namespace without its ``/proc``), the bytes go to a named temporary
file ``.<name>.<random>.tmp`` instead, held under an exclusive ``flock`` while it is written;
if the link fails anyway at commit (``ENOENT``, ``EACCES``, ``EPERM``, ``EXDEV``) the bytes are
copied into such a file.  :func:`clean_temporaries` removes the ones no live writer holds (a
killed writer's), and every :class:`AtomicFile` for a target runs it for that target's folder
first.  A commit that fails (the rename refused) aborts: no temporary name is left.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import uuid
from pathlib import Path
from types import TracebackType

from sim.images._faults import fault_point
from sim.images._lock import create_locked

__all__ = ["fsync_dir", "atomic_write", "AtomicFile", "clean_temporaries"]

_TMP_SUFFIX = ".tmp"
_PROC_FD = "/proc/self/fd"  # where an unnamed file can be linked from by anyone
_LINK_REFUSED = (errno.ENOENT, errno.EACCES, errno.EPERM, errno.EXDEV)  # /proc gone, hidden or not ours
_CHUNK = 1 << 20


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{_TMP_SUFFIX}")


def _open_named(path: Path, mode: int) -> tuple[Path, int]:
    """A new ``.<name>.<random>.tmp`` beside ``path``, open for writing and held under an exclusive ``flock``."""
    return create_locked(lambda: _temporary_name(path), os.O_RDWR, mode)


def clean_temporaries(path: Path) -> list[str]:
    """Remove ``.<name>.<random>.tmp`` files beside ``path`` that no live writer holds; their names.

    A writer holds its temporary file under an exclusive ``flock`` until it is renamed, so a file
    this can lock was left by a killed writer."""
    prefix = f".{path.name}."
    removed: list[str] = []
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return removed
    for name in sorted(names):
        if not (name.startswith(prefix) and name.endswith(_TMP_SUFFIX)):
            continue
        leftover = path.parent / name
        try:
            fd = os.open(leftover, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            continue  # gone already, or not a file of ours (a symlink): leave it
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer
            try:
                os.unlink(leftover)
                removed.append(name)
            except FileNotFoundError:
                pass
        finally:
            os.close(fd)
    return removed


class AtomicFile:
    """A binary file written in place of ``path``: :meth:`commit` publishes it, :meth:`abort` drops it.

    Use it as a context manager: leaving the block normally commits, an exception aborts.  While
    it is open no one sees any of its bytes (see the module docstring); :meth:`write` reports the
    fault point ``<fault>.write`` (detail: the bytes written so far) after each chunk, so crash
    tests can stop a writer mid-file.
    """

    def __init__(self, path: str | os.PathLike[str], *, mode: int = 0o644, fault: str = "atomic") -> None:
        self.path = Path(path)
        self._fault = fault
        self._mode = mode
        self._written = 0
        self._named: Path | None = None
        folder = self.path.parent
        clean_temporaries(self.path)
        fd: int | None = None
        if os.path.isdir(_PROC_FD):  # without it an unnamed file could not be linked at commit
            try:  # read-write: should the link fail at commit, the bytes are copied out of it
                fd = os.open(folder, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, mode)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT) or not folder.is_dir():
                    raise
        if fd is None:  # a named, locked temporary file
            self._named, fd = _open_named(self.path, mode)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held through the link-then-rename window below
        self._fd: int | None = fd

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("the atomic file is closed")
        return self._fd

    def write(self, data: bytes | bytearray | memoryview) -> int:
        fd = self.fileno()
        view = memoryview(data)
        total = len(view)
        while view:
            view = view[os.write(fd, view):]
        self._written += total
        fault_point(f"{self._fault}.write", self._written)
        return total

    def flush(self) -> None:
        """Nothing is buffered here (each write is a system call); for file-object callers."""

    def commit(self) -> None:
        """fsync the bytes, then make them appear under ``path`` at once; fsync the folder.

        On any failure (the rename refused: ``path`` is a folder, the folder went away) the file is
        aborted (its temporary name unlinked, the descriptor and its lock released) and the
        :class:`OSError` raised; nothing appears under ``path``."""
        fd = self.fileno()
        try:
            os.fchmod(fd, self._mode)  # before the fsync, so the mode is as durable as the bytes
            os.fsync(fd)
            fault_point(f"{self._fault}.synced")
            if self._named is None:
                self._named = self._link(fd)
            os.rename(self._named, self.path)  # the name appears with all its bytes, or not at all
        except BaseException:
            self.abort()
            raise
        self._named = None
        self._close()
        fsync_dir(self.path.parent)

    def _link(self, fd: int) -> Path:
        """Give the unnamed file a temporary name beside ``path``; copy it into a named one if linking is refused."""
        named = _temporary_name(self.path)
        try:
            # linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; following the /proc link works for anyone
            # (a src_dir_fd makes Python call linkat with AT_SYMLINK_FOLLOW, plain link() would not follow).
            proc = os.open(_PROC_FD, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.link(str(fd), named, src_dir_fd=proc, follow_symlinks=True)
            finally:
                os.close(proc)
            return named
        except OSError as exc:
            if exc.errno not in _LINK_REFUSED:
                raise
        named, out = _open_named(self.path, self._mode)
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            with os.fdopen(os.dup(fd), "rb") as src, os.fdopen(os.dup(out), "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            os.fchmod(out, self._mode)
            os.fsync(out)
        except BaseException:
            os.unlink(named)  # before the close: the lock keeps cleaners off until then
            os.close(out)
            raise
        os.close(fd)  # the unnamed copy: the kernel frees it
        self._fd = out
        return named

    def abort(self) -> None:
        """Drop what was written (idempotent)."""
        if self._named is not None:
            try:
                os.unlink(self._named)  # unlink before close: the lock keeps cleaners off until then
            except FileNotFoundError:
                pass
            self._named = None
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def atomic_write(path: Path, data: bytes, *, fault: str = "atomic") -> None:
    """Replace ``path`` with ``data`` atomically and durably (see :class:`AtomicFile`)."""
    with AtomicFile(path, fault=fault) as out:
        out.write(data)

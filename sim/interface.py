"""The interfaces both backends implement.

A :class:`FileSystem` is shaped like Python's ``os`` module: same names,
same arguments, ``OSError`` with the kernel's errno.  Paths are resolved
inside the file system's own root, as a process in a container sees them:
``/`` and ``..`` at the top stay at the top, and absolute symlink targets
start from that root, never from the host's.

An :class:`Engine` is what :func:`sim.connect` returns; it grows with the
chapters (images, containers, registries) but starts with union mounts.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.layers.layer import Layer
    from sim.layers.trace import Event

__all__ = ["FileSystem", "UnionMount", "Engine", "UnionOptions"]


class FileSystem(abc.ABC):
    """``os``-shaped access to one file tree.  Every method raises ``OSError`` like ``os``."""

    @abc.abstractmethod
    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        """Open ``path`` like ``os.open``; returns a descriptor local to this file system."""

    @abc.abstractmethod
    def read(self, fd: int, n: int) -> bytes: ...

    @abc.abstractmethod
    def write(self, fd: int, data: bytes) -> int: ...

    @abc.abstractmethod
    def close(self, fd: int) -> None: ...

    @abc.abstractmethod
    def stat(self, path: str) -> os.stat_result: ...

    @abc.abstractmethod
    def lstat(self, path: str) -> os.stat_result: ...

    @abc.abstractmethod
    def listdir(self, path: str = "/") -> list[str]:
        """Names in ``path``, in no promised order (the kernel promises none)."""

    @abc.abstractmethod
    def mkdir(self, path: str, mode: int = 0o777) -> None: ...

    @abc.abstractmethod
    def rmdir(self, path: str) -> None: ...

    @abc.abstractmethod
    def unlink(self, path: str) -> None: ...

    @abc.abstractmethod
    def rename(self, src: str, dst: str) -> None: ...

    @abc.abstractmethod
    def symlink(self, target: str, path: str) -> None: ...

    @abc.abstractmethod
    def link(self, src: str, dst: str, *, follow_symlinks: bool = True) -> None: ...

    @abc.abstractmethod
    def readlink(self, path: str) -> str: ...

    @abc.abstractmethod
    def chmod(self, path: str, mode: int) -> None: ...

    @abc.abstractmethod
    def truncate(self, path: str, length: int) -> None: ...

    @abc.abstractmethod
    def utime(
        self,
        path: str,
        times: tuple[float, float] | None = None,
        *,
        ns: tuple[int, int] | None = None,
        follow_symlinks: bool = True,
    ) -> None: ...

    def chown(self, path: str, uid: int, gid: int) -> None:
        """Like ``os.chown`` (follows symlinks); ``-1`` keeps a value.  Optional for a file system."""
        raise NotImplementedError(f"{type(self).__name__} does not support chown")

    def mknod(self, path: str, mode: int = 0o600, device: int = 0) -> None:
        """Like ``os.mknod``: ``mode`` carries the type (``S_IFIFO``, ``S_IFCHR``, ``S_IFBLK``) and the
        permission bits (the umask applies); ``device`` is ``os.makedev(major, minor)``.  Optional for
        a file system."""
        raise NotImplementedError(f"{type(self).__name__} does not support mknod")

    # Conveniences built on the primitives, identical on every backend.

    def read_bytes(self, path: str) -> bytes:
        fd = self.open(path, os.O_RDONLY)
        try:
            chunks = []
            while chunk := self.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            self.close(fd)

    def write_bytes(self, path: str, data: bytes, mode: int = 0o666) -> None:
        fd = self.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[self.write(fd, bytes(view)):]
        finally:
            self.close(fd)

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except OSError:
            return False
        return True


@dataclass(frozen=True)
class UnionOptions:
    """Mount options the model and the kernel both take.  ``metacopy`` and ``xino``
    are always off: the real backend passes them explicitly so kernel defaults
    cannot change the result."""

    redirect_dir: bool = False
    index: bool = False
    umask: int = 0o022


class UnionMount(FileSystem):
    """A union of read-only layers (bottom first) and one writable upper layer."""

    options: UnionOptions

    @property
    @abc.abstractmethod
    def upper(self) -> Layer:
        """The writable layer as it stands now (the container layer)."""

    @property
    @abc.abstractmethod
    def events(self) -> Sequence[Event]:
        """What the union did so far: copy-ups, whiteouts, opaque dirs, redirects."""

    def unmount(self) -> None:
        """Release the union (unmount, close descriptors).  Idempotent."""

    def __enter__(self) -> UnionMount:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.unmount()


class Engine(abc.ABC):
    """What ``sim.connect(backend)`` returns."""

    name: str

    @abc.abstractmethod
    def union(
        self,
        layers: Sequence[Layer],
        upper: Layer | None = None,
        *,
        redirect_dir: bool = False,
        index: bool = False,
        umask: int = 0o022,
    ) -> UnionMount:
        """Mount ``layers`` (bottom first) under ``upper``; use it as a context manager."""

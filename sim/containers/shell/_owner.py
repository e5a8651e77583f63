"""What a process of another user creates is its own: the file system as uid:gid writes to it.

The kernel gives a new file or directory the creating process's fsuid and fsgid.  The model's
file systems create everything as 0:0 (they have no caller), so a shell running as another user
sees them through :class:`OwnedFS`, which hands what a call created to that user.  Only files,
directories and mknod's nodes: ``chown`` follows symlinks, so a new symlink stays 0:0 in the model.  Nothing
else changes (the model checks no permissions; see ``docs/shell.md``).
"""

from __future__ import annotations

import os
from typing import Any

from sim.interface import FileSystem

__all__ = ["OwnedFS"]


class OwnedFS(FileSystem):
    """``inner`` as a process running as ``uid``:``gid`` changes it (see the module docstring)."""

    def __init__(self, inner: FileSystem, uid: int, gid: int) -> None:
        self.inner = inner
        self.uid = uid
        self.gid = gid

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (unpickling, a half-made object): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)  # the union's options (umask) and anything else it offers

    def _own(self, path: str) -> None:
        try:
            self.inner.chown(path, self.uid, self.gid)
        except (OSError, NotImplementedError):
            pass  # a host folder the model may not chown (a bind as an unprivileged user): left as it is

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        created = False
        if flags & os.O_CREAT:
            try:
                self.inner.lstat(path)
            except FileNotFoundError:
                created = True
            except OSError:
                pass  # the open below reports it
        fd = self.inner.open(path, flags, mode)
        if created:
            self._own(path)
        return fd

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        self.inner.mkdir(path, mode)
        self._own(path)

    def mknod(self, path: str, mode: int = 0o600, device: int = 0) -> None:
        self.inner.mknod(path, mode, device)
        self._own(path)  # a FIFO (or, as root, a device) belongs to its maker like a file

    def read(self, fd: int, n: int) -> bytes:
        return self.inner.read(fd, n)

    def write(self, fd: int, data: bytes) -> int:
        return self.inner.write(fd, data)

    def close(self, fd: int) -> None:
        self.inner.close(fd)

    def stat(self, path: str) -> os.stat_result:
        return self.inner.stat(path)

    def lstat(self, path: str) -> os.stat_result:
        return self.inner.lstat(path)

    def listdir(self, path: str = "/") -> list[str]:
        return self.inner.listdir(path)

    def rmdir(self, path: str) -> None:
        self.inner.rmdir(path)

    def unlink(self, path: str) -> None:
        self.inner.unlink(path)

    def rename(self, src: str, dst: str) -> None:
        self.inner.rename(src, dst)

    def symlink(self, target: str, path: str) -> None:
        self.inner.symlink(target, path)

    def link(self, src: str, dst: str, *, follow_symlinks: bool = True) -> None:
        self.inner.link(src, dst, follow_symlinks=follow_symlinks)

    def readlink(self, path: str) -> str:
        return self.inner.readlink(path)

    def chmod(self, path: str, mode: int) -> None:
        self.inner.chmod(path, mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        self.inner.chown(path, uid, gid)

    def truncate(self, path: str, length: int) -> None:
        self.inner.truncate(path, length)

    def utime(self, path: str, times: tuple[float, float] | None = None, *, ns: tuple[int, int] | None = None,
              follow_symlinks: bool = True) -> None:
        self.inner.utime(path, times, ns=ns, follow_symlinks=follow_symlinks)

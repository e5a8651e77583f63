"""``os``-shaped calls confined to one directory, as a container's processes see it.

A plain ``os.open(mountpoint + path)`` would follow a layer's absolute
symlink (``etc -> /etc``) out to the host.  Here every walk goes through
``openat2(RESOLVE_IN_ROOT)``: ``/``, ``..`` and absolute link targets all stop
at the root descriptor.  Calls that act on a final name without following
it (unlink, mkdir, rename ...) resolve the parent that way and then use the
``*at`` form on a single component.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from realrt._syscalls import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, openat2
from sim.layers import _paths

_P = ParamSpec("_P")
_T = TypeVar("_T")

_RESOLVE = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
_DIR = os.O_PATH | os.O_DIRECTORY


def _err(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


class RootedOps:
    """The file-system calls of :class:`sim.interface.FileSystem` inside ``root_fd``."""

    def __init__(self, root_fd: int, umask: int) -> None:
        self.root = root_fd
        self.umask = umask
        self.fds: set[int] = set()

    def _open(self, path: str, flags: int, mode: int = 0) -> int:
        return openat2(self.root, path, flags, mode, _RESOLVE)

    def _parent(self, path: str, op: str) -> tuple[int, str]:
        """A descriptor of the parent directory and the final name.

        ``.``, ``..`` and the root as final names are answered here, after the
        parent walk, with the errno Linux gives, so no ``*at`` call ever sees
        ``..`` next to the root.
        """
        fd, name = self._split(path)
        if name is None:
            os.close(fd)
            raise _err(_paths.dot_errno(op, _paths.final_dot(path) or "/"), path)
        return fd, name

    def _split(self, path: str) -> tuple[int, str | None]:
        parts = _paths.split_union_path(path)
        fd = self._open("/" + "/".join(parts[:-1]), _DIR)
        if not parts or parts[-1] in (".", ".."):
            return fd, None
        # A trailing slash stays on the name: the kernel then insists on a directory.
        return fd, parts[-1] + ("/" if path.endswith("/") else "")

    def _with_umask(self, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        old = os.umask(self.umask)
        try:
            return call(*args, **kwargs)
        finally:
            os.umask(old)

    # -- descriptors ----------------------------------------------------------------

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        fd = self._with_umask(self._open, path, flags, mode)
        self.fds.add(fd)
        return fd

    def read(self, fd: int, n: int) -> bytes:
        self._own(fd)
        return os.read(fd, n)

    def write(self, fd: int, data: bytes) -> int:
        self._own(fd)
        return os.write(fd, data)

    def close(self, fd: int) -> None:
        self._own(fd)
        self.fds.discard(fd)
        os.close(fd)

    def _own(self, fd: int) -> None:
        if fd not in self.fds:  # never touch a descriptor this file system did not open
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    def close_all(self) -> None:
        for fd in list(self.fds):
            os.close(fd)
        self.fds.clear()

    # -- names ------------------------------------------------------------------------

    def stat(self, path: str) -> os.stat_result:
        fd = self._open(path, os.O_PATH)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def lstat(self, path: str) -> os.stat_result:
        fd = self._open(path, os.O_PATH | os.O_NOFOLLOW)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def listdir(self, path: str = "/") -> list[str]:
        fd = self._open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    def readlink(self, path: str) -> str:
        if path.endswith("/"):
            # A trailing slash makes readlinkat follow the link, and an *at call would follow
            # it from the host's root: resolve it confined instead. A directory is not a link.
            os.close(self._open(path, _DIR))
            raise _err(errno.EINVAL, path)
        dfd, name = self._parent(path, "readlink")
        try:
            return os.readlink(name, dir_fd=dfd)
        finally:
            os.close(dfd)

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        dfd, name = self._parent(path, "mkdir")
        try:
            self._with_umask(os.mkdir, name, mode, dir_fd=dfd)
        finally:
            os.close(dfd)

    def rmdir(self, path: str) -> None:
        dfd, name = self._parent(path, "rmdir")
        try:
            os.rmdir(name, dir_fd=dfd)
        finally:
            os.close(dfd)

    def unlink(self, path: str) -> None:
        dfd, name = self._parent(path, "unlink")
        try:
            os.unlink(name, dir_fd=dfd)
        finally:
            os.close(dfd)

    def symlink(self, target: str, path: str) -> None:
        dfd, name = self._parent(path, "symlink")
        try:
            os.symlink(target, name, dir_fd=dfd)
        finally:
            os.close(dfd)

    def rename(self, src: str, dst: str) -> None:
        sfd, sname = self._split(src)
        try:
            dfd, dname = self._split(dst)
            try:
                if sname is None or dname is None:
                    raise _err(errno.EBUSY, src if sname is None else dst)
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)

    def link(self, src: str, dst: str, *, follow_symlinks: bool = True) -> None:
        # ".", ".." and "name/" name directories: follow them confined (see readlink).
        if follow_symlinks or _paths.final_dot(src) is not None or src.endswith("/"):
            sfd = self._open(src, os.O_PATH)
            try:
                if os.fstat(sfd).st_mode & 0o170000 == 0o040000:
                    # vfs_link refuses directories only after creating the new name's dentry.
                    self._refuse_existing(dst, "link")
                    raise _err(errno.EPERM, src)
                dfd, dname = self._parent(dst, "link")
                try:
                    # linkat through /proc/self/fd/N links the object the confined walk found,
                    # without needing CAP_DAC_READ_SEARCH for AT_EMPTY_PATH.
                    os.link(f"/proc/self/fd/{sfd}", dname, dst_dir_fd=dfd, follow_symlinks=True)
                finally:
                    os.close(dfd)
            finally:
                os.close(sfd)
            return
        os.close(self._open(src, os.O_PATH | os.O_NOFOLLOW))  # the old name is looked up first, as linkat does
        spfd, sname = self._parent(src, "link")
        try:
            dfd, dname = self._parent(dst, "link")
            try:
                os.link(sname, dname, src_dir_fd=spfd, dst_dir_fd=dfd, follow_symlinks=False)
            finally:
                os.close(dfd)
        finally:
            os.close(spfd)

    def _refuse_existing(self, path: str, op: str) -> None:
        dfd, name = self._parent(path, op)
        try:
            os.stat(name.rstrip("/"), dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            if name.endswith("/"):
                raise _err(errno.ENOENT, path) from None
            return
        finally:
            os.close(dfd)
        raise _err(errno.EEXIST, path)

    def chmod(self, path: str, mode: int) -> None:
        fd = self._open(path, os.O_PATH)
        try:
            os.chmod(f"/proc/self/fd/{fd}", mode)
        finally:
            os.close(fd)

    def chown(self, path: str, uid: int, gid: int) -> None:
        fd = self._open(path, os.O_PATH)
        try:
            os.chown(f"/proc/self/fd/{fd}", uid, gid)
        finally:
            os.close(fd)

    def truncate(self, path: str, length: int) -> None:
        fd = self._open(path, os.O_PATH)
        try:
            os.truncate(f"/proc/self/fd/{fd}", length)
        finally:
            os.close(fd)

    def utime(
        self,
        path: str,
        times: tuple[float, float] | None = None,
        *,
        ns: tuple[int, int] | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        kwargs = {"ns": ns} if ns is not None else {}
        if follow_symlinks or path.endswith("/"):  # a trailing slash follows (confined, see readlink)
            fd = self._open(path, os.O_PATH)
            try:
                os.utime(f"/proc/self/fd/{fd}", times, **kwargs)  # type: ignore[arg-type]
            finally:
                os.close(fd)
            return
        if _paths.final_dot(path) is not None:  # ".", ".." and "/" are directories: nothing to not-follow
            return self.utime(path, times, ns=ns, follow_symlinks=True)
        dfd, name = self._parent(path, "utime")
        try:
            os.utime(name, times, dir_fd=dfd, follow_symlinks=False, **kwargs)
        finally:
            os.close(dfd)

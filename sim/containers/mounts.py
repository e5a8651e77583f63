"""A container's file tree: the union as root, volumes and binds mounted on directories.

数据卷 (volumes) and bind mounts bypass the container layer: a write under a
mount point lands in the volume, never in the union's upper layer.  Paths are
resolved here, one component at a time, as the kernel does across mounts: a
symlink in the union may lead into a volume and back, and ``..`` climbs out of
a mount into its parent.  Each file system below then only ever sees a
canonical path (no symlinks, no ``..``) inside itself.
"""

from __future__ import annotations

import errno
import os
import stat as _stat
from collections.abc import Mapping

from sim.interface import FileSystem
from sim.layers import _paths

__all__ = ["MountedFS", "HostDirFS", "FileMount"]

_MAXSYMLINKS = 40


def _err(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


class MountedFS(FileSystem):
    """``root`` with each of ``mounts`` (container path -> file system) mounted on a directory.

    Mount points must be canonical absolute paths (``/data``) whose parent
    exists; the mount hides what the root has there, as ``mount --bind`` does.
    Crossing mounts with ``rename`` or ``link`` gives ``EXDEV``; removing or
    renaming a mount point gives ``EBUSY``.
    """

    def __init__(self, root: FileSystem, mounts: Mapping[str, FileSystem] | None = None) -> None:
        self.root = root
        self.mounts: dict[str, FileSystem] = {}
        for point, fs in (mounts or {}).items():
            canonical = "/".join(p for p in point.split("/") if p)
            if not point.startswith("/") or not canonical or canonical != point.strip("/") or ".." in canonical.split("/"):
                raise ValueError(f"mount point {point!r} must be a canonical absolute path other than /")
            self.mounts[canonical] = fs
        self._fds: dict[int, tuple[FileSystem, int]] = {}

    # -- resolution ------------------------------------------------------------------

    def _owner(self, canonical: str) -> tuple[FileSystem, str, str]:
        """The file system holding ``canonical``, the path inside it, and its mount point."""
        best = ""
        for point in self.mounts:
            if (canonical == point or canonical.startswith(point + "/")) and len(point) > len(best):
                best = point
        if not best:
            return self.root, "/" + canonical, ""
        return self.mounts[best], "/" + canonical[len(best) + 1:], best

    def _lstat(self, canonical: str) -> os.stat_result | None:
        fs, inner, _ = self._owner(canonical)
        try:
            return fs.lstat(inner)
        except FileNotFoundError:
            return None

    def _resolve(self, path: str, *, follow: bool) -> str:
        """The canonical path ``path`` names; the final component may not exist."""
        pending = list(reversed(_paths.split_union_path(path)))
        must_be_dir = path.endswith("/")
        parts: list[str] = []
        links = 0
        while pending:
            name = pending.pop()
            if name == ".":
                continue
            if name == "..":
                if parts:
                    parts.pop()
                continue
            candidate = "/".join([*parts, name])
            st = self._lstat(candidate)
            last = not pending
            if st is None:
                if last:
                    return candidate
                raise _err(errno.ENOENT, path)
            if _stat.S_ISLNK(st.st_mode) and (not last or follow or must_be_dir):
                links += 1
                if links > _MAXSYMLINKS:
                    raise _err(errno.ELOOP, path)
                fs, inner, _ = self._owner(candidate)
                target = fs.readlink(inner)
                if target.startswith("/"):
                    parts = []
                pending.extend(reversed(_paths.split_union_path(target) + (["."] if target.endswith("/") else [])))
                continue
            if not last and not _stat.S_ISDIR(st.st_mode):
                raise _err(errno.ENOTDIR, path)
            parts.append(name)
        return "/".join(parts)

    def _at(self, path: str, *, follow: bool) -> tuple[FileSystem, str]:
        fs, inner, _ = self._owner(self._resolve(path, follow=follow))
        return fs, inner + ("/" if path.endswith("/") and inner != "/" else "")

    def _name(self, path: str, op: str) -> tuple[FileSystem, str, str]:
        """For calls that act on a final name: (file system, inner path, canonical path)."""
        parts = _paths.split_union_path(path)
        parent = self._resolve("/" + "/".join(parts[:-1]), follow=True) if parts else ""
        dot = _paths.final_dot(path)
        if dot is not None or not parts:
            fs, inner, _ = self._owner(parent)
            return fs, inner + "/" + (dot if dot not in (None, "/") else "."), parent
        canonical = "/".join(p for p in (parent, parts[-1]) if p)
        if canonical in self.mounts and op in ("rmdir", "unlink", "rename"):
            raise _err(errno.EBUSY, path)
        fs, inner, _ = self._owner(canonical)
        return fs, inner + ("/" if path.endswith("/") else ""), canonical

    # -- descriptors -------------------------------------------------------------------

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        follow = not (flags & os.O_NOFOLLOW or (flags & os.O_CREAT and flags & os.O_EXCL))
        fs, inner = self._at(path, follow=follow)
        inner_fd = fs.open(inner, flags, mode)
        fd = 3
        while fd in self._fds:
            fd += 1
        self._fds[fd] = (fs, inner_fd)
        return fd

    def _fd(self, fd: int) -> tuple[FileSystem, int]:
        try:
            return self._fds[fd]
        except KeyError:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF)) from None

    def read(self, fd: int, n: int) -> bytes:
        fs, inner = self._fd(fd)
        return fs.read(inner, n)

    def write(self, fd: int, data: bytes) -> int:
        fs, inner = self._fd(fd)
        return fs.write(inner, data)

    def close(self, fd: int) -> None:
        fs, inner = self._fd(fd)
        del self._fds[fd]
        fs.close(inner)

    # -- names -------------------------------------------------------------------------

    def stat(self, path: str) -> os.stat_result:
        fs, inner = self._at(path, follow=True)
        return fs.stat(inner)

    def lstat(self, path: str) -> os.stat_result:
        fs, inner = self._at(path, follow=False)
        return fs.lstat(inner)

    def listdir(self, path: str = "/") -> list[str]:
        fs, inner = self._at(path, follow=True)
        return fs.listdir(inner)

    def readlink(self, path: str) -> str:
        fs, inner = self._at(path, follow=False)
        return fs.readlink(inner)

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        fs, inner, _ = self._name(path, "mkdir")
        fs.mkdir(inner, mode)

    def rmdir(self, path: str) -> None:
        fs, inner, _ = self._name(path, "rmdir")
        fs.rmdir(inner)

    def unlink(self, path: str) -> None:
        fs, inner, _ = self._name(path, "unlink")
        fs.unlink(inner)

    def symlink(self, target: str, path: str) -> None:
        fs, inner, _ = self._name(path, "symlink")
        fs.symlink(target, inner)

    def mknod(self, path: str, mode: int = 0o600, device: int = 0) -> None:
        fs, inner, _ = self._name(path, "mknod")
        fs.mknod(inner, mode, device)

    def rename(self, src: str, dst: str) -> None:
        sfs, sinner, _ = self._name(src, "rename")
        dfs, dinner, _ = self._name(dst, "rename")
        if sfs is not dfs:
            raise _err(errno.EXDEV, src)
        sfs.rename(sinner, dinner)

    def link(self, src: str, dst: str, *, follow_symlinks: bool = True) -> None:
        sfs, sinner = self._at(src, follow=follow_symlinks)
        dfs, dinner, _ = self._name(dst, "link")
        if sfs is not dfs:
            raise _err(errno.EXDEV, src)
        sfs.link(sinner, dinner, follow_symlinks=False)

    def chmod(self, path: str, mode: int) -> None:
        fs, inner = self._at(path, follow=True)
        fs.chmod(inner, mode)

    def truncate(self, path: str, length: int) -> None:
        fs, inner = self._at(path, follow=True)
        fs.truncate(inner, length)

    def chown(self, path: str, uid: int, gid: int) -> None:
        fs, inner = self._at(path, follow=True)
        fs.chown(inner, uid, gid)

    def utime(
        self,
        path: str,
        times: tuple[float, float] | None = None,
        *,
        ns: tuple[int, int] | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        fs, inner = self._at(path, follow=follow_symlinks)
        fs.utime(inner, times, ns=ns, follow_symlinks=follow_symlinks)


class HostDirFS(FileSystem):
    """A host folder as a file system: what a bind mount (``-v /host/dir:/data``) shows the model.

    It is meant to sit below :class:`MountedFS`, which resolves every symlink
    itself and hands down canonical paths; the calls here never follow a
    symlink in a parent component and refuse ``..``.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise NotADirectoryError(errno.ENOTDIR, "bind source is not a directory", str(root))
        self._fds: set[int] = set()

    def _host(self, path: str) -> str:
        parts = _paths.split_union_path(path) if path not in ("", "/") else []
        if ".." in parts:
            raise _err(errno.EINVAL, path)
        return os.path.join(self.root, *parts) + ("/" if path.endswith("/") and parts else "")

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        fd = os.open(self._host(path), flags | os.O_CLOEXEC, mode)
        self._fds.add(fd)
        return fd

    def _own(self, fd: int) -> int:
        if fd not in self._fds:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return fd

    def read(self, fd: int, n: int) -> bytes:
        return os.read(self._own(fd), n)

    def write(self, fd: int, data: bytes) -> int:
        return os.write(self._own(fd), data)

    def close(self, fd: int) -> None:
        os.close(self._own(fd))
        self._fds.discard(fd)

    def stat(self, path: str) -> os.stat_result:
        return os.stat(self._host(path))

    def lstat(self, path: str) -> os.stat_result:
        return os.lstat(self._host(path))

    def listdir(self, path: str = "/") -> list[str]:
        return os.listdir(self._host(path))

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        os.mkdir(self._host(path), mode)

    def rmdir(self, path: str) -> None:
        os.rmdir(self._host(path))

    def unlink(self, path: str) -> None:
        os.unlink(self._host(path))

    def rename(self, src: str, dst: str) -> None:
        os.rename(self._host(src), self._host(dst))

    def symlink(self, target: str, path: str) -> None:
        os.symlink(target, self._host(path))

    def mknod(self, path: str, mode: int = 0o600, device: int = 0) -> None:
        os.mknod(self._host(path), mode, device)

    def link(self, src: str, dst: str, *, follow_symlinks: bool = True) -> None:
        os.link(self._host(src), self._host(dst), follow_symlinks=follow_symlinks)

    def readlink(self, path: str) -> str:
        return os.readlink(self._host(path))

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(self._host(path), mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(self._host(path), uid, gid)

    def truncate(self, path: str, length: int) -> None:
        os.truncate(self._host(path), length)

    def utime(
        self,
        path: str,
        times: tuple[float, float] | None = None,
        *,
        ns: tuple[int, int] | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        if ns is not None:
            os.utime(self._host(path), ns=ns, follow_symlinks=follow_symlinks)
        else:
            os.utime(self._host(path), times, follow_symlinks=follow_symlinks)


class FileMount(FileSystem):
    """One file to bind-mount over a path (``/etc/hosts``, ``/etc/resolv.conf``, as Docker does):
    the mounted tree's root ``/`` *is* the file; every other path is ``ENOTDIR``.  Writable, as
    Docker's are; the bytes live in ``inner`` (any file system holding ``/file``)."""

    _NAME = "/file"

    def __init__(self, data: bytes, *, mode: int = 0o644) -> None:
        from sim.layers.unionfs import UnionFS  # the model's tree for the one file

        self._inner = UnionFS([])
        self._inner.write_bytes(self._NAME, data, mode)

    def _map(self, path: str) -> str:
        if path.strip("/") != "":
            raise _err(errno.ENOTDIR, path)
        return self._NAME

    def set_contents(self, data: bytes) -> None:
        """Rewrite the file in place (the same inode, so an open reader sees the new bytes)."""
        self._inner.truncate(self._NAME, 0)
        fd = self._inner.open(self._NAME, os.O_WRONLY)
        try:
            self._inner.write(fd, data)
        finally:
            self._inner.close(fd)

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        return self._inner.open(self._map(path), flags & ~os.O_CREAT, mode)

    def read(self, fd: int, n: int) -> bytes:
        return self._inner.read(fd, n)

    def write(self, fd: int, data: bytes) -> int:
        return self._inner.write(fd, data)

    def close(self, fd: int) -> None:
        self._inner.close(fd)

    def stat(self, path: str) -> os.stat_result:
        return self._inner.stat(self._map(path))

    def lstat(self, path: str) -> os.stat_result:
        return self._inner.lstat(self._map(path))

    def listdir(self, path: str = "/") -> list[str]:
        raise _err(errno.ENOTDIR, path)

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        raise _err(errno.EEXIST if path.strip("/") == "" else errno.ENOTDIR, path)

    def rmdir(self, path: str) -> None:
        raise _err(errno.ENOTDIR, path)

    def unlink(self, path: str) -> None:
        raise _err(errno.EBUSY if path.strip("/") == "" else errno.ENOTDIR, path)

    def rename(self, src: str, dst: str) -> None:
        raise _err(errno.EBUSY, src)

    def symlink(self, target: str, path: str) -> None:
        raise _err(errno.EEXIST if path.strip("/") == "" else errno.ENOTDIR, path)

    def link(self, src: str, dst: str, *, follow_symlinks: bool = True) -> None:
        raise _err(errno.EXDEV, dst)

    def readlink(self, path: str) -> str:
        self._map(path)
        raise _err(errno.EINVAL, path)

    def chmod(self, path: str, mode: int) -> None:
        self._inner.chmod(self._map(path), mode)

    def truncate(self, path: str, length: int) -> None:
        self._inner.truncate(self._map(path), length)

    def utime(self, path: str, times: tuple[float, float] | None = None, *, ns: tuple[int, int] | None = None,
              follow_symlinks: bool = True) -> None:
        self._inner.utime(self._map(path), times, ns=ns, follow_symlinks=follow_symlinks)

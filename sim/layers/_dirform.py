"""The overlay directory form: what the kernel reads as a layer or leaves as an upperdir.

Writing never follows a symlink: each directory is opened relative to its
parent's descriptor with ``O_NOFOLLOW``, and every name is created with the
``*at`` calls, so a layer cannot place anything outside its folder.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

from sim.errors import LayerFormatError, TargetNotEmptyError, UnsupportedEntryError
from sim.layers import _paths
from sim.layers._changeset import Changeset
from sim.layers._entries import BlockDevice, CharDevice, Device, Directory, Fifo, Owned, RegularFile, Symlink, Whiteout

__all__ = ["read", "write"]

_OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _prepare_target(path: str) -> int:
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise TargetNotEmptyError(errno.EEXIST, "target exists and is not a directory", path) from None
        if os.listdir(path):
            raise TargetNotEmptyError(errno.ENOTEMPTY, "to_directory writes only into an empty or missing folder", path) from None
    return os.open(path, _DIR_FLAGS)


def write(layer: Changeset, target: str, *, userxattr: bool, rootless: bool) -> None:
    """Write ``layer`` into the empty or missing folder ``target``.

    ``rootless``: devices become empty regular files (mknod(2) of a device is
    EPERM in a user namespace); see :meth:`sim.layers.layer.Layer.to_directory`.
    """
    prefix = "user.overlay." if userxattr else "trusted.overlay."
    root = _prepare_target(target)
    fds: dict[str, int] = {"": root}
    linked: dict[int, tuple[int, str]] = {}
    try:
        items = layer.items()
        for path, entry in items:
            dirfd = fds[_paths.parent_of(path)]
            name = _paths.basename(path)
            if isinstance(entry, Directory):
                os.mkdir(name, 0o700, dir_fd=dirfd)
                fds[path] = os.open(name, _DIR_FLAGS, dir_fd=dirfd)
                if entry.opaque:
                    os.setxattr(fds[path], prefix + "opaque", b"y")
                if entry.redirect:
                    os.setxattr(fds[path], prefix + "redirect", entry.redirect.encode())
            elif isinstance(entry, Whiteout):
                # Unprivileged users may create exactly this device: the kernel allows 0/0 whiteouts.
                os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dirfd)
            elif isinstance(entry, Symlink):
                os.symlink(entry.target, name, dir_fd=dirfd)
            elif isinstance(entry, Fifo):
                os.mkfifo(name, 0o600, dir_fd=dirfd)
            elif isinstance(entry, Device) and not rootless:
                # 0600 until the metadata pass: the node is never usable by others before its own mode is set.
                kind = stat.S_IFBLK if isinstance(entry, BlockDevice) else stat.S_IFCHR
                os.mknod(name, kind | 0o600, entry.rdev, dir_fd=dirfd)
            elif isinstance(entry, Device):
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                                 dir_fd=dirfd))
            elif isinstance(entry, RegularFile):
                if id(entry) in linked:
                    first_dirfd, first_name = linked[id(entry)]
                    os.link(first_name, name, src_dir_fd=first_dirfd, dst_dir_fd=dirfd, follow_symlinks=False)
                    continue
                linked[id(entry)] = (dirfd, name)
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dirfd)
                try:
                    _write_all(fd, entry.data)
                finally:
                    os.close(fd)
        # Metadata last, children before parents, so creating entries does not disturb mtimes.
        for path, entry in reversed(items):
            if isinstance(entry, Whiteout):
                continue
            assert isinstance(entry, Owned)
            dirfd, name = fds[_paths.parent_of(path)], _paths.basename(path)
            os.chown(name, entry.uid, entry.gid, dir_fd=dirfd, follow_symlinks=False)
            if not isinstance(entry, Symlink):
                # We created this name ourselves as a non-symlink, so following it is safe.
                for key, value in entry.xattrs.items():
                    os.setxattr(f"/proc/self/fd/{dirfd}/{name}", key, value)
                os.chmod(name, entry.mode, dir_fd=dirfd)
            os.utime(name, ns=(entry.mtime_ns, entry.mtime_ns), dir_fd=dirfd, follow_symlinks=False)
    finally:
        for fd in fds.values():
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _classify_xattrs(path: str) -> tuple[dict[str, bytes], bool, str | None]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM):
            return {}, False, None
        raise
    xattrs: dict[str, bytes] = {}
    opaque, redirect = False, None
    for key in names:
        value = os.getxattr(path, key, follow_symlinks=False)
        if key.startswith(_OVERLAY_XATTR_PREFIXES):
            suffix = key.split(".overlay.", 1)[1]
            if suffix == "opaque":
                opaque = opaque or value == b"y"
            elif suffix == "redirect":
                redirect = value.decode("utf-8", "surrogateescape")
            continue  # origin, impure, nlink, upper... belong to the kernel, not to the layer
        if key.startswith("security.") or key.startswith("system."):
            continue  # labels and ACLs of the host, not of the image
        xattrs[key] = value
    return xattrs, opaque, redirect


def read(root: str, layer: Changeset) -> None:
    """Fill the empty ``layer`` from the overlay directory ``root``; the caller freezes it."""
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        raise LayerFormatError(f"{root!r} is not a directory")
    inodes: dict[tuple[int, int], RegularFile] = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel) if rel else root) as it:
            children = sorted(it, key=lambda e: e.name)
        for child in children:
            path = _paths.join(rel, child.name)
            full = child.path
            cst = child.stat(follow_symlinks=False)
            mode = cst.st_mode
            meta: dict[str, Any] = dict(uid=cst.st_uid, gid=cst.st_gid, mtime_ns=cst.st_mtime_ns)
            if stat.S_ISDIR(mode):
                xattrs, opaque, redirect = _classify_xattrs(full)
                entry = Directory(mode=stat.S_IMODE(mode), xattrs=xattrs, opaque=opaque, **meta)
                entry.redirect = redirect
                layer._set(path, entry)
                stack.append(path)
            elif stat.S_ISCHR(mode) and cst.st_rdev == 0:
                layer._set(path, Whiteout())  # the kernel may hard-link one whiteout inode: never group these
            elif stat.S_ISFIFO(mode):
                xattrs, _, _ = _classify_xattrs(full)
                layer._set(path, Fifo(mode=stat.S_IMODE(mode), xattrs=xattrs, **meta))
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                # Hard links between device nodes or FIFOs are not kept: each name is its own entry.
                xattrs, _, _ = _classify_xattrs(full)
                kind = CharDevice if stat.S_ISCHR(mode) else BlockDevice
                layer._set(path, kind(os.major(cst.st_rdev), os.minor(cst.st_rdev), mode=stat.S_IMODE(mode),
                                      xattrs=xattrs, **meta))
            elif stat.S_ISSOCK(mode):
                # A socket is a live endpoint, not content: Docker's archiver skips it ("archive:
                # skipping ... since it is a socket"), so a layer never holds one.
                continue
            elif stat.S_ISLNK(mode):
                layer._set(path, Symlink(os.readlink(full), **meta))
            elif stat.S_ISREG(mode):
                key = (cst.st_dev, cst.st_ino)
                known = inodes.get(key) if cst.st_nlink > 1 else None
                if known is not None:
                    layer._set(path, known)
                    continue
                xattrs, _, _ = _classify_xattrs(full)
                with open(full, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as fh:
                    data = fh.read()
                entry_f = RegularFile(data, mode=stat.S_IMODE(mode), xattrs=xattrs, **meta)
                inodes[key] = entry_f
                layer._set(path, entry_f)
            else:
                raise UnsupportedEntryError(f"{full!r}: {_describe(mode)} entries are not represented by the model")


def _describe(mode: int) -> str:
    return f"file type {stat.S_IFMT(mode):#o}"

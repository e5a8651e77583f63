"""A model of Linux overlayfs: read-only layers under one writable upper layer.

:class:`UnionFS` behaves like a kernel overlay mount with ``metacopy=off``
and ``xino=off`` and the given ``redirect_dir`` and ``index``: the same
objects appear, the same errno comes back, and the upper layer ends up
holding the same changes (copy-ups, whiteouts, opaque directories,
redirects).  ``tests/test_differential.py`` checks exactly that against the
kernel.

The process using it is modelled as root: permission bits are stored and
reported but never refuse an operation.  When a call could fail for several
reasons, the one reported is the kernel's: every call runs the ordered
checks of :mod:`sim.layers._checks` first.
"""

from __future__ import annotations

import errno
import math
import os
import posixpath
import stat as _stat
import time
from collections.abc import Sequence

from sim.errors import FrozenLayerError, UnsupportedCommandError
from sim.interface import UnionMount, UnionOptions
from sim.layers import _paths
from sim.layers._checks import Checks
from sim.layers._entries import Owned
from sim.layers._lookup import MAXSYMLINKS, Loc, Lookup, oserror
from sim.layers._lowerview import LowerNode, LowerView
from sim.layers._openfile import FdTable, OpenFile
from sim.layers.layer import (
    BlockDevice,
    CharDevice,
    Device,
    Directory,
    Entry,
    Fifo,
    Layer,
    RegularFile,
    Symlink,
    Whiteout,
)
from sim.layers.trace import Event, EventKind

__all__ = ["UnionFS", "MAXSYMLINKS"]

#: ``st_size`` reported for directories (ext4's block; the kernel reports the real directory's).
DIR_SIZE = 4096


class UnionFS(UnionMount):
    """``layers`` bottom first; ``upper`` the writable layer (a new empty one when None).

    Contracts, each as the kernel gives them:

    * lookup: see :mod:`sim.layers._lookup` and :mod:`sim.layers._lowerview`;
      a whiteout in upper hides the name, an opaque upper directory hides
      everything below it;
    * copy-up happens on open for write or with ``O_TRUNC`` (``O_RDWR`` even
      without a write), chmod, truncate, utime, link (the source) and rename;
      the copy keeps mode, owner, mtime, xattrs; missing parents are copied
      up first as bare directories;
    * removing a name a lower layer has leaves a whiteout, else removes it;
      a directory created over a whiteout is opaque;
    * renaming a directory with lower content is ``EXDEV`` unless
      ``redirect_dir``; with it the directory gets a redirect;
    * with ``index=False`` copying up one name of a hard-linked lower file
      breaks the link.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        upper: Layer | None = None,
        *,
        redirect_dir: bool = False,
        index: bool = False,
        umask: int = 0o022,
        read_only: bool = False,
    ) -> None:
        """``read_only`` models a mount made ``MS_RDONLY`` (``ro``): every call that would write
        fails with ``EROFS``, at the point of the check order where the kernel reports it."""
        if upper is not None and upper.frozen:
            raise FrozenLayerError("the upper layer must be writable; pass Layer() or None")
        self.options = UnionOptions(redirect_dir=redirect_dir, index=index, umask=umask)
        self.layers = tuple(layers)
        self._lower = LowerView(self.layers)
        self._upper = upper if upper is not None else Layer()
        self._root = Directory(mtime_ns=time.time_ns())
        self._events: list[Event] = []
        self._copied: dict[tuple[int, str], RegularFile] = {}  # (id(lower file), path) -> its copy
        self._fds = FdTable(self._copied)
        self._index: dict[int, RegularFile] = {}  # index=on: id(lower file) -> the one upper copy
        self._index_copies: dict[int, LowerNode] = {}  # index=on: id(upper copy) -> the lower file it copies
        self._union_links: dict[int, int] = {}  # index=on: id(lower file) -> its link count in the union
        self._inos: dict[int, int] = {}
        self._lookup = Lookup(self._upper, self._lower, self._root, self._index)
        self._checks = Checks(self._lookup, read_only=read_only)

    # -- UnionMount --------------------------------------------------------------

    @property
    def upper(self) -> Layer:
        return self._upper

    @property
    def events(self) -> Sequence[Event]:
        return tuple(self._events)

    def unmount(self) -> None:
        self._fds.clear()

    # -- copy-up and upper-layer changes ----------------------------------------

    def _emit(self, kind: EventKind, path: str, layer: int | None = None, detail: str = "") -> None:
        self._events.append(Event(kind, path, layer, detail))

    def _copy_up_parents(self, path: str) -> None:
        for parent in _paths.ancestors(path):
            if self._upper.get(parent) is None:
                loc = self._lookup.canonical(parent)
                assert loc.lower is not None, f"parent {parent!r} has no lower directory to copy up"
                self._upper._set(parent, loc.lower.entry.copy())
                self._emit(EventKind.COPY_UP, parent, loc.lower.layer, "parent directory")

    def _copy_up(self, loc: Loc) -> Entry:
        """Make the object at ``loc`` live in the upper layer and return that copy."""
        if loc.upper is not None and not isinstance(loc.upper, Whiteout):
            return loc.upper
        if loc.path == "":
            return self._root
        assert loc.lower is not None
        self._copy_up_parents(loc.path)
        source = loc.lower.entry
        shared = self._index.get(id(source)) if self.options.index else None
        copy = shared if shared is not None else source.copy()
        if isinstance(copy, RegularFile):
            self._copied[(id(source), loc.path)] = copy
            if self.options.index:
                self._index[id(source)] = copy
                self._index_copies[id(copy)] = loc.lower
        self._upper._set(loc.path, copy)
        loc.upper = copy
        self._emit(EventKind.COPY_UP, loc.path, loc.lower.layer, source.kind)
        return copy

    def _upper_dir(self, path: str) -> Directory:
        entry = self._root if path == "" else self._upper.get(path)
        assert isinstance(entry, Directory)
        return entry

    def _touch(self, path: str) -> None:
        """A directory's name list changed: the kernel sets its mtime to now."""
        self._upper_dir(path).mtime_ns = time.time_ns()

    def _prepare_create(self, loc: Loc) -> str:
        parent = _paths.parent_of(loc.path)
        if parent:
            self._copy_up(self._lookup.canonical(parent))
        return parent

    def _place_new(self, loc: Loc, entry: Entry) -> None:
        parent = self._prepare_create(loc)
        over_whiteout = isinstance(self._upper.get(loc.path), Whiteout)
        self._upper._set(loc.path, entry)
        self._emit(EventKind.CREATE, loc.path, None, entry.kind + (" over a whiteout" if over_whiteout else ""))
        self._touch(parent)

    def _remove(self, loc: Loc) -> None:
        if loc.upper is not None:
            self._upper._delete_tree(loc.path)
        parent = _paths.parent_of(loc.path)
        if loc.lower is not None:  # a lower layer still has the name: hide it
            self._copy_up_parents(loc.path)
            self._upper._set(loc.path, Whiteout())
            self._emit(EventKind.WHITEOUT, loc.path, loc.lower.layer)
        else:
            self._emit(EventKind.REMOVE, loc.path)
        self._touch(parent)

    def _children(self, loc: Loc, *, listing: bool = False) -> list[str]:
        """Names inside a directory; ``listing`` gives what readdir shows (see LowerNode.listed)."""
        if listing and loc.upper is None and loc.lower is not None and len(loc.lower.merged) == 1:
            return list(loc.lower.listed)
        names: set[str] = set()
        if isinstance(loc.upper, Directory):
            for name in self._upper.children(loc.path):
                if not isinstance(self._upper[_paths.join(loc.path, name)], Whiteout):
                    names.add(name)
        if loc.merge_lower is not None:
            for name in self._lower.nodes[loc.merge_lower].children:
                if self._upper.get(_paths.join(loc.path, name)) is None:
                    names.add(name)
        return list(names)

    def _is_merged(self, loc: Loc) -> bool:
        if loc.upper is not None:
            return loc.merge_lower is not None
        return loc.lower is not None and len(loc.lower.merged) > 1

    # -- os-shaped API -------------------------------------------------------------

    def stat(self, path: str) -> os.stat_result:
        return self._lookup.stat(path, True, self._stat)

    def lstat(self, path: str) -> os.stat_result:
        return self._lookup.stat(path, False, self._stat)

    def _ino(self, entry: Entry) -> int:
        return self._inos.setdefault(id(entry), len(self._inos) + 2)

    def _stat(self, loc: Loc) -> os.stat_result:
        entry = loc.obj
        assert entry is not None
        if isinstance(entry, Directory):
            kind, size = _stat.S_IFDIR, DIR_SIZE
            if self._is_merged(loc):
                nlink = 1
            elif loc.upper is not None:
                nlink = self._upper.nlink(loc.path)
            else:
                assert loc.lower is not None
                nlink = loc.lower.nlink
        elif isinstance(entry, Symlink):
            kind, size = _stat.S_IFLNK, len(os.fsencode(entry.target))
            nlink = self._upper.nlink(loc.path) if loc.upper is not None else (loc.lower.nlink if loc.lower else 1)
        elif isinstance(entry, (Fifo, Device)):
            kind = _stat.S_IFIFO if isinstance(entry, Fifo) else (
                _stat.S_IFBLK if isinstance(entry, BlockDevice) else _stat.S_IFCHR)
            size, nlink = 0, 1
        else:
            assert isinstance(entry, RegularFile)
            kind, size = _stat.S_IFREG, entry.size
            key = self._hardlink_key(loc)
            if key is not None:
                nlink = self._union_links.get(key[0], key[1])
            elif loc.upper is not None:
                nlink = self._upper.nlink(loc.path)
            else:
                assert loc.lower is not None
                nlink = loc.lower.nlink
        assert isinstance(entry, Owned)
        t = entry.mtime_ns
        # Fields past the 10 named ones: float times, then st_atime_ns.. (index 13-15), blksize, blocks, rdev.
        extra = {"st_rdev": entry.rdev} if isinstance(entry, Device) else {}
        return os.stat_result(
            (kind | entry.mode, self._ino(entry), 0, nlink, entry.uid, entry.gid, size,
             t // 10**9, t // 10**9, t // 10**9, t / 1e9, t / 1e9, t / 1e9, t, t, t), extra
        )

    def _hardlink_key(self, loc: Loc) -> tuple[int, int] | None:
        """index=on: the lower hard-linked file whose union link count the kernel tracks."""
        if not self.options.index:
            return None
        entry = loc.obj
        source = self._index_copies.get(id(entry)) if entry is not None else None
        if source is None and loc.upper is None and loc.lower is not None and loc.lower.nlink > 1:
            source = loc.lower
        return (id(source.entry), source.nlink) if source is not None else None

    def _adjust_links(self, loc: Loc, delta: int) -> None:
        # The kernel counts union links of an indexed lower file from its lower count (lower
        # whiteouts that existed before the mount are not subtracted), then tracks link/unlink.
        key = self._hardlink_key(loc)
        if key is not None:
            self._union_links[key[0]] = self._union_links.get(key[0], key[1]) + delta

    def listdir(self, path: str = "/") -> list[str]:
        loc = self._checks.use(path)
        if not isinstance(loc.obj, Directory):
            raise oserror(errno.ENOTDIR, path)
        return self._children(loc, listing=True)

    def readlink(self, path: str) -> str:
        if _paths.final_dot(path) is not None:
            self._checks.use(path)
            raise oserror(errno.EINVAL, path)
        loc = self._checks.use(path, follow=False)
        if not isinstance(loc.obj, Symlink):
            raise oserror(errno.EINVAL, path)
        return loc.obj.target

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        access = flags & os.O_ACCMODE
        if access == os.O_ACCMODE:
            raise oserror(errno.EINVAL, path)
        creating = bool(flags & os.O_CREAT)
        exclusive = creating and bool(flags & os.O_EXCL)
        if creating:
            self._checks.open_create(path, exclusive=exclusive)  # parent walk, dots, "name/", NAME_MAX
        if creating and not (exclusive or flags & os.O_NOFOLLOW):
            # O_CREAT through a final symlink whose body ends in "/" is O_CREAT on "target/".
            try:
                body = self.readlink(path) if _stat.S_ISLNK(self.lstat(path).st_mode) else ""
            except OSError:
                body = ""
            if body.endswith("/"):
                target = body if body.startswith("/") else posixpath.join(posixpath.dirname(path), body)
                return self.open(target, flags, mode)
        loc = self._lookup.walk(path, follow=not (exclusive or flags & os.O_NOFOLLOW))
        entry = loc.obj
        if entry is None:
            if not creating:
                raise oserror(errno.ENOENT, path)
            if path.endswith("/"):
                raise oserror(errno.EISDIR, path)
            self._checks.want_write(path)  # lookup_open(): EROFS only when it would create
            entry = RegularFile(mode=mode & ~self.options.umask & 0o7777, mtime_ns=time.time_ns())
            self._place_new(loc, entry)
        else:
            if exclusive:
                raise oserror(errno.EEXIST, path)
            if isinstance(entry, Symlink):  # only reached with O_NOFOLLOW
                raise oserror(errno.ELOOP, path)
            if isinstance(entry, (Fifo, Device)):
                # A FIFO blocks until a peer opens it and a device is its driver's: the model has
                # neither a second process running at once nor drivers.
                raise UnsupportedCommandError(f"the model does not open FIFOs or device nodes ({path}); "
                                              "run it with BACKEND='real'")
            if flags & os.O_DIRECTORY and not isinstance(entry, Directory):
                raise oserror(errno.ENOTDIR, path)
            wants_write = access != os.O_RDONLY or bool(flags & os.O_TRUNC)
            if isinstance(entry, Directory):
                if wants_write or creating:
                    raise oserror(errno.EISDIR, path)  # do_open() / may_open(), before the mount's EROFS
            elif wants_write:
                self._checks.want_write(path)
                entry = self._copy_up(loc)
                if flags & os.O_TRUNC:
                    assert isinstance(entry, RegularFile)
                    entry.buffer().clear()
                    entry.mtime_ns = time.time_ns()
        assert isinstance(entry, (RegularFile, Directory))
        lower_key = None
        if loc.upper is None and loc.lower is not None and isinstance(entry, RegularFile):
            lower_key = (id(entry), loc.path)
        handle = OpenFile(entry, loc.path, readable=access != os.O_WRONLY, writable=access != os.O_RDONLY,
                          append=bool(flags & os.O_APPEND), lower_key=lower_key)
        return self._fds.add(handle)

    def read(self, fd: int, n: int) -> bytes:
        return self._fds.read(fd, n)

    def write(self, fd: int, data: bytes) -> int:
        return self._fds.write(fd, data)

    def close(self, fd: int) -> None:
        self._fds.close(fd)

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        loc = self._checks.create(path, "mkdir")
        parent = self._lookup.canonical(_paths.parent_of(loc.path))
        opts = self.options
        over_whiteout = isinstance(loc.upper, Whiteout)
        opaque = over_whiteout or (parent.merge_lower is not None and (opts.redirect_dir or opts.index))
        entry = Directory(mode=mode & ~opts.umask & 0o7777, mtime_ns=time.time_ns(), opaque=opaque)
        self._place_new(loc, entry)
        if opaque:
            self._emit(EventKind.OPAQUE, loc.path, None, "created over a whiteout" if over_whiteout else "new in a merged directory")

    def rmdir(self, path: str) -> None:
        loc = self._checks.remove(path, "rmdir")
        if self._children(loc):
            raise oserror(errno.ENOTEMPTY, path)
        self._remove(loc)

    def unlink(self, path: str) -> None:
        loc = self._checks.remove(path, "unlink")
        self._adjust_links(loc, -1)
        self._remove(loc)

    def symlink(self, target: str, path: str) -> None:
        self._checks.symlink_target(target)
        loc = self._checks.create(path, "symlink")
        self._place_new(loc, Symlink(target, mtime_ns=time.time_ns()))

    def mknod(self, path: str, mode: int = 0o600, device: int = 0) -> None:
        """mknod(2) as the container's root does it: ``mode`` holds the type (S_IFIFO, S_IFCHR,
        S_IFBLK, S_IFREG or 0 for a regular file) and permission bits (the umask applies);
        ``device`` is ``os.makedev(major, minor)`` for a device.  A character 0/0 is a plain
        device to the caller, but overlayfs refuses to create one (``ovl_mknod``: EPERM, it would
        be a whiteout) and so does the model.  Who may make a device (root, CAP_MKNOD) is the
        caller's check: this union models root."""
        kind = _stat.S_IFMT(mode) or _stat.S_IFREG
        if kind not in (_stat.S_IFIFO, _stat.S_IFCHR, _stat.S_IFBLK, _stat.S_IFREG, _stat.S_IFSOCK):
            raise oserror(errno.EINVAL, path)
        loc = self._checks.create(path, "mknod")
        perm = _stat.S_IMODE(mode) & ~self.options.umask & 0o7777
        now = time.time_ns()
        entry: Entry
        if kind == _stat.S_IFIFO:
            entry = Fifo(mode=perm, mtime_ns=now)
        elif kind == _stat.S_IFREG:
            entry = RegularFile(mode=perm, mtime_ns=now)
        elif kind == _stat.S_IFSOCK:
            raise UnsupportedCommandError("the model does not make sockets; run it with BACKEND='real'")
        else:
            major, minor = os.major(device), os.minor(device)
            if kind == _stat.S_IFCHR and major == 0 and minor == 0:
                raise oserror(errno.EPERM, path)
            entry = (CharDevice if kind == _stat.S_IFCHR else BlockDevice)(major, minor, mode=perm, mtime_ns=now)
        self._place_new(loc, entry)

    def link(self, src: str, dst: str, *, follow_symlinks: bool = True) -> None:
        source = self._checks.use(src, follow=follow_symlinks)
        loc = self._checks.create(dst, "link")
        if isinstance(source.obj, Directory):
            raise oserror(errno.EPERM, src)  # checked after the new name, as vfs_link does
        entry = self._copy_up(source)
        self._adjust_links(source, +1)
        self._place_new(loc, entry)

    def chmod(self, path: str, mode: int) -> None:
        loc = self._checks.use(path, write=True)
        entry = self._copy_up(loc)
        assert isinstance(entry, Owned)
        entry.mode = mode & 0o7777

    def chown(self, path: str, uid: int, gid: int) -> None:
        loc = self._checks.use(path, write=True)
        entry = self._copy_up(loc)
        assert isinstance(entry, Owned)
        if uid != -1:
            entry.uid = uid
        if gid != -1:
            entry.gid = gid

    def truncate(self, path: str, length: int) -> None:
        if length < 0:
            raise oserror(errno.EINVAL, path)  # do_sys_truncate(): before the path is even walked
        loc = self._checks.use(path)
        if isinstance(loc.obj, Directory):  # vfs_truncate(): the type before the mount's EROFS
            raise oserror(errno.EISDIR, path)
        if isinstance(loc.obj, (Fifo, Device)):
            raise oserror(errno.EINVAL, path)  # vfs_truncate(): only regular files
        self._checks.want_write(path)
        entry = self._copy_up(loc)
        assert isinstance(entry, RegularFile)
        buf = entry.buffer()
        if length < len(buf):
            del buf[length:]
        else:
            buf.extend(b"\0" * (length - len(buf)))
        entry.mtime_ns = time.time_ns()

    def utime(
        self,
        path: str,
        times: tuple[float, float] | None = None,
        *,
        ns: tuple[int, int] | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        if times is not None and ns is not None:
            raise ValueError("utime: you may specify either 'times' or 'ns' but not both")
        loc = self._checks.use(path, follow=follow_symlinks, write=True)
        if ns is not None:
            mtime = ns[1]
        elif times is not None:
            whole = math.floor(times[1])
            mtime = whole * 10**9 + int((times[1] - whole) * 1e9)
        else:
            mtime = time.time_ns()
        entry = self._copy_up(loc)
        assert isinstance(entry, Owned)
        entry.mtime_ns = mtime

    def rename(self, src: str, dst: str) -> None:
        pair = self._checks.rename(src, dst)
        s, d = pair.src, pair.dst
        # Two names of one file: POSIX says do nothing.  Lower hard links are one overlay inode only
        # with index=on (or once both names are in the upper layer); without it the kernel renames.
        one_file = d.obj is not None and d.obj is s.obj and (
            self.options.index or (s.upper is not None and d.upper is not None))
        if s.path == d.path or one_file:
            return
        is_dir = isinstance(s.obj, Directory)
        self._checks.rename_target(pair, dst)
        if is_dir and not s.pure_upper and not self.options.redirect_dir:
            raise oserror(errno.EXDEV, src)  # a directory with lower content cannot move without redirects
        if isinstance(d.obj, Directory) and self._children(d):
            raise oserror(errno.ENOTEMPTY, dst)

        src_parent, dst_parent = _paths.parent_of(s.path), _paths.parent_of(d.path)
        samedir = src_parent == dst_parent
        redirect: str | None = None
        if is_dir and not s.pure_upper:
            current = s.upper.redirect if isinstance(s.upper, Directory) else None
            if current and (samedir or current.startswith("/")):
                redirect = current
            elif samedir:
                redirect = _paths.basename(s.path)
            else:
                assert s.merge_lower is not None
                redirect = "/" + s.merge_lower
        entry = self._copy_up(s)
        self._copy_up(self._lookup.canonical(dst_parent))
        if is_dir:
            assert isinstance(entry, Directory)
            if redirect is not None:
                if entry.redirect != redirect:
                    entry.redirect = redirect
                    self._emit(EventKind.REDIRECT, d.path, None, f"redirect={redirect}")
            elif not entry.opaque and self._lookup.canonical(dst_parent).merge_lower is not None:
                entry.opaque = True  # moved into a merged directory: nothing below may show through
                self._emit(EventKind.OPAQUE, d.path, None, "moved into a merged directory")
        if d.obj is not None and not isinstance(d.obj, Directory):
            self._adjust_links(d, -1)  # the replaced file loses a name
        moved = [(p, self._upper[p]) for p in self._upper._subtree(s.path)]
        if d.upper is not None:
            self._upper._delete_tree(d.path)
        self._upper._delete_tree(s.path)
        for p, e in moved:
            self._upper._set(d.path + p[len(s.path):], e)
        self._emit(EventKind.RENAME, d.path, None, f"from /{s.path}")
        if s.lower is not None:
            self._copy_up_parents(s.path)
            self._upper._set(s.path, Whiteout())
            self._emit(EventKind.WHITEOUT, s.path, s.lower.layer, "old name of a rename")
        self._touch(src_parent)
        self._touch(dst_parent)

    # -- teaching helpers ----------------------------------------------------------

    def origin(self, path: str) -> str:
        """Where the object at ``path`` lives: ``"upper"`` or ``"layer N"`` (bottom first)."""
        loc = self._lookup.existing(path, follow=False)
        if loc.upper is not None:
            return "upper"
        assert loc.lower is not None
        return f"layer {loc.lower.layer}"

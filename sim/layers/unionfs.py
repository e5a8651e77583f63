"""A model of Linux overlayfs: read-only layers under one writable upper layer.

:class:`UnionFS` behaves like a kernel overlay mount with ``metacopy=off``
and ``xino=off`` and the given ``redirect_dir`` and ``index``: the same
objects appear, the same errno comes back, and the upper layer ends up
holding the same changes (copy-ups, whiteouts, opaque directories,
redirects).  ``tests/test_differential.py`` checks exactly that against the
kernel.

The process using it is modelled as root: permission bits are stored and
reported but never refuse an operation.
"""

from __future__ import annotations

import errno
import math
import os
import posixpath
import stat as _stat
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sim.errors import FrozenLayerError
from sim.interface import UnionMount, UnionOptions
from sim.layers import _paths
from sim.layers._lowerview import LowerNode, LowerView
from sim.layers.layer import Directory, Entry, Layer, RegularFile, Symlink, Whiteout
from sim.layers.trace import Event, EventKind

__all__ = ["UnionFS", "MAXSYMLINKS"]

#: Symlinks one path walk may follow before ``ELOOP`` (Linux ``MAXSYMLINKS``).
MAXSYMLINKS = 40
_LOOKUP_CACHE_SIZE = 1 << 16
#: ``st_size`` reported for directories (ext4's block; the kernel reports the real directory's).
DIR_SIZE = 4096


def _err(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


@dataclass(slots=True)
class _Loc:
    """One name of the union as a lookup finds it."""

    path: str
    upper: Entry | None  # what the upper layer holds at ``path`` (maybe a whiteout)
    lower: LowerNode | None  # the lower object at this name, visible through the parent
    merge_lower: str | None  # for directories: the lower directory merged below, if any
    alias: RegularFile | None = None  # index=on: the upper copy another name of this lower file made

    @property
    def obj(self) -> Entry | None:
        if self.upper is not None:
            return None if isinstance(self.upper, Whiteout) else self.upper
        if self.alias is not None:
            return self.alias
        return self.lower.entry if self.lower is not None else None

    @property
    def pure_upper(self) -> bool:
        """Only in the upper layer, nothing merged below (the kernel's "not merge or lower")."""
        return self.upper is not None and self.merge_lower is None


@dataclass(slots=True)
class _OpenFile:
    entry: RegularFile | Directory
    path: str
    readable: bool
    writable: bool
    append: bool
    pos: int = 0
    lower_key: tuple[int, str] | None = None  # set while the descriptor still reads a lower file


class UnionFS(UnionMount):
    """``layers`` bottom first; ``upper`` the writable layer (a new empty one when None).

    Contracts, each as the kernel gives them:

    * lookup: see :mod:`sim.layers._lowerview`; a whiteout in upper hides the name,
      an opaque upper directory hides everything below it;
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
    ) -> None:
        if upper is not None and upper.frozen:
            raise FrozenLayerError("the upper layer must be writable; pass Layer() or None")
        self.options = UnionOptions(redirect_dir=redirect_dir, index=index, umask=umask)
        self.layers = tuple(layers)
        self._lower = LowerView(self.layers)
        self._upper = upper if upper is not None else Layer()
        self._root = Directory(mtime_ns=time.time_ns())
        self._events: list[Event] = []
        self._fds: dict[int, _OpenFile] = {}
        self._copied: dict[tuple[int, str], RegularFile] = {}  # (id(lower file), path) -> its copy
        self._index: dict[int, RegularFile] = {}  # index=on: id(lower file) -> the one upper copy
        self._index_copies: dict[int, LowerNode] = {}  # index=on: id(upper copy) -> the lower file it copies
        self._union_links: dict[int, int] = {}  # index=on: id(lower file) -> its link count in the union
        self._inos: dict[int, int] = {}
        self._lookups: dict[tuple[str, bool], _Loc] = {}
        self._lookup_version = -1

    # -- UnionMount --------------------------------------------------------------

    @property
    def upper(self) -> Layer:
        return self._upper

    @property
    def events(self) -> Sequence[Event]:
        return tuple(self._events)

    def unmount(self) -> None:
        self._fds.clear()

    # -- lookup ------------------------------------------------------------------

    def _root_loc(self) -> _Loc:
        return _Loc("", self._root, self._lower.nodes[""], "")

    def _child(self, parent: _Loc, name: str) -> _Loc:
        path = _paths.join(parent.path, name)
        upper = self._upper.get(path)
        lower = lpath = None
        if parent.merge_lower is not None:
            lpath = _paths.join(parent.merge_lower, name)
            lower = self._lower.nodes.get(lpath)
        merge: str | None = None
        if isinstance(upper, Directory):
            if upper.opaque:
                merge = None
            elif upper.redirect:
                target = upper.redirect[1:] if upper.redirect.startswith("/") else (
                    _paths.join(parent.merge_lower, upper.redirect) if parent.merge_lower is not None else None
                )
                node = self._lower.nodes.get(target) if target is not None else None
                merge = target if node is not None and node.merged else None
            elif lower is not None and lower.merged:
                merge = lpath
        elif upper is None and lower is not None and lower.merged:
            merge = lpath
        alias = self._index.get(id(lower.entry)) if upper is None and lower is not None and self._index else None
        return _Loc(path, upper, lower, merge, alias)

    def _walk(self, path: str, *, follow: bool = True) -> _Loc:
        """:meth:`_walk_uncached` behind a cache that lives until the upper layer's names change.

        Like the kernel's dentry cache, it makes a repeated lookup one dictionary
        hit; lower layers never change, so only the upper layer can stale it.
        """
        version = self._upper._version
        if version != self._lookup_version or len(self._lookups) > _LOOKUP_CACHE_SIZE:
            self._lookups.clear()
            self._lookup_version = version
        key = (path, follow)
        loc = self._lookups.get(key)
        if loc is None:
            loc = self._lookups[key] = self._walk_uncached(path, follow=follow)
        return loc

    def _walk_uncached(self, path: str, *, follow: bool = True) -> _Loc:
        """Resolve ``path`` inside the union root, as the kernel walks it.

        Returns the final name's location even when nothing is there (so
        callers can create it); a missing or non-directory intermediate
        component raises ``ENOENT`` / ``ENOTDIR``; more than
        :data:`MAXSYMLINKS` links raise ``ELOOP``.  A trailing slash follows
        the final symlink and demands a directory.
        """
        pending = list(reversed(_paths.split_union_path(path)))
        must_be_dir = path.endswith("/")
        stack = [self._root_loc()]
        links = 0
        while pending:
            name = pending.pop()
            if name == ".":
                continue
            if name == "..":
                if len(stack) > 1:
                    stack.pop()
                continue
            loc = self._child(stack[-1], name)
            last = not pending
            obj = loc.obj
            if obj is None:
                if last:
                    return loc
                raise _err(errno.ENOENT, path)
            if isinstance(obj, Symlink) and (not last or follow or must_be_dir):
                links += 1
                if links > MAXSYMLINKS:
                    raise _err(errno.ELOOP, path)
                if obj.target.startswith("/"):
                    del stack[1:]
                # "a/" as a target demands a directory, as the trailing "/." of "a/." does.
                pending.extend(reversed(_paths.split_union_path(obj.target) + (["."] if obj.target.endswith("/") else [])))
                continue
            if last:
                if must_be_dir and not isinstance(obj, Directory):
                    raise _err(errno.ENOTDIR, path)
                return loc
            if not isinstance(obj, Directory):
                raise _err(errno.ENOTDIR, path)
            stack.append(loc)
        return stack[-1]

    def _existing(self, path: str, *, follow: bool = True) -> _Loc:
        loc = self._walk(path, follow=follow)
        if loc.obj is None:
            raise _err(errno.ENOENT, path)
        return loc

    def _name(self, path: str, op: str) -> _Loc:
        """The final name of ``path`` without following it, for calls that create or remove it.

        The parent walk comes first (its ENOENT, ENOTDIR, ELOOP win); a final
        ".", ".." or "/" then gets the errno Linux gives for ``op``.
        """
        parent, name = self._split(path)
        if name is None:
            raise _err(_paths.dot_errno(op, _paths.final_dot(path) or "/"), path)
        return self._child(parent, name)

    def _split(self, path: str) -> tuple[_Loc, str | None]:
        parts = _paths.split_union_path(path)
        if not parts:
            return self._root_loc(), None
        parent = self._walk("/" + "/".join(parts[:-1]))
        if parent.obj is None:
            raise _err(errno.ENOENT, path)
        if not isinstance(parent.obj, Directory):
            raise _err(errno.ENOTDIR, path)
        return parent, (None if parts[-1] in (".", "..") else parts[-1])

    def _canonical(self, path: str) -> _Loc:
        """The location of a canonical path (no symlinks on the way)."""
        loc = self._root_loc()
        for name in path.split("/") if path else ():  # canonical: no ".", "..", or symlinks
            loc = self._child(loc, name)
        return loc

    # -- copy-up and upper-layer changes ----------------------------------------

    def _emit(self, kind: EventKind, path: str, layer: int | None = None, detail: str = "") -> None:
        self._events.append(Event(kind, path, layer, detail))

    def _copy_up_parents(self, path: str) -> None:
        for parent in _paths.ancestors(path):
            if self._upper.get(parent) is None:
                loc = self._canonical(parent)
                assert loc.lower is not None, f"parent {parent!r} has no lower directory to copy up"
                self._upper._set(parent, loc.lower.entry.copy())
                self._emit(EventKind.COPY_UP, parent, loc.lower.layer, "parent directory")

    def _copy_up(self, loc: _Loc) -> Entry:
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

    def _prepare_create(self, loc: _Loc) -> str:
        parent = _paths.parent_of(loc.path)
        if parent:
            self._copy_up(self._canonical(parent))
        return parent

    def _place_new(self, loc: _Loc, entry: Entry) -> None:
        parent = self._prepare_create(loc)
        over_whiteout = isinstance(self._upper.get(loc.path), Whiteout)
        self._upper._set(loc.path, entry)
        self._emit(EventKind.CREATE, loc.path, None, entry.kind + (" over a whiteout" if over_whiteout else ""))
        self._touch(parent)

    def _remove(self, loc: _Loc) -> None:
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

    def _children(self, loc: _Loc, *, listing: bool = False) -> list[str]:
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

    def _is_merged(self, loc: _Loc) -> bool:
        if loc.upper is not None:
            return loc.merge_lower is not None
        return loc.lower is not None and len(loc.lower.merged) > 1

    # -- os-shaped API -------------------------------------------------------------

    def stat(self, path: str) -> os.stat_result:
        return self._stat(self._existing(path))

    def lstat(self, path: str) -> os.stat_result:
        return self._stat(self._existing(path, follow=False))

    def _ino(self, entry: Entry) -> int:
        return self._inos.setdefault(id(entry), len(self._inos) + 2)

    def _stat(self, loc: _Loc) -> os.stat_result:
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
        assert isinstance(entry, (Directory, Symlink, RegularFile))
        t = entry.mtime_ns
        return os.stat_result(
            (kind | entry.mode, self._ino(entry), 0, nlink, entry.uid, entry.gid, size,
             t // 10**9, t // 10**9, t // 10**9, t / 1e9, t / 1e9, t / 1e9, t, t, t)
        )

    def _hardlink_key(self, loc: _Loc) -> tuple[int, int] | None:
        """index=on: the lower hard-linked file whose union link count the kernel tracks."""
        if not self.options.index:
            return None
        entry = loc.obj
        source = self._index_copies.get(id(entry)) if entry is not None else None
        if source is None and loc.upper is None and loc.lower is not None and loc.lower.nlink > 1:
            source = loc.lower
        return (id(source.entry), source.nlink) if source is not None else None

    def _adjust_links(self, loc: _Loc, delta: int) -> None:
        # The kernel counts union links of an indexed lower file from its lower count (lower
        # whiteouts that existed before the mount are not subtracted), then tracks link/unlink.
        key = self._hardlink_key(loc)
        if key is not None:
            self._union_links[key[0]] = self._union_links.get(key[0], key[1]) + delta

    def listdir(self, path: str = "/") -> list[str]:
        loc = self._existing(path)
        if not isinstance(loc.obj, Directory):
            raise _err(errno.ENOTDIR, path)
        return self._children(loc, listing=True)

    def readlink(self, path: str) -> str:
        if _paths.final_dot(path) is not None:
            self._existing(path)
            raise _err(errno.EINVAL, path)
        loc = self._existing(path, follow=False)
        if not isinstance(loc.obj, Symlink):
            raise _err(errno.EINVAL, path)
        return loc.obj.target

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        access = flags & os.O_ACCMODE
        if access == os.O_ACCMODE:
            raise _err(errno.EINVAL, path)
        creating = bool(flags & os.O_CREAT)
        exclusive = creating and bool(flags & os.O_EXCL)
        if creating and path.endswith("/"):
            self._split(path)  # the parent walk's errors come first
            raise _err(errno.EISDIR, path)
        if creating and not (exclusive or flags & os.O_NOFOLLOW):
            # O_CREAT through a final symlink whose body ends in "/" is O_CREAT on "target/".
            try:
                body = self.readlink(path) if _stat.S_ISLNK(self.lstat(path).st_mode) else ""
            except OSError:
                body = ""
            if body.endswith("/"):
                target = body if body.startswith("/") else posixpath.join(posixpath.dirname(path), body)
                return self.open(target, flags, mode)
        loc = self._walk(path, follow=not (exclusive or flags & os.O_NOFOLLOW))
        entry = loc.obj
        if entry is None:
            if not creating:
                raise _err(errno.ENOENT, path)
            if path.endswith("/"):
                raise _err(errno.EISDIR, path)
            entry = RegularFile(mode=mode & ~self.options.umask & 0o7777, mtime_ns=time.time_ns())
            self._place_new(loc, entry)
        else:
            if exclusive:
                raise _err(errno.EEXIST, path)
            if isinstance(entry, Symlink):  # only reached with O_NOFOLLOW
                raise _err(errno.ELOOP, path)
            if flags & os.O_DIRECTORY and not isinstance(entry, Directory):
                raise _err(errno.ENOTDIR, path)
            wants_write = access != os.O_RDONLY or bool(flags & os.O_TRUNC)
            if isinstance(entry, Directory):
                if wants_write or creating:
                    raise _err(errno.EISDIR, path)
            elif wants_write:
                entry = self._copy_up(loc)
                if flags & os.O_TRUNC:
                    assert isinstance(entry, RegularFile)
                    entry.buffer().clear()
                    entry.mtime_ns = time.time_ns()
        assert isinstance(entry, (RegularFile, Directory))
        lower_key = None
        if loc.upper is None and loc.lower is not None and isinstance(entry, RegularFile):
            lower_key = (id(entry), loc.path)
        handle = _OpenFile(entry, loc.path, readable=access != os.O_WRONLY, writable=access != os.O_RDONLY,
                           append=bool(flags & os.O_APPEND), lower_key=lower_key)
        fd = 3
        while fd in self._fds:
            fd += 1
        self._fds[fd] = handle
        return fd

    def _handle(self, fd: int) -> _OpenFile:
        try:
            return self._fds[fd]
        except KeyError:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF)) from None

    def _current(self, handle: _OpenFile) -> RegularFile | Directory:
        # Since Linux 4.19 a descriptor opened before a copy-up reads the copy afterwards.
        if handle.lower_key is not None and handle.lower_key in self._copied:
            handle.entry = self._copied[handle.lower_key]
            handle.lower_key = None
        return handle.entry

    def read(self, fd: int, n: int) -> bytes:
        handle = self._handle(fd)
        if not handle.readable:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        entry = self._current(handle)
        if isinstance(entry, Directory):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
        if n < 0:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        chunk = bytes(entry._data[handle.pos:handle.pos + n])
        handle.pos += len(chunk)
        return chunk

    def write(self, fd: int, data: bytes) -> int:
        handle = self._handle(fd)
        if not handle.writable:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        entry = self._current(handle)
        assert isinstance(entry, RegularFile)
        buf = entry.buffer()
        if not data:
            return 0  # a zero-length write does not even move an O_APPEND offset
        if handle.append:
            handle.pos = len(buf)
        if handle.pos > len(buf):
            buf.extend(b"\0" * (handle.pos - len(buf)))
        buf[handle.pos:handle.pos + len(data)] = data
        handle.pos += len(data)
        entry.mtime_ns = time.time_ns()
        return len(data)

    def close(self, fd: int) -> None:
        self._handle(fd)
        del self._fds[fd]

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        loc = self._name(path, "mkdir")
        if loc.obj is not None or loc.path == "":
            raise _err(errno.EEXIST, path)
        parent = self._canonical(_paths.parent_of(loc.path))
        opts = self.options
        over_whiteout = isinstance(loc.upper, Whiteout)
        opaque = over_whiteout or (parent.merge_lower is not None and (opts.redirect_dir or opts.index))
        entry = Directory(mode=mode & ~opts.umask & 0o7777, mtime_ns=time.time_ns(), opaque=opaque)
        self._place_new(loc, entry)
        if opaque:
            self._emit(EventKind.OPAQUE, loc.path, None, "created over a whiteout" if over_whiteout else "new in a merged directory")

    def rmdir(self, path: str) -> None:
        loc = self._name(path, "rmdir")
        if loc.obj is None:
            raise _err(errno.ENOENT, path)
        if loc.path == "":
            raise _err(errno.EBUSY, path)
        if not isinstance(loc.obj, Directory):
            raise _err(errno.ENOTDIR, path)
        if self._children(loc):
            raise _err(errno.ENOTEMPTY, path)
        self._remove(loc)

    def unlink(self, path: str) -> None:
        loc = self._name(path, "unlink")
        if loc.obj is None:
            raise _err(errno.ENOENT, path)
        if isinstance(loc.obj, Directory):
            raise _err(errno.EISDIR, path)
        if path.endswith("/"):
            raise _err(errno.ENOTDIR, path)
        self._adjust_links(loc, -1)
        self._remove(loc)

    def symlink(self, target: str, path: str) -> None:
        loc = self._name(path, "symlink")
        if loc.obj is not None:
            raise _err(errno.EEXIST, path)
        if path.endswith("/"):
            raise _err(errno.ENOENT, path)  # a trailing slash asks for a directory, not a link
        if not target:
            raise _err(errno.ENOENT, target)
        self._place_new(loc, Symlink(target, mtime_ns=time.time_ns()))

    def link(self, src: str, dst: str, *, follow_symlinks: bool = True) -> None:
        source = self._existing(src, follow=follow_symlinks)
        loc = self._name(dst, "link")
        if loc.obj is not None:
            raise _err(errno.EEXIST, dst)
        if dst.endswith("/"):
            raise _err(errno.ENOENT, dst)
        if isinstance(source.obj, Directory):
            raise _err(errno.EPERM, src)  # checked after the new name, as vfs_link does
        entry = self._copy_up(source)
        self._adjust_links(source, +1)
        self._place_new(loc, entry)

    def chmod(self, path: str, mode: int) -> None:
        loc = self._existing(path)
        entry = self._copy_up(loc)
        assert isinstance(entry, (RegularFile, Directory))
        entry.mode = mode & 0o7777

    def chown(self, path: str, uid: int, gid: int) -> None:
        loc = self._existing(path)
        entry = self._copy_up(loc)
        assert isinstance(entry, (RegularFile, Directory, Symlink))
        if uid != -1:
            entry.uid = uid
        if gid != -1:
            entry.gid = gid

    def truncate(self, path: str, length: int) -> None:
        loc = self._existing(path)
        if isinstance(loc.obj, Directory):
            raise _err(errno.EISDIR, path)
        if length < 0:
            raise _err(errno.EINVAL, path)
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
        loc = self._existing(path, follow=follow_symlinks)
        if ns is not None:
            mtime = ns[1]
        elif times is not None:
            whole = math.floor(times[1])
            mtime = whole * 10**9 + int((times[1] - whole) * 1e9)
        else:
            mtime = time.time_ns()
        entry = self._copy_up(loc)
        assert isinstance(entry, (RegularFile, Directory, Symlink))
        entry.mtime_ns = mtime

    def rename(self, src: str, dst: str) -> None:
        src_parent_loc, src_name = self._split(src)
        dst_parent_loc, dst_name = self._split(dst)
        if src_name is None or dst_name is None:
            raise _err(errno.EBUSY, src if src_name is None else dst)
        s = self._child(src_parent_loc, src_name)
        if s.obj is None:
            raise _err(errno.ENOENT, src)
        d = self._child(dst_parent_loc, dst_name)
        if not isinstance(s.obj, Directory) and (src.endswith("/") or dst.endswith("/")):
            raise _err(errno.ENOTDIR, src)
        if s.path == "" or d.path == "":
            raise _err(errno.EBUSY, src if s.path == "" else dst)
        if s.path == d.path or (d.obj is not None and d.obj is s.obj):
            return  # same name or two names of one file: POSIX says do nothing
        is_dir = isinstance(s.obj, Directory)
        if d.path.startswith(s.path + "/"):
            raise _err(errno.EINVAL, src)
        if s.path.startswith(d.path + "/"):
            raise _err(errno.ENOTEMPTY, dst)
        if d.obj is not None:
            if is_dir and not isinstance(d.obj, Directory):
                raise _err(errno.ENOTDIR, dst)
            if not is_dir and isinstance(d.obj, Directory):
                raise _err(errno.EISDIR, dst)
        if is_dir and not s.pure_upper and not self.options.redirect_dir:
            raise _err(errno.EXDEV, src)  # a directory with lower content cannot move without redirects
        if isinstance(d.obj, Directory) and self._children(d):
            raise _err(errno.ENOTEMPTY, dst)

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
        self._copy_up(self._canonical(dst_parent))
        if is_dir:
            assert isinstance(entry, Directory)
            if redirect is not None:
                if entry.redirect != redirect:
                    entry.redirect = redirect
                    self._emit(EventKind.REDIRECT, d.path, None, f"redirect={redirect}")
            elif not entry.opaque and self._canonical(dst_parent).merge_lower is not None:
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
        loc = self._existing(path, follow=False)
        if loc.upper is not None:
            return "upper"
        assert loc.lower is not None
        return f"layer {loc.lower.layer}"

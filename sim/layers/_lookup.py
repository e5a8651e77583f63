"""Path lookup in the union: how a walk over the upper layer and the merged lower view
resolves a name, as the kernel's ``lookup`` and path walk do.

A :class:`Loc` is what a lookup finds at one name (the upper entry, the lower
object, the lower directory merged below); :class:`Lookup` walks paths to
them, following symlinks inside the union root, behind a cache that lives
until the upper layer's names change.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sim.layers import _paths
from sim.layers._lowerview import LowerNode, LowerView
from sim.layers.layer import Directory, Entry, Layer, RegularFile, Symlink, Whiteout

__all__ = ["MAXSYMLINKS", "NAME_MAX", "PATH_MAX", "Loc", "Lookup", "check_path", "oserror"]

#: Symlinks one path walk may follow before ``ELOOP`` (Linux ``MAXSYMLINKS``).
MAXSYMLINKS = 40
#: Bytes of one name (``ovl_lookup()`` refuses longer with ``ENAMETOOLONG``; ext4's and tmpfs's limit).
NAME_MAX = 255
#: Bytes of a path with its NUL (``getname()`` refuses longer with ``ENAMETOOLONG``).
PATH_MAX = 4096
_LOOKUP_CACHE_SIZE = 1 << 16


_STRERROR = {code: os.strerror(code) for code in errno.errorcode}


def oserror(code: int, path: str) -> OSError:
    """The ``OSError`` Linux's ``code`` gives for ``path``."""
    return OSError(code, _STRERROR.get(code) or os.strerror(code), path)


def check_path(path: str | bytes) -> None:
    """``getname()``: ``ENAMETOOLONG`` for a path of ``PATH_MAX`` bytes or more (the NUL counts)."""
    # A str of fewer than PATH_MAX // 4 characters cannot reach PATH_MAX bytes: no encoding for most paths.
    if len(path) >= PATH_MAX // 4 and len(path if isinstance(path, bytes) else os.fsencode(path)) >= PATH_MAX:
        raise oserror(errno.ENAMETOOLONG, os.fsdecode(path))


def name_too_long(name: str) -> bool:
    """Whether one path component is over ``NAME_MAX`` bytes (``ovl_lookup()``'s first check)."""
    return len(name) > NAME_MAX // 4 and len(os.fsencode(name)) > NAME_MAX


@dataclass(slots=True)
class Loc:
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


class Lookup:
    """Walks of one union's paths over its ``upper`` layer, ``lower`` view and ``root``.

    ``index`` is the union's index=on table (id of a lower file -> the one
    upper copy of it); the union fills it as it copies up, and a lookup of
    another name of that lower file finds the copy.
    """

    def __init__(self, upper: Layer, lower: LowerView, root: Directory, index: Mapping[int, RegularFile]) -> None:
        self._upper = upper
        self._lower = lower
        self._root = root
        self._index = index
        self._lookups: dict[tuple[str, bool], Loc] = {}
        self._lookup_version = -1
        # stat results of objects only lower layers hold, by path, for follow=True and False: a
        # frozen lower entry never changes, so only a change of the upper layer's names stales them.
        # None: no object there (ENOENT), decided by the lower view and the upper names alone.
        self._stats: tuple[dict[str, os.stat_result | None], dict[str, os.stat_result | None]] = ({}, {})

    def root_loc(self) -> Loc:
        return Loc("", self._root, self._lower.nodes[""], "")

    def child(self, parent: Loc, name: str) -> Loc:
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
        return Loc(path, upper, lower, merge, alias)

    def walk(self, path: str, *, follow: bool = True) -> Loc:
        """:meth:`walk_uncached` behind a cache that lives until the upper layer's names change.

        Like the kernel's dentry cache, it makes a repeated lookup one dictionary
        hit; lower layers never change, so only the upper layer can stale it.
        """
        version = self._upper._version
        if version != self._lookup_version or len(self._lookups) > _LOOKUP_CACHE_SIZE:
            self._lookups.clear()
            self._stats[0].clear()
            self._stats[1].clear()
            self._lookup_version = version
        key = (path, follow)
        loc = self._lookups.get(key)
        if loc is None:
            loc = self._lookups[key] = self.walk_uncached(path, follow=follow)
        return loc

    def stat(self, path: str, follow: bool, make: Callable[[Loc], os.stat_result]) -> os.stat_result:
        """``make(loc)`` for the existing object at ``path`` (``ENOENT`` when there is none),
        remembered while the upper layer's names stay the same when only lower layers hold the
        object (an upper one changes in place: chmod, write ...), or when nothing is there.  The result is the one
        :meth:`walk_uncached` and ``make`` give: the cache only skips recomputing it."""
        stats = self._stats[follow]
        if self._upper._version == self._lookup_version and path in stats:
            hit = stats[path]
            if hit is None:
                raise oserror(errno.ENOENT, path)
            return hit
        loc = self.walk(path, follow=follow)
        if loc.obj is None:
            stats[path] = None
            raise oserror(errno.ENOENT, path)
        result = make(loc)
        if loc.upper is None and loc.alias is None:
            stats[path] = result
        return result

    def walk_uncached(self, path: str, *, follow: bool = True) -> Loc:
        """Resolve ``path`` inside the union root, as the kernel walks it.

        Returns the final name's location even when nothing is there (so
        callers can create it); a missing or non-directory intermediate
        component raises ``ENOENT`` / ``ENOTDIR``; more than
        :data:`MAXSYMLINKS` links raise ``ELOOP``.  A trailing slash follows
        the final symlink and demands a directory.
        """
        check_path(path)
        pending = list(reversed(_paths.split_union_path(path)))
        must_be_dir = path.endswith("/")
        stack = [self.root_loc()]
        links = 0
        while pending:
            name = pending.pop()
            if name == ".":
                continue
            if name == "..":
                if len(stack) > 1:
                    stack.pop()
                continue
            if name_too_long(name):
                raise oserror(errno.ENAMETOOLONG, path)
            loc = self.child(stack[-1], name)
            last = not pending
            obj = loc.obj
            if obj is None:
                if last:
                    return loc
                raise oserror(errno.ENOENT, path)
            if isinstance(obj, Symlink) and (not last or follow or must_be_dir):
                links += 1
                if links > MAXSYMLINKS:
                    raise oserror(errno.ELOOP, path)
                check_path(obj.target)  # a link body is read as a path too (its own PATH_MAX)
                if obj.target.startswith("/"):
                    del stack[1:]
                # "a/" as a target demands a directory, as the trailing "/." of "a/." does.
                pending.extend(reversed(_paths.split_union_path(obj.target) + (["."] if obj.target.endswith("/") else [])))
                continue
            if last:
                if must_be_dir and not isinstance(obj, Directory):
                    raise oserror(errno.ENOTDIR, path)
                return loc
            if not isinstance(obj, Directory):
                raise oserror(errno.ENOTDIR, path)
            stack.append(loc)
        return stack[-1]

    def existing(self, path: str, *, follow: bool = True) -> Loc:
        loc = self.walk(path, follow=follow)
        if loc.obj is None:
            raise oserror(errno.ENOENT, path)
        return loc

    def child_checked(self, parent: Loc, name: str, path: str) -> Loc:
        """:meth:`child` after the lookup's own check: ``ENAMETOOLONG`` for a name over ``NAME_MAX``."""
        if name_too_long(name):
            raise oserror(errno.ENAMETOOLONG, path)
        return self.child(parent, name)

    def split(self, path: str) -> tuple[Loc, str | None]:
        """The parent of ``path``'s final name, walked (``getname()`` and the walk's errors),
        and that name (None for ".", ".." and the root)."""
        check_path(path)
        parts = _paths.split_union_path(path)
        if not parts:
            return self.root_loc(), None
        parent = self.walk("/" + "/".join(parts[:-1]))
        if parent.obj is None:
            raise oserror(errno.ENOENT, path)
        if not isinstance(parent.obj, Directory):
            raise oserror(errno.ENOTDIR, path)
        return parent, (None if parts[-1] in (".", "..") else parts[-1])

    def canonical(self, path: str) -> Loc:
        """The location of a canonical path (no symlinks on the way)."""
        loc = self.root_loc()
        for name in path.split("/") if path else ():  # canonical: no ".", "..", or symlinks
            loc = self.child(loc, name)
        return loc

"""The order of a call's checks: one pipeline that every operation of the union model runs.

When one call could fail for several reasons, Linux reports the first check that fails, and
the checks run in a fixed order (``fs/namei.c``, ``fs/open.c``, ``fs/overlayfs/``).  The model
follows the same order, stage by stage, for every call:

1. **the path string**, ``getname()``: ``ENAMETOOLONG`` for a path of ``PATH_MAX`` (4096) bytes
   or more, ``ENOENT`` for ``""``.  The syscall reads every path argument first, but
   ``do_linkat()`` and ``do_renameat2()`` report a name's error only when they use that name
   (``filename_lookup()`` of an ``ERR_PTR``): the old name's walk errors come before the new
   name's ``ENAMETOOLONG``.  ``do_symlinkat()`` checks its target's first.
2. **the walk**, ``link_path_walk()``, one intermediate component after another:
   ``may_lookup()`` (``EACCES`` without search permission: never here, the model is root), then
   the lookup, ``lookup_fast()``/``lookup_slow()`` -> ``ovl_lookup()``: ``ENAMETOOLONG`` for a
   name over ``NAME_MAX`` (255 bytes), a negative dentry (a whiteout is one) ``ENOENT``; then
   ``pick_link()``: ``ELOOP`` past ``MAXSYMLINKS``; then ``d_can_lookup()``: ``ENOTDIR``.  So every
   check of one name comes after every check of the names before it, whatever the checks are.
   Calls that act on the object itself (stat, chmod, open without ``O_CREAT`` ...) walk the final
   name the same way (``lookup_last()``).
3. **the final name's type** (``LAST_DOT``, ``LAST_DOTDOT``, ``LAST_ROOT``), before any lookup of
   it: ``filename_create()`` (mkdir, mknod, symlink, link's new name) ``EEXIST``; ``do_rmdir()``
   ``EINVAL``/``ENOTEMPTY``/``EBUSY``; ``do_unlinkat()`` ``EISDIR``; ``do_renameat2()`` ``EBUSY``
   (the source's first); ``open_last_lookups()`` hands them to ``handle_dots()``: the directory
   itself, so ``O_CREAT|O_EXCL`` is ``EEXIST`` and ``O_CREAT`` ``EISDIR`` (``do_open()``).
4. **the mount**, ``mnt_want_write()``: ``EROFS`` on a read-only mount.  ``do_rmdir()``,
   ``do_unlinkat()`` and ``do_renameat2()`` take it *before* the final lookup, so ``EROFS`` beats
   ``ENOENT`` there; ``filename_create()`` takes it first but reports it only after ``EEXIST``
   and the trailing-slash ``ENOENT`` ("at least try to report other errors"): mkdir of an
   existing name on a read-only mount is ``EEXIST``; ``lookup_open()`` reports it only when it
   would create; chmod, chown and utimes take it after the whole walk, ``vfs_truncate()``
   after its type checks (``EISDIR``, ``EINVAL``).
5. **the final lookup**, ``lookup_one_qstr_excl()``: ``ENAMETOOLONG``, then existence: ``EEXIST``
   for a new name, ``ENOENT`` for a name to remove or rename; then the trailing slash:
   ``ENOENT`` for a new non-directory, ``ENOTDIR``/``EISDIR`` for unlink, ``ENOTDIR`` for a
   renamed non-directory (``O_CREAT`` on ``name/`` is ``EISDIR`` before the lookup).
6. **permission and type**, ``may_create()``/``may_delete()``: ``EACCES``/``EPERM`` (never for
   root), then ``may_delete()``'s type checks: ``ENOTDIR`` (rmdir of a non-directory, a directory
   renamed over one), ``EISDIR`` (unlink of a directory, a non-directory renamed over one),
   ``EBUSY`` (the root).
7. **the file system's own answer**: ``vfs_link()`` ``EPERM`` for a directory; ``ovl_rename()``
   ``EXDEV`` (``ovl_can_move()``) before ``ENOTEMPTY`` (``ovl_check_empty_dir()``);
   ``ovl_rmdir()`` ``ENOTEMPTY``.

Some calls check an argument that is not a path before everything: ``do_sys_truncate()``
refuses a negative length (``EINVAL``) before the walk, ``open()`` an ``O_ACCMODE`` of 3.

:class:`Checks` runs stages 1-6 for the four kinds of call (acting on an object, creating a
name, removing one, renaming); each operation of :class:`~sim.layers.unionfs.UnionFS` starts
with one of them and adds only its stage 7.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from sim.layers import _paths
from sim.layers._lookup import Loc, Lookup, check_path, oserror
from sim.layers.layer import Directory

__all__ = ["Checks", "RenamePair"]


@dataclass(frozen=True, slots=True)
class RenamePair:
    """Both ends of a rename after stages 1-6: the source (it exists) and the target (maybe not)."""

    src: Loc
    dst: Loc


class Checks:
    """Stages 1-6 of the module docstring over one union's ``lookup``; ``read_only`` stands for
    the mount's ``MS_RDONLY`` (``mnt_want_write()`` fails with ``EROFS``)."""

    def __init__(self, lookup: Lookup, *, read_only: bool = False) -> None:
        self._lookup = lookup
        self.read_only = read_only

    def want_write(self, path: str) -> None:
        """``mnt_want_write()``: ``EROFS`` on a read-only mount; the caller picks the stage."""
        if self.read_only:
            raise oserror(errno.EROFS, path)

    def use(self, path: str, *, follow: bool = True, write: bool = False) -> Loc:
        """An existing object a call acts on (stat, chmod, truncate, utime, link's source ...):
        stages 1-2 over every name, ``ENOENT`` when nothing is there, then ``EROFS`` for a
        call that writes."""
        loc = self._lookup.walk(path, follow=follow)
        if loc.obj is None:
            raise oserror(errno.ENOENT, path)
        if write:
            self.want_write(path)
        return loc

    def create(self, path: str, op: str) -> Loc:
        """A new name (mkdir, mknod, symlink, link's new name), as ``filename_create()``: the
        parent walk, a final ".", ".." or "/" (``EEXIST``), the final lookup (``ENAMETOOLONG``),
        ``EEXIST``, a trailing slash on a new non-directory (``ENOENT``), then ``EROFS``."""
        parent, name = self._lookup.split(path)
        if name is None:
            raise oserror(_paths.dot_errno(op, _paths.final_dot(path) or "/"), path)
        loc = self._lookup.child_checked(parent, name, path)
        if loc.obj is not None:
            raise oserror(errno.EEXIST, path)
        if path.endswith("/") and op != "mkdir":
            raise oserror(errno.ENOENT, path)  # "you had / on the end, you've been asking for a directory"
        self.want_write(path)
        return loc

    def open_create(self, path: str, *, exclusive: bool) -> Loc:
        """``open(O_CREAT)`` up to the final lookup, as ``open_last_lookups()``: the parent walk,
        a final ".", "..", "/" (the directory itself: ``EEXIST`` with ``O_EXCL``, else
        ``EISDIR``), a trailing slash (``EISDIR``), ``ENAMETOOLONG``; returns the final name's
        location unfollowed (the caller follows a symlink there and reports ``EEXIST`` and
        ``EROFS`` as ``lookup_open()`` and ``do_open()`` do)."""
        parent, name = self._lookup.split(path)
        if name is None:
            raise oserror(errno.EEXIST if exclusive else errno.EISDIR, path)
        if path.endswith("/"):
            raise oserror(errno.EISDIR, path)
        return self._lookup.child_checked(parent, name, path)

    def remove(self, path: str, op: str) -> Loc:
        """A name to remove (unlink, rmdir), as ``do_unlinkat()``/``do_rmdir()``: the parent
        walk, a final ".", ".." or "/", ``EROFS``, the final lookup (``ENAMETOOLONG``),
        ``ENOENT``, then ``may_delete()``'s types: rmdir ``ENOTDIR``; unlink ``EISDIR``, then
        ``ENOTDIR`` for a trailing slash on a non-directory."""
        parent, name = self._lookup.split(path)
        if name is None:
            raise oserror(_paths.dot_errno(op, _paths.final_dot(path) or "/"), path)
        self.want_write(path)
        loc = self._lookup.child_checked(parent, name, path)
        if loc.obj is None:
            raise oserror(errno.ENOENT, path)
        is_dir = isinstance(loc.obj, Directory)
        if op == "rmdir":
            if not is_dir:
                raise oserror(errno.ENOTDIR, path)
        elif is_dir:
            raise oserror(errno.EISDIR, path)
        elif path.endswith("/"):
            raise oserror(errno.ENOTDIR, path)
        return loc

    def rename(self, src: str, dst: str) -> RenamePair:
        """Both names of a rename, as ``do_renameat2()`` then ``vfs_rename()``'s ``may_delete()``:
        both parent walks (the source's first), ``EBUSY`` for a final ".", ".." or "/" (the
        source's first), ``EROFS``, the source's lookup (``ENAMETOOLONG``, ``ENOENT``), the
        target's lookup (``ENAMETOOLONG``), ``ENOTDIR`` for a trailing slash on a non-directory,
        ``EINVAL`` (into itself), ``ENOTEMPTY`` (over an ancestor).  Two names of one object are
        returned as they are: the caller decides whether that is a no-op, then calls
        :meth:`rename_target`."""
        src_parent, src_name = self._lookup.split(src)
        dst_parent, dst_name = self._lookup.split(dst)
        if src_name is None or dst_name is None:
            raise oserror(errno.EBUSY, src if src_name is None else dst)
        self.want_write(src)
        s = self._lookup.child_checked(src_parent, src_name, src)
        if s.obj is None:
            raise oserror(errno.ENOENT, src)
        d = self._lookup.child_checked(dst_parent, dst_name, dst)
        if not isinstance(s.obj, Directory) and (src.endswith("/") or dst.endswith("/")):
            raise oserror(errno.ENOTDIR, src)
        if d.path.startswith(s.path + "/"):
            raise oserror(errno.EINVAL, src)
        if s.path.startswith(d.path + "/"):
            raise oserror(errno.ENOTEMPTY, dst)
        return RenamePair(s, d)

    @staticmethod
    def rename_target(pair: RenamePair, dst: str) -> None:
        """``vfs_rename()``'s ``may_delete()`` of an existing target, after the same-object
        no-op: a directory over a non-directory ``ENOTDIR``, the reverse ``EISDIR``."""
        if pair.dst.obj is None:
            return
        src_dir, dst_dir = isinstance(pair.src.obj, Directory), isinstance(pair.dst.obj, Directory)
        if src_dir and not dst_dir:
            raise oserror(errno.ENOTDIR, dst)
        if dst_dir and not src_dir:
            raise oserror(errno.EISDIR, dst)

    @staticmethod
    def symlink_target(target: str) -> None:
        """symlink's first argument is read by ``getname()`` before the new name is walked."""
        if not target:
            raise oserror(errno.ENOENT, target)
        check_path(target)

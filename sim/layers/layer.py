"""The layer: an immutable changeset once frozen.

A :class:`Layer` maps layer paths (``"etc/passwd"``, no leading slash) to
entries: :class:`RegularFile`, :class:`Directory`, :class:`Symlink`,
:class:`Whiteout` and the special files :class:`Fifo`, :class:`CharDevice`
and :class:`BlockDevice` (as OCI layer tars carry them: tar types 6, 3 and 4
with their device numbers).  Sockets have no tar type and are never part of
a layer (read from a directory they are skipped, as Docker's archiver does).  Hard links are two paths holding the *same*
``RegularFile`` object, exactly as two directory entries share one inode.

A layer has three interchangeable forms:

* in memory (this module; the entries are in :mod:`sim.layers._entries`);
* overlay directory form: whiteouts are char 0/0 devices, opaque directories
  carry ``trusted.overlay.opaque=y`` (``user.overlay.opaque`` unprivileged):
  :meth:`Layer.from_directory` / :meth:`Layer.to_directory`;
* OCI tar form: whiteouts are ``.wh.<name>`` files and ``.wh..wh..opq`` marks an
  opaque directory: :meth:`Layer.from_tar` / :meth:`Layer.to_tar`.

Building is explicit (``add_file``, ``add_dir`` ...); :meth:`Layer.freeze`
makes the layer and every entry in it immutable, after which any mutation
raises :class:`~sim.errors.FrozenLayerError`.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator, Mapping
from typing import IO, Any

from sim.digest import Digest
from sim.errors import FrozenLayerError, LayerFormatError, UnsafeLayerError
from sim.layers import _paths
from sim.layers._entries import (
    BlockDevice,
    CharDevice,
    Device,
    Directory,
    Entry,
    Fifo,
    Owned,
    RegularFile,
    Symlink,
    Whiteout,
    check_xattrs,
    source_date_epoch,
)
from sim.layers._forms import FORMS, Compression

__all__ = ["Entry", "RegularFile", "Directory", "Symlink", "Whiteout", "Fifo", "Device", "CharDevice", "BlockDevice",
           "Layer", "source_date_epoch"]


class Layer:
    """An ordered changeset of entries; see the module docstring for its forms.

    Contract of the builder methods: paths are cleaned with
    :func:`sim.layers._paths.clean_layer_path` (absolute or ``..`` raise
    :class:`UnsafeLayerError`); missing parents are created as *implied*
    directories (0755, root, mtime 0); an entry below a symlink raises
    :class:`UnsafeLayerError` and below a file or whiteout
    :class:`LayerFormatError`; adding a path that exists raises
    :class:`LayerFormatError` unless it replaces an implied directory with a
    directory; names starting with ``.wh.`` and xattrs outside the Linux
    namespaces or of the ``*.overlay.*`` markers raise
    :class:`LayerFormatError`.  A refused call changes nothing.  A frozen
    layer raises :class:`FrozenLayerError` on any change.
    """

    __slots__ = ("_entries", "_kids", "_names", "_frozen", "_diff_ids", "_version")

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._kids: dict[str, set[str]] = {}  # parent path -> child names, kept in step with _entries
        self._names: dict[int, int] = {}  # id(file) -> how many paths hold it (its st_nlink)
        self._frozen = False
        self._diff_ids: dict[int | None, str] = {}
        self._version = 0  # bumped on every change of the name table (for lookup caches)

    def _count(self, entry: Entry | None, delta: int) -> None:
        if isinstance(entry, (RegularFile, Symlink)):  # link(2) without following can share a symlink too
            left = self._names.get(id(entry), 0) + delta
            if left:
                self._names[id(entry)] = left
            else:
                del self._names[id(entry)]

    def _insert(self, path: str, entry: Entry) -> None:
        old = self._entries.get(path)
        if old is None:
            self._kids.setdefault(_paths.parent_of(path), set()).add(_paths.basename(path))
        self._count(old, -1)
        self._count(entry, +1)
        self._entries[path] = entry
        self._version += 1
        self._diff_ids.clear()

    def _remove(self, path: str) -> None:
        self._count(self._entries[path], -1)
        del self._entries[path]
        self._version += 1
        parent = _paths.parent_of(path)
        kids = self._kids[parent]
        kids.discard(_paths.basename(path))
        if not kids:
            del self._kids[parent]
        self._diff_ids.clear()

    def __getstate__(self) -> dict[str, Any]:
        # ``_names`` is keyed by id(), which means nothing in another process: rebuilt on load.
        return {"_entries": self._entries, "_kids": self._kids, "_frozen": self._frozen, "_diff_ids": self._diff_ids}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)
        self._version = 0  # a fresh object: no union's lookup cache has seen it
        self._names = {}
        for entry in self._entries.values():
            self._count(entry, +1)

    # -- reading -----------------------------------------------------------------

    @property
    def frozen(self) -> bool:
        return self._frozen

    def __getitem__(self, path: str) -> Entry:
        return self._entries[path]

    def get(self, path: str) -> Entry | None:
        return self._entries.get(path)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths())

    def paths(self) -> list[str]:
        """Every path, parents before children."""
        return sorted(self._entries, key=_paths.sort_key)

    def items(self) -> list[tuple[str, Entry]]:
        return [(p, self._entries[p]) for p in self.paths()]

    def link_groups(self) -> list[list[str]]:
        """Sets of paths sharing one file (hard links), each sorted, only groups of 2+."""
        by_id: dict[int, list[str]] = {}
        for path, entry in self._entries.items():
            if isinstance(entry, RegularFile):
                by_id.setdefault(id(entry), []).append(path)
        return sorted(sorted(g, key=_paths.sort_key) for g in by_id.values() if len(g) > 1)

    def nlink(self, path: str) -> int:
        """Names of the file at ``path`` in this layer (what ``st_nlink`` counts on disk)."""
        entry = self._entries[path] if path else None
        if entry is None or isinstance(entry, Directory):
            return 2 + sum(isinstance(self._entries[_paths.join(path, n)], Directory) for n in self._kids.get(path, ()))
        return self._names.get(id(entry), 1)

    @property
    def size(self) -> int:
        """Bytes of file content, each hard-linked file counted once (``docker history`` SIZE)."""
        seen: dict[int, int] = {}
        for entry in self._entries.values():
            if isinstance(entry, RegularFile):
                seen[id(entry)] = entry.size
        return sum(seen.values())

    def has_redirects(self) -> bool:
        return any(isinstance(e, Directory) and e.redirect for e in self._entries.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Layer):
            return NotImplemented
        return self._entries == other._entries and self.link_groups() == other.link_groups()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        state = "frozen" if self._frozen else "writable"
        return f"<Layer {state}, {len(self._entries)} entries, {self.size} bytes>"

    # -- building ----------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._frozen:
            raise FrozenLayerError("this layer is frozen; build a new Layer instead")

    def freeze(self) -> Layer:
        """Make this layer and its entries immutable; returns ``self`` for chaining."""
        if not self._frozen:
            for entry in self._entries.values():
                entry._freeze()
            self._frozen = True
        return self

    def _place(self, path: str, entry: Entry) -> None:
        """Insert ``entry`` at a cleaned ``path`` after checking parents and conflicts.

        Every check runs before the first change, so a refused entry leaves a
        writable layer exactly as it was (no stray implied parents).
        """
        self._check_writable()
        if not path:
            raise LayerFormatError("the layer root itself cannot be replaced")
        existing = self._entries.get(path)
        replaces_implied = isinstance(existing, Directory) and existing.implied and isinstance(entry, Directory)
        if existing is not None and not replaces_implied:
            raise LayerFormatError(f"duplicate entry {path!r} in one layer")
        missing = self._check_parents(path)
        if isinstance(entry, Whiteout) and path in self._kids:
            raise LayerFormatError(f"{path!r} is both deleted and populated in one layer")
        if isinstance(entry, Owned):
            check_xattrs(path, entry.xattrs)
        if replaces_implied:
            assert isinstance(existing, Directory) and isinstance(entry, Directory)
            entry.opaque = entry.opaque or existing.opaque
        for parent in missing:
            self._insert(parent, Directory(implied=True))
        self._insert(path, entry)

    def _check_parents(self, path: str) -> list[str]:
        """The ancestors of ``path`` still to be created; raises if one cannot hold children."""
        ancestors = _paths.ancestors(path)
        for i, parent in enumerate(ancestors):
            above = self._entries.get(parent)
            if above is None:
                return ancestors[i:]  # a missing directory has no descendants either
            if isinstance(above, Symlink):
                raise UnsafeLayerError(f"{path!r} lies below the symlink {parent!r} of the same layer")
            if isinstance(above, Whiteout):
                raise LayerFormatError(f"{path!r} lies below {parent!r}, which this layer deletes (a file and its whiteout)")
            if not isinstance(above, Directory):
                raise LayerFormatError(f"{path!r} lies below {parent!r}, which is not a directory")
        return []

    @staticmethod
    def _user_path(path: str, what: str = "entry") -> str:
        cleaned = _paths.clean_layer_path(path, what=what)
        if _paths.basename(cleaned).startswith(_paths.WHITEOUT_PREFIX):
            raise LayerFormatError(
                f"{path!r}: names starting with '.wh.' are reserved for whiteouts and cannot be stored in an OCI layer"
            )
        return cleaned

    def add_file(
        self,
        path: str,
        data: bytes = b"",
        *,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime_ns: int = 0,
        xattrs: Mapping[str, bytes] | None = None,
    ) -> RegularFile:
        entry = RegularFile(data, mode=mode, uid=uid, gid=gid, mtime_ns=mtime_ns, xattrs=xattrs)
        self._place(self._user_path(path), entry)
        return entry

    def add_dir(
        self,
        path: str,
        *,
        mode: int = 0o755,
        uid: int = 0,
        gid: int = 0,
        mtime_ns: int = 0,
        xattrs: Mapping[str, bytes] | None = None,
        opaque: bool = False,
    ) -> Directory:
        entry = Directory(mode=mode, uid=uid, gid=gid, mtime_ns=mtime_ns, xattrs=xattrs, opaque=opaque)
        path = self._user_path(path)
        if opaque and any(isinstance(e, Whiteout) and p.startswith(path + "/") for p, e in self._entries.items()):
            raise LayerFormatError(f"opaque directory {path!r} would hold whiteouts")
        self._place(path, entry)
        return entry

    def add_symlink(self, path: str, target: str, *, uid: int = 0, gid: int = 0, mtime_ns: int = 0) -> Symlink:
        entry = Symlink(target, uid=uid, gid=gid, mtime_ns=mtime_ns)
        self._place(self._user_path(path), entry)
        return entry

    def add_fifo(
        self,
        path: str,
        *,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime_ns: int = 0,
        xattrs: Mapping[str, bytes] | None = None,
    ) -> Fifo:
        """A named pipe at ``path`` (what ``mkfifo`` leaves in a container layer)."""
        entry = Fifo(mode=mode, uid=uid, gid=gid, mtime_ns=mtime_ns, xattrs=xattrs)
        self._place(self._user_path(path), entry)
        return entry

    def add_device(
        self,
        path: str,
        major: int,
        minor: int,
        *,
        block: bool = False,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime_ns: int = 0,
        xattrs: Mapping[str, bytes] | None = None,
    ) -> Device:
        """A character device (a :class:`BlockDevice` with ``block``) ``major:minor`` at ``path``.

        A character 0/0 raises :class:`LayerFormatError`: it is the overlay
        whiteout marker (use :meth:`add_whiteout`).
        """
        kind = BlockDevice if block else CharDevice
        entry = kind(major, minor, mode=mode, uid=uid, gid=gid, mtime_ns=mtime_ns, xattrs=xattrs)
        self._place(self._user_path(path), entry)
        return entry

    def add_hardlink(self, path: str, target: str) -> RegularFile:
        """A second name for the regular file at ``target`` in this same layer."""
        target = _paths.clean_layer_path(target, what="hardlink target")
        entry = self._entries.get(target)
        if entry is None:
            raise LayerFormatError(f"hardlink {path!r} points to {target!r}, which this layer does not contain")
        if not isinstance(entry, RegularFile):
            raise LayerFormatError(f"hardlink {path!r} points to {target!r}, a {entry.kind}; only regular files can be hard-linked")
        self._place(self._user_path(path), entry)
        return entry

    def add_whiteout(self, path: str) -> Whiteout:
        """Delete ``path`` of the layers below."""
        path = self._user_path(path, what="whiteout")  # a ".wh.x" name cannot exist below, so cannot be deleted
        for parent in _paths.ancestors(path):
            above = self._entries.get(parent)
            if isinstance(above, Directory) and above.opaque:
                raise LayerFormatError(f"whiteout {path!r} inside opaque directory {parent!r} (it already hides everything)")
        entry = Whiteout()
        self._place(path, entry)
        return entry

    # -- raw access for the union file system (no format checks: it keeps its own invariants)

    def _set(self, path: str, entry: Entry) -> None:
        self._check_writable()
        self._insert(path, entry)

    def _delete(self, path: str) -> None:
        self._check_writable()
        self._remove(path)

    def _subtree(self, path: str) -> list[str]:
        """``path`` and everything below it, parents first."""
        out = [path] if path in self._entries else []
        i = 0
        while i < len(out):
            for name in self._kids.get(out[i], ()):
                out.append(_paths.join(out[i], name))
            i += 1
        return out

    def _delete_tree(self, path: str) -> None:
        self._check_writable()
        for p in reversed(self._subtree(path)):
            self._remove(p)

    def children(self, path: str) -> list[str]:
        """Names directly inside ``path`` in this layer (``""`` is the root), sorted."""
        return sorted(self._kids.get(path, ()))

    # -- forms -------------------------------------------------------------------

    @classmethod
    def from_tar(cls, fileobj: IO[bytes]) -> Layer:
        """Read an OCI layer tar (plain or gzip); returns a frozen layer.

        Hostile or malformed archives raise a :class:`LayerFormatError`
        subclass naming the entry; nothing is written anywhere.
        """
        layer = Layer()
        FORMS.tar.read(fileobj, layer)
        return layer.freeze()

    def to_tar(self, fileobj: IO[bytes], *, compression: Compression = None, source_date_epoch: int | None = None) -> None:
        """Write the OCI tar form: sorted entries, PAX headers, no user/group names.

        ``source_date_epoch`` (default: the ``SOURCE_DATE_EPOCH`` variable)
        clamps every mtime, so equal layers give equal bytes.
        """
        FORMS.tar.write(self, fileobj, compression=compression, source_date_epoch=_resolve_sde(source_date_epoch))

    def tar_bytes(self, *, compression: Compression = None, source_date_epoch: int | None = None) -> bytes:
        buf = io.BytesIO()
        self.to_tar(buf, compression=compression, source_date_epoch=source_date_epoch)
        return buf.getvalue()

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str]) -> Layer:
        """Read an overlay directory form (a layer folder or an upperdir); returns a frozen layer.

        Opaque and redirect markers are read from ``trusted.overlay.*`` and
        ``user.overlay.*``; other ``*.overlay.*`` attributes (origin, impure,
        nlink) are private to the kernel and dropped.
        """
        layer = Layer()
        FORMS.directory.read(os.fspath(path), layer)
        return layer.freeze()

    def to_directory(self, path: str | os.PathLike[str], *, userxattr: bool = False,
                     rootless: bool | None = None) -> None:
        """Write the overlay directory form into an empty or missing folder.

        ``userxattr`` writes ``user.overlay.*`` markers, the form an
        unprivileged mount with ``-o userxattr`` reads.  ``rootless``
        (default: the same as ``userxattr``) is for a writer in a user
        namespace, where mknod(2) of a device always fails with EPERM: each
        :class:`Device` is then written as an *empty regular file* with the
        device's mode, owner and mtime (what containers/storage does rootless),
        so reading the folder back gives a :class:`RegularFile` there.  FIFOs
        are made in both modes (a user namespace may mkfifo).
        """
        FORMS.directory.write(self, os.fspath(path), userxattr=userxattr,
                              rootless=userxattr if rootless is None else rootless)

    @property
    def content_id(self) -> Digest:
        """sha256 of the tar with every mtime kept exactly (no ``SOURCE_DATE_EPOCH`` clamp):
        equal content IDs mean the overlay directory forms are equal too."""
        cached = self._diff_ids.get(_NO_CLAMP)
        if cached is None:
            cached = "sha256:" + hashlib.sha256(self.tar_bytes(source_date_epoch=_NO_CLAMP)).hexdigest()
            if self._frozen:
                self._diff_ids[_NO_CLAMP] = cached
        return Digest(cached)

    @property
    def diff_id(self) -> Digest:
        """sha256 of the uncompressed OCI tar, honouring ``SOURCE_DATE_EPOCH``."""
        sde = source_date_epoch()
        cached = self._diff_ids.get(sde)
        if cached is None:
            cached = "sha256:" + hashlib.sha256(self.tar_bytes(source_date_epoch=sde)).hexdigest()
            if self._frozen:  # a writable layer's entries change under us; only frozen ones cache
                self._diff_ids[sde] = cached
        return Digest(cached)


_NO_CLAMP = 1 << 40  # seconds: later than any nanosecond mtime an int64 holds, so nothing is clamped


def _resolve_sde(explicit: int | None) -> int | None:
    return explicit if explicit is not None else source_date_epoch()

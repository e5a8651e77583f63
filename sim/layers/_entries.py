"""The entries of a layer: regular files, directories, symlinks, whiteouts and special files
(FIFOs, character and block devices).

Each entry is mutable while its layer is being built; freezing the layer freezes
every entry in it (``entry.mode = ...`` then raises
:class:`~sim.errors.FrozenLayerError`).  Hard links are two paths holding the
*same* :class:`RegularFile` object, as two directory entries share one inode.
The public place of these names is :mod:`sim.layers.layer`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sim.errors import FrozenLayerError, LayerFormatError

__all__ = ["Entry", "Owned", "RegularFile", "Directory", "Symlink", "Whiteout", "Fifo", "Device", "CharDevice",
           "BlockDevice", "SPECIAL", "MAX_MAJOR", "MAX_MINOR", "check_xattrs", "source_date_epoch"]


def source_date_epoch() -> int | None:
    """``SOURCE_DATE_EPOCH`` from the environment, or ``None`` when unset or empty."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not value:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise LayerFormatError(f"SOURCE_DATE_EPOCH must be an integer, got {value!r}") from exc


class Entry:
    """One object in a layer.  Mutable while its layer is being built."""

    __slots__ = ("_frozen",)
    _frozen: bool
    kind: str = "?"

    def __init__(self) -> None:
        object.__setattr__(self, "_frozen", False)

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise FrozenLayerError(f"{type(self).__name__} belongs to a frozen layer")
        object.__setattr__(self, name, value)

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    def __setstate__(self, state: Any) -> None:
        # Pickling (the rootless helper sends layers back) must bypass the frozen guard.
        slots = state[1] if isinstance(state, tuple) else state
        for key, value in (slots or {}).items():
            object.__setattr__(self, key, value)

    def _value(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Entry)
        return self._value() == other._value()

    def __hash__(self) -> int:  # entries are compared by value but live in identity-keyed tables
        return id(self)

    def copy(self) -> Entry:
        """A new, mutable entry with the same value (what copy-up makes)."""
        raise NotImplementedError


class Owned(Entry):
    """An entry with the usual inode metadata."""

    __slots__ = ("mode", "uid", "gid", "mtime_ns", "xattrs")
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    xattrs: dict[str, bytes]

    def __init__(self, mode: int, uid: int, gid: int, mtime_ns: int, xattrs: Mapping[str, bytes] | None) -> None:
        super().__init__()
        if not 0 <= mode <= 0o7777:
            raise LayerFormatError(f"mode {mode:#o} is not a permission mode (0..0o7777)")
        if uid < 0 or gid < 0:
            raise LayerFormatError(f"uid/gid must be non-negative, got {uid}/{gid}")
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.mtime_ns = mtime_ns
        self.xattrs = dict(xattrs or {})

    def _meta(self) -> tuple[Any, ...]:
        return (self.mode, self.uid, self.gid, self.mtime_ns, tuple(sorted(self.xattrs.items())))

    def _freeze(self) -> None:
        super()._freeze()
        # A frozen entry hands out a read-only view so ``entry.xattrs[k] = v`` fails too.
        object.__setattr__(self, "xattrs", _FrozenDict(self.xattrs))


class _FrozenDict(dict[str, bytes]):
    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise FrozenLayerError("xattrs of a frozen entry cannot change")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FrozenDict, (dict(self),))

    def __ior__(self, other: Any) -> _FrozenDict:  # type: ignore[override,misc]
        # ``entry.xattrs |= {...}`` mutates in place *before* the attribute assignment
        # that Entry.__setattr__ would refuse, so the in-place operator must refuse itself.
        self._refuse()
        return self

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]


#: Namespaces Linux accepts for extended attributes; any other name fails in setxattr(2).
_XATTR_NAMESPACES = ("user.", "trusted.", "security.", "system.")
#: Markers the kernel reads from the overlay form.  A layer carries them as
#: ``Directory.opaque`` / ``redirect`` and whiteout entries, never as plain
#: xattrs: a tar that smuggled ``trusted.overlay.opaque`` or ``...redirect``
#: would change what the union shows without any whiteout rule being applied.
_OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
#: XATTR_NAME_MAX and XATTR_SIZE_MAX of Linux.
_XATTR_NAME_MAX = 255
_XATTR_SIZE_MAX = 65536


def check_xattrs(path: str, xattrs: Mapping[str, bytes]) -> None:
    """Refuse xattrs that the overlay form could not hold or that would forge overlay markers."""
    for key, value in xattrs.items():
        if key.startswith(_OVERLAY_XATTR_PREFIXES):
            raise LayerFormatError(
                f"{path!r}: xattr {key!r} is an overlay marker; use Directory.opaque or a whiteout entry instead"
            )
        namespace = next((ns for ns in _XATTR_NAMESPACES if key.startswith(ns)), None)
        if namespace is None or key == namespace or "\x00" in key or len(key.encode("utf-8", "surrogateescape")) > _XATTR_NAME_MAX:
            raise LayerFormatError(f"{path!r}: {key!r} is not a Linux xattr name (user.*, trusted.*, security.*, system.*)")
        if len(value) > _XATTR_SIZE_MAX:
            raise LayerFormatError(f"{path!r}: xattr {key!r} holds {len(value)} bytes; Linux allows {_XATTR_SIZE_MAX}")


class RegularFile(Owned):
    """A regular file: bytes plus metadata.  Two paths holding one object are hard links."""

    __slots__ = ("_data",)
    kind = "file"

    def __init__(
        self,
        data: bytes = b"",
        *,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime_ns: int = 0,
        xattrs: Mapping[str, bytes] | None = None,
    ) -> None:
        super().__init__(mode, uid, gid, mtime_ns, xattrs)
        self._data: bytes | bytearray = bytes(data)

    @property
    def data(self) -> bytes:
        return bytes(self._data) if isinstance(self._data, bytearray) else self._data

    @data.setter
    def data(self, value: bytes) -> None:
        self._data = bytes(value)

    @property
    def size(self) -> int:
        return len(self._data)

    def buffer(self) -> bytearray:
        """The mutable content, for in-place writes by the union file system."""
        if self._frozen:
            raise FrozenLayerError("a frozen file's content cannot change")
        if not isinstance(self._data, bytearray):
            self._data = bytearray(self._data)
        return self._data

    def _freeze(self) -> None:
        object.__setattr__(self, "_data", self.data)
        super()._freeze()

    def _value(self) -> tuple[Any, ...]:
        return (self.data, *self._meta())

    def copy(self) -> RegularFile:
        # Immutable bytes are shared, so copying up a large file is O(1) until it is written.
        return RegularFile(self.data, mode=self.mode, uid=self.uid, gid=self.gid, mtime_ns=self.mtime_ns, xattrs=self.xattrs)

    def __repr__(self) -> str:
        return f"RegularFile({self.size} bytes, mode={self.mode:#o}, uid={self.uid}, gid={self.gid})"


class Directory(Owned):
    """A directory.  ``opaque`` hides every lower entry below it; ``redirect`` names
    the lower directory a renamed directory merges with (overlay form only).
    ``implied`` directories were not in the source archive (their parents were
    created "moby style", 0755 root): equality ignores the flag."""

    __slots__ = ("opaque", "redirect", "implied")
    kind = "dir"

    def __init__(
        self,
        *,
        mode: int = 0o755,
        uid: int = 0,
        gid: int = 0,
        mtime_ns: int = 0,
        xattrs: Mapping[str, bytes] | None = None,
        opaque: bool = False,
        redirect: str | None = None,
        implied: bool = False,
    ) -> None:
        super().__init__(mode, uid, gid, mtime_ns, xattrs)
        self.opaque = opaque
        self.redirect = redirect
        self.implied = implied

    def _value(self) -> tuple[Any, ...]:
        return (self.opaque, self.redirect, *self._meta())

    def copy(self) -> Directory:
        return Directory(mode=self.mode, uid=self.uid, gid=self.gid, mtime_ns=self.mtime_ns, xattrs=self.xattrs)

    def __repr__(self) -> str:
        flags = "".join([" opaque" if self.opaque else "", f" redirect={self.redirect!r}" if self.redirect else ""])
        return f"Directory(mode={self.mode:#o}{flags})"


class Symlink(Owned):
    """A symbolic link; its target is stored verbatim and resolved inside the union root."""

    __slots__ = ("target",)
    kind = "symlink"

    def __init__(self, target: str, *, uid: int = 0, gid: int = 0, mtime_ns: int = 0) -> None:
        super().__init__(0o777, uid, gid, mtime_ns, None)
        if not target or "\x00" in target:
            raise LayerFormatError(f"symlink target {target!r} is empty or contains NUL")
        self.target = target

    def _value(self) -> tuple[Any, ...]:
        return (self.target, *self._meta())

    def copy(self) -> Symlink:
        return Symlink(self.target, uid=self.uid, gid=self.gid, mtime_ns=self.mtime_ns)

    def __repr__(self) -> str:
        return f"Symlink({self.target!r})"


class Whiteout(Entry):
    """The name is deleted: it hides whatever lower layers have at this path."""

    __slots__ = ()
    kind = "whiteout"

    def _value(self) -> tuple[Any, ...]:
        return ()

    def copy(self) -> Whiteout:
        return Whiteout()

    def __repr__(self) -> str:
        return "Whiteout()"


class Fifo(Owned):
    """A named pipe (``mkfifo``): metadata only, no content (tar type ``6``)."""

    __slots__ = ()
    kind = "fifo"

    def __init__(
        self,
        *,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime_ns: int = 0,
        xattrs: Mapping[str, bytes] | None = None,
    ) -> None:
        super().__init__(mode, uid, gid, mtime_ns, xattrs)

    def _value(self) -> tuple[Any, ...]:
        return self._meta()

    def copy(self) -> Fifo:
        return Fifo(mode=self.mode, uid=self.uid, gid=self.gid, mtime_ns=self.mtime_ns, xattrs=self.xattrs)

    def __repr__(self) -> str:
        return f"Fifo(mode={self.mode:#o}, uid={self.uid}, gid={self.gid})"


#: Linux's dev_t split (MINORBITS 20; majors take the 12 bits above): what mknod(2) accepts.
MAX_MAJOR = (1 << 12) - 1
MAX_MINOR = (1 << 20) - 1


class Device(Owned):
    """A device node: a major and minor number plus metadata, no content.

    The concrete kinds are :class:`CharDevice` (tar type ``3``) and
    :class:`BlockDevice` (tar type ``4``).  Numbers outside Linux's dev_t
    (major 0..4095, minor 0..1048575) raise :class:`LayerFormatError`.
    """

    __slots__ = ("major", "minor")
    major: int
    minor: int

    def __init__(
        self,
        major: int,
        minor: int,
        *,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime_ns: int = 0,
        xattrs: Mapping[str, bytes] | None = None,
    ) -> None:
        super().__init__(mode, uid, gid, mtime_ns, xattrs)
        if not (0 <= major <= MAX_MAJOR and 0 <= minor <= MAX_MINOR):
            raise LayerFormatError(
                f"device {major}:{minor} is outside Linux's dev_t (major 0..{MAX_MAJOR}, minor 0..{MAX_MINOR})"
            )
        self.major = major
        self.minor = minor

    @property
    def rdev(self) -> int:
        """The number as ``st_rdev`` holds it (``os.makedev``)."""
        return os.makedev(self.major, self.minor)

    def _value(self) -> tuple[Any, ...]:
        return (self.major, self.minor, *self._meta())

    def copy(self) -> Device:
        return type(self)(self.major, self.minor, mode=self.mode, uid=self.uid, gid=self.gid,
                          mtime_ns=self.mtime_ns, xattrs=self.xattrs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.major}, {self.minor}, mode={self.mode:#o})"


class CharDevice(Device):
    """A character device.  0/0 is refused: in the overlay form it *is* the whiteout
    marker, so such a node could never come back from an upper directory as a device."""

    __slots__ = ()
    kind = "chardev"

    def __init__(
        self,
        major: int,
        minor: int,
        *,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime_ns: int = 0,
        xattrs: Mapping[str, bytes] | None = None,
    ) -> None:
        if major == 0 and minor == 0:
            raise LayerFormatError("a character device 0/0 is overlayfs's whiteout marker; use a Whiteout entry")
        super().__init__(major, minor, mode=mode, uid=uid, gid=gid, mtime_ns=mtime_ns, xattrs=xattrs)


class BlockDevice(Device):
    """A block device (any number, 0/0 included: only a *character* 0/0 is a whiteout)."""

    __slots__ = ()
    kind = "blockdev"


#: Entries that are an inode with metadata but no content: what ``mknod`` makes.
SPECIAL = (Fifo, CharDevice, BlockDevice)

"""The OCI tar form of a layer: ``.wh.`` whiteouts and ``.wh..wh..opq`` opaque markers.

Writing is done block by block rather than with ``tarfile.TarFile`` because
TarFile pads archives to 10 KiB records: the OCI empty layer is exactly two
zero blocks (1024 bytes) and its DiffID is a test vector.

Reading uses ``tarfile`` only to parse headers.  Every rule about what may
appear in a layer is ours (PEP 706's extraction filters reject absolute
symlinks and other things OCI layers legitimately hold).
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
from typing import IO, Any, Literal

from sim.errors import LayerFormatError, UnsupportedEntryError
from sim.layers import _paths
from sim.layers._changeset import Changeset
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
)

__all__ = ["Compression", "read", "write"]

Compression = Literal["gzip"] | None

_BLOCK = 512
_XATTR = "SCHILY.xattr."
#: A PAX ``mtime``: optional sign, seconds, optional fraction (POSIX allows no exponent).
_PAX_TIME = re.compile(r"(-?)([0-9]+)(?:\.([0-9]*))?")


def _mtime_fields(mtime_ns: int, sde: int | None) -> tuple[int, str | None]:
    """Whole seconds for the ustar field and, if there is a fraction, the exact PAX value."""
    if sde is not None:
        mtime_ns = min(mtime_ns, sde * 1_000_000_000)
    # Sign and magnitude apart: divmod floors, so -4.5 s would otherwise print as "-5.5".
    sign = "-" if mtime_ns < 0 else ""
    whole, frac = divmod(abs(mtime_ns), 1_000_000_000)
    seconds = -whole if sign else whole
    return seconds, (f"{sign}{whole}.{frac:09d}".rstrip("0") if frac else None)


def _header(name: str, entry: Entry | None, sde: int | None, **fields: object) -> bytes:
    info = tarfile.TarInfo(name)
    info.uname = info.gname = ""
    pax: dict[str, str] = {}
    if entry is not None and not isinstance(entry, Whiteout):
        assert isinstance(entry, Owned)
        info.mode, info.uid, info.gid = entry.mode, entry.uid, entry.gid
        info.mtime, exact = _mtime_fields(entry.mtime_ns, sde)
        if exact:
            pax["mtime"] = exact
        for key in sorted(entry.xattrs):
            pax[_XATTR + key] = entry.xattrs[key].decode("utf-8", "surrogateescape")
    else:  # whiteouts and markers: fixed metadata so equal layers give equal bytes
        info.mode, info.mtime = 0o600, 0
    for key, value in fields.items():
        setattr(info, key, value)
    info.pax_headers = pax
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _pad(size: int) -> bytes:
    return b"\0" * (-size % _BLOCK)


def _check_expressible(layer: Changeset) -> None:
    """Refuse, before writing a byte, a layer the OCI tar form would silently change."""
    if layer.has_redirects():
        raise LayerFormatError(
            "this layer holds overlay redirects (renamed directories); an OCI tar cannot express them. "
            "Diff the merged tree against the lower layers instead (UnionFS.tree_diff), as Docker's naive differ does"
        )
    for path, entry in layer.items():
        if isinstance(entry, Directory) and entry.implied:
            continue  # never written as an entry of its own, so its name cannot be misread
        if _paths.basename(path).startswith(_paths.WHITEOUT_PREFIX):
            # A file a container created as ".wh.x" would come back from the tar as a whiteout of "x".
            raise LayerFormatError(
                f"{path!r}: a name starting with '.wh.' cannot be stored in an OCI tar; readers would take it for a whiteout"
            )


def write(layer: Changeset, fileobj: IO[bytes], *, compression: Compression, source_date_epoch: int | None) -> None:
    _check_expressible(layer)
    if compression == "gzip":
        # mtime=0 and no file name keep the gzip header reproducible too.
        with gzip.GzipFile(fileobj=fileobj, mode="wb", mtime=0, filename="") as gz:
            _write_plain(layer, gz, source_date_epoch)  # type: ignore[arg-type]
        return
    if compression is not None:
        raise LayerFormatError(f"unknown compression {compression!r} (use None or 'gzip')")
    _write_plain(layer, fileobj, source_date_epoch)


def _write_plain(layer: Changeset, out: IO[bytes], sde: int | None) -> None:
    first_name: dict[int, str] = {}
    for path, entry in layer.items():
        parent, name = _paths.parent_of(path), _paths.basename(path)
        if isinstance(entry, Directory):
            if not entry.implied:
                out.write(_header(path + "/", entry, sde, type=tarfile.DIRTYPE))
            if entry.opaque:
                out.write(_header(_paths.join(path, _paths.OPAQUE_MARKER), None, sde, type=tarfile.REGTYPE))
        elif isinstance(entry, Whiteout):
            out.write(_header(_paths.join(parent, _paths.WHITEOUT_PREFIX + name), None, sde, type=tarfile.REGTYPE))
        elif isinstance(entry, Symlink):
            out.write(_header(path, entry, sde, type=tarfile.SYMTYPE, linkname=entry.target))
        elif isinstance(entry, Fifo):
            out.write(_header(path, entry, sde, type=tarfile.FIFOTYPE))
        elif isinstance(entry, Device):
            kind = tarfile.BLKTYPE if isinstance(entry, BlockDevice) else tarfile.CHRTYPE
            out.write(_header(path, entry, sde, type=kind, devmajor=entry.major, devminor=entry.minor))
        elif isinstance(entry, RegularFile):
            if id(entry) in first_name:
                out.write(_header(path, entry, sde, type=tarfile.LNKTYPE, linkname=first_name[id(entry)]))
                continue
            first_name[id(entry)] = path
            data = entry.data
            out.write(_header(path, entry, sde, type=tarfile.REGTYPE, size=len(data)))
            out.write(data)
            out.write(_pad(len(data)))
    out.write(b"\0" * (2 * _BLOCK))


def _open(fileobj: IO[bytes]) -> tuple[tarfile.TarFile, bytes]:
    """The archive and its uncompressed bytes."""
    raw = fileobj.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise LayerFormatError(f"corrupt gzip stream: {exc}") from exc
    try:
        return tarfile.open(fileobj=io.BytesIO(raw), mode="r:"), raw
    except tarfile.TarError as exc:
        raise LayerFormatError(f"not a tar archive: {exc}") from exc


def _mtime_ns(info: tarfile.TarInfo) -> int:
    exact = info.pax_headers.get("mtime")
    if exact is None:
        return int(info.mtime) * 1_000_000_000
    match = _PAX_TIME.fullmatch(exact)
    if match is None:
        raise LayerFormatError(f"{info.name!r}: PAX mtime {exact!r} is not a decimal number of seconds")
    sign, whole, frac = match.groups()
    magnitude = int(whole) * 1_000_000_000 + int(((frac or "") + "000000000")[:9])
    return -magnitude if sign else magnitude


def _check_end(raw: bytes, offset: int) -> None:
    """After the last member must come a zero block.

    ``tarfile`` ends the member list silently at a corrupt or cut-off header
    past the first one; a layer read that way would quietly lose entries.
    """
    if raw[offset:offset + _BLOCK] != b"\0" * _BLOCK:
        what = "is truncated" if len(raw) < offset + _BLOCK else "has a corrupt header"
        raise LayerFormatError(f"tar archive {what} at byte {offset} (no end-of-archive marker)")


def _xattrs(info: tarfile.TarInfo) -> dict[str, bytes]:
    return {
        key[len(_XATTR):]: value.encode("utf-8", "surrogateescape")
        for key, value in info.pax_headers.items()
        if key.startswith(_XATTR)
    }


def read(fileobj: IO[bytes], layer: Changeset) -> None:
    """Fill the empty ``layer`` from an OCI layer tar (plain or gzip); the caller freezes it."""
    whiteouts: list[str] = []
    opaque: list[str] = []
    seen: set[str] = set()
    archive, raw = _open(fileobj)
    with archive:
        try:
            members = archive.getmembers()
        except tarfile.TarError as exc:
            raise LayerFormatError(f"corrupt tar archive: {exc}") from exc
        _check_end(raw, archive.offset)
        for info in members:
            raw_name = info.name
            path = _paths.clean_layer_path(raw_name)
            if not path:
                if info.isdir():
                    continue  # "./": the layer root's own metadata is not part of the model (docs/layers.md)
                raise LayerFormatError(f"entry {raw_name!r} has an empty name")
            if path in seen:
                raise LayerFormatError(f"duplicate entry {path!r} in one layer")
            seen.add(path)
            if raw_name.endswith("/") and not info.isdir():
                raise LayerFormatError(f"{raw_name!r} ends in '/' but is a {_kind(info)}")
            name = _paths.basename(path)
            if name.startswith(_paths.WHITEOUT_PREFIX):
                if not info.isreg():
                    raise LayerFormatError(f"{raw_name!r}: a whiteout must be a regular file, not a {_kind(info)}")
                parent = _paths.parent_of(path)
                if name == _paths.OPAQUE_MARKER:
                    opaque.append(parent)
                elif name.startswith(_paths.WHITEOUT_PREFIX * 2):
                    raise UnsupportedEntryError(f"{raw_name!r}: aufs metadata entries are not OCI whiteouts")
                else:
                    victim = name[len(_paths.WHITEOUT_PREFIX):]
                    if victim in ("", ".", ".."):
                        raise LayerFormatError(f"{raw_name!r} is not a valid whiteout: it names {victim or 'nothing'!r}")
                    whiteouts.append(_paths.join(parent, victim))
                continue
            meta: dict[str, Any] = dict(uid=info.uid, gid=info.gid, mtime_ns=_mtime_ns(info))
            if info.isdir():
                layer._place(path, Directory(mode=info.mode & 0o7777, xattrs=_xattrs(info), **meta))
            elif info.issym():
                layer._place(path, Symlink(info.linkname, **meta))
            elif info.islnk():
                target = _paths.clean_layer_path(info.linkname, what="hardlink target")
                entry = layer.get(target)
                if not isinstance(entry, RegularFile):
                    what = "is missing" if entry is None else f"is a {entry.kind}"
                    raise LayerFormatError(f"hardlink {raw_name!r} -> {info.linkname!r}: the target {what} in this layer")
                layer._place(path, entry)
            elif info.isreg() and info.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
                data = archive.extractfile(info)
                assert data is not None
                content = data.read()
                if len(content) != info.size:
                    raise LayerFormatError(f"{raw_name!r}: archive is truncated")
                layer._place(path, RegularFile(content, mode=info.mode & 0o7777, xattrs=_xattrs(info), **meta))
            elif info.isfifo():
                layer._place(path, Fifo(mode=info.mode & 0o7777, xattrs=_xattrs(info), **meta))
            elif info.ischr() or info.isblk():
                if info.ischr() and info.devmajor == 0 and info.devminor == 0:
                    # The overlay form's whiteout: written to a layer folder it would delete the
                    # name below instead of being a device, so it is not taken as one.
                    raise UnsupportedEntryError(f"{raw_name!r}: a character device 0/0 is overlayfs's whiteout "
                                                "marker; an OCI tar deletes with '.wh.' files")
                kind = CharDevice if info.ischr() else BlockDevice
                layer._place(path, kind(info.devmajor, info.devminor, mode=info.mode & 0o7777,
                                        xattrs=_xattrs(info), **meta))
            else:
                raise UnsupportedEntryError(f"{raw_name!r}: {_kind(info)} entries are not represented by the model")
    for parent in opaque:
        entry = layer.get(parent)
        if not parent:
            # containerd empties the lower layers' root; overlay ignores an opaque root (Docker's
            # overlay2 keeps everything): the model does not pick a side.
            raise UnsupportedEntryError("an opaque marker at the layer root is not represented by the model; extractors disagree")
        if entry is None:
            layer._place(parent, Directory(opaque=True, implied=True))
        elif isinstance(entry, Directory):
            entry.opaque = True
        else:
            raise LayerFormatError(f"opaque marker inside {parent!r}, which is a {entry.kind}")
    for path in whiteouts:
        if path in layer:
            raise LayerFormatError(f"{path!r} and its whiteout are in the same layer; extractors disagree on the result")
        if _inside_opaque(layer, path):
            continue  # redundant: the opaque directory already hides everything below it
        layer._place(path, Whiteout())


def _inside_opaque(layer: Changeset, path: str) -> bool:
    return any(isinstance(entry := layer.get(a), Directory) and entry.opaque for a in _paths.ancestors(path))


def _kind(info: tarfile.TarInfo) -> str:
    return {
        tarfile.CHRTYPE: "character device",
        tarfile.BLKTYPE: "block device",
        tarfile.FIFOTYPE: "FIFO",
        tarfile.CONTTYPE: "contiguous file",
        tarfile.DIRTYPE: "directory",
        tarfile.SYMTYPE: "symlink",
        tarfile.LNKTYPE: "hardlink",
    }.get(info.type, "sparse or unknown-type" if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) else "regular file")

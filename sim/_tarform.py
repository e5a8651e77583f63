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
import tarfile
from typing import IO

from . import _paths
from .errors import LayerFormatError, UnsupportedEntryError
from .layer import Compression, Directory, Entry, Layer, RegularFile, Symlink, Whiteout

_BLOCK = 512
_XATTR = "SCHILY.xattr."


def _mtime_fields(mtime_ns: int, sde: int | None) -> tuple[int, str | None]:
    """Whole seconds for the ustar field and, if there is a fraction, the exact PAX value."""
    if sde is not None:
        mtime_ns = min(mtime_ns, sde * 1_000_000_000)
    seconds, frac = divmod(mtime_ns, 1_000_000_000)
    return seconds, (f"{seconds}.{frac:09d}".rstrip("0") if frac else None)


def _header(name: str, entry: Entry | None, sde: int | None, **fields: object) -> bytes:
    info = tarfile.TarInfo(name)
    info.uname = info.gname = ""
    pax: dict[str, str] = {}
    if entry is not None and not isinstance(entry, Whiteout):
        assert isinstance(entry, (RegularFile, Directory, Symlink))
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


def write_tar(layer: Layer, fileobj: IO[bytes], *, compression: Compression, source_date_epoch: int | None) -> None:
    if layer.has_redirects():
        raise LayerFormatError(
            "this layer holds overlay redirects (renamed directories); an OCI tar cannot express them. "
            "Diff the merged tree against the lower layers instead (UnionFS.tree_diff), as Docker's naive differ does"
        )
    if compression == "gzip":
        # mtime=0 and no file name keep the gzip header reproducible too.
        with gzip.GzipFile(fileobj=fileobj, mode="wb", mtime=0, filename="") as gz:
            _write_plain(layer, gz, source_date_epoch)  # type: ignore[arg-type]
        return
    if compression is not None:
        raise LayerFormatError(f"unknown compression {compression!r} (use None or 'gzip')")
    _write_plain(layer, fileobj, source_date_epoch)


def _write_plain(layer: Layer, out: IO[bytes], sde: int | None) -> None:
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


def _open(fileobj: IO[bytes]) -> tarfile.TarFile:
    head = fileobj.read(2)
    rest = fileobj.read()
    raw = head + rest
    if head == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise LayerFormatError(f"corrupt gzip stream: {exc}") from exc
    try:
        return tarfile.open(fileobj=io.BytesIO(raw), mode="r:")
    except tarfile.TarError as exc:
        raise LayerFormatError(f"not a tar archive: {exc}") from exc


def _mtime_ns(info: tarfile.TarInfo) -> int:
    exact = info.pax_headers.get("mtime")
    if exact is None:
        return int(info.mtime) * 1_000_000_000
    seconds, _, frac = exact.partition(".")
    return int(seconds) * 1_000_000_000 + int((frac + "000000000")[:9] or 0) * (1 if not seconds.startswith("-") else -1)


def _xattrs(info: tarfile.TarInfo) -> dict[str, bytes]:
    return {
        key[len(_XATTR):]: value.encode("utf-8", "surrogateescape")
        for key, value in info.pax_headers.items()
        if key.startswith(_XATTR)
    }


def read_tar(fileobj: IO[bytes]) -> Layer:
    layer = Layer()
    whiteouts: list[str] = []
    opaque: list[str] = []
    seen: set[str] = set()
    with _open(fileobj) as archive:
        try:
            members = archive.getmembers()
        except tarfile.TarError as exc:
            raise LayerFormatError(f"corrupt tar archive: {exc}") from exc
        for info in members:
            raw_name = info.name
            path = _paths.clean_layer_path(raw_name)
            if not path:
                if info.isdir():
                    continue  # "./": the layer root's own metadata is not part of the model (docs/model.md)
                raise LayerFormatError(f"entry {raw_name!r} has an empty name")
            if path in seen:
                raise LayerFormatError(f"duplicate entry {path!r} in one layer")
            seen.add(path)
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
            if raw_name.endswith("/") and not info.isdir():
                raise LayerFormatError(f"{raw_name!r} ends in '/' but is a {_kind(info)}")
            meta = dict(uid=info.uid, gid=info.gid, mtime_ns=_mtime_ns(info))
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
            else:
                raise UnsupportedEntryError(f"{raw_name!r}: {_kind(info)} entries are not represented by the model")
    for parent in opaque:
        entry = layer.get(parent)
        if entry is None:
            layer._place(parent, Directory(opaque=True, implied=True))
        elif isinstance(entry, Directory):
            entry.opaque = True
        else:
            raise LayerFormatError(f"opaque marker inside {parent!r}, which is a {entry.kind}")
    for path in whiteouts:
        if path in layer:
            raise LayerFormatError(f"{path!r} and its whiteout are in the same layer; extractors disagree on the result")
        if any(isinstance(layer.get(a), Directory) and layer[a].opaque for a in _paths.ancestors(path)):  # type: ignore[union-attr]
            continue  # redundant: the opaque directory already hides everything below it
        layer._place(path, Whiteout())
    return layer.freeze()


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

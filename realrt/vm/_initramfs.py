"""The guest's initial RAM file system: a gzip'd ``newc`` cpio written in pure Python.

The kernel unpacks this archive into its rootfs and runs ``/init``.  The tree is the base
image's own layer (:func:`sim.images.base.busybox_layer`: the host's static busybox and its applet
links), plus the few device nodes the kernel needs before anything mounts ``/dev`` and the
``/init`` script, so the VM and the container run the same programs from the same files.

Writing the archive ourselves (rather than calling the ``cpio`` tool) lets an unprivileged
user put ``/dev/console`` in it: a cpio entry is only a header, no ``mknod`` is needed.

Format (``newc``, the one the kernel reads; see the kernel's
``Documentation/driver-api/early-userspace/buffer-format.rst``): each entry is the magic
``070701``, thirteen 8-digit hex fields, the NUL-terminated name padded to a multiple of 4
bytes (counting the 110-byte header), then the data padded to a multiple of 4.  The archive
ends with an entry named ``TRAILER!!!``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sim.errors import LayerFormatError
from sim.layers.layer import Directory, Layer, RegularFile, Symlink

__all__ = ["CpioEntry", "newc_archive", "parse_newc", "initramfs_entries", "initramfs_bytes", "cached_initramfs", "DEVICE_NODES",
           "TRAILER", "MAGIC"]

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
_HEADER_LEN = 110
_FIELDS = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize", "devmajor", "devminor",
           "rdevmajor", "rdevminor", "namesize", "check")

#: Character devices the kernel and ``/init`` need before any ``/dev`` is mounted:
#: ``/dev/console`` is where the kernel points init's stdin/stdout/stderr (without it init
#: runs with no console at all), ``null`` is what the shell redirects to.
DEVICE_NODES = (("dev/console", 5, 1), ("dev/ttyS0", 4, 64), ("dev/null", 1, 3))


@dataclass(frozen=True)
class CpioEntry:
    """One archive member.  ``mode`` holds the type bits too (``stat.S_IFREG | 0o755``);
    ``data`` is a file's bytes or a symlink's target; ``rdev`` is ``(major, minor)`` of a device."""

    name: str
    mode: int
    data: bytes = b""
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    nlink: int = 1
    rdev: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        if not self.name or self.name.startswith("/") or "\x00" in self.name:
            raise LayerFormatError(f"cpio name {self.name!r} must be relative and non-empty, without NUL")
        kind = stat.S_IFMT(self.mode)
        if kind not in (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFCHR, stat.S_IFBLK):
            raise LayerFormatError(f"cpio entry {self.name!r}: unsupported type {kind:#o}")
        if kind == stat.S_IFDIR and self.data:
            raise LayerFormatError(f"cpio directory {self.name!r} cannot carry data")


def _pad(length: int) -> bytes:
    return b"\x00" * (-length % 4)


def _header(ino: int, entry: CpioEntry, name: bytes) -> bytes:
    values = (ino, entry.mode, entry.uid, entry.gid, entry.nlink, entry.mtime, len(entry.data),
              0, 0, entry.rdev[0], entry.rdev[1], len(name) + 1, 0)
    for field, value in zip(_FIELDS, values):
        if not 0 <= value <= 0xFFFFFFFF:
            raise LayerFormatError(f"cpio entry {entry.name!r}: {field}={value} does not fit in 32 bits")
    return MAGIC + b"".join(b"%08X" % v for v in values)


def newc_archive(entries: Iterable[CpioEntry]) -> bytes:
    """The uncompressed ``newc`` archive of ``entries`` in the order given, then the trailer.

    Inode numbers are 1, 2, 3... in that order (the kernel links entries that share an inode
    number and ``nlink > 1`` as hard links; every entry here is its own inode).  A parent
    directory must come before what it holds, as the kernel creates entries one by one."""
    out = bytearray()
    for ino, entry in enumerate((*entries, CpioEntry(TRAILER, stat.S_IFREG, nlink=1)), start=1):
        name = entry.name.encode("utf-8", "surrogateescape")
        ino = 0 if entry.name == TRAILER else ino
        out += _header(ino, entry, name) + name + b"\x00"
        out += _pad(_HEADER_LEN + len(name) + 1)
        out += entry.data + _pad(len(entry.data))
    return bytes(out)


def parse_newc(archive: bytes) -> list[CpioEntry]:
    """The entries of a ``newc`` archive (the trailer excluded); :class:`LayerFormatError` when
    it is malformed.  The inverse of :func:`newc_archive`, used to check what the guest gets."""
    entries: list[CpioEntry] = []
    pos = 0
    while True:
        head = archive[pos:pos + _HEADER_LEN]
        if len(head) < _HEADER_LEN or head[:6] != MAGIC:
            raise LayerFormatError(f"no newc header at offset {pos}")
        try:
            values = dict(zip(_FIELDS, (int(head[6 + 8 * i:14 + 8 * i], 16) for i in range(13))))
        except ValueError as exc:
            raise LayerFormatError(f"bad hex field in the header at offset {pos}") from exc
        name_end = pos + _HEADER_LEN + values["namesize"]
        raw_name = archive[pos + _HEADER_LEN:name_end]
        if values["namesize"] < 1 or len(raw_name) != values["namesize"] or raw_name[-1:] != b"\x00":
            raise LayerFormatError(f"bad name at offset {pos}")
        name = raw_name[:-1].decode("utf-8", "surrogateescape")
        data_start = name_end + len(_pad(_HEADER_LEN + values["namesize"]))
        data = archive[data_start:data_start + values["filesize"]]
        if len(data) != values["filesize"]:
            raise LayerFormatError(f"{name!r}: archive ends inside its data")
        pos = data_start + values["filesize"] + len(_pad(values["filesize"]))
        if name == TRAILER:
            return entries
        entries.append(CpioEntry(name, values["mode"], data, values["uid"], values["gid"], values["mtime"],
                                 values["nlink"], (values["rdevmajor"], values["rdevminor"])))


def _layer_entries(layer: Layer) -> list[CpioEntry]:
    """The layer's tree as cpio entries, parents first (``Layer.paths()`` sorts them)."""
    out = []
    for path, entry in layer.items():
        if isinstance(entry, Directory):
            out.append(CpioEntry(path, stat.S_IFDIR | entry.mode, uid=entry.uid, gid=entry.gid))
        elif isinstance(entry, RegularFile):
            out.append(CpioEntry(path, stat.S_IFREG | entry.mode, entry.data, entry.uid, entry.gid))
        elif isinstance(entry, Symlink):
            out.append(CpioEntry(path, stat.S_IFLNK | 0o777, entry.target.encode(), entry.uid, entry.gid))
        else:  # the base layer holds no whiteouts; anything else has no place in a rootfs
            raise LayerFormatError(f"{path!r}: a {entry.kind} cannot go into an initramfs")
    return out


def initramfs_entries(layer: Layer, init_script: str) -> list[CpioEntry]:
    """The layer's tree, the :data:`DEVICE_NODES` and ``init`` (mode 0755) holding ``init_script``.

    Every name appears once.  What is added *replaces* the layer's entry of the same name (a
    layer's own ``init`` or ``dev/console`` is left out: the guest gets ours, the kernel would
    otherwise unpack the later one over the earlier).  The layer's ``dev``, if any, is kept and
    must be a directory; :class:`LayerFormatError` when it is not, or when the layer holds
    something *below* a replaced name (``init/x``: it would lose its parent)."""
    added = [CpioEntry(name, stat.S_IFCHR | 0o600, rdev=(major, minor)) for name, major, minor in DEVICE_NODES]
    added.append(CpioEntry("init", stat.S_IFREG | 0o755, init_script.encode()))
    replaced = {e.name for e in added}
    entries = []
    for entry in _layer_entries(layer):
        if entry.name in replaced:
            continue
        parent = next((r for r in replaced if entry.name.startswith(r + "/")), None)
        if parent is not None:
            raise LayerFormatError(f"the layer holds {entry.name!r} below {parent!r}, which the initramfs "
                                   "replaces with its own")
        if entry.name == "dev" and not stat.S_ISDIR(entry.mode):
            raise LayerFormatError("the layer's 'dev' is not a directory: the initramfs puts device nodes in it")
        entries.append(entry)
    if not any(e.name == "dev" for e in entries):
        entries.append(CpioEntry("dev", stat.S_IFDIR | 0o755))
    return entries + added


def initramfs_bytes(layer: Layer, init_script: str) -> bytes:
    """The gzip'd archive of :func:`initramfs_entries`; the same inputs give the same bytes
    (gzip's timestamp is 0, every entry's mtime is 0)."""
    return gzip.compress(newc_archive(initramfs_entries(layer, init_script)), compresslevel=6, mtime=0)


def cached_initramfs(cache_dir: Path, layer: Layer, init_script: str, *, extra_key: Sequence[str] = ()) -> Path:
    """``cache_dir/initramfs-<hash>.cpio.gz``, built once per content: the hash covers the
    layer's DiffID, the script and ``extra_key``.  Written to a temporary name of its own (pid
    and a uuid: concurrent threads and processes each have one) and renamed with ``os.replace``,
    so concurrent builders and a killed one never leave a half-written file under the final name."""
    key = hashlib.sha256("\x00".join((layer.diff_id, init_script, *extra_key)).encode()).hexdigest()[:24]
    target = cache_dir / f"initramfs-{key}.cpio.gz"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    # A name of its own per call: two threads of one process (same pid) never share it.
    tmp = cache_dir / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        tmp.write_bytes(initramfs_bytes(layer, init_script))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target

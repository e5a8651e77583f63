"""The base image's one layer, built in pure Python from the host's static busybox.

Both backends use it: :func:`busybox_layer` only reads a file and asks the
binary for its applet list, so it needs no privileges and imports nothing from
:mod:`realrt` (only :mod:`sim`), and lives in :mod:`sim`.

The layer is what ``docker run busybox`` gives, minus what a runtime supplies
(``/etc/hostname``, ``/etc/hosts``, ``/etc/resolv.conf`` and the contents of
``/proc``, ``/dev`` and ``/sys``)::

    bin/busybox            0755, the host's busybox-static binary
    bin/<applet> -> busybox  one symlink per applet ``busybox --list`` names
    etc/passwd, etc/group  root and nobody
    proc sys dev etc       empty directories, 0755
    tmp                    1777
    root                   0700

Every entry is owned by 0:0 and has mtime 0, so the layer, its tar and its
DiffID are the same bytes on every run on a given host (``SOURCE_DATE_EPOCH``
only ever clamps times down, and 0 is already below it).
"""

from __future__ import annotations

import functools
import os
import shutil
import struct
import subprocess

from sim.errors import BackendUnavailableError
from sim.layers.layer import Layer

__all__ = ["busybox_layer", "find_busybox", "BUSYBOX_CANDIDATES", "PASSWD", "GROUP"]

#: Where Debian's busybox-static puts the binary (``/bin`` is ``/usr/bin`` on merged-/usr systems).
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox", "/sbin/busybox")

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"

_INSTALL_HINT = "install Debian's busybox-static (apt-get install busybox-static)"


def _is_static_elf(data: bytes) -> bool:
    """True for an ELF executable with no ``PT_INTERP`` (no dynamic loader to find in the image)."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return False
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    if wide:
        phoff, = struct.unpack_from(order + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(order + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x2A)
    for i in range(phnum):
        offset = phoff + i * phentsize
        if offset + 4 > len(data):
            return False
        p_type, = struct.unpack_from(order + "I", data, offset)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def find_busybox() -> str:
    """The path of the host's *static* busybox; :class:`BackendUnavailableError` with a hint if none."""
    dynamic = None
    seen: set[str] = set()
    for path in (*BUSYBOX_CANDIDATES, shutil.which("busybox") or ""):
        if not path or not os.path.isfile(path) or os.path.realpath(path) in seen:
            continue
        seen.add(os.path.realpath(path))
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)  # the program headers sit right after the ELF header
        if _is_static_elf(head):
            return path
        dynamic = path
    if dynamic:
        raise BackendUnavailableError(f"{dynamic} is linked dynamically and cannot run alone in an image; {_INSTALL_HINT}")
    raise BackendUnavailableError(f"no busybox on this host; {_INSTALL_HINT}")


@functools.lru_cache(maxsize=4)
def _build(path: str, ino: int, size: int, mtime_ns: int) -> Layer:
    with open(path, "rb") as fh:
        binary = fh.read()
    try:
        listed = subprocess.run([path, "--list"], capture_output=True, check=True, timeout=30,
                                env={"PATH": "/usr/bin:/bin"}).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BackendUnavailableError(f"{path} --list failed ({exc}); {_INSTALL_HINT}") from exc
    applets = sorted({name for name in listed.decode("ascii", "replace").split() if name and "/" not in name} - {"busybox"})
    if not applets:
        raise BackendUnavailableError(f"{path} --list named no applets; {_INSTALL_HINT}")
    layer = Layer()
    for name in ("bin", "dev", "etc", "proc", "sys"):
        layer.add_dir(name, mode=0o755)
    layer.add_dir("root", mode=0o700)
    layer.add_dir("tmp", mode=0o1777)
    layer.add_file("bin/busybox", binary, mode=0o755)
    for name in applets:
        layer.add_symlink(f"bin/{name}", "busybox")
    layer.add_file("etc/passwd", PASSWD, mode=0o644)
    layer.add_file("etc/group", GROUP, mode=0o644)
    return layer.freeze()


def busybox_layer() -> Layer:
    """The frozen base layer (see the module docstring); cached while the host binary is unchanged."""
    path = find_busybox()
    st = os.stat(path)
    return _build(path, st.st_ino, st.st_size, st.st_mtime_ns)

"""Kernel modules for a guest, without ``modprobe`` (内核模块, kernel modules).

A kernel package holds ``lib/modules/<version>/kernel/**.ko`` but no ``modules.dep`` (``depmod``
writes it when the package is *installed*, which layerlab never does).  Each module names what it
needs in its own ELF section ``.modinfo`` (``depends=virtio,virtio_ring``), so :func:`modinfo`
reads that section and :func:`load_order` gives the modules a guest must ``insmod``, each after
everything it depends on: what ``modprobe`` would do from ``modules.dep``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

from sim.errors import LayerFormatError

__all__ = ["modinfo", "module_name", "load_order"]

_ELF64_LE = b"\x7fELF\x02\x01"


def modinfo(data: bytes) -> dict[str, list[str]]:
    """The ``key=value`` pairs of a module's ``.modinfo`` section (a key may repeat: ``alias``),
    ``{}`` when the file has no such section.  :class:`LayerFormatError` when ``data`` is not
    a little-endian ELF64 file (x86-64 modules are) or its section table is cut short."""
    if data[:6] != _ELF64_LE:
        raise LayerFormatError("not a little-endian ELF64 kernel module")
    try:
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

        def section(i: int) -> tuple[int, int, int]:
            fields = struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
            return fields[0], fields[4], fields[5]  # name offset, file offset, size

        _, names_at, names_size = section(shstrndx)
        names = data[names_at:names_at + names_size]
        for i in range(shnum):
            name_at, offset, size = section(i)
            if names[name_at:names.index(b"\x00", name_at)] != b".modinfo":
                continue
            if offset + size > len(data):
                raise LayerFormatError("the .modinfo section runs past the end of the file")
            out: dict[str, list[str]] = {}
            for item in data[offset:offset + size].split(b"\x00"):
                key, eq, value = item.partition(b"=")
                if eq:
                    out.setdefault(key.decode("ascii", "replace"), []).append(value.decode("utf-8", "replace"))
            return out
    except (struct.error, ValueError) as exc:
        raise LayerFormatError(f"a truncated ELF section table: {exc}") from None
    return {}


def module_name(file_name: str) -> str:
    """``9pnet_virtio.ko`` -> ``9pnet_virtio``; dashes become underscores, as the kernel names them."""
    return file_name.removesuffix(".ko").replace("-", "_")


def load_order(modules: Mapping[str, bytes], wanted: Iterable[str]) -> list[str]:
    """Names from ``modules`` (module name -> ``.ko`` bytes) to load so that every name in
    ``wanted`` is loaded: each module's dependencies (its ``depends=``, recursively) before it,
    otherwise in the order ``wanted`` gives, each once.  :class:`LayerFormatError` for a module
    (wanted, or needed by one) that ``modules`` does not hold, or a dependency cycle."""
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise LayerFormatError(f"kernel modules depend on each other in a cycle: {' -> '.join(visiting + [name])}")
        if name not in modules:
            needer = f" (needed by {visiting[-1]})" if visiting else ""
            raise LayerFormatError(f"kernel module {name}{needer} is not in the kernel package")
        visiting.append(name)
        for dep in ",".join(modinfo(modules[name]).get("depends", [])).split(","):
            if dep:
                visit(module_name(dep))
        visiting.pop()
        order.append(name)

    for name in wanted:
        visit(name)
    return order

"""A container's init layer: the mount points of the files the engine binds in, kept out of its diff.

Docker puts ``/etc/hosts`` and ``/etc/resolv.conf`` (the files that make names resolve) into a
layer of their own between the image and the container layer, so ``docker diff`` and ``docker
commit``, which look only at the container layer, never see them.  layerlab does the same: the
init layer holds an empty file for each of them the image lacks, under an ``/etc`` with the
image's own mode and owner (so the merged view's ``/etc`` is unchanged); with nothing missing
there is no init layer.  An image whose ``/etc`` is not a directory gets none either, and no
files bound in.
"""

from __future__ import annotations

from collections.abc import Sequence

from sim.layers.layer import Directory, Layer, Whiteout

__all__ = ["BOUND_FILES", "init_layer", "image_has"]

#: What the engine binds into a container on a network mode with its own namespace.
BOUND_FILES = ("etc/hosts", "etc/resolv.conf")


def image_has(layers: Sequence[Layer], path: str) -> bool:
    """Whether the merged view of ``layers`` (bottom first) holds ``path`` (whiteouts and opaque
    directories of higher layers hide lower entries)."""
    parents = [path.rsplit("/", i)[0] for i in range(1, path.count("/") + 1)]
    for layer in reversed(layers):
        entry = layer.get(path)
        if entry is not None:
            return not isinstance(entry, Whiteout)
        for parent in parents:
            above = layer.get(parent)
            if isinstance(above, Whiteout) or (isinstance(above, Directory) and above.opaque):
                return False
    return False


def init_layer(layers: Sequence[Layer]) -> Layer | None:
    """The init layer for an image of ``layers``, or ``None`` when it needs none (or has no /etc dir)."""
    etc = next((layer.get("etc") for layer in reversed(layers) if layer.get("etc") is not None), None)
    if not isinstance(etc, Directory):
        return None
    missing = [p for p in BOUND_FILES if not image_has(layers, p)]
    if not missing:
        return None
    init = Layer()
    init.add_dir("etc", mode=etc.mode, uid=etc.uid, gid=etc.gid, mtime_ns=etc.mtime_ns)
    for path in missing:
        init.add_file(path, b"", mode=0o644)
    return init.freeze()

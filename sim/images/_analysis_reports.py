"""The results of image analysis: per-layer reports, wasted paths, tree entries and the
shared-layer report, each a frozen dataclass that :mod:`sim.images.analysis` re-exports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sim.layers import _paths

SortKey = Literal["size", "path"]


@dataclass(frozen=True)
class LayerReport:
    """One layer of an image, compared with the merged view of the layers below it.

    ``added``, ``changed`` and ``deleted`` compare the merged tree before and
    after the layer: a path that appears is *added*; a path that stays but that
    the layer names is *changed* (even with equal content, as ``docker diff``
    reports a copy-up; parent directories a layer only implies are not);
    a path that disappears is *deleted* (a whiteout of a directory deletes the
    directory and everything in it).  ``wasted_bytes`` are this layer's file
    bytes that the final image no longer shows (where the waste is stored);
    ``hidden_bytes`` are lower layers' file bytes this layer hides (the layer
    that causes the waste).  Summed over the layers both give the image's
    wasted bytes.
    """

    index: int
    diff_id: str
    size: int  # bytes of file content, hard links once (Layer.size)
    entries: int  # entries the layer's tar holds (implied parents and opaque markers not counted)
    files: int  # regular-file names in this layer
    cumulative_files: int  # files of this layer and of every layer below it
    visible_files: int  # regular-file names in the merged view up to this layer
    added: int
    changed: int
    deleted: int
    wasted_bytes: int
    hidden_bytes: int
    created_by: str = ""


@dataclass(frozen=True)
class WastedPath:
    """A path whose earlier copies cost bytes that the image cannot show (dive's "inefficient file").

    ``copies`` counts the hidden versions (N-1 for a file written N times and
    kept; N when a whiteout or opaque directory finally removes it);
    ``layers`` are where those copies are stored, ``hidden_by`` the layers that
    hid them; ``removed`` says the path is gone from the final image.  A
    hard-linked file's bytes are charged once, to the name whose hiding left
    the file with no visible name; its other names show ``bytes`` 0.
    """

    path: str
    copies: int
    bytes: int
    layers: tuple[int, ...]
    hidden_by: tuple[int, ...]
    removed: bool


@dataclass(frozen=True)
class HistoryStep:
    """One build step, oldest first: ``layer`` is the index of the layer it made, None for metadata steps."""

    created_by: str
    layer: int | None
    comment: str = ""


@dataclass(frozen=True)
class ImageAnalysis:
    """The analysis of one image; :mod:`sim.images.analysis` defines its numbers."""

    layers: tuple[LayerReport, ...]
    total_bytes: int
    wasted_bytes: int
    efficiency: float
    wasted: tuple[WastedPath, ...]  # largest first, then by path
    files: int  # regular-file names in the final image
    history: tuple[HistoryStep, ...] = ()
    name: str = ""

    @property
    def visible_bytes(self) -> int:
        """Bytes of file content the final image shows (each hard-linked file once)."""
        return self.total_bytes - self.wasted_bytes

    @property
    def wasted_copies(self) -> int:
        return sum(w.copies for w in self.wasted)

    def sorted_wasted(self, by: SortKey = "size") -> list[WastedPath]:
        """The wasted paths by bytes (largest first) or by path."""
        return sort_wasted(self.wasted, by)

    def sorted_layers(self, by: Literal["size", "index", "wasted"] = "size") -> list[LayerReport]:
        """The layers largest first (``size``), by wasted bytes, or bottom first (``index``)."""
        if by == "index":
            return list(self.layers)
        key = (lambda r: (-r.size, r.index)) if by == "size" else (lambda r: (-r.wasted_bytes, r.index))
        if by not in ("size", "wasted"):
            raise ValueError(f"sort layers by 'size', 'wasted' or 'index', not {by!r}")
        return sorted(self.layers, key=key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageAnalysis:
        return cls(
            layers=tuple(LayerReport(**d) for d in data["layers"]),
            total_bytes=data["total_bytes"],
            wasted_bytes=data["wasted_bytes"],
            efficiency=data["efficiency"],
            wasted=tuple(
                WastedPath(**{**d, "layers": tuple(d["layers"]), "hidden_by": tuple(d["hidden_by"])}) for d in data["wasted"]
            ),
            files=data["files"],
            history=tuple(HistoryStep(**d) for d in data.get("history", ())),
            name=data.get("name", ""),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ImageAnalysis:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class TreeEntry:
    """One path of a merged view: ``layer`` is the layer that supplies it (its origin).

    ``size`` is the file's bytes; for a directory, the bytes of the files below
    it (a hard-linked file once).  ``path`` is absolute.
    """

    path: str
    kind: str  # "file", "dir" or "symlink"
    size: int
    layer: int
    mode: int
    uid: int
    gid: int
    target: str | None = None  # a symlink's target

    @property
    def depth(self) -> int:
        return self.path.count("/") - 1


@dataclass(frozen=True)
class SharedLayer:
    """A layer (by DiffID) and the images that use it."""

    diff_id: str
    size: int
    images: tuple[str, ...]

    @property
    def shared(self) -> bool:
        return len(self.images) > 1


@dataclass(frozen=True)
class ImageShare:
    """One image's layers split into shared (used by another image too) and unique ones."""

    name: str
    layers: int
    total_bytes: int
    shared_bytes: int
    unique_bytes: int
    shared_layers: int
    unique_layers: int


@dataclass(frozen=True)
class SharedReport:
    """Which layers several images share, and what sharing saves.

    ``stored_bytes`` is what the store keeps (each distinct layer once);
    ``naive_bytes`` what the images would take without sharing (the sum of
    their sizes); ``common_base`` the DiffIDs, bottom first, that every image
    has at the bottom of its stack in the same order (equal ChainIDs).
    """

    images: tuple[ImageShare, ...]
    layers: tuple[SharedLayer, ...]
    common_base: tuple[str, ...]
    stored_bytes: int
    naive_bytes: int

    @property
    def saved_bytes(self) -> int:
        return self.naive_bytes - self.stored_bytes

    def image(self, name: str) -> ImageShare:
        for share in self.images:
            if share.name == name:
                return share
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SharedReport:
        return cls(
            images=tuple(ImageShare(**d) for d in data["images"]),
            layers=tuple(SharedLayer(**{**d, "images": tuple(d["images"])}) for d in data["layers"]),
            common_base=tuple(data["common_base"]),
            stored_bytes=data["stored_bytes"],
            naive_bytes=data["naive_bytes"],
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SharedReport:
        return cls.from_dict(json.loads(text))


def sort_wasted(items: Iterable[WastedPath], by: SortKey) -> list[WastedPath]:
    if by == "size":
        return sorted(items, key=lambda w: (-w.bytes, -w.copies, _paths.sort_key(w.path[1:])))
    if by == "path":
        return sorted(items, key=lambda w: _paths.sort_key(w.path[1:]))
    raise ValueError(f"sort by 'size' or 'path', not {by!r}")

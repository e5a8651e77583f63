"""The engine's images: their layers, each read from the store once (:class:`LayerCache`), and what
the engine reports about them (:class:`ImageInfo`, ``docker history``, the layer half of
``docker system df``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sim.containers._container import DEFAULT_PATH
from sim.digest import chain_ids
from sim.images.oci import ContainerConfig, History, ImageConfig, RootFS, host_platform, rfc3339
from sim.images.store import ImageRecord, ImageStore
from sim.layers._lowerview import LowerView
from sim.layers.layer import Layer, source_date_epoch
from sim.results import HistoryEntry, ImageInfo

__all__ = ["LayerCache", "LayerUsage", "base_image_config", "image_summary", "history_entries", "layer_usage"]


class LayerCache:
    """The layers of ``store``'s images, each parsed from its blob once (layers never change)."""

    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self._loaded: dict[str, Layer] = {}  # DiffID -> the frozen layer read from the store
        self._views: dict[str, LowerView] = {}  # ImageID -> its merged lower view (for diff)

    def layers(self, record: ImageRecord) -> list[Layer]:
        """An image's layers, bottom first."""
        missing = [d for d in record.diff_ids if d not in self._loaded]
        if missing:
            for diff_id, layer in zip(record.diff_ids, self.store.load_layers(record)):
                self._loaded.setdefault(diff_id, layer)
        return [self._loaded[d] for d in record.diff_ids]

    def by_diff_id(self, diff_id: str) -> Layer | None:
        """A stored layer by DiffID (a build-cache hit), or None when no image keeps it any more."""
        if diff_id not in self._loaded:
            for record in self.store.list(all=True):
                if diff_id in record.diff_ids:
                    self.layers(record)
                    break
        return self._loaded.get(diff_id)

    def add(self, layer: Layer) -> None:
        """A layer just made (a build step's), so the next cache hit need not read it back from the store."""
        self._loaded.setdefault(layer.diff_id, layer)

    def lower_view(self, record: ImageRecord) -> LowerView:
        """An image's merged read-only view, computed once per image (its layers never change)."""
        view = self._views.get(record.id)
        if view is None:
            view = self._views[record.id] = LowerView(self.layers(record))
        return view


def base_image_config(layer: Layer) -> ImageConfig:
    """The config of the base image made of ``layer`` alone (busybox: ``sh``, the default PATH)."""
    created = rfc3339(source_date_epoch() or 0)
    return ImageConfig(
        architecture=host_platform().architecture, os="linux",
        rootfs=RootFS(diff_ids=(layer.diff_id,)),
        config=ContainerConfig(env=(f"PATH={DEFAULT_PATH}",), cmd=("sh",)),
        history=(History(created=created, created_by="layerlab base: host busybox-static"),),
        created=created,
    )


def image_summary(record: ImageRecord, layers: Sequence[Layer]) -> ImageInfo:
    """``docker inspect`` of an image whose layers are ``layers``."""
    diff_ids = tuple(record.diff_ids)
    return ImageInfo(
        id=str(record.id), tags=tuple(record.tags), diff_ids=diff_ids,
        chain_ids=tuple(chain_ids(list(diff_ids))) if diff_ids else (),
        size=sum(layer.size for layer in layers), created=record.created or "",
        config=_config_summary(record.config), digest=str(record.manifest_digest),
    )


def history_entries(record: ImageRecord, layers: Sequence[Layer]) -> list[HistoryEntry]:
    """``docker history``, newest first: metadata steps have no layer and size 0."""
    diff_ids = list(record.diff_ids)
    sizes = [layer.size for layer in layers]  # file bytes, as docker history shows
    out: list[HistoryEntry] = []
    i = 0
    for h in record.config.history:
        if h.empty_layer:
            out.append(HistoryEntry(h.created_by or "", None, 0, True, h.comment or ""))
        else:
            out.append(HistoryEntry(h.created_by or "", diff_ids[i] if i < len(diff_ids) else None,
                                    sizes[i] if i < len(sizes) else 0, False, h.comment or ""))
            i += 1
    return out[::-1]


@dataclass(frozen=True)
class LayerUsage:
    """The images' layers, each counted once: bytes shared by several images and unique to one."""

    layers: int
    shared_bytes: int
    unique_bytes: int
    per_image: dict[str, tuple[int, int]]  # first tag (else short ID) -> (shared, unique) bytes


def layer_usage(records: Sequence[ImageRecord], layers_of: Callable[[ImageRecord], Sequence[Layer]]) -> LayerUsage:
    """``docker system df -v``'s image half: each layer counted once, split into shared and unique bytes."""
    users: dict[str, set[str]] = {}
    sizes: dict[str, int] = {}
    for r in records:
        for diff_id, layer in zip(r.diff_ids, layers_of(r)):
            users.setdefault(str(diff_id), set()).add(str(r.id))
            sizes[str(diff_id)] = layer.size  # file bytes, each layer once
    shared = sum(sizes[d] for d, u in users.items() if len(u) > 1)
    unique = sum(sizes[d] for d, u in users.items() if len(u) == 1)
    per_image = {
        (r.tags[0] if r.tags else r.short_id): (
            sum(sizes[str(d)] for d in r.diff_ids if len(users[str(d)]) > 1),
            sum(sizes[str(d)] for d in r.diff_ids if len(users[str(d)]) == 1),
        )
        for r in records
    }
    return LayerUsage(len(sizes), shared, unique, per_image)


def _config_summary(config: ImageConfig) -> dict[str, object]:
    c = config.config
    return {
        "Env": list(c.env), "Cmd": list(c.cmd or ()), "Entrypoint": list(c.entrypoint or ()),
        "WorkingDir": c.working_dir, "User": c.user, "Labels": dict(c.labels), "Volumes": list(c.volumes),
        "ExposedPorts": list(c.exposed_ports),
    }

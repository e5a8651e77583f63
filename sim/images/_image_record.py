"""The records an :class:`~sim.images.store.ImageStore` hands out: an image as looked up, what a removal did."""

from __future__ import annotations

from dataclasses import dataclass

from sim.digest import Digest
from sim.images.oci import Descriptor, ImageConfig, Manifest
from sim.images.reference import parse_reference

__all__ = ["ImageRecord", "RemoveResult"]


@dataclass(frozen=True)
class ImageRecord:
    """One stored image, as it stood when looked up.  ``repo_tags`` are full normalised references."""

    id: Digest  # ImageID: sha256 of the config bytes
    manifest_digest: Digest
    manifest: Manifest
    config: ImageConfig
    repo_tags: tuple[str, ...] = ()
    parent: Digest | None = None

    @property
    def short_id(self) -> str:
        return self.id.short

    def __repr__(self) -> str:
        return f"<ImageRecord {self.short_id} {' '.join(self.tags) or '<none>:<none>'}, {len(self.layers)} layers>"

    @property
    def tags(self) -> tuple[str, ...]:
        """The familiar forms ``docker images`` shows (``ubuntu:latest``)."""
        return tuple(parse_reference(t).familiar for t in self.repo_tags)

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return self.config.rootfs.diff_ids

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        return self.manifest.layers

    @property
    def size(self) -> int:
        """Bytes of the layer blobs, shared ones included (``docker images`` SIZE)."""
        return sum(d.size for d in self.manifest.layers)

    @property
    def created(self) -> str | None:
        return self.config.created


@dataclass(frozen=True)
class RemoveResult:
    """What ``docker rmi`` prints: ``Untagged:`` lines, then ``Deleted:`` lines."""

    untagged: tuple[str, ...] = ()
    deleted: tuple[Digest, ...] = ()  # image IDs removed (the asked one, then pruned parents)
    deleted_blobs: tuple[Digest, ...] = ()
    freed_bytes: int = 0

    def lines(self) -> list[str]:
        return [f"Untagged: {t}" for t in self.untagged] + [f"Deleted: {d}" for d in self.deleted]

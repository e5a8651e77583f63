"""The folder form of an :class:`~sim.images.store.ImageStore`: an OCI image layout it owns.

``index.json`` holds one descriptor per tag (carrying
``org.opencontainers.image.ref.name`` and ``io.containerd.image.name``);
untagged images appear once, unnamed.  The file is replaced atomically and is
the store's commit point.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from sim.digest import Digest
from sim.images._durable import atomic_write
from sim.images._sha256 import as_sha256
from sim.images.blobs import ContentStore
from sim.images.oci import (
    ANNOTATION_CONTAINERD_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    CONFIG_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MEDIA_TYPE_OCI_MANIFEST,
    Descriptor,
    ImageConfig,
    ImageFormatError,
    Index,
    Manifest,
    canonical_json,
    validate_image,
)
from sim.images.reference import parse_reference

OCI_LAYOUT_VERSION = "1.0.0"
#: Our own index.json annotation: the image a local build started from (``docker rmi`` keeps parents of children).
ANNOTATION_PARENT = "layerlab.image.parent"


@dataclass
class StoredImage:
    """One image as the store holds it: the manifest bytes as stored, their parsed views, its parent."""

    manifest_digest: Digest
    manifest_bytes: bytes
    manifest: Manifest
    config: ImageConfig
    parent: Digest | None = None
    added: int = 0  # insertion order, for a stable listing

    def blobs(self) -> list[Digest]:
        return [self.manifest_digest, as_sha256(self.manifest.config.digest)] + [as_sha256(d.digest) for d in self.manifest.layers]

    def descriptor(self) -> Descriptor:
        """The manifest's descriptor, unannotated: what an index entry for this image starts from."""
        return Descriptor(self.manifest.media_type or MEDIA_TYPE_OCI_MANIFEST, self.manifest_digest, len(self.manifest_bytes))


def store_index(images: Mapping[Digest, StoredImage], tags: Mapping[str, Digest]) -> Index:
    """``index.json`` for ``images`` (by image ID) and ``tags`` (full reference -> image ID)."""
    entries: list[Descriptor] = []
    for image_id, image in sorted(images.items(), key=lambda kv: kv[1].added):
        base = image.descriptor()
        extra = {ANNOTATION_PARENT: str(image.parent)} if image.parent else {}
        names = sorted(t for t, i in tags.items() if i == image_id)
        if not names:
            entries.append(base.with_annotations(extra))
        for tag in names:
            ref = parse_reference(tag)
            entries.append(base.with_annotations({**extra, ANNOTATION_CONTAINERD_IMAGE_NAME: tag, ANNOTATION_REF_NAME: ref.tag or ""}))
    return Index(tuple(entries))


def write_store_index(root: Path, index: Index) -> None:
    layout = root / "oci-layout"
    if not layout.exists():
        atomic_write(layout, canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    atomic_write(root / "index.json", index.to_json())


def read_store_index(content: ContentStore) -> Iterator[tuple[Descriptor, bytes, Manifest, ImageConfig]]:
    """Each entry of the folder's ``index.json`` with its manifest and config, read and validated.

    A layout another tool wrote is refused, not adopted.
    """
    assert content.root is not None
    path = content.root / "index.json"
    if not path.exists():
        return
    index = Index.from_json(path.read_bytes(), content_type=None)
    for desc in index.manifests:
        manifest_bytes = content.get(desc.digest, size=desc.size) if desc.media_type in MANIFEST_MEDIA_TYPES else b""
        manifest = Manifest.from_json(manifest_bytes, content_type=desc.media_type) if manifest_bytes else None
        foreign = (
            manifest is None
            or manifest.config.media_type not in CONFIG_MEDIA_TYPES
            or (ANNOTATION_REF_NAME in desc.annotations and ANNOTATION_CONTAINERD_IMAGE_NAME not in desc.annotations)
        )
        if foreign:
            # Rewriting index.json or collecting garbage here would destroy another tool's data.
            raise ImageFormatError(
                f"{content.root} is an OCI layout another tool wrote ({desc.media_type} {desc.digest}); "
                "an ImageStore folder must be its own: use ImageStore().load(folder) to import it"
            )
        assert manifest is not None
        config = ImageConfig.from_json(content.get(manifest.config.digest, size=manifest.config.size))
        validate_image(manifest, config)
        yield desc, manifest_bytes, manifest, config

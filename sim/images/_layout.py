"""The folder form of an :class:`~sim.images.store.ImageStore`: an OCI image layout it owns.

``index.json`` holds one descriptor per tag (carrying
``org.opencontainers.image.ref.name`` and ``io.containerd.image.name``);
untagged images appear once, unnamed.  The file is replaced atomically and is
the store's commit point.

An entry whose manifest or config is missing, does not hash to its digest or does not parse
does not stop the store from opening: it is read as a :class:`DamagedImage`, kept in the index
as it was (so nothing is forgotten silently), reported by ``fsck`` and dropped by its repair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from sim.digest import Digest
from sim.errors import DigestMismatchError
from sim.images._durable import atomic_write
from sim.images._sha256 import as_sha256
from sim.images.blobs import BlobNotFoundError, ContentStore
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


@dataclass(frozen=True)
class DamagedImage:
    """An ``index.json`` entry that cannot be read whole: its ``descriptor`` as stored, the full
    reference it names (``name``; None untagged), why (``reason``) and the blobs it is known to
    need (``blobs``: the manifest, plus the config and layers when the manifest is readable)."""

    descriptor: Descriptor
    name: str | None
    reason: str
    blobs: tuple[Digest, ...]


@dataclass(frozen=True)
class StoreEntry:
    """One readable ``index.json`` entry with its manifest and config."""

    descriptor: Descriptor
    manifest_bytes: bytes
    manifest: Manifest
    config: ImageConfig


#: Parsed manifests and configs by manifest digest: blobs never change, so a reader keeps them.
ParsedCache = MutableMapping[Digest, tuple[bytes, Manifest, ImageConfig]]


def store_index(images: Mapping[Digest, StoredImage], tags: Mapping[str, Digest],
                damaged: Iterable[DamagedImage] = ()) -> Index:
    """``index.json`` for ``images`` (by image ID), ``tags`` (full reference -> image ID) and the
    ``damaged`` entries, kept as they were."""
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
    entries += [d.descriptor for d in damaged]
    return Index(tuple(entries))


def write_store_index(root: Path, index: Index) -> bytes:
    """Replace ``index.json`` (the commit point); the bytes written."""
    layout = root / "oci-layout"
    if not layout.exists():
        atomic_write(layout, canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    data = index.to_json()
    atomic_write(root / "index.json", data, fault="index")
    return data


def read_index_bytes(root: Path) -> bytes | None:
    """``index.json`` as it is now, or None when there is none yet."""
    try:
        return (root / "index.json").read_bytes()
    except FileNotFoundError:
        return None


def read_store_index(content: ContentStore, data: bytes, parsed: ParsedCache) -> tuple[list[StoreEntry], list[DamagedImage]]:
    """The entries of the index ``data`` with their manifests and configs: readable ones, and
    :class:`DamagedImage` ones (a blob missing, corrupt or unparsable).  ``parsed`` caches what was
    read before (content-addressed, so it never goes stale).

    A layout another tool wrote is refused (:class:`ImageFormatError`), not adopted: rewriting its
    index or collecting its garbage would destroy another tool's data.
    """
    index = Index.from_json(data, content_type=None)
    good: list[StoreEntry] = []
    damaged: list[DamagedImage] = []
    for desc in index.manifests:
        name = desc.annotations.get(ANNOTATION_CONTAINERD_IMAGE_NAME)
        if desc.media_type not in MANIFEST_MEDIA_TYPES or (ANNOTATION_REF_NAME in desc.annotations and not name):
            raise _foreign(content, desc)
        digest = as_sha256(desc.digest)
        known = parsed.get(digest)
        if known is not None:
            good.append(StoreEntry(desc, *known))
            continue
        blobs: tuple[Digest, ...] = (digest,)
        try:
            manifest_bytes = content.get(digest, size=desc.size)
            manifest = Manifest.from_json(manifest_bytes, content_type=desc.media_type)
        except (BlobNotFoundError, DigestMismatchError, ImageFormatError, ValueError) as exc:
            damaged.append(DamagedImage(desc, name, f"manifest {digest}: {type(exc).__name__}: {exc}", blobs))
            continue
        if manifest.config.media_type not in CONFIG_MEDIA_TYPES:
            raise _foreign(content, desc)
        blobs += (as_sha256(manifest.config.digest), *(as_sha256(d.digest) for d in manifest.layers))
        try:
            config = ImageConfig.from_json(content.get(manifest.config.digest, size=manifest.config.size))
            validate_image(manifest, config)
        except (BlobNotFoundError, DigestMismatchError, ImageFormatError, ValueError) as exc:
            damaged.append(DamagedImage(desc, name, f"config {manifest.config.digest}: {type(exc).__name__}: {exc}", blobs))
            continue
        parsed[digest] = (manifest_bytes, manifest, config)
        good.append(StoreEntry(desc, manifest_bytes, manifest, config))
    return good, damaged


def _foreign(content: ContentStore, desc: Descriptor) -> ImageFormatError:
    return ImageFormatError(
        f"{content.root} is an OCI layout another tool wrote ({desc.media_type} {desc.digest}); "
        "an ImageStore folder must be its own: use ImageStore().load(folder) to import it"
    )

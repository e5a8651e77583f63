"""OCI image documents: descriptors, image config, manifest and index, as frozen dataclasses.

An image (镜像) on disk or in a registry is three kinds of JSON document plus
layer blobs, every one of them named by its sha256 (content addressing):

* the **image config** (镜像配置): platform, the container defaults (``Env``,
  ``Cmd`` ...), ``rootfs.diff_ids`` (the DiffID of every layer, bottom first)
  and ``history``.  Its sha256 is the **ImageID** (``docker images`` shows the
  first 12 hex digits);
* the **manifest** (清单): a descriptor of the config and one of each layer blob;
* the **index** (索引): descriptors of manifests (per platform, or per tag in an
  OCI layout's ``index.json``).

Writing gives **canonical JSON** (sorted keys, no spaces, UTF-8), so equal
configs give equal bytes and so equal ImageIDs.  Reading validates: required
fields and their types, ``schemaVersion: 2``, digests, the 4 MiB size limit,
the history/``diff_ids`` agreement and media-type confusion (CVE-2021-41190:
a document holding both ``layers`` and ``manifests``, or whose ``mediaType``
disagrees with the Content-Type it came with, is refused).  Errors are
:class:`ImageFormatError` and its subclasses (``ValueError``).

Unknown JSON fields are ignored by the parsed views; the store keeps the
original bytes, so an ImageID never changes by being read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.images._image_config import (
    ContainerConfig,
    History,
    ImageConfig,
    Platform,
    RootFS,
    host_platform,
    image_id,
    rfc3339,
)
from sim.images._json import (
    MAX_DOCUMENT_SIZE,
    DocumentTooLargeError,
    FrozenMap,
    ImageFormatError,
    MediaTypeError,
    canonical_json,
    check_digest,
    drop_none,
    fmap,
    get_field,
    load_json,
    str_list,
    str_map,
)

__all__ = [
    "MEDIA_TYPE_OCI_INDEX",
    "MEDIA_TYPE_OCI_MANIFEST",
    "MEDIA_TYPE_OCI_CONFIG",
    "MEDIA_TYPE_OCI_LAYER",
    "MEDIA_TYPE_OCI_LAYER_GZIP",
    "MEDIA_TYPE_OCI_LAYER_ZSTD",
    "MEDIA_TYPE_OCI_EMPTY",
    "MEDIA_TYPE_DOCKER_MANIFEST",
    "MEDIA_TYPE_DOCKER_MANIFEST_LIST",
    "MEDIA_TYPE_DOCKER_CONFIG",
    "MEDIA_TYPE_DOCKER_LAYER",
    "MEDIA_TYPE_DOCKER_LAYER_GZIP",
    "MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP",
    "MANIFEST_MEDIA_TYPES",
    "INDEX_MEDIA_TYPES",
    "CONFIG_MEDIA_TYPES",
    "LAYER_MEDIA_TYPES",
    "ANNOTATION_REF_NAME",
    "ANNOTATION_CONTAINERD_IMAGE_NAME",
    "MAX_DOCUMENT_SIZE",
    "ImageFormatError",
    "DocumentTooLargeError",
    "MediaTypeError",
    "FrozenMap",
    "Platform",
    "Descriptor",
    "ContainerConfig",
    "History",
    "RootFS",
    "ImageConfig",
    "Manifest",
    "Index",
    "canonical_json",
    "image_id",
    "parse_document",
    "validate_image",
    "layer_compression",
    "rfc3339",
    "host_platform",
]


# -- media types (media-types.md, and Docker's schema 2) -------------------------------------------
MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_TYPE_OCI_EMPTY = "application/vnd.oci.empty.v1+json"
_OCI_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_TYPE_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_TYPE_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_TYPE_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_MEDIA_TYPES = frozenset({MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST})
INDEX_MEDIA_TYPES = frozenset({MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST})
CONFIG_MEDIA_TYPES = frozenset({MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_DOCKER_CONFIG})
#: Layer media type -> compression (None: a plain tar).
LAYER_MEDIA_TYPES: Mapping[str, str | None] = {
    MEDIA_TYPE_OCI_LAYER: None,
    MEDIA_TYPE_OCI_LAYER_GZIP: "gzip",
    MEDIA_TYPE_OCI_LAYER_ZSTD: "zstd",
    _OCI_NONDIST: None,
    _OCI_NONDIST + "+gzip": "gzip",
    _OCI_NONDIST + "+zstd": "zstd",
    MEDIA_TYPE_DOCKER_LAYER: None,
    MEDIA_TYPE_DOCKER_LAYER_GZIP: "gzip",
    MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP: "gzip",
}

#: image-layout.md: the tag of a manifest in an OCI layout's index.json.
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
#: The full reference containerd and ``docker save`` (25+) record beside the tag.
ANNOTATION_CONTAINERD_IMAGE_NAME = "io.containerd.image.name"


# -- descriptor ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Descriptor:
    """What a document says about another blob: media type, digest, size (all three required)."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=FrozenMap)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "annotations", fmap(self.annotations))
        object.__setattr__(self, "urls", tuple(self.urls))
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ImageFormatError(f"descriptor size must be a non-negative integer, got {self.size!r}")
        object.__setattr__(self, "digest", check_digest(self.digest, "descriptor digest"))

    def to_dict(self) -> dict[str, Any]:
        return drop_none({
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
            "annotations": dict(self.annotations) or None,
            "platform": self.platform.to_dict() if self.platform else None,
            "urls": list(self.urls) or None,
            "artifactType": self.artifact_type,
        })

    @classmethod
    def from_dict(cls, doc: Any, what: str = "descriptor") -> Descriptor:
        if not isinstance(doc, dict):
            raise ImageFormatError(f"{what} must be a JSON object")
        size = get_field(doc, "size", int, what, required=True)
        if size < 0:
            raise ImageFormatError(f"{what}.size must not be negative")
        platform = get_field(doc, "platform", dict, what)
        return cls(
            media_type=get_field(doc, "mediaType", str, what, required=True),
            digest=check_digest(get_field(doc, "digest", str, what, required=True), f"{what}.digest"),
            size=size,
            annotations=str_map(doc, "annotations", what),
            platform=Platform.from_dict(platform, f"{what}.platform") if platform is not None else None,
            urls=str_list(doc, "urls", what) or (),
            artifact_type=get_field(doc, "artifactType", str, what),
        )

    def with_annotations(self, annotations: Mapping[str, str] | None) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size, fmap(annotations), self.platform, self.urls, self.artifact_type)


# -- manifest and index ---------------------------------------------------------------------------


def _check_schema(doc: Mapping[str, Any], what: str) -> None:
    version = get_field(doc, "schemaVersion", int, what, required=True)
    if version != 2:
        raise ImageFormatError(f"{what}: schemaVersion must be 2, got {version}")


def _check_media_type(doc: Mapping[str, Any], allowed: frozenset[str], content_type: str | None, what: str) -> str | None:
    declared: str | None = get_field(doc, "mediaType", str, what)
    if declared is not None and declared not in allowed:
        raise MediaTypeError(f"{what}: mediaType {declared!r} is not one of {sorted(allowed)}")
    if content_type is not None:
        content_type = content_type.split(";", 1)[0].strip()
        if content_type not in allowed or (declared is not None and declared != content_type):
            raise MediaTypeError(f"{what}: Content-Type {content_type!r} disagrees with mediaType {declared!r}")
    return declared


@dataclass(frozen=True)
class Manifest:
    """An image manifest: one config descriptor and the layer descriptors, base layer first."""

    config: Descriptor
    layers: tuple[Descriptor, ...] = ()
    media_type: str | None = MEDIA_TYPE_OCI_MANIFEST
    annotations: Mapping[str, str] = field(default_factory=FrozenMap)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    schema_version = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "annotations", fmap(self.annotations))

    def to_dict(self) -> dict[str, Any]:
        return drop_none({
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "artifactType": self.artifact_type,
            "config": self.config.to_dict(),
            "layers": [d.to_dict() for d in self.layers],
            "subject": self.subject.to_dict() if self.subject else None,
            "annotations": dict(self.annotations) or None,
        })

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes, *, content_type: str | None = None) -> Manifest:
        """Parse and validate; ``content_type`` is the HTTP header or descriptor media type it came with."""
        doc = load_json(data, "manifest")
        if "manifests" in doc:
            raise MediaTypeError("manifest holds both 'layers'/'config' and 'manifests' (CVE-2021-41190): refused")
        _check_schema(doc, "manifest")
        media_type = _check_media_type(doc, MANIFEST_MEDIA_TYPES, content_type, "manifest")
        layers = get_field(doc, "layers", list, "manifest", required=True)
        subject = get_field(doc, "subject", dict, "manifest")
        return cls(
            config=Descriptor.from_dict(get_field(doc, "config", dict, "manifest", required=True), "manifest.config"),
            layers=tuple(Descriptor.from_dict(d, f"manifest.layers[{i}]") for i, d in enumerate(layers)),
            media_type=media_type,
            annotations=str_map(doc, "annotations", "manifest"),
            subject=Descriptor.from_dict(subject, "manifest.subject") if subject is not None else None,
            artifact_type=get_field(doc, "artifactType", str, "manifest"),
        )


@dataclass(frozen=True)
class Index:
    """An image index: manifests per platform, or (in a layout's index.json) per tag."""

    manifests: tuple[Descriptor, ...] = ()
    media_type: str | None = MEDIA_TYPE_OCI_INDEX
    annotations: Mapping[str, str] = field(default_factory=FrozenMap)

    schema_version = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "manifests", tuple(self.manifests))
        object.__setattr__(self, "annotations", fmap(self.annotations))

    def to_dict(self) -> dict[str, Any]:
        return drop_none({
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [d.to_dict() for d in self.manifests],
            "annotations": dict(self.annotations) or None,
        })

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes, *, content_type: str | None = None) -> Index:
        doc = load_json(data, "index")
        if "layers" in doc or "config" in doc:
            raise MediaTypeError("index holds both 'manifests' and 'layers'/'config' (CVE-2021-41190): refused")
        _check_schema(doc, "index")
        media_type = _check_media_type(doc, INDEX_MEDIA_TYPES, content_type, "index")
        manifests = get_field(doc, "manifests", list, "index", required=True)
        return cls(
            manifests=tuple(Descriptor.from_dict(d, f"index.manifests[{i}]") for i, d in enumerate(manifests)),
            media_type=media_type,
            annotations=str_map(doc, "annotations", "index"),
        )


def parse_document(data: bytes, *, content_type: str | None = None) -> Manifest | Index:
    """A manifest or an index, told apart by ``mediaType`` (or ``content_type``), never by guesswork alone.

    A document with both ``layers`` and ``manifests`` is refused whatever it claims.
    """
    doc = load_json(data, "document")
    if "manifests" in doc and ("layers" in doc or "config" in doc):
        raise MediaTypeError("document holds both 'manifests' and 'layers'/'config' (CVE-2021-41190): refused")
    declared = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else None
    kind = declared or (content_type.split(";", 1)[0].strip() if content_type else None)
    if kind in INDEX_MEDIA_TYPES or (kind is None and "manifests" in doc):
        return Index.from_json(data, content_type=content_type)
    if kind in MANIFEST_MEDIA_TYPES or (kind is None and "config" in doc):
        return Manifest.from_json(data, content_type=content_type)
    raise MediaTypeError(f"not an image manifest or index (mediaType {kind!r})")


def validate_image(manifest: Manifest, config: ImageConfig) -> None:
    """The checks that need both documents: config media type and one DiffID per layer."""
    if manifest.config.media_type not in CONFIG_MEDIA_TYPES:
        raise MediaTypeError(f"manifest.config.mediaType {manifest.config.media_type!r} is not an image config")
    if len(manifest.layers) != len(config.rootfs.diff_ids):
        raise ImageFormatError(
            f"the manifest has {len(manifest.layers)} layers but rootfs.diff_ids has {len(config.rootfs.diff_ids)}"
        )
    for i, layer in enumerate(manifest.layers):
        if layer.media_type not in LAYER_MEDIA_TYPES:
            raise MediaTypeError(f"manifest.layers[{i}].mediaType {layer.media_type!r} is not a layer media type")


def layer_compression(media_type: str) -> str | None:
    """``None``, ``"gzip"`` or ``"zstd"`` for a layer media type; unknown types raise MediaTypeError."""
    try:
        return LAYER_MEDIA_TYPES[media_type]
    except KeyError:
        raise MediaTypeError(f"{media_type!r} is not a layer media type") from None

"""Layers as gzip for exchange: the one transform ``export(compression="gzip")`` and ``push`` share.

The store keeps layers as plain tars (blob digest = DiffID).  Registries and
most OCI tools prefer ``tar+gzip``; :func:`gzip_manifest` gives the manifest an
image has once its plain layers are gzip-compressed, and those blobs.  The
config is untouched, so the ImageID (and every DiffID) stays; the manifest and
so its digest change.

The gzip stream is made byte-reproducible where gzip leaves a choice: the
header is written here (mtime 0, no file name, no comment, OS byte 255
"unknown", as Go's ``compress/gzip`` writes it) and the deflate level is fixed
(:data:`GZIP_LEVEL`).  The deflate bytes themselves come from the zlib library
Python links against: the same zlib gives the same bytes, another
implementation (zlib-ng, Go's ``compress/flate``, pigz) may give others that
decompress to the same tar.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from typing import Any, Protocol

from sim.digest import Digest, sha256_digest
from sim.images._sha256 import as_sha256
from sim.images.blobs import ContentStore
from sim.images.oci import (
    MEDIA_TYPE_DOCKER_LAYER,
    MEDIA_TYPE_DOCKER_LAYER_GZIP,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    Descriptor,
    ImageConfig,
    ImageFormatError,
    Manifest,
    layer_compression,
)

__all__ = ["GZIP_LEVEL", "GZIP_MEDIA_TYPES", "ImageView", "ImageSource", "deterministic_gzip", "gzip_manifest"]


# The store module imports this one (export), so the two types it reads are described, not imported.
class ImageView(Protocol):
    """What is read of an image record: :class:`~sim.images.store.ImageRecord` is one."""

    @property
    def manifest(self) -> Manifest: ...
    @property
    def manifest_digest(self) -> Digest: ...
    @property
    def config(self) -> ImageConfig: ...
    @property
    def short_id(self) -> str: ...


class ImageSource(Protocol):
    """What is read of an image store: :class:`~sim.images.store.ImageStore` is one."""

    @property
    def content(self) -> ContentStore: ...
    def manifest_bytes(self, ref_or_id: Any) -> bytes: ...
    def config_bytes(self, ref_or_id: Any) -> bytes: ...
    def layer_tar(self, record: Any, index: int) -> bytes: ...

#: The deflate level every layerlab gzip layer is written with (zlib's and Go's default).
GZIP_LEVEL = 6

_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"

#: A plain layer media type -> its gzip twin, in the same family (OCI stays OCI, Docker stays Docker).
GZIP_MEDIA_TYPES: dict[str, str] = {
    MEDIA_TYPE_OCI_LAYER: MEDIA_TYPE_OCI_LAYER_GZIP,
    _NONDISTRIBUTABLE: _NONDISTRIBUTABLE + "+gzip",
    MEDIA_TYPE_DOCKER_LAYER: MEDIA_TYPE_DOCKER_LAYER_GZIP,
}

# RFC 1952 header: magic, CM=8 (deflate), FLG=0 (no name, comment, extra), MTIME=0, XFL=0, OS=255.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def deterministic_gzip(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """``data`` as one gzip member whose header never varies (see the module docstring).

    Python's own ``gzip.compress`` is not used: depending on the version and
    ``mtime`` it lets zlib write the header, whose OS byte differs by platform.
    """
    deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY)
    body = deflate.compress(data) + deflate.flush()
    return _GZIP_HEADER + body + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)


def gzip_manifest(store: ImageSource, record: ImageView) -> tuple[bytes, dict[Digest, tuple[bytes, str]]]:
    """The manifest ``record`` has with its plain layers gzip-compressed, and every blob it names.

    Returns ``(manifest_bytes, blobs)``: ``blobs`` maps the digest of *each*
    blob the new manifest names (the config and every layer, new or kept) to
    ``(bytes, media_type)``, so it is all a writer or a pusher needs.

    * A plain layer (``tar``, Docker's ``diff.tar``, non-distributable ``tar``)
      is read back verified against its DiffID and compressed with
      :func:`deterministic_gzip`; its descriptor gets the gzip media type of
      the same family and keeps its annotations and urls.
    * A layer that is already gzip is kept byte for byte (its digest is the one
      a registry already knows); a zstd layer raises :class:`ImageFormatError`
      (it cannot be re-encoded here).
    * The config blob and its descriptor are unchanged, so the ImageID is too.
      The manifest keeps its media type, annotations and subject; it is
      re-serialised canonically unless no layer changed, in which case the
      stored bytes are returned and the digest stays.

    Equal images give equal bytes: calling it twice returns the same manifest.
    """
    manifest = record.manifest
    blobs: dict[Digest, tuple[bytes, str]] = {}
    config_digest = as_sha256(manifest.config.digest)
    blobs[config_digest] = (store.config_bytes(record), manifest.config.media_type)
    layers: list[Descriptor] = []
    changed = False
    for i, desc in enumerate(manifest.layers):
        compression = layer_compression(desc.media_type)
        if compression == "gzip":
            blobs[as_sha256(desc.digest)] = (store.content.get(desc.digest, size=desc.size), desc.media_type)
            layers.append(desc)
            continue
        if compression is not None:
            raise ImageFormatError(f"layer {i} of {record.short_id} is {compression}; only plain tar layers can be gzip-compressed")
        media_type = GZIP_MEDIA_TYPES.get(desc.media_type)
        if media_type is None:
            raise ImageFormatError(f"layer {i} of {record.short_id} has media type {desc.media_type!r}, which has no gzip form")
        data = deterministic_gzip(store.layer_tar(record, i))
        digest = sha256_digest(data)
        blobs[digest] = (data, media_type)
        layers.append(Descriptor(media_type, digest, len(data), desc.annotations, desc.platform, desc.urls, desc.artifact_type))
        changed = True
    if not changed:
        return store.manifest_bytes(record), blobs
    return replace(manifest, layers=tuple(layers)).to_json(), blobs

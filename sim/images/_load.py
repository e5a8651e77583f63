"""``docker load``'s readers: OCI layouts and ``docker save`` archives (old and new) into staged images.

An archive is a tar (read whole, its symlinks resolved inside it) or a folder.
Every blob is checked against its descriptor's size and sha256, and every
layer against its DiffID, while staging: the store commits only what all
passed, so one bad blob loads nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sim.digest import Digest, sha256_digest
from sim.errors import DigestMismatchError, InvalidReferenceError
from sim.images._sha256 import as_sha256
from sim.images.oci import (
    ANNOTATION_CONTAINERD_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    CONFIG_MEDIA_TYPES,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MAX_DOCUMENT_SIZE,
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_MANIFEST,
    Descriptor,
    DocumentTooLargeError,
    ImageConfig,
    ImageFormatError,
    Index,
    Manifest,
    Platform,
    layer_compression,
    validate_image,
)
from sim.images.reference import Reference, parse_reference


@dataclass
class Staged:
    """An image read from an archive, every blob verified, nothing committed yet."""

    manifest_digest: Digest
    manifest_bytes: bytes
    manifest_media_type: str
    manifest: Manifest
    config: ImageConfig
    blobs: dict[Digest, tuple[bytes, str]] = field(default_factory=dict)
    names: list[Reference] = field(default_factory=list)


class _Source:
    def read(self, name: str) -> bytes | None:
        raise NotImplementedError


class _MemorySource(_Source):
    """An archive's regular files, and its symlinks resolved inside the archive (skopeo's
    ``docker-archive`` links ``<id>/layer.tar`` to ``../<diffid>.tar``)."""

    def __init__(self, files: dict[str, bytes], links: dict[str, str] | None = None) -> None:
        self.files = files
        self.links = links or {}

    def read(self, name: str) -> bytes | None:
        try:
            name = _safe_name(name)
        except ImageFormatError:
            return None
        for _ in range(8):
            if name in self.files:
                return self.files[name]
            target = self.links.get(name)
            if target is None or target.startswith("/"):
                return None
            parent = name.rsplit("/", 1)[0] if "/" in name else ""
            parts: list[str] = [p for p in parent.split("/") if p]
            for part in target.split("/"):
                if part == "..":
                    if not parts:
                        return None  # leaves the archive
                    parts.pop()
                elif part not in ("", "."):
                    parts.append(part)
            name = "/".join(parts)
        return None


class _FolderSource(_Source):
    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, name: str) -> bytes | None:
        path = self.root / _safe_name(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            return f.read()


def _safe_name(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts or not parts:
        raise ImageFormatError(f"unsafe path in image archive: {name!r}")
    return "/".join(parts)


def open_source(source: IO[bytes] | str | os.PathLike[str]) -> _Source:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return _FolderSource(path)
        with open(path, "rb") as f:
            return _read_tar_files(f)
    return _read_tar_files(source)


def _read_tar_files(fileobj: IO[bytes]) -> _MemorySource:
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
            for member in tar:
                if member.issym():
                    links[_safe_name(member.name)] = member.linkname
                    continue
                if not member.isreg():
                    continue  # directories, hard links, devices: an image archive needs none of them
                name = _safe_name(member.name)
                if name in files:
                    raise ImageFormatError(f"image archive holds {name!r} twice")
                extracted = tar.extractfile(member)
                assert extracted is not None
                files[name] = extracted.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ImageFormatError(f"not a readable image archive: {exc}") from exc
    return _MemorySource(files, links)


def decompress(blob: bytes, compression: str | None) -> bytes:
    if compression is None:
        return blob
    if compression == "gzip":
        try:
            return gzip.decompress(blob)
        except (OSError, EOFError, zlib.error) as exc:
            raise DigestMismatchError(f"gzip layer does not decompress: {exc}") from exc
    raise ImageFormatError(f"{compression} layers cannot be read: this Python has no {compression} decompressor")


def stream_diff_id(blob: IO[bytes], compression: str | None) -> Digest:
    """The DiffID (sha256 of the uncompressed tar) of a layer blob read from ``blob`` in chunks."""
    hasher = hashlib.sha256()
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if compression == "gzip" else None
    if compression not in (None, "gzip"):
        return sha256_digest(decompress(blob.read(), compression))
    try:
        while chunk := blob.read(1 << 20):
            hasher.update(inflate.decompress(chunk) if inflate is not None else chunk)
        if inflate is not None:
            hasher.update(inflate.flush())
    except zlib.error as exc:
        raise DigestMismatchError(f"gzip layer does not decompress: {exc}") from exc
    if inflate is not None and not inflate.eof:
        raise DigestMismatchError("a gzip layer ends before its gzip stream does")
    return Digest("sha256:" + hasher.hexdigest())


def _read_blob(source: _Source, desc: Descriptor, *, document: bool = False) -> bytes:
    """A blob the descriptor names, checked against its size and digest."""
    if not str(desc.digest).startswith("sha256:"):
        raise ImageFormatError(f"{desc.digest}: only sha256 blobs are supported")
    if document and desc.size > MAX_DOCUMENT_SIZE:
        raise DocumentTooLargeError(f"{desc.media_type} {desc.digest} is {desc.size} bytes; the limit is {MAX_DOCUMENT_SIZE} (4 MiB)")
    data = source.read(f"blobs/sha256/{as_sha256(desc.digest).hex}")
    if data is None:
        raise ImageFormatError(f"blob {desc.digest} ({desc.media_type}) is missing from the archive")
    if len(data) != desc.size:
        raise DigestMismatchError(f"blob {desc.digest} has {len(data)} bytes, the descriptor says {desc.size}")
    if sha256_digest(data) != desc.digest:
        raise DigestMismatchError(f"blob {desc.digest} does not match its digest (got {sha256_digest(data)})")
    return data


def _names(desc: Descriptor, repository: str | None) -> list[Reference]:
    full = desc.annotations.get(ANNOTATION_CONTAINERD_IMAGE_NAME)
    ref_name = desc.annotations.get(ANNOTATION_REF_NAME)
    candidates = []
    if full:
        # A tool that retags an entry (umoci repack) may copy the old full name beside a new bare
        # ref.name: the bare tag is the newer word, joined to the full name's repository.
        try:
            named = parse_reference(full)
        except InvalidReferenceError:
            named = None
        bare = ref_name and "/" not in ref_name and ":" not in ref_name and "@" not in ref_name
        if named is not None and bare and named.digest is None and named.tag != ref_name:
            candidates.append(f"{named.repository}:{ref_name}")
        else:
            candidates.append(full)
    else:
        if ref_name and ("/" in ref_name or ":" in ref_name):
            candidates.append(ref_name)
        elif ref_name and repository:
            candidates.append(f"{repository}:{ref_name}")
    out = []
    for text in candidates:
        try:
            ref = parse_reference(text)
        except InvalidReferenceError:
            continue  # a ref.name OCI allows but Docker cannot name: load untagged
        if ref.tag is not None and ref.digest is None:
            out.append(ref)
    return out


def read_archive(source: _Source, *, repository: str | None, platform: Platform) -> list[Staged]:
    layout = source.read("oci-layout")
    if layout is not None:
        try:
            version = json.loads(layout).get("imageLayoutVersion")
        except (ValueError, AttributeError) as exc:
            raise ImageFormatError(f"oci-layout is not valid JSON: {exc}") from exc
        if not isinstance(version, str) or version.split(".")[0] != "1":
            raise ImageFormatError(f"unsupported imageLayoutVersion {version!r} (expected 1.x)")
    index_bytes = source.read("index.json")
    if index_bytes is not None:
        return _read_oci(source, Index.from_json(index_bytes), repository, platform)
    legacy = source.read("manifest.json")
    if legacy is not None:
        return _read_legacy(source, legacy)
    raise ImageFormatError("neither index.json nor manifest.json: not an image archive or OCI layout")


def _read_oci(source: _Source, index: Index, repository: str | None, platform: Platform) -> list[Staged]:
    staged: dict[Digest, Staged] = {}
    order: list[Digest] = []

    def visit(desc: Descriptor, names: list[Reference], depth: int) -> None:
        if depth > 8:
            raise ImageFormatError("image indexes nested more than 8 deep")
        if desc.media_type in INDEX_MEDIA_TYPES:
            nested = Index.from_json(_read_blob(source, desc, document=True), content_type=desc.media_type)
            for child in nested.manifests:
                if child.media_type in MANIFEST_MEDIA_TYPES and (child.platform is None or platform.matches(child.platform)):
                    visit(child, names, depth + 1)
                    return  # the first manifest for this platform, as docker pull picks one
            return
        if desc.media_type not in MANIFEST_MEDIA_TYPES:
            return  # unknown media type: skipped, as image-layout.md asks
        key = as_sha256(desc.digest) if str(desc.digest).startswith("sha256:") else None
        if key is not None and key in staged:
            staged[key].names.extend(n for n in names if n not in staged[key].names)
            return
        manifest_bytes = _read_blob(source, desc, document=True)
        manifest = Manifest.from_json(manifest_bytes, content_type=desc.media_type)
        if manifest.config.media_type not in CONFIG_MEDIA_TYPES:
            return  # an artifact (signature, SBOM ...), not an image
        config_bytes = _read_blob(source, manifest.config, document=True)
        config = ImageConfig.from_json(config_bytes)
        validate_image(manifest, config)
        image = Staged(as_sha256(desc.digest), manifest_bytes, desc.media_type, manifest, config, names=list(names))
        image.blobs[as_sha256(manifest.config.digest)] = (config_bytes, manifest.config.media_type)
        for i, (layer, diff_id) in enumerate(zip(manifest.layers, config.rootfs.diff_ids)):
            blob = _read_blob(source, layer)
            if sha256_digest(decompress(blob, layer_compression(layer.media_type))) != diff_id:
                raise DigestMismatchError(f"layer {i} ({layer.digest}) does not match DiffID {diff_id} of the config")
            image.blobs[as_sha256(layer.digest)] = (blob, layer.media_type)
        staged[image.manifest_digest] = image
        order.append(image.manifest_digest)

    for desc in index.manifests:
        visit(desc, _names(desc, repository), 0)
    return [staged[d] for d in order]


def _read_legacy(source: _Source, data: bytes) -> list[Staged]:
    """``docker save`` before Docker 25: ``manifest.json`` naming ``<id>.json`` configs and ``<id>/layer.tar`` files."""
    try:
        entries = json.loads(data)
    except ValueError as exc:
        raise ImageFormatError(f"manifest.json is not valid JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise ImageFormatError("manifest.json must be a list")
    out = []
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) or not isinstance(entry.get("Layers"), list):
            raise ImageFormatError(f"manifest.json[{n}] needs Config and Layers")
        config_bytes = source.read(entry["Config"])
        if config_bytes is None:
            raise ImageFormatError(f"manifest.json[{n}]: {entry['Config']} is missing")
        config = ImageConfig.from_json(config_bytes)
        if len(entry["Layers"]) != len(config.rootfs.diff_ids):
            raise ImageFormatError(f"manifest.json[{n}] lists {len(entry['Layers'])} layers, the config {len(config.rootfs.diff_ids)}")
        blobs: dict[Digest, tuple[bytes, str]] = {}
        layer_descs = []
        for i, (name, diff_id) in enumerate(zip(entry["Layers"], config.rootfs.diff_ids)):
            blob = source.read(name) if isinstance(name, str) else None
            if blob is None:
                raise ImageFormatError(f"manifest.json[{n}]: layer {name!r} is missing")
            tar = decompress(blob, "gzip") if blob[:2] == b"\x1f\x8b" else blob
            if sha256_digest(tar) != diff_id:
                raise DigestMismatchError(f"layer {i} ({name}) does not match DiffID {diff_id} of the config")
            blobs[as_sha256(diff_id)] = (tar, MEDIA_TYPE_OCI_LAYER)
            layer_descs.append(Descriptor(MEDIA_TYPE_OCI_LAYER, diff_id, len(tar)))
        config_id = sha256_digest(config_bytes)
        blobs[config_id] = (config_bytes, MEDIA_TYPE_OCI_CONFIG)
        manifest = Manifest(Descriptor(MEDIA_TYPE_OCI_CONFIG, config_id, len(config_bytes)), tuple(layer_descs))
        manifest_bytes = manifest.to_json()
        names = []
        for tag in entry.get("RepoTags") or []:
            try:
                ref = parse_reference(tag)
            except (InvalidReferenceError, TypeError):
                continue
            if ref.digest is None:
                names.append(ref)
        out.append(Staged(sha256_digest(manifest_bytes), manifest_bytes, MEDIA_TYPE_OCI_MANIFEST, manifest, config, blobs, names))
    return out

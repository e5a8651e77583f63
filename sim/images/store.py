"""Content-addressed storage for images: blobs by sha256, images and tags on top.

:class:`ContentStore` keeps blobs (layer tars, configs, manifests) under their
sha256, in memory or in a folder laid out like an OCI image layout
(``blobs/sha256/<hex>``).  Every write is verified **before** the blob becomes
visible: bytes go to ``ingest/``, are hashed and counted while written,
fsync'ed, compared with the promised size and digest, and only then renamed
into ``blobs/``.  Too short, too long or a wrong digest raise
:class:`~sim.errors.DigestMismatchError` and leave nothing behind.  A writer
killed half-way leaves a partial file in ``ingest/`` (never in ``blobs/``);
the next :class:`ContentStore` opened on the folder removes it.  Reads verify
the sha256 (and the size when known) again.

:class:`ImageStore` stores images (镜像) in a ContentStore: layer blobs
(uncompressed tars, so a layer's blob digest *is* its DiffID), the config and
the manifest, and tags (标签) ``repository:tag`` -> image.  A layer shared by
N images is stored once.  ``remove`` follows ``docker rmi``.  ``save`` writes
a ``docker save`` (Docker 25+) archive: an OCI image layout plus the legacy
``manifest.json`` and ``repositories``; ``load`` reads such archives, older
``docker save`` archives and OCI layout folders (skopeo, umoci), verifying
every blob and DiffID before anything is committed.
"""

from __future__ import annotations

import builtins
import errno
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import uuid
import zlib
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from sim.digest import Digest, sha256_digest
from sim.errors import (
    ConflictError,
    DigestMismatchError,
    ImageNotFoundError,
    InvalidReferenceError,
    NotFoundError,
)
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
    RootFS,
    canonical_json,
    host_platform,
    layer_compression,
    validate_image,
)
from sim.images.reference import Reference, is_image_id, parse_reference
from sim.layers.layer import Layer

__all__ = [
    "BlobNotFoundError",
    "Usage",
    "ContentStore",
    "ImageRecord",
    "RemoveResult",
    "ImageStore",
    "OCI_LAYOUT_VERSION",
    "ANNOTATION_PARENT",
]

OCI_LAYOUT_VERSION = "1.0.0"
#: Our own index.json annotation: the image a local build started from (``docker rmi`` keeps parents of children).
ANNOTATION_PARENT = "layerlab.image.parent"
_OCTET_STREAM = "application/octet-stream"
_CHUNK = 1 << 20
_HEX64 = re.compile(r"^[a-f0-9]{64}$")
_HEX_PREFIX = re.compile(r"^[a-f0-9]+$")

K = TypeVar("K", bound=Hashable)


class BlobNotFoundError(NotFoundError):
    """The content store holds no blob with that digest."""


def _digest(value: str) -> Digest:
    if isinstance(value, Digest):
        return value
    if not isinstance(value, str) or not value.startswith("sha256:") or not _HEX64.match(value[7:]):
        raise ImageFormatError(f"not a sha256 digest: {value!r} (this store keeps sha256 blobs only)")
    return Digest(value)


def _chunks(source: bytes | bytearray | memoryview | IO[bytes], limit: int | None) -> Iterator[bytes]:
    """Chunks of ``source``, stopping after ``limit`` bytes (so a too-long stream is caught early)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        if limit is not None:
            view = view[:limit]
        for i in range(0, len(view), _CHUNK):
            yield bytes(view[i:i + _CHUNK])
        return
    left = limit
    while left is None or left > 0:
        chunk = source.read(_CHUNK if left is None else min(_CHUNK, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
        yield chunk


@dataclass(frozen=True)
class Usage:
    """What one owner (an image) uses of the store: ``docker system df -v``'s three columns."""

    size: int  # every blob it references
    shared_size: int  # blobs some other owner references too
    unique_size: int  # blobs only it references: freed when it goes


# -- the two blob backends ------------------------------------------------------------------------


class _Writer:
    def write(self, chunk: bytes) -> None:
        raise NotImplementedError

    def commit(self, hex_digest: str) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class _MemoryWriter(_Writer):
    def __init__(self, blobs: dict[str, bytes]) -> None:
        self._blobs = blobs
        self._parts: list[bytes] = []

    def write(self, chunk: bytes) -> None:
        self._parts.append(chunk)

    def commit(self, hex_digest: str) -> None:
        self._blobs.setdefault(hex_digest, b"".join(self._parts))
        self._parts = []

    def abort(self) -> None:
        self._parts = []


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FolderWriter(_Writer):
    """One ingest: a locked file in ``ingest/`` that is renamed into ``blobs/sha256/`` once verified."""

    def __init__(self, ingest: Path, blobs: Path) -> None:
        self._blobs = blobs
        while True:
            path = ingest / f"{uuid.uuid4().hex}.partial"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A cleaner that opened the store between our create and our lock may have removed the
            # name (it found the file unlocked): then start again under a new one.
            try:
                same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._path: Path | None = path
        self._fd = fd

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view):]

    def commit(self, hex_digest: str) -> None:
        assert self._path is not None
        os.fsync(self._fd)
        os.fchmod(self._fd, 0o444)  # blobs are read-only, as containerd keeps them
        target = self._blobs / hex_digest
        os.rename(self._path, target)  # atomic: the name appears with all its bytes, or not at all
        _fsync_dir(self._blobs)
        self._path = None
        os.close(self._fd)

    def abort(self) -> None:
        if self._path is not None:
            try:
                os.unlink(self._path)  # unlink before close: the lock keeps cleaners off until then
            except FileNotFoundError:
                pass
            self._path = None
            os.close(self._fd)


# -- ContentStore --------------------------------------------------------------------------------


class ContentStore:
    """sha256-addressed blobs; ``ContentStore()`` in memory, ``ContentStore(folder)`` on disk."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self._memory: dict[str, bytes] | None = None
        self._root: Path | None = None
        self.cleaned_up: list[str] = []  # what clean_ingest() removed when the folder was opened
        if root is None:
            self._memory = {}
            return
        self._root = Path(root)
        self._blobs = self._root / "blobs" / "sha256"
        self._ingest = self._root / "ingest"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(exist_ok=True)
        self.cleaned_up = self.clean_ingest()

    @property
    def root(self) -> Path | None:
        """The folder, or ``None`` for an in-memory store."""
        return self._root

    # -- integrity of the folder form

    def clean_ingest(self) -> list[str]:
        """Remove what interrupted writers left in ``ingest/``; files a live writer holds are kept.

        Runs when the store is opened.  Returns the names removed.
        """
        if self._root is None:
            return []
        removed = []
        for name in sorted(os.listdir(self._ingest)):
            path = self._ingest / name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # a symlink has no business here
                    os.unlink(path)
                    removed.append(name)
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a writer is alive and holds it
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    continue
                os.unlink(path)
                removed.append(name)
            finally:
                os.close(fd)
        return removed

    def ingests(self) -> list[str]:
        """Names now in ``ingest/`` (in progress or left over)."""
        return [] if self._root is None else sorted(os.listdir(self._ingest))

    # -- writing

    def _writer(self) -> _Writer:
        if self._memory is not None:
            return _MemoryWriter(self._memory)
        return _FolderWriter(self._ingest, self._blobs)

    def ingest(
        self,
        source: bytes | IO[bytes],
        media_type: str = _OCTET_STREAM,
        *,
        digest: str | None = None,
        size: int | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Descriptor:
        """Store ``source`` (bytes or a readable file); with ``digest``/``size``, only if it matches them.

        Reads at most ``size + 1`` bytes of a stream, so an endless or too long
        source fails without filling the disk.  On any failure nothing is
        visible and the ingest file is gone.
        """
        expected = _digest(digest) if digest is not None else None
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValueError(f"size must be a non-negative int, got {size!r}")
        what = f"blob {expected}" if expected is not None else "blob"
        writer = self._writer()
        try:
            hasher = hashlib.sha256()
            count = 0
            for chunk in _chunks(source, None if size is None else size + 1):
                count += len(chunk)
                if size is not None and count > size:
                    raise DigestMismatchError(f"{what} is longer than the promised {size} bytes")
                hasher.update(chunk)
                writer.write(chunk)
            if size is not None and count < size:
                raise DigestMismatchError(f"{what} is truncated: {count} of {size} bytes")
            actual = Digest("sha256:" + hasher.hexdigest())
            if expected is not None and actual != expected:
                raise DigestMismatchError(f"blob digest mismatch: expected {expected}, got {actual}")
            writer.commit(actual.hex)
        except BaseException:
            writer.abort()
            raise
        return Descriptor(media_type, actual, count, annotations or {})

    def put(
        self,
        data: bytes,
        media_type: str = _OCTET_STREAM,
        *,
        digest: str | None = None,
        size: int | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Descriptor:
        """Store ``data``; returns its descriptor.  Storing a blob twice keeps one copy."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("put() takes bytes; use ingest() for a file object")
        return self.ingest(bytes(data), media_type, digest=digest, size=size, annotations=annotations)

    # -- reading

    def get(self, digest: str, *, size: int | None = None) -> bytes:
        """The blob's bytes, verified against ``digest`` (and ``size``) on every read."""
        d = _digest(digest)
        if self._memory is not None:
            try:
                data = self._memory[d.hex]
            except KeyError:
                raise BlobNotFoundError(f"blob {d} not found") from None
        else:
            try:
                fd = os.open(self._blobs / d.hex, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                raise BlobNotFoundError(f"blob {d} not found") from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise DigestMismatchError(f"blob {d} is a symlink, not stored content") from None
                raise
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise DigestMismatchError(f"blob {d} is not a regular file")
                data = f.read() if size is None else f.read(size + 1)
        if size is not None and len(data) != size:
            raise DigestMismatchError(f"blob {d} has {len(data)} bytes, expected {size}: the store is corrupt")
        actual = sha256_digest(data)
        if actual != d:
            raise DigestMismatchError(f"blob {d} reads back as {actual}: the store is corrupt")
        return data

    def has(self, digest: str) -> bool:
        d = _digest(digest)
        if self._memory is not None:
            return d.hex in self._memory
        return (self._blobs / d.hex).is_file()

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and self.has(digest)

    def size(self, digest: str) -> int:
        d = _digest(digest)
        if self._memory is not None:
            if d.hex not in self._memory:
                raise BlobNotFoundError(f"blob {d} not found")
            return len(self._memory[d.hex])
        try:
            return (self._blobs / d.hex).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {d} not found") from None

    def delete(self, digest: str) -> bool:
        """Remove a blob; ``False`` if it was not there."""
        d = _digest(digest)
        if self._memory is not None:
            return self._memory.pop(d.hex, None) is not None
        try:
            os.unlink(self._blobs / d.hex)
        except FileNotFoundError:
            return False
        _fsync_dir(self._blobs)
        return True

    def digests(self) -> list[Digest]:
        if self._memory is not None:
            names: Iterable[str] = self._memory
        else:
            names = os.listdir(self._blobs)
        return sorted(Digest("sha256:" + n) for n in names if _HEX64.match(n))

    def __iter__(self) -> Iterator[Digest]:
        return iter(self.digests())

    def __len__(self) -> int:
        return len(self.digests())

    def sizes(self) -> dict[Digest, int]:
        return {d: self.size(d) for d in self.digests()}

    def total_size(self) -> int:
        return sum(self.sizes().values())

    def verify(self) -> list[Digest]:
        """Re-hash every blob (``fsck``); returns the corrupt ones."""
        bad = []
        for d in self.digests():
            try:
                self.get(d)
            except DigestMismatchError:
                bad.append(d)
        return bad

    # -- reference counting (docker system df)

    @staticmethod
    def reference_counts(owners: Mapping[K, Iterable[str]]) -> dict[Digest, int]:
        """How many owners reference each blob (an owner naming a blob twice counts once)."""
        counts: dict[Digest, int] = {}
        for blobs in owners.values():
            for d in {_digest(b) for b in blobs}:
                counts[d] = counts.get(d, 0) + 1
        return counts

    def usage(self, owners: Mapping[K, Iterable[str]]) -> dict[K, Usage]:
        """Per owner: total, shared (referenced by 2+ owners) and unique bytes."""
        owned = {k: {_digest(b) for b in blobs} for k, blobs in owners.items()}
        counts = self.reference_counts(owned)
        sizes = {d: self.size(d) for d in counts}
        out: dict[K, Usage] = {}
        for key, blobs in owned.items():
            total = sum(sizes[d] for d in blobs)
            shared = sum(sizes[d] for d in blobs if counts[d] > 1)
            out[key] = Usage(total, shared, total - shared)
        return out

    def unreferenced(self, owners: Mapping[K, Iterable[str]]) -> list[Digest]:
        """Blobs no owner references (what a garbage collection would delete)."""
        used = set(self.reference_counts(owners))
        return [d for d in self.digests() if d not in used]

    def __repr__(self) -> str:
        where = "memory" if self._root is None else str(self._root)
        return f"<ContentStore {where}: {len(self)} blobs>"


# -- ImageStore ---------------------------------------------------------------------------------


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


@dataclass
class _Image:
    manifest_digest: Digest
    manifest_bytes: bytes
    manifest: Manifest
    config: ImageConfig
    parent: Digest | None = None
    added: int = 0  # insertion order, for a stable listing

    def blobs(self) -> list[Digest]:
        return [self.manifest_digest, _digest(self.manifest.config.digest)] + [_digest(d.digest) for d in self.manifest.layers]


@dataclass
class _Staged:
    """An image read from an archive, every blob verified, nothing committed yet."""

    manifest_digest: Digest
    manifest_bytes: bytes
    manifest_media_type: str
    manifest: Manifest
    config: ImageConfig
    blobs: dict[Digest, tuple[bytes, str]] = field(default_factory=dict)
    names: list[Reference] = field(default_factory=list)


class ImageStore:
    """Images and tags over a :class:`ContentStore`; ``ImageStore(folder)`` persists as an OCI layout.

    The folder form *is* an OCI image layout: ``oci-layout``, ``index.json``
    (one descriptor per tag, carrying ``org.opencontainers.image.ref.name`` and
    ``io.containerd.image.name``; untagged images appear once, unnamed) and
    ``blobs/sha256/``, plus the ``ingest/`` area.  ``index.json`` is replaced
    atomically and is the commit point: blobs are written before it, and
    deleted after it.  One writer at a time.

    The store owns every blob of its content store: :meth:`gc` deletes blobs
    no image references.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, content: ContentStore | None = None) -> None:
        if content is not None and root is not None:
            raise ValueError("give a folder or a content store, not both")
        self.content = content if content is not None else ContentStore(root)
        self._images: dict[Digest, _Image] = {}
        self._tags: dict[str, Digest] = {}  # full reference -> image ID
        self._counter = 0
        if self.content.root is not None:
            self._read_index()

    # -- persistence (folder form) ------------------------------------------------------------

    def _index_path(self) -> Path:
        assert self.content.root is not None
        return self.content.root / "index.json"

    def _index(self) -> Index:
        entries: list[Descriptor] = []
        for image_id, image in sorted(self._images.items(), key=lambda kv: kv[1].added):
            base = Descriptor(image.manifest.media_type or MEDIA_TYPE_OCI_MANIFEST, image.manifest_digest, len(image.manifest_bytes))
            extra = {ANNOTATION_PARENT: str(image.parent)} if image.parent else {}
            tags = sorted(t for t, i in self._tags.items() if i == image_id)
            if not tags:
                entries.append(base.with_annotations(extra))
            for tag in tags:
                ref = parse_reference(tag)
                entries.append(base.with_annotations({**extra, ANNOTATION_CONTAINERD_IMAGE_NAME: tag, ANNOTATION_REF_NAME: ref.tag or ""}))
        return Index(tuple(entries))

    def _write_index(self) -> None:
        if self.content.root is None:
            return
        root = self.content.root
        layout = root / "oci-layout"
        if not layout.exists():
            _atomic_write(layout, canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
        _atomic_write(self._index_path(), self._index().to_json())

    def _read_index(self) -> None:
        path = self._index_path()
        if not path.exists():
            return
        index = Index.from_json(path.read_bytes(), content_type=None)
        for desc in index.manifests:
            manifest_bytes = self.content.get(desc.digest, size=desc.size) if desc.media_type in MANIFEST_MEDIA_TYPES else b""
            manifest = Manifest.from_json(manifest_bytes, content_type=desc.media_type) if manifest_bytes else None
            foreign = (
                manifest is None
                or manifest.config.media_type not in CONFIG_MEDIA_TYPES
                or (ANNOTATION_REF_NAME in desc.annotations and ANNOTATION_CONTAINERD_IMAGE_NAME not in desc.annotations)
            )
            if foreign:
                # Rewriting index.json or collecting garbage here would destroy another tool's data.
                raise ImageFormatError(
                    f"{self.content.root} is an OCI layout another tool wrote ({desc.media_type} {desc.digest}); "
                    "an ImageStore folder must be its own: use ImageStore().load(folder) to import it"
                )
            assert manifest is not None
            config = ImageConfig.from_json(self.content.get(manifest.config.digest, size=manifest.config.size))
            validate_image(manifest, config)
            image_id = _digest(manifest.config.digest)
            if image_id not in self._images:
                parent = desc.annotations.get(ANNOTATION_PARENT)
                self._images[image_id] = _Image(
                    _digest(desc.digest), manifest_bytes, manifest, config, _digest(parent) if parent else None, self._tick()
                )
            name = desc.annotations.get(ANNOTATION_CONTAINERD_IMAGE_NAME)
            if name:
                self._tags[str(parse_reference(name))] = image_id

    def _tick(self) -> int:
        self._counter += 1
        return self._counter

    # -- records --------------------------------------------------------------------------------

    def _record(self, image_id: Digest) -> ImageRecord:
        image = self._images[image_id]
        tags = tuple(sorted(t for t, i in self._tags.items() if i == image_id))
        return ImageRecord(image_id, image.manifest_digest, image.manifest, image.config, tags, image.parent)

    def list(self, *, all: bool = False) -> builtins.list[ImageRecord]:
        """Images newest first (by ``created``, then most recently added), like ``docker images``.

        Untagged images that other images were built from (intermediate images)
        are hidden unless ``all``, as ``docker images -a`` shows them.
        """
        records = [self._record(i) for i in self._images]
        if not all:
            records = [r for r in records if r.repo_tags or not self._children(r.id)]
        return sorted(records, key=lambda r: (r.created or "", self._images[r.id].added), reverse=True)

    def __len__(self) -> int:
        return len(self._images)

    def __contains__(self, ref_or_id: object) -> bool:
        if not isinstance(ref_or_id, str):
            return False
        try:
            self.resolve(ref_or_id)
        except (ImageNotFoundError, InvalidReferenceError):
            return False
        return True

    def tags(self) -> dict[str, Digest]:
        """Every tag (full reference) -> the digest of the manifest it names."""
        return {t: self._images[i].manifest_digest for t, i in sorted(self._tags.items())}

    def _children(self, image_id: Digest) -> builtins.list[Digest]:
        return [i for i, image in self._images.items() if image.parent == image_id]

    # -- lookup ---------------------------------------------------------------------------------

    def _lookup(self, text: str) -> tuple[Digest, str | None]:
        """(image ID, the tag it was found by or None) as ``docker`` resolves a name or an ID."""
        if not isinstance(text, str):
            raise TypeError("an image reference or ID is a str")
        if is_image_id(text):
            full = _digest("sha256:" + text.removeprefix("sha256:"))
            if full in self._images:
                return full, None
            raise ImageNotFoundError(f"No such image: {text}")
        ref = parse_reference(text)  # InvalidReferenceError with Docker's message
        if ref.digest is not None:
            for tag, image_id in self._tags.items():
                if parse_reference(tag).repository == ref.repository and self._images[image_id].manifest_digest == ref.digest:
                    return image_id, None
        elif str(ref) in self._tags:
            return self._tags[str(ref)], str(ref)
        prefix = text.removeprefix("sha256:")
        if _HEX_PREFIX.match(prefix):
            found = [i for i in self._images if i.hex.startswith(prefix)]
            if len(found) == 1:
                return found[0], None
            if len(found) > 1:
                raise ImageNotFoundError(f"No such image: {text} (ambiguous: {len(found)} image IDs start with it)")
        raise ImageNotFoundError(f"No such image: {ref.familiar}")

    def resolve(self, ref_or_id: str) -> ImageRecord:
        """An image by tag (``ubuntu``, ``ubuntu:22.04``, ``repo@sha256:<manifest>``), full ID or ID prefix."""
        return self._record(self._lookup(ref_or_id)[0])

    # -- adding ---------------------------------------------------------------------------------

    def add(
        self,
        layers: Sequence[Layer],
        config: ImageConfig | None = None,
        *,
        tags: Iterable[str] = (),
        parent: str | None = None,
    ) -> ImageRecord:
        """Store an image made of ``layers`` (bottom first) and ``config``; tag it.

        Each layer is stored as its uncompressed OCI tar (honouring
        ``SOURCE_DATE_EPOCH``), so its blob digest equals its DiffID, and a
        layer already stored (another image's base) is not stored again.
        ``config.rootfs.diff_ids`` must list the layers' DiffIDs; without a
        config, a minimal one for this host's platform is made.  ``parent`` is
        the image a build started from (``docker rmi`` will not delete it
        while this one exists).
        """
        refs = [self._tag_ref(t) for t in tags]
        parent_id = self._lookup(parent)[0] if parent is not None else None
        blobs = [layer.tar_bytes() for layer in layers]
        diff_ids = tuple(sha256_digest(b) for b in blobs)
        if config is None:
            plat = host_platform()
            config = ImageConfig(plat.architecture, plat.os, RootFS(diff_ids), variant=plat.variant)
        elif tuple(config.rootfs.diff_ids) != diff_ids:
            raise ImageFormatError(
                f"config.rootfs.diff_ids {list(config.rootfs.diff_ids)} do not match the layers' DiffIDs {list(diff_ids)}"
            )
        config_bytes = config.to_json()
        manifest = Manifest(
            config=Descriptor(MEDIA_TYPE_OCI_CONFIG, sha256_digest(config_bytes), len(config_bytes)),
            layers=tuple(Descriptor(MEDIA_TYPE_OCI_LAYER, d, len(b)) for d, b in zip(diff_ids, blobs)),
        )
        manifest_bytes = manifest.to_json()
        staged = _Staged(sha256_digest(manifest_bytes), manifest_bytes, MEDIA_TYPE_OCI_MANIFEST, manifest, config)
        for d, b in zip(diff_ids, blobs):
            staged.blobs[d] = (b, MEDIA_TYPE_OCI_LAYER)
        staged.blobs[_digest(manifest.config.digest)] = (config_bytes, MEDIA_TYPE_OCI_CONFIG)
        staged.names = refs
        image_id = self._commit([staged], parent=parent_id)[0]
        return self._record(image_id)

    def _commit(self, staged: Sequence[_Staged], *, parent: Digest | None = None) -> builtins.list[Digest]:
        """Blobs first (each verified by the content store), then the index: the commit point."""
        # One manifest per image ID: an image already stored keeps its manifest and only gains tags.
        new: dict[Digest, _Staged] = {}
        for image in staged:
            image_id = _digest(image.manifest.config.digest)
            if image_id not in self._images and image_id not in new:
                new[image_id] = image
        for image in new.values():
            for d, (data, media_type) in sorted(image.blobs.items()):
                if not self.content.has(d):
                    self.content.put(data, media_type, digest=d, size=len(data))
            if not self.content.has(image.manifest_digest):
                self.content.put(image.manifest_bytes, image.manifest_media_type, digest=image.manifest_digest)
        for image_id, image in new.items():
            self._images[image_id] = _Image(image.manifest_digest, image.manifest_bytes, image.manifest, image.config, parent, self._tick())
        ids = []
        for image in staged:
            image_id = _digest(image.manifest.config.digest)
            for ref in image.names:
                self._tags[str(ref)] = image_id
            ids.append(image_id)
        self._write_index()
        return ids

    # -- tags -----------------------------------------------------------------------------------

    @staticmethod
    def _tag_ref(text: str) -> Reference:
        ref = parse_reference(text)
        if ref.digest is not None:
            raise InvalidReferenceError("refusing to create a tag with a digest reference")
        return ref

    def tag(self, source: str, target: str) -> ImageRecord:
        """``docker tag SOURCE TARGET``: point ``target`` at the image ``source`` names (moving it if taken)."""
        image_id = self._lookup(source)[0]
        ref = self._tag_ref(target)
        self._tags[str(ref)] = image_id
        self._write_index()
        return self._record(image_id)

    def untag(self, ref: str) -> ImageRecord:
        """Remove one tag; the image stays (possibly dangling).  Returns the image as it is now."""
        parsed = parse_reference(ref)
        key = str(parsed)
        if key not in self._tags:
            raise ImageNotFoundError(f"No such image: {parsed.familiar}")
        image_id = self._tags.pop(key)
        self._write_index()
        return self._record(image_id)

    # -- removing -------------------------------------------------------------------------------

    def remove(self, ref_or_id: str, *, force: bool = False) -> RemoveResult:
        """``docker rmi``: untag, and delete the image once nothing names it.

        * By tag: the tag goes; the image goes with it if that was its last tag
          and no other image was built from it.
        * By ID: the image goes with all its tags.  Tags in several
          repositories need ``force``; dependent child images refuse it even
          then.  Parents left untagged and childless are pruned too.

        Blobs no remaining image references are deleted.  Every check runs
        before the first change.
        """
        image_id, by_tag = self._lookup(ref_or_id)
        record = self._record(image_id)
        short = image_id.short
        if by_tag is None:
            if self._children(image_id):
                raise ConflictError(f"conflict: unable to delete {short} (cannot be forced) - image has dependent child images")
            repos = {parse_reference(t).repository for t in record.repo_tags}
            if len(repos) > 1 and not force:
                raise ConflictError(
                    f"conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                )
            untag = list(record.repo_tags)
        else:
            untag = [by_tag]
        for tag in untag:
            del self._tags[tag]
        untagged = tuple(parse_reference(t).familiar for t in untag)
        deleted: builtins.list[Digest] = []
        candidate: Digest | None = image_id
        while candidate is not None and candidate in self._images:
            if any(i == candidate for i in self._tags.values()) or self._children(candidate):
                break
            parent = self._images.pop(candidate).parent
            deleted.append(candidate)
            candidate = parent
        self._write_index()  # the commit point; blobs go only after it
        freed, gone = self._delete_unreferenced()
        return RemoveResult(untagged, tuple(deleted), tuple(gone), freed)

    def _owners(self) -> dict[Digest, builtins.list[Digest]]:
        return {i: image.blobs() for i, image in self._images.items()}

    def _delete_unreferenced(self) -> tuple[int, builtins.list[Digest]]:
        freed, gone = 0, []
        for d in self.content.unreferenced(self._owners()):
            size = self.content.size(d)
            if self.content.delete(d):
                freed += size
                gone.append(d)
        return freed, gone

    def gc(self) -> RemoveResult:
        """Delete blobs no image references (what an interrupted add or remove may leave)."""
        freed, gone = self._delete_unreferenced()
        return RemoveResult(deleted_blobs=tuple(gone), freed_bytes=freed)

    # -- contents -------------------------------------------------------------------------------

    def manifest_bytes(self, ref_or_id: str | ImageRecord) -> bytes:
        record = ref_or_id if isinstance(ref_or_id, ImageRecord) else self.resolve(ref_or_id)
        return self.content.get(record.manifest_digest)

    def config_bytes(self, ref_or_id: str | ImageRecord) -> bytes:
        """The config exactly as stored: its sha256 is the ImageID."""
        record = ref_or_id if isinstance(ref_or_id, ImageRecord) else self.resolve(ref_or_id)
        return self.content.get(record.manifest.config.digest, size=record.manifest.config.size)

    def layer_tar(self, record: ImageRecord, index: int) -> bytes:
        """Layer ``index`` (0 = base) as an uncompressed tar, verified against its DiffID."""
        desc = record.manifest.layers[index]
        blob = self.content.get(desc.digest, size=desc.size)
        tar = _decompress(blob, layer_compression(desc.media_type))
        if sha256_digest(tar) != record.diff_ids[index]:
            raise DigestMismatchError(f"layer {index} of {record.short_id} does not match its DiffID {record.diff_ids[index]}")
        return tar

    def load_layers(self, record: ImageRecord | str) -> builtins.list[Layer]:
        """The image's layers, bottom first, as frozen :class:`~sim.layers.layer.Layer` objects."""
        if isinstance(record, str):
            record = self.resolve(record)
        return [Layer.from_tar(io.BytesIO(self.layer_tar(record, i))) for i in range(len(record.layers))]

    # -- disk usage -----------------------------------------------------------------------------

    def usage(self) -> dict[Digest, Usage]:
        """Per image ID: layer bytes in total, shared with other images, and unique (``docker system df -v``)."""
        return self.content.usage({i: [d.digest for d in image.manifest.layers] for i, image in self._images.items()})

    def layer_bytes(self) -> int:
        """Bytes of distinct layer blobs: each shared layer counted once."""
        layers = {_digest(d.digest): d.size for image in self._images.values() for d in image.manifest.layers}
        return sum(layers.values())

    # -- docker save / docker load ------------------------------------------------------------

    def _save_selection(self, refs: Sequence[str]) -> dict[Digest, set[str]]:
        chosen: dict[Digest, set[str]] = {}
        for text in refs:
            try:
                ref: Reference | None = parse_reference(text, default_tag=None)
            except InvalidReferenceError:
                ref = None
            if ref is not None and ref.tag is None and ref.digest is None:
                # docker save REPO: every tag of the repository
                tags = [t for t in self._tags if parse_reference(t).repository == ref.repository]
                if tags:
                    for tag in tags:
                        chosen.setdefault(self._tags[tag], set()).add(tag)
                    continue
            image_id, by_tag = self._lookup(text)
            names = chosen.setdefault(image_id, set())
            if by_tag is not None:
                names.add(by_tag)
        return chosen

    def save(self, refs: Sequence[str], fileobj: IO[bytes]) -> None:
        """``docker save``: an OCI layout tar with ``manifest.json`` and ``repositories``, byte-reproducible.

        A name with a tag saves that tag; a name without one saves every tag
        of the repository; an ID saves the image untagged.  Entries are sorted,
        owned by 0:0, dated 0, so the same images always give the same bytes.
        """
        if isinstance(refs, str):
            refs = [refs]
        chosen = self._save_selection(refs)
        files: dict[str, bytes] = {}
        index_entries: builtins.list[Descriptor] = []
        legacy: builtins.list[dict[str, Any]] = []
        repositories: dict[str, dict[str, str]] = {}
        for image_id in sorted(chosen):
            image = self._images[image_id]
            record = self._record(image_id)
            for d in image.blobs():
                files[f"blobs/sha256/{d.hex}"] = self.content.get(d)
            base = Descriptor(image.manifest.media_type or MEDIA_TYPE_OCI_MANIFEST, image.manifest_digest, len(image.manifest_bytes))
            names = sorted(chosen[image_id])
            if not names:
                index_entries.append(base)
            for name in names:
                ref = parse_reference(name)
                index_entries.append(base.with_annotations({ANNOTATION_CONTAINERD_IMAGE_NAME: name, ANNOTATION_REF_NAME: ref.tag or ""}))
                if record.layers:
                    repositories.setdefault(ref.familiar_name, {})[ref.tag or ""] = _digest(record.layers[-1].digest).hex
            legacy.append({
                "Config": f"blobs/sha256/{_digest(image.manifest.config.digest).hex}",
                "RepoTags": [parse_reference(n).familiar for n in names] or None,
                "Layers": [f"blobs/sha256/{_digest(d.digest).hex}" for d in image.manifest.layers],
            })
        files["oci-layout"] = canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION})
        files["index.json"] = Index(tuple(index_entries)).to_json()
        # Go's encoding/json as docker writes these two: struct field order, a final newline.
        files["manifest.json"] = (json.dumps(legacy, separators=(",", ":")) + "\n").encode()
        if repositories:
            files["repositories"] = (json.dumps(repositories, separators=(",", ":"), sort_keys=True) + "\n").encode()
        _write_tar(files, fileobj)

    def load(
        self,
        source: IO[bytes] | str | os.PathLike[str],
        *,
        repository: str | None = None,
        platform: Platform | None = None,
    ) -> builtins.list[ImageRecord]:
        """``docker load``: read a ``docker save`` tar (old or new) or an OCI layout (tar or folder).

        Every blob's size and sha256 and every layer's DiffID are checked
        before anything is stored; one bad blob loads nothing.  Tags come
        from ``io.containerd.image.name``, else from
        ``org.opencontainers.image.ref.name`` when it is a full reference; a
        bare tag (``latest``, as skopeo and umoci write) is joined to
        ``repository`` if given, and otherwise the image loads untagged.
        Unknown files, unknown media types and non-image artifacts are
        skipped.  From a nested index, the first manifest for ``platform``
        (default: this host's) is taken.
        """
        reader = _open_source(source)
        staged = _read_archive(reader, repository=repository, platform=platform or host_platform())
        ids = self._commit(staged)
        seen: dict[Digest, None] = dict.fromkeys(ids)
        return [self._record(i) for i in seen]

    def __repr__(self) -> str:
        where = "memory" if self.content.root is None else str(self.content.root)
        return f"<ImageStore {where}: {len(self._images)} images, {len(self._tags)} tags>"


# -- archive helpers --------------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
    _fsync_dir(path.parent)


def _write_tar(files: Mapping[str, bytes], fileobj: IO[bytes]) -> None:
    dirs = sorted({"/".join(name.split("/")[:i]) for name in files for i in range(1, name.count("/") + 1)})
    entries: list[tuple[str, bytes | None]] = [(d, None) for d in dirs] + [(n, files[n]) for n in files]
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


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


def _open_source(source: IO[bytes] | str | os.PathLike[str]) -> _Source:
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


def _decompress(blob: bytes, compression: str | None) -> bytes:
    if compression is None:
        return blob
    if compression == "gzip":
        try:
            return gzip.decompress(blob)
        except (OSError, EOFError, zlib.error) as exc:
            raise DigestMismatchError(f"gzip layer does not decompress: {exc}") from exc
    raise ImageFormatError(f"{compression} layers cannot be read: this Python has no {compression} decompressor")


def _read_blob(source: _Source, desc: Descriptor, *, document: bool = False) -> bytes:
    """A blob the descriptor names, checked against its size and digest."""
    if not str(desc.digest).startswith("sha256:"):
        raise ImageFormatError(f"{desc.digest}: only sha256 blobs are supported")
    if document and desc.size > MAX_DOCUMENT_SIZE:
        raise DocumentTooLargeError(f"{desc.media_type} {desc.digest} is {desc.size} bytes; the limit is {MAX_DOCUMENT_SIZE} (4 MiB)")
    data = source.read(f"blobs/sha256/{_digest(desc.digest).hex}")
    if data is None:
        raise ImageFormatError(f"blob {desc.digest} ({desc.media_type}) is missing from the archive")
    if len(data) != desc.size:
        raise DigestMismatchError(f"blob {desc.digest} has {len(data)} bytes, the descriptor says {desc.size}")
    if sha256_digest(data) != desc.digest:
        raise DigestMismatchError(f"blob {desc.digest} does not match its digest (got {sha256_digest(data)})")
    return data


def _names(desc: Descriptor, repository: str | None) -> list[Reference]:
    full = desc.annotations.get(ANNOTATION_CONTAINERD_IMAGE_NAME)
    candidates = []
    if full:
        candidates.append(full)
    else:
        ref_name = desc.annotations.get(ANNOTATION_REF_NAME)
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


def _read_archive(source: _Source, *, repository: str | None, platform: Platform) -> list[_Staged]:
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


def _read_oci(source: _Source, index: Index, repository: str | None, platform: Platform) -> list[_Staged]:
    staged: dict[Digest, _Staged] = {}
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
        key = _digest(desc.digest) if str(desc.digest).startswith("sha256:") else None
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
        image = _Staged(_digest(desc.digest), manifest_bytes, desc.media_type, manifest, config, names=list(names))
        image.blobs[_digest(manifest.config.digest)] = (config_bytes, manifest.config.media_type)
        for i, (layer, diff_id) in enumerate(zip(manifest.layers, config.rootfs.diff_ids)):
            blob = _read_blob(source, layer)
            if sha256_digest(_decompress(blob, layer_compression(layer.media_type))) != diff_id:
                raise DigestMismatchError(f"layer {i} ({layer.digest}) does not match DiffID {diff_id} of the config")
            image.blobs[_digest(layer.digest)] = (blob, layer.media_type)
        staged[image.manifest_digest] = image
        order.append(image.manifest_digest)

    for desc in index.manifests:
        visit(desc, _names(desc, repository), 0)
    return [staged[d] for d in order]


def _read_legacy(source: _Source, data: bytes) -> list[_Staged]:
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
            tar = _decompress(blob, "gzip") if blob[:2] == b"\x1f\x8b" else blob
            if sha256_digest(tar) != diff_id:
                raise DigestMismatchError(f"layer {i} ({name}) does not match DiffID {diff_id} of the config")
            blobs[_digest(diff_id)] = (tar, MEDIA_TYPE_OCI_LAYER)
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
        out.append(_Staged(sha256_digest(manifest_bytes), manifest_bytes, MEDIA_TYPE_OCI_MANIFEST, manifest, config, blobs, names))
    return out

"""``ImageStore.export``'s writers: a ``docker save`` archive, an OCI layout tar, an OCI layout folder.

Three forms, one choice of layer compression:

* ``docker-archive``: what ``docker save`` (25+) writes (:func:`~sim.images._save.save_archive`):
  an OCI layout tar plus the legacy ``manifest.json`` and ``repositories``;
* ``oci-archive``: the same OCI layout tar without the Docker extras (skopeo's ``oci-archive:``);
* ``oci-dir``: an OCI image layout folder (skopeo's ``oci:``, umoci's ``--image DIR:TAG``).

``compression="gzip"`` rewrites each plain layer as deterministic gzip
(:mod:`sim.images._compress`): the config, so the ImageID, stays; the manifest
and its digest change.

Every check runs before the first byte is written: the options, the
destination's kind and state, the existing layout of a folder, two images
claiming one OCI tag, and the gzip transform itself.  A folder is written
blobs first (each through a temporary file and a rename), ``oci-layout`` next
and ``index.json`` last, replaced atomically: a crash leaves the old index (or
none) and at most unreferenced blobs, which the layout spec allows.  A tar
written to a path appears under its name only once complete.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import uuid
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import IO

from sim.digest import Digest, sha256_digest
from sim.errors import TargetNotEmptyError
from sim.images._compress import ImageSource, ImageView, gzip_manifest
from sim.images._durable import AtomicFile, atomic_write, fsync_dir
from sim.images._layout import OCI_LAYOUT_VERSION, StoredImage
from sim.images._save import _write_tar, save_archive
from sim.images._sha256 import as_sha256
from sim.images.blobs import ContentStore
from sim.images.oci import (
    ANNOTATION_CONTAINERD_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    Descriptor,
    ImageFormatError,
    Index,
    Manifest,
    canonical_json,
)
from sim.images.reference import parse_reference

__all__ = ["EXPORT_FORMATS", "EXPORT_COMPRESSIONS", "ExportFormatError", "check_export_options", "export_images"]

#: The forms ``export`` writes, by the names skopeo gives its transports.
EXPORT_FORMATS: tuple[str, ...] = ("docker-archive", "oci-archive", "oci-dir")
#: The layer compressions ``export`` can apply (``None``: layers as stored, plain tars).
EXPORT_COMPRESSIONS: tuple[str, ...] = ("gzip",)

Dest = str | os.PathLike[str] | IO[bytes]
_Writer = Callable[[IO[bytes]], None]


class ExportFormatError(ImageFormatError):
    """An export that cannot be written as asked: an unknown format or compression, a destination
    of the wrong kind, or two images that one OCI layout tag (``ref.name``) would have to name."""


def check_export_options(format: str, compression: str | None, dest: Dest | None = None) -> None:
    """Refuse an unknown ``format`` or ``compression``, and a ``dest`` of the wrong kind for the format.

    ``oci-dir`` needs a path; the tar forms take a path (not a folder) or a
    binary file object.  Nothing is touched.
    """
    if format not in EXPORT_FORMATS:
        raise ExportFormatError(f"unknown export format {format!r}; one of: {', '.join(EXPORT_FORMATS)}")
    if compression is not None and compression not in EXPORT_COMPRESSIONS:
        raise ExportFormatError(f"unknown compression {compression!r}; one of: {', '.join(EXPORT_COMPRESSIONS)} (or None)")
    if dest is None:
        return
    if not isinstance(dest, (str, os.PathLike)):
        if format == "oci-dir":
            raise ExportFormatError("the oci-dir form is a folder: give a path, not a file object")
    elif format != "oci-dir" and Path(dest).is_dir():
        raise ExportFormatError(f"{os.fspath(dest)} is a folder; the {format} form is one tar file (use format='oci-dir')")


def export_images(
    store: ImageSource,
    selection: Sequence[tuple[ImageView, Collection[str]]],
    dest: Dest,
    *,
    format: str,
    compression: str | None,
) -> None:
    """Write ``selection`` (each image with the full references to name it by; none: untagged) to ``dest``."""
    check_export_options(format, compression, dest)
    layout: _Layout | None = None
    if format == "oci-dir":
        assert isinstance(dest, (str, os.PathLike))
        layout = _Layout.open(Path(dest), store)
    images, blobs = _prepare(store, selection, compression)
    entries = _index_entries(images)
    if format == "docker-archive":
        content = store.content if compression is None else _memory_content(images, blobs)
        _write_archive(dest, lambda fh: save_archive([(image, names) for image, names in images], content, fh))
        return
    if format == "oci-archive":
        files = {f"blobs/sha256/{d.hex}": blobs.get(d) for image, _ in images for d in image.blobs()}
        files["oci-layout"] = canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION})
        files["index.json"] = Index(tuple(entries)).to_json()
        _write_archive(dest, lambda fh: _write_tar(files, fh))
        return
    assert layout is not None
    _check_unique_ref_names(entries)
    layout.write(images, blobs, entries)


# -- what is written ---------------------------------------------------------------------------------


class _Blobs:
    """Blob bytes by digest: the transform's new blobs first, then the store's (verified on read)."""

    def __init__(self, content: ContentStore) -> None:
        self.content = content
        self.extra: dict[Digest, tuple[bytes, str]] = {}

    def get(self, digest: Digest) -> bytes:
        found = self.extra.get(digest)
        return found[0] if found is not None else self.content.get(digest)


def _prepare(
    store: ImageSource, selection: Sequence[tuple[ImageView, Collection[str]]], compression: str | None
) -> tuple[list[tuple[StoredImage, list[str]]], _Blobs]:
    blobs = _Blobs(store.content)
    images: list[tuple[StoredImage, list[str]]] = []
    for record, names in selection:
        if compression is None:
            manifest_bytes = store.manifest_bytes(record)
            image = StoredImage(record.manifest_digest, manifest_bytes, record.manifest, record.config)
        else:
            manifest_bytes, extra = gzip_manifest(store, record)
            manifest = Manifest.from_json(manifest_bytes)
            image = StoredImage(sha256_digest(manifest_bytes), manifest_bytes, manifest, record.config)
            blobs.extra.update(extra)
            blobs.extra[image.manifest_digest] = (manifest_bytes, image.descriptor().media_type)
        images.append((image, sorted(names)))
    return images, blobs


def _memory_content(images: Sequence[tuple[StoredImage, list[str]]], blobs: _Blobs) -> ContentStore:
    """The transformed images' blobs in an in-memory content store, as ``save_archive`` reads them."""
    content = ContentStore()
    for image, _ in images:
        for d in image.blobs():
            content.put(blobs.get(d), digest=d)
    return content


def _index_entries(images: Sequence[tuple[StoredImage, list[str]]]) -> list[Descriptor]:
    """One descriptor per name (the bare tag in ``ref.name``, the full name beside it), or one unnamed."""
    entries: list[Descriptor] = []
    for image, names in images:
        base = image.descriptor()
        if not names:
            entries.append(base)
        for name in names:
            tag = parse_reference(name).tag or ""
            entries.append(base.with_annotations({ANNOTATION_CONTAINERD_IMAGE_NAME: name, ANNOTATION_REF_NAME: tag}))
    return entries


def _check_unique_ref_names(entries: Sequence[Descriptor]) -> None:
    # skopeo takes the first entry with a ref.name and umoci refuses an ambiguous one: in a
    # folder layout a tag names one image, so two names with one tag cannot both be written.
    seen: dict[str, str] = {}
    for d in entries:
        tag = d.annotations.get(ANNOTATION_REF_NAME)
        if tag is None:
            continue
        name = d.annotations.get(ANNOTATION_CONTAINERD_IMAGE_NAME, tag)
        if tag in seen:
            raise ExportFormatError(
                f"{seen[tag]} and {name} would both be tag {tag!r} in the OCI layout "
                "(org.opencontainers.image.ref.name holds the bare tag): export them to separate folders"
            )
        seen[tag] = name


def _write_archive(dest: Dest, write: _Writer) -> None:
    if not isinstance(dest, (str, os.PathLike)):
        write(dest)
        return
    # The archive appears under its name complete, or not at all; a writer killed half-way leaves
    # no file anyone can see (an unnamed O_TMPFILE inode), see sim.images._durable.
    with AtomicFile(dest, fault="save") as fh:
        write(fh)  # type: ignore[arg-type]  # a binary file that only writes: all the tar writers need


# -- the folder form ---------------------------------------------------------------------------------


class _Layout:
    """An OCI layout folder to add to: new, empty, or a layout that is there already."""

    def __init__(self, root: Path, index: Index | None) -> None:
        self.root = root
        self.index = index  # None: no index.json yet

    @classmethod
    def open(cls, root: Path, store: ImageSource) -> _Layout:
        """Check ``root`` without changing it: missing, an empty folder, or an OCI layout (version 1.x)."""
        if os.path.lexists(root) and not root.is_dir():
            raise TargetNotEmptyError(f"{root} exists and is not a folder")
        if not root.exists():
            return cls(root, None)
        if store.content.root is not None and root.resolve() == store.content.root.resolve():
            raise ExportFormatError(f"{root} is the image store's own folder")
        marker = root / "oci-layout"
        if not os.path.lexists(marker):
            if any(root.iterdir()):
                raise TargetNotEmptyError(f"{root} is not empty and is not an OCI image layout (no oci-layout file)")
            return cls(root, None)
        try:
            version = json.loads(_read_regular(marker)).get("imageLayoutVersion")
        except (ValueError, AttributeError) as exc:
            raise ImageFormatError(f"{marker} is not valid JSON: {exc}") from exc
        if not isinstance(version, str) or version.split(".")[0] != "1":
            raise ImageFormatError(f"{marker}: unsupported imageLayoutVersion {version!r} (expected 1.x)")
        index_path = root / "index.json"
        if not os.path.lexists(index_path):
            return cls(root, None)
        return cls(root, Index.from_json(_read_regular(index_path)))

    def merged(self, new: Sequence[Descriptor]) -> Index:
        """The index after adding ``new``, as skopeo adds to a layout.

        An entry already there unchanged stays where it is.  A new entry takes
        its names over: an older entry with the same ``ref.name`` or
        ``io.containerd.image.name`` loses both, and an unnamed entry for a
        manifest a new entry names is dropped.  Everything else is kept.
        """
        old = list(self.index.manifests) if self.index is not None else []
        fresh = [d for d in new if d not in old]
        refs = {d.annotations[ANNOTATION_REF_NAME] for d in fresh if ANNOTATION_REF_NAME in d.annotations}
        names = {d.annotations[ANNOTATION_CONTAINERD_IMAGE_NAME] for d in fresh if ANNOTATION_CONTAINERD_IMAGE_NAME in d.annotations}
        new_digests = {d.digest for d in new}
        kept: list[Descriptor] = []
        for d in old:
            if d not in new and (d.annotations.get(ANNOTATION_REF_NAME) in refs
                                 or d.annotations.get(ANNOTATION_CONTAINERD_IMAGE_NAME) in names):
                d = d.with_annotations({k: v for k, v in d.annotations.items()
                                        if k not in (ANNOTATION_REF_NAME, ANNOTATION_CONTAINERD_IMAGE_NAME)})
            if d not in new and _unnamed(d) and d.digest in new_digests:
                continue
            kept.append(d)
        present = {d.digest for d in kept}
        for d in fresh:
            if _unnamed(d) and d.digest in present:
                continue  # an untagged export of a manifest the layout lists already
            kept.append(d)
            present.add(d.digest)
        if self.index is None:
            return Index(tuple(kept))
        return Index(tuple(kept), self.index.media_type, self.index.annotations)

    def write(self, images: Sequence[tuple[StoredImage, list[str]]], blobs: _Blobs, entries: Sequence[Descriptor]) -> None:
        """Blobs, then ``oci-layout`` if missing, then ``index.json`` atomically: the commit point."""
        index = self.merged(entries)
        folder = self.root / "blobs" / "sha256"
        folder.mkdir(parents=True, exist_ok=True)
        written = sorted({d for image, _ in images for d in image.blobs()})
        for d in written:
            self._put_blob(folder, d, blobs.get(d))
        for path in (folder, folder.parent, self.root):
            fsync_dir(path)
        if not os.path.lexists(self.root / "oci-layout"):
            atomic_write(self.root / "oci-layout", canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
        atomic_write(self.root / "index.json", index.to_json())

    def _put_blob(self, folder: Path, digest: Digest, data: bytes) -> None:
        target = folder / as_sha256(digest).hex
        if _holds(target, digest, len(data)):
            return  # content-addressed: the same name with the right bytes is the same blob
        # The temporary file lives at the layout's top, never in blobs/: tools that walk blobs/
        # (umoci gc) expect only digests there.
        tmp = self.root / f".layerlab-blob-{uuid.uuid4().hex}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _unnamed(d: Descriptor) -> bool:
    return ANNOTATION_REF_NAME not in d.annotations and ANNOTATION_CONTAINERD_IMAGE_NAME not in d.annotations


def _read_regular(path: Path) -> bytes:
    """A file of the layout, refused if it is a symlink or not a regular file (a layout is plain files)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageFormatError(f"{path} is a symlink; an OCI layout's files are regular files") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise ImageFormatError(f"{path} is not a regular file")
        return fh.read()


def _holds(path: Path, digest: Digest, size: int) -> bool:
    """Whether ``path`` is a regular file of ``size`` bytes whose sha256 is ``digest``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
        hasher = hashlib.sha256()
        while chunk := fh.read(1 << 20):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest() == digest

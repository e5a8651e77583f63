"""Images and tags over content-addressed storage; ``docker save`` and ``docker load``.

:class:`ImageStore` stores images (镜像) in a ContentStore: layer blobs
(uncompressed tars, so a layer's blob digest *is* its DiffID), the config and
the manifest, and tags (标签) ``repository:tag`` -> image.  A layer shared by
N images is stored once.  ``remove`` follows ``docker rmi``.  ``save`` writes
a ``docker save`` (Docker 25+) archive: an OCI image layout plus the legacy
``manifest.json`` and ``repositories``; ``load`` reads such archives, older
``docker save`` archives and OCI layout folders (skopeo, umoci), verifying
every blob and DiffID before anything is committed.  ``export`` writes the
same images as an OCI layout tar or folder too, optionally with gzip layers
(``_export``, ``_compress``).

The blobs live in a :class:`~sim.images.blobs.ContentStore` (also importable
from here, with :class:`BlobNotFoundError` and :class:`Usage`).
"""

from __future__ import annotations

import builtins
import io
import os
import re
from collections.abc import Iterable, Sequence
from typing import IO

from sim.digest import Digest, sha256_digest
from sim.errors import (
    ConflictError,
    DigestMismatchError,
    ImageNotFoundError,
    InvalidReferenceError,
)
from sim.images._export import ExportFormatError, check_export_options, export_images
from sim.images._faults import fault_point
from sim.images._image_record import ImageRecord, RemoveResult
from sim.images._index_state import IndexState
from sim.images._layout import ANNOTATION_PARENT, OCI_LAYOUT_VERSION, DamagedImage, StoredImage
from sim.images._load import Staged, decompress, open_source, read_archive, stream_diff_id
from sim.images._save import save_archive
from sim.images._sha256 import as_sha256
from sim.images.blobs import BlobNotFoundError, ContentStore, Usage
from sim.images.oci import (
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_MANIFEST,
    Descriptor,
    ImageConfig,
    ImageFormatError,
    Manifest,
    Platform,
    RootFS,
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
    "ExportFormatError",
    "DamagedImage",
]

_HEX_PREFIX = re.compile(r"^[a-f0-9]+$")


# -- ImageStore ---------------------------------------------------------------------------------


class ImageStore(IndexState):
    """Images and tags over a :class:`ContentStore`; ``ImageStore(folder)`` persists as an OCI layout.

    The folder form *is* an OCI image layout: ``oci-layout``, ``index.json``
    (one descriptor per tag, carrying ``org.opencontainers.image.ref.name`` and
    ``io.containerd.image.name``; untagged images appear once, unnamed) and
    ``blobs/sha256/``, plus the ``ingest/`` area.  ``index.json`` is replaced
    atomically and is the commit point: blobs are written before it, and
    deleted after it.

    Several processes may use one folder at once (see docs/concurrency.md):
    every change re-reads ``index.json`` and rewrites it under the exclusive
    store lock (``flock`` on the folder), so no change is lost; every read re-reads
    it (when it changed) under the shared lock.  A collection runs under the
    exclusive lock and keeps what any live lease names (:meth:`lease`).

    The store owns every blob of its content store: :meth:`gc` deletes blobs
    no image, damaged entry or live lease references.  An entry whose
    manifest or config cannot be read does not stop the store from opening:
    it is kept as a :class:`DamagedImage` (:meth:`damaged`) until
    :meth:`drop_damaged` removes it (``fsck --repair``).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, content: ContentStore | None = None) -> None:
        if content is not None and root is not None:
            raise ValueError("give a folder or a content store, not both")
        super().__init__(content if content is not None else ContentStore(root))

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
        self._refresh()
        records = [self._record(i) for i in self._images]
        if not all:
            records = [r for r in records if r.repo_tags or not self._children(r.id)]
        return sorted(records, key=lambda r: (r.created or "", self._images[r.id].added), reverse=True)

    def __len__(self) -> int:
        self._refresh()
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
        self._refresh()
        return {t: self._images[i].manifest_digest for t, i in sorted(self._tags.items())}

    def _children(self, image_id: Digest) -> builtins.list[Digest]:
        return [i for i, image in self._images.items() if image.parent == image_id]

    # -- lookup ---------------------------------------------------------------------------------

    def _lookup(self, text: str) -> tuple[Digest, str | None]:
        """(image ID, the tag it was found by or None) as ``docker`` resolves a name or an ID."""
        if not isinstance(text, str):
            raise TypeError("an image reference or ID is a str")
        self._refresh()
        if is_image_id(text):
            full = as_sha256("sha256:" + text.removeprefix("sha256:"))
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
        while this one exists); one that another process removed meanwhile is
        not recorded (the new image needs nothing of it: every layer is stored).
        """
        refs = [self._tag_ref(t) for t in tags]
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
        staged = Staged(sha256_digest(manifest_bytes), manifest_bytes, MEDIA_TYPE_OCI_MANIFEST, manifest, config)
        for d, b in zip(diff_ids, blobs):
            staged.blobs[d] = (b, MEDIA_TYPE_OCI_LAYER)
        staged.blobs[as_sha256(manifest.config.digest)] = (config_bytes, MEDIA_TYPE_OCI_CONFIG)
        staged.names = refs
        with self.transaction():
            parent_id = None
            if parent is not None:
                try:
                    parent_id = self._lookup(parent)[0]
                except ImageNotFoundError:
                    if not is_image_id(parent):
                        raise
            image_id = self._commit([staged], parent=parent_id)[0]
            return self._record(image_id)

    def add_pulled(self, manifest_bytes: bytes, media_type: str, *, tags: Iterable[str] = ()) -> ImageRecord:
        """Adopt a pulled manifest whose config and layers are already in the content store.

        The manifest is kept byte for byte (so its digest is the registry's);
        the config must parse and match the manifest, and every layer must be
        present with its size and decompress to its DiffID, before the image
        and ``tags`` are committed.  An image already stored keeps its own
        manifest and only gains the tags.
        """
        refs = [self._tag_ref(t) for t in tags]
        manifest = Manifest.from_json(manifest_bytes, content_type=media_type)
        fault_point("store.adopt")  # a pull's blobs are all stored (or found), its image not yet
        with self.transaction():
            return self._adopt(manifest_bytes, media_type, manifest, refs)

    def _adopt(self, manifest_bytes: bytes, media_type: str, manifest: Manifest, refs: builtins.list[Reference]) -> ImageRecord:
        config = ImageConfig.from_json(self.content.get(manifest.config.digest, size=manifest.config.size))
        validate_image(manifest, config)
        for i, (layer, diff_id) in enumerate(zip(manifest.layers, config.rootfs.diff_ids)):
            if self.content.size(layer.digest) != layer.size:
                raise DigestMismatchError(f"layer {i} ({layer.digest}) is not {layer.size} bytes")
            if layer_compression(layer.media_type) is None and as_sha256(layer.digest) == diff_id:
                continue  # an uncompressed blob's digest is its DiffID, checked when the blob was stored
            with self.content.open(layer.digest) as blob:
                if stream_diff_id(blob, layer_compression(layer.media_type)) != diff_id:
                    raise DigestMismatchError(f"layer {i} ({layer.digest}) does not match DiffID {diff_id} of the config")
        staged = Staged(sha256_digest(manifest_bytes), manifest_bytes, media_type, manifest, config, names=refs)
        return self._record(self._commit([staged])[0])

    def _commit(self, staged: Sequence[Staged], *, parent: Digest | None = None) -> builtins.list[Digest]:
        """Blobs first (each verified by the content store), then the index: the commit point.
        Call it inside :meth:`transaction`."""
        # One manifest per image ID: an image already stored keeps its manifest and only gains tags.
        new: dict[Digest, Staged] = {}
        for image in staged:
            image_id = as_sha256(image.manifest.config.digest)
            if image_id not in self._images and image_id not in new:
                new[image_id] = image
        for image in new.values():
            for d, (data, media_type) in sorted(image.blobs.items()):
                if not self.content.has(d):
                    self.content.put(data, media_type, digest=d, size=len(data))
            if not self.content.has(image.manifest_digest):
                self.content.put(image.manifest_bytes, image.manifest_media_type, digest=image.manifest_digest)
        for image_id, image in new.items():
            self._images[image_id] = StoredImage(image.manifest_digest, image.manifest_bytes, image.manifest, image.config, parent, self._tick())
        ids = []
        for image in staged:
            image_id = as_sha256(image.manifest.config.digest)
            for ref in image.names:
                self._tags[str(ref)] = image_id
            self._forget_damaged_names(str(ref) for ref in image.names)
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
        ref = self._tag_ref(target)
        with self.transaction():
            image_id = self._lookup(source)[0]
            self._tags[str(ref)] = image_id
            self._forget_damaged_names([str(ref)])
            self._write_index()
            return self._record(image_id)

    def untag(self, ref: str) -> ImageRecord:
        """Remove one tag; the image stays (possibly dangling).  Returns the image as it is now."""
        parsed = parse_reference(ref)
        key = str(parsed)
        with self.transaction():
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
        before the first change.  A tag naming a damaged entry (see
        :meth:`damaged`) removes that entry.
        """
        with self.transaction():
            damaged = self._damaged_by_name(ref_or_id)
            if damaged is not None:
                self._damaged.remove(damaged)
                self._write_index()
                freed, gone = self._delete_unreferenced()
                return RemoveResult((parse_reference(ref_or_id).familiar,), (), tuple(gone), freed)
            return self._remove(ref_or_id, force=force)

    def _damaged_by_name(self, text: str) -> DamagedImage | None:
        if is_image_id(text):
            return None
        try:
            key = str(parse_reference(text))
        except InvalidReferenceError:
            return None
        if key in self._tags:
            return None
        return next((d for d in self._damaged if d.name == key), None)

    def _remove(self, ref_or_id: str, *, force: bool) -> RemoveResult:
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

    def gc(self) -> RemoveResult:
        """Delete blobs no image, damaged entry or live lease references (what an interrupted add,
        remove, build or pull may leave)."""
        with self.transaction():
            freed, gone = self._delete_unreferenced()
        return RemoveResult(deleted_blobs=tuple(gone), freed_bytes=freed)

    def delete_images(self, image_ids: Iterable[str]) -> RemoveResult:
        """Delete exactly these images (full IDs) and their tags, then the blobs no image references.

        Unlike :meth:`remove` nothing else goes (no parent cascade) and nothing is refused: the caller
        (prune, fsck) decides what may go; a kept child's parent then names no image.  Unknown IDs are
        a :class:`ImageNotFoundError` before any change.
        """
        with self.transaction():
            return self._delete_images([as_sha256(i) for i in image_ids])

    def _delete_images(self, ids: builtins.list[Digest]) -> RemoveResult:
        missing = [i for i in ids if i not in self._images]
        if missing:
            raise ImageNotFoundError(f"No such image: {missing[0]}")
        untagged = tuple(parse_reference(t).familiar for t, i in sorted(self._tags.items()) if i in ids)
        self._tags = {t: i for t, i in self._tags.items() if i not in ids}
        for i in ids:
            self._images.pop(i, None)
        self._write_index()  # the commit point; blobs go only after it
        freed, gone = self._delete_unreferenced()
        return RemoveResult(untagged, tuple(dict.fromkeys(ids)), tuple(gone), freed)

    # -- contents -------------------------------------------------------------------------------

    def manifest_bytes(self, ref_or_id: str | ImageRecord) -> bytes:
        record = ref_or_id if isinstance(ref_or_id, ImageRecord) else self.resolve(ref_or_id)
        return self.content.get(record.manifest_digest)

    def config_bytes(self, ref_or_id: str | ImageRecord) -> bytes:
        """The config exactly as stored: its sha256 is the ImageID."""
        record = ref_or_id if isinstance(ref_or_id, ImageRecord) else self.resolve(ref_or_id)
        return self.content.get(record.manifest.config.digest, size=record.manifest.config.size)

    def layer_tar(self, record: ImageRecord, index: int) -> bytes:
        """Layer ``index`` (0 = base) as an uncompressed tar, verified against its DiffID.

        An image another process removed after it was looked up is an :class:`ImageNotFoundError`
        (its blobs may be gone); a blob missing from an image still stored stays a :class:`BlobNotFoundError`."""
        desc = record.manifest.layers[index]
        try:
            blob = self.content.get(desc.digest, size=desc.size)
        except BlobNotFoundError:
            # Removed (and perhaps stored again) by other processes since it was looked up: look again
            # under the shared lock, where every blob the index names is there.
            with self.content.lock.shared():
                self._refresh()
                if record.id not in self._images:
                    raise ImageNotFoundError(f"No such image: {record.short_id} (removed while it was read)") from None
                blob = self.content.get(desc.digest, size=desc.size)
        tar = decompress(blob, layer_compression(desc.media_type))
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
        self._refresh()
        return self.content.usage({i: [d.digest for d in image.manifest.layers] for i, image in self._images.items()})

    def layer_bytes(self) -> int:
        """Bytes of distinct layer blobs: each shared layer counted once."""
        self._refresh()
        layers = {as_sha256(d.digest): d.size for image in self._images.values() for d in image.manifest.layers}
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
        with self.content.lock.shared():  # no collection deletes a blob while it is copied out
            chosen = self._save_selection(refs)
            save_archive([(self._images[i], chosen[i]) for i in sorted(chosen)], self.content, fileobj)

    def export(
        self,
        refs: Sequence[str],
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        format: str = "docker-archive",
        compression: str | None = None,
    ) -> None:
        """Write images in a form other tools read: ``docker-archive``, ``oci-archive`` or ``oci-dir``.

        ``refs`` choose images as :meth:`save` does.  ``docker-archive`` is
        :meth:`save`'s archive; ``oci-archive`` the same OCI layout tar without
        ``manifest.json`` and ``repositories``; both go to a binary file object
        or a path (written under a temporary name, renamed once complete).
        ``oci-dir`` writes an OCI layout folder at the path ``dest``: missing,
        empty, or already a layout, which is added to (a tag already there
        moves to the new image); its ``index.json`` is replaced atomically,
        after every blob.  Each tag's entry carries the bare tag in
        ``org.opencontainers.image.ref.name`` and the full name in
        ``io.containerd.image.name``.  ``compression="gzip"`` stores plain
        layers as deterministic gzip (``tar+gzip``, see ``sim.images._compress``):
        the ImageID stays, the manifest digest changes.

        Raises :class:`ExportFormatError` (a ``ValueError``) for an unknown
        format or compression, a destination of the wrong kind, or two names
        with one tag in an ``oci-dir``; ``TargetNotEmptyError`` for a non-empty
        folder that is not a layout; ``ImageNotFoundError`` for a missing
        image.  Every check runs before anything is written.
        """
        check_export_options(format, compression, dest)
        if isinstance(refs, str):
            refs = [refs]
        with self.content.lock.shared():  # no collection deletes a blob while it is copied out
            chosen = self._save_selection(refs)
            selection = [(self._record(i), sorted(chosen[i])) for i in sorted(chosen)]
            export_images(self, selection, dest, format=format, compression=compression)

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
        reader = open_source(source)
        staged = read_archive(reader, repository=repository, platform=platform or host_platform())
        with self.transaction():
            ids = self._commit(staged)
            seen: dict[Digest, None] = dict.fromkeys(ids)
            return [self._record(i) for i in seen]

    def __repr__(self) -> str:
        where = "memory" if self.content.root is None else str(self.content.root)
        return f"<ImageStore {where}: {len(self._images)} images, {len(self._tags)} tags>"

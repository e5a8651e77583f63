"""Push and pull, written once over :class:`~sim.registries.api.RegistryClient`.

Push (``docker push``): blobs first, the config and every layer, each one
skipped when the repository has it (``HEAD``), mounted from another repository
of the same registry when one is known to hold it, else uploaded; the
manifest last, byte for byte as the store keeps it, so the registry's digest
is the local one.

Pull (``docker pull``): the manifest by tag or digest (its sha256 checked
against the digest asked for and the ``Docker-Content-Digest`` sent); an index
resolved to one platform and that manifest fetched by digest; then the config
and each layer the store lacks, streamed into a resumable
:class:`~sim.images.blobs.Download` that checks size and sha256 as the bytes
arrive and publishes the blob only when both match.  A connection lost
half-way keeps the bytes so far and resumes with ``Range`` (here, up to
``retries`` times, or in the next run); a registry that ignores the range
starts the blob again.  The image is committed last
(:meth:`~sim.images.store.ImageStore.add_pulled`, which checks every layer
against its DiffID): nothing partial is ever visible.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, TypeVar, cast

from sim.digest import Digest, sha256_digest
from sim.errors import DigestMismatchError, ImageNotFoundError, RegistryUnavailableError
from sim.images._sha256 import as_sha256
from sim.images.blobs import ContentStore
from sim.images.oci import (
    MEDIA_TYPE_OCI_MANIFEST,
    Descriptor,
    DocumentTooLargeError,
    ImageFormatError,
    Index,
    Manifest,
    Platform,
    host_platform,
    parse_document,
)
from sim.images.store import ImageRecord, ImageStore
from sim.registries.api import MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, RegistryClient
from sim.registries.progress import Quiet, TransferProgress

__all__ = ["BlobTransfer", "PushResult", "PullResult", "push", "pull", "fetch_manifest"]


@dataclass(frozen=True)
class BlobTransfer:
    """One blob of a push or pull.

    ``action``: for a push ``"exists"`` (the registry had it: 0 bytes sent),
    ``"mounted"`` (linked from ``origin``, another repository: 0 bytes) or
    ``"uploaded"``; for a pull ``"present"`` (the store had it: 0 bytes),
    ``"downloaded"`` or ``"resumed"`` (only the missing bytes crossed).
    ``bytes`` is what crossed the link for it; ``origin``, where a mirror says
    they came from (``"cache"`` or ``"upstream"``), else the mounted repository.
    """

    digest: Digest
    size: int
    kind: str  # "config" or "layer"
    action: str
    bytes: int
    origin: str | None = None


@dataclass(frozen=True)
class PushResult:
    registry: str
    repository: str
    tag: str
    digest: Digest  # the manifest's: what `docker push` prints as "digest: sha256:..."
    manifest_size: int
    blobs: tuple[BlobTransfer, ...]
    seconds: float

    @property
    def bytes_sent(self) -> int:
        return sum(b.bytes for b in self.blobs) + self.manifest_size

    def lines(self) -> list[str]:
        """What ``docker push`` prints."""
        words = {"exists": "Layer already exists", "mounted": "Mounted from", "uploaded": "Pushed"}
        out = [f"{b.digest.hex[:12]}: {words[b.action]}" + (f" {b.origin}" if b.action == "mounted" else "")
               for b in self.blobs if b.kind == "layer"]
        return out + [f"{self.tag}: digest: {self.digest} size: {self.manifest_size}"]


@dataclass(frozen=True)
class PullResult:
    registry: str
    repository: str
    reference: str
    digest: Digest  # the platform manifest's digest
    index_digest: Digest | None  # the index's, when the reference named one
    image_id: Digest
    blobs: tuple[BlobTransfer, ...]
    manifest_bytes: int
    seconds: float

    @property
    def bytes_received(self) -> int:
        return sum(b.bytes for b in self.blobs) + self.manifest_bytes

    def lines(self) -> list[str]:
        """What ``docker pull`` prints."""
        words = {"present": "Already exists", "downloaded": "Pull complete", "resumed": "Pull complete (resumed)"}
        out = [f"{b.digest.hex[:12]}: {words[b.action]}" for b in self.blobs if b.kind == "layer"]
        return out + [f"Digest: {self.index_digest or self.digest}"]


#: Blobs moved at once, as Docker's max-concurrent-uploads/downloads (3) and skopeo (5) do.
DEFAULT_JOBS = 4

T = TypeVar("T")
R = TypeVar("R")


def _each(function: Callable[[T], R], items: Sequence[T], jobs: int) -> list[R]:
    """``function`` over ``items`` with up to ``jobs`` threads; results in order; the first error wins."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    if jobs == 1 or len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(jobs, len(items)), thread_name_prefix="layerlab-transfer") as pool:
        futures = [pool.submit(function, item) for item in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


# -- push --------------------------------------------------------------------------------------


def push(
    store: ImageStore,
    record: ImageRecord,
    client: RegistryClient,
    repository: str,
    tag: str,
    *,
    mount_from: Sequence[str] | Mapping[Digest, Sequence[str]] = (),
    chunk_size: int | None = None,
    progress: TransferProgress | None = None,
    jobs: int = DEFAULT_JOBS,
) -> PushResult:
    """Push ``record`` to ``repository:tag`` of ``client``'s registry.

    ``mount_from``: repositories of the same registry that may hold the blobs
    (tried in order with a cross-repository mount before uploading), for
    every blob or per blob digest.  ``jobs``: how many blobs are checked and sent at once
    (Docker pushes several layers at a time too); the manifest always goes last.
    ``chunk_size``: upload in ``PATCH`` chunks of that size instead of one ``PUT``.
    """
    started = time.perf_counter()
    progress = progress or Quiet()
    manifest_bytes = store.manifest_bytes(record)
    manifest = record.manifest
    work = [(d, "layer") for d in manifest.layers] + [(manifest.config, "config")]

    def one(item: tuple[Descriptor, str]) -> BlobTransfer:
        desc, kind = item
        candidates = mount_from.get(as_sha256(desc.digest), ()) if isinstance(mount_from, Mapping) else mount_from
        return _push_blob(store.content, client, repository, desc, kind, candidates, chunk_size, progress)

    blobs = _each(one, work, jobs)
    digest = client.put_manifest(repository, tag, manifest_bytes, manifest.media_type or MEDIA_TYPE_OCI_MANIFEST)
    if digest != record.manifest_digest:
        raise DigestMismatchError(f"{client.name} stored the manifest as {digest}, not {record.manifest_digest}")
    return PushResult(client.name, repository, tag, digest, len(manifest_bytes), tuple(blobs),
                      time.perf_counter() - started)


def _push_blob(content: ContentStore, client: RegistryClient, repository: str, desc: Descriptor, kind: str,
               mount_from: Sequence[str], chunk_size: int | None, progress: TransferProgress) -> BlobTransfer:
    digest = as_sha256(desc.digest)
    if client.stat_blob(repository, digest) == desc.size:
        progress.finish(digest, "Layer already exists")
        return BlobTransfer(digest, desc.size, kind, "exists", 0)
    for other in mount_from:
        if other != repository and client.mount_blob(repository, digest, other):
            progress.finish(digest, f"Mounted from {other}")
            return BlobTransfer(digest, desc.size, kind, "mounted", 0, other)
    progress.start(digest, desc.size, what="Pushing")
    with content.open(digest) as source:
        client.put_blob(repository, digest, desc.size, cast(IO[bytes], _Reported(source, digest, progress)),
                        chunk_size=chunk_size)
    progress.finish(digest, "Pushed")
    return BlobTransfer(digest, desc.size, kind, "uploaded", desc.size)


class _Reported:
    """A readable file that tells ``progress`` how far it has been read."""

    def __init__(self, source: object, digest: str, progress: TransferProgress) -> None:
        self._source = source
        self._digest = digest
        self._progress = progress

    def read(self, n: int = -1) -> bytes:
        chunk: bytes = self._source.read(n)  # type: ignore[attr-defined]
        self._progress.advance(self._digest, len(chunk))
        return chunk

    def seekable(self) -> bool:
        return bool(self._source.seekable())  # type: ignore[attr-defined]

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._source.seek(offset, whence))  # type: ignore[attr-defined]

    def tell(self) -> int:
        return int(self._source.tell())  # type: ignore[attr-defined]


# -- pull --------------------------------------------------------------------------------------


def fetch_manifest(client: RegistryClient, repository: str, reference: str, *,
                   accept: Sequence[str] = MANIFEST_ACCEPT) -> tuple[bytes, str, Manifest | Index]:
    """The manifest or index ``reference`` names, verified: its size limit, its digest, its media type."""
    answer = client.get_manifest(repository, reference, accept=accept)
    if len(answer.data) > MAX_MANIFEST_BYTES:
        raise DocumentTooLargeError(f"manifest of {repository}:{reference} is {len(answer.data)} bytes, over {MAX_MANIFEST_BYTES}")
    actual = sha256_digest(answer.data)
    if ":" in reference and actual != as_sha256(reference):
        raise DigestMismatchError(f"{client.name} answered {repository}@{reference} with a manifest whose sha256 is {actual}")
    if answer.digest is not None and answer.digest != actual:
        raise DigestMismatchError(f"{client.name} claimed digest {answer.digest} for a manifest whose sha256 is {actual}")
    media_type = answer.media_type.split(";", 1)[0].strip()
    return answer.data, media_type, parse_document(answer.data, content_type=media_type)


def pull(
    store: ImageStore,
    client: RegistryClient,
    repository: str,
    reference: str,
    *,
    tags: Sequence[str] = (),
    platform: Platform | None = None,
    retries: int = 3,
    progress: TransferProgress | None = None,
    jobs: int = DEFAULT_JOBS,
) -> PullResult:
    """Pull ``repository`` at ``reference`` (a tag or ``sha256:...``) into ``store`` and tag it ``tags``.

    ``platform`` (default: this host's) chooses from an index.  ``retries``:
    how many times a blob whose connection broke is resumed in this call.
    ``jobs``: how many blobs download at once (each into its own verified download).
    """
    started = time.perf_counter()
    progress = progress or Quiet()
    platform = platform or host_platform()
    data, media_type, document = fetch_manifest(client, repository, reference)
    received = len(data)
    index_digest: Digest | None = None
    if isinstance(document, Index):
        index_digest = sha256_digest(data)
        chosen = next((m for m in document.manifests if m.platform is None or platform.matches(m.platform)), None)
        if chosen is None:
            offered = ", ".join(str(m.platform) for m in document.manifests if m.platform is not None) or "none"
            raise ImageNotFoundError(f"no matching manifest for {platform} in the manifest list entries (offered: {offered})")
        data, media_type, document = fetch_manifest(client, repository, str(chosen.digest))
        received += len(data)
        if len(data) != chosen.size:
            raise DigestMismatchError(f"the index says {chosen.size} bytes for {chosen.digest}, the registry sent {len(data)}")
    if not isinstance(document, Manifest):
        raise ImageFormatError(f"{repository}:{reference} is an index inside an index: not an image")
    work = [(document.config, "config")] + [(d, "layer") for d in document.layers]
    # An image may list one layer twice: one download per digest (a second would only wait for the first's lock).
    work = [item for i, item in enumerate(work) if all(item[0].digest != seen[0].digest for seen in work[:i])]
    blobs = _each(lambda item: _pull_blob(store.content, client, repository, item[0], item[1], retries, progress),
                  work, jobs)
    record = store.add_pulled(data, media_type, tags=tags)
    return PullResult(client.name, repository, reference, sha256_digest(data), index_digest, record.id,
                      tuple(blobs), received, time.perf_counter() - started)


def _pull_blob(content: ContentStore, client: RegistryClient, repository: str, desc: Descriptor, kind: str,
               retries: int, progress: TransferProgress) -> BlobTransfer:
    digest = as_sha256(desc.digest)
    if content.has(digest) and content.size(digest) == desc.size:
        progress.finish(digest, "Already exists")
        return BlobTransfer(digest, desc.size, kind, "present", 0)
    if kind == "config" and desc.size > MAX_MANIFEST_BYTES:
        raise DocumentTooLargeError(f"config {digest} is {desc.size} bytes, over {MAX_MANIFEST_BYTES}")
    moved = 0
    resumed = False
    origin: str | None = None
    with content.download(digest, desc.size) as download:
        if download.present:  # another pull stored it while this one waited for the download's lock
            progress.finish(digest, "Already exists")
            return BlobTransfer(digest, desc.size, kind, "present", 0)
        progress.start(digest, desc.size, download.offset, what="Downloading")
        for attempt in range(retries + 1):
            resumed = resumed or download.offset > 0
            try:
                with client.open_blob(repository, digest, offset=download.offset) as reader:
                    origin = getattr(reader, "origin", None)
                    if reader.offset != download.offset:
                        download.restart()  # the registry ignored the range: from the start again
                    if reader.size is not None and reader.size != desc.size:
                        download.discard()
                        raise DigestMismatchError(f"{client.name} says blob {digest} is {reader.size} bytes, the manifest {desc.size}")
                    for chunk in reader:
                        download.write(chunk)  # raises, deleting the partial file, once it is too long
                        moved += len(chunk)
                        progress.advance(digest, len(chunk))
                break
            except (RegistryUnavailableError, OSError):
                if attempt == retries:
                    raise  # the bytes so far stay in ingest/: the next pull resumes them
        download.commit(desc.media_type)
    progress.finish(digest, "Pull complete")
    return BlobTransfer(digest, desc.size, kind, "resumed" if resumed else "downloaded", moved, origin)

"""The model's registries: repositories, mutable tags, immutable manifests and blobs, mirrors.

A :class:`ModelRegistry` is what a Docker Registry holds, as objects: each
repository (仓库) links blobs and manifests by digest and maps tags (标签) to
manifest digests.  The bytes live once in a :class:`~sim.images.blobs.ContentStore`
however many repositories link them, as distribution's storage keeps them, so
a layer pushed to two repositories costs its size once.  A session is
:meth:`ModelRegistry.client` (with credentials when the registry has accounts);
it speaks :class:`~sim.registries.api.RegistryClient`, the same interface as
the HTTP client for real servers, and checks what distribution checks: digests
and sizes of uploads, every blob of a manifest present in the repository,
``Content-Type`` = ``mediaType``, the 4 MiB manifest limit, names and tags.

A :class:`ModelMirror` is a pull-through cache (加速器) of one upstream:
tag lookups go upstream first and fall back to the cache when the upstream
cannot be reached; manifests by digest and blobs are fetched once, then served
locally; pushes and deletes are refused.  Every registry counts the bytes it
served and received, and a mirror also the bytes it fetched upstream, so a
notebook can say which link each byte crossed.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from sim.digest import Digest, sha256_digest
from sim.errors import (
    AuthenticationError,
    DigestMismatchError,
    ImageNotFoundError,
    RegistryConfigError,
    RegistryError,
    RegistryUnavailableError,
    UnsupportedOperationError,
)
from sim.images._durable import atomic_write
from sim.images._sha256 import as_sha256
from sim.images.blobs import BlobNotFoundError, ContentStore
from sim.images.oci import DocumentTooLargeError, Index, Manifest, parse_document
from sim.images.reference import is_image_id, validate_repository_path, validate_tag
from sim.registries.api import MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, BlobReader, ManifestResponse, RegistryClient
from sim.registries.auth import Credentials

__all__ = ["ModelRegistry", "ModelMirror", "RegistryStats", "Repository"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class RegistryStats:
    """What crossed a registry's links so far, and what it stores.

    ``bytes_in``/``bytes_out``: blob and manifest bytes received from and sent
    to its clients; ``upstream_bytes``: what a mirror fetched from its upstream
    (0 for a registry); ``stored_bytes``: distinct blob and manifest bytes
    kept, each once however many repositories link it; ``linked_bytes``: the
    same counted once per repository that links it (what storage without
    de-duplication would hold).
    """

    bytes_in: int
    bytes_out: int
    upstream_bytes: int
    stored_bytes: int
    linked_bytes: int
    requests: int


@dataclass
class Repository:
    """One repository: linked blobs, manifests by digest (with their media type), tags."""

    blobs: set[Digest] = field(default_factory=set)
    manifests: dict[Digest, str] = field(default_factory=dict)
    tags: dict[str, Digest] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"blobs": sorted(self.blobs), "manifests": dict(sorted(self.manifests.items())),
                "tags": dict(sorted(self.tags.items()))}

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> Repository:
        blobs, manifests, tags = doc.get("blobs", []), doc.get("manifests", {}), doc.get("tags", {})
        if not isinstance(blobs, list) or not isinstance(manifests, dict) or not isinstance(tags, dict):
            raise RegistryConfigError("repositories.json: a repository needs blobs, manifests and tags")
        return cls({as_sha256(b) for b in blobs}, {as_sha256(d): str(m) for d, m in manifests.items()},
                   {str(t): as_sha256(d) for t, d in tags.items()})


class _BytesReader(BlobReader):
    def __init__(self, data: bytes, offset: int, origin: str, count: ModelRegistry) -> None:
        self.size = len(data)
        self.offset = offset
        self.origin = origin
        self._view = memoryview(data)[offset:]
        self._registry = count

    def __iter__(self) -> Iterator[bytes]:
        for i in range(0, len(self._view), _CHUNK):
            chunk = bytes(self._view[i:i + _CHUNK])
            self._registry._count_out(len(chunk))
            yield chunk


def _hash_password(password: str, salt: bytes) -> bytes:
    # A slow salted hash, as htpasswd's bcrypt is: the model keeps no password in the clear either.
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 10_000)


class ModelRegistry:
    """A registry's storage and rules; talk to it through :meth:`client`.

    ``name`` is how references spell it (``docker.io``, ``localhost:5000``).
    ``root``: keep blobs and repositories in that folder (they outlive the
    process), else in memory.  ``accounts``: username -> password; a registry
    with accounts answers only sessions that present one of them.
    """

    kind = "registry"

    def __init__(self, name: str, *, root: str | os.PathLike[str] | None = None,
                 accounts: Mapping[str, str] | None = None) -> None:
        if not isinstance(name, str) or not name or "/" in name:
            raise RegistryConfigError(f"a registry name is a host[:port], got {name!r}")
        self.name = name
        self._accounts: dict[str, tuple[bytes, bytes]] = {}
        for user, password in (accounts or {}).items():
            Credentials(user, password)  # the same rules as a login: typed error on a bad account
            salt = secrets.token_bytes(16)
            self._accounts[user] = (salt, _hash_password(password, salt))
        self._root = Path(root) if root is not None else None
        self.content = ContentStore(self._root / "content" if self._root is not None else None)
        self._repos: dict[str, Repository] = {}
        self._lock = threading.Lock()  # the counters and repositories are shared by every session
        self._bytes_in = self._bytes_out = self._upstream = self._requests = 0
        if self._root is not None:
            index = self._root / "repositories.json"
            if index.exists():
                doc = json.loads(index.read_bytes())
                self._repos = {name: Repository.from_json(r) for name, r in doc.items()}

    # -- what a notebook looks at

    def client(self, credentials: Credentials | None = None) -> RegistryClient:
        """A session, anonymous or logged in with ``credentials``."""
        return _Session(self, credentials)

    @property
    def requires_login(self) -> bool:
        return bool(self._accounts)

    def repositories(self) -> dict[str, Repository]:
        """Every repository by name (a snapshot: changing it changes nothing)."""
        with self._lock:
            return {n: Repository(set(r.blobs), dict(r.manifests), dict(r.tags)) for n, r in sorted(self._repos.items())}

    def manifest(self, digest: str) -> bytes:
        """A stored manifest's bytes (verified)."""
        return self.content.get(digest)

    def stats(self) -> RegistryStats:
        with self._lock:
            repos = list(self._repos.values())
            linked = sum(self.content.size(d) for r in repos for d in (r.blobs | set(r.manifests)) if self.content.has(d))
            return RegistryStats(self._bytes_in, self._bytes_out, self._upstream, self.content.total_size(), linked,
                                 self._requests)

    def garbage_collect(self) -> int:
        """Delete blobs no manifest of any repository references (distribution's offline GC); bytes freed."""
        with self._lock:
            keep: set[Digest] = set()
            for repo in self._repos.values():
                for digest in repo.manifests:
                    keep.add(digest)
                    keep.update(_references(self.content.get(digest)))
                repo.blobs &= keep
            freed = 0
            for digest in self.content.digests():
                if digest not in keep:
                    freed += self.content.size(digest)
                    self.content.delete(digest)
            self._persist()
            return freed

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {len(self._repos)} repositories>"

    # -- the rules, shared by every session

    def _check_login(self, credentials: Credentials | None) -> None:
        with self._lock:
            self._requests += 1
        if not self._accounts:
            return
        if credentials is None:
            raise AuthenticationError(f"unauthorized: authentication required by {self.name}", code="UNAUTHORIZED", status=401)
        salt, expected = self._accounts.get(credentials.username, (b"", b""))
        if not salt or not hmac.compare_digest(_hash_password(credentials.password, salt), expected):
            raise AuthenticationError(f"unauthorized: incorrect username or password for {self.name}",
                                      code="UNAUTHORIZED", status=401)

    def _count_out(self, n: int) -> None:
        with self._lock:
            self._bytes_out += n

    def _persist(self) -> None:
        if self._root is not None:
            doc = {name: r.to_json() for name, r in sorted(self._repos.items())}
            atomic_write(self._root / "repositories.json", json.dumps(doc, indent=1).encode())

    def _repo(self, name: str, *, create: bool = False) -> Repository:
        validate_repository_path(name)
        repo = self._repos.get(name)
        if repo is None:
            if not create:
                raise ImageNotFoundError(f"name unknown: repository name not known to registry: {self.name}/{name}")
            repo = self._repos[name] = Repository()
        return repo

    def _manifest_digest(self, repo: Repository, repository: str, reference: str) -> Digest:
        if ":" in reference:
            digest = as_sha256(reference)
            if digest not in repo.manifests:
                raise ImageNotFoundError(f"manifest unknown: {self.name}/{repository}@{digest}")
            return digest
        validate_tag(reference)
        if reference not in repo.tags:
            raise ImageNotFoundError(f"manifest unknown: {self.name}/{repository}:{reference}")
        return repo.tags[reference]

    def _get_manifest(self, repository: str, reference: str, accept: Sequence[str]) -> ManifestResponse:
        with self._lock:
            repo = self._repo(repository)
            digest = self._manifest_digest(repo, repository, reference)
            media_type = repo.manifests[digest]
        data = self.content.get(digest)
        self._count_out(len(data))
        return ManifestResponse(data, media_type, digest)

    def _put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> Digest:
        if len(data) > MAX_MANIFEST_BYTES:
            raise DocumentTooLargeError(f"manifest invalid: {len(data)} bytes is over the {MAX_MANIFEST_BYTES}-byte limit")
        digest = sha256_digest(data)
        if ":" in reference and as_sha256(reference) != digest:
            raise DigestMismatchError(f"digest invalid: the manifest's sha256 is {digest}, not {reference}")
        if ":" not in reference:
            validate_tag(reference)
        document = parse_document(data, content_type=media_type)  # CVE-2021-41190 checks included
        with self._lock:
            repo = self._repo(repository, create=True)
            missing = [d for d in _document_references(document) if d not in repo.blobs and d not in repo.manifests]
            if missing:
                if not repo.blobs and not repo.manifests and not repo.tags:
                    del self._repos[repository]
                raise RegistryError(f"manifest blob unknown: {missing[0]} is not in {self.name}/{repository}",
                                    code="MANIFEST_BLOB_UNKNOWN", status=400)
            self.content.put(data, media_type, digest=digest)
            repo.manifests[digest] = media_type
            if ":" not in reference:
                repo.tags[reference] = digest
            self._bytes_in += len(data)
            self._persist()
        return digest

    def _delete_manifest(self, repository: str, digest: str) -> None:
        d = as_sha256(digest)
        with self._lock:
            repo = self._repo(repository)
            if d not in repo.manifests:
                raise ImageNotFoundError(f"manifest unknown: {self.name}/{repository}@{d}")
            del repo.manifests[d]
            for tag in [t for t, m in repo.tags.items() if m == d]:
                del repo.tags[tag]
            self._persist()

    def _stat_blob(self, repository: str, digest: str) -> int | None:
        d = as_sha256(digest)
        with self._lock:
            repo = self._repos.get(validate_repository_path(repository))
            if repo is None or d not in repo.blobs:
                return None
        return self.content.size(d)

    def _open_blob(self, repository: str, digest: str, offset: int) -> BlobReader:
        if self._stat_blob(repository, digest) is None:
            raise BlobNotFoundError(f"blob unknown: {digest} is not in {self.name}/{repository}")
        data = self.content.get(digest)
        return _BytesReader(data, offset if 0 <= offset <= len(data) else 0, "registry", self)

    def _put_blob(self, repository: str, digest: str, size: int, source: IO[bytes]) -> None:
        d = as_sha256(digest)
        validate_repository_path(repository)
        counted = _CountingReader(source)
        # Verified on the way in: a wrong digest, a short or a long stream store nothing.
        self.content.ingest(cast(IO[bytes], counted), digest=d, size=size)
        with self._lock:
            self._bytes_in += counted.count
            self._repo(repository, create=True).blobs.add(d)
            self._persist()

    def _mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        d = as_sha256(digest)
        with self._lock:
            source = self._repos.get(validate_repository_path(from_repository))
            validate_repository_path(repository)
            if source is None or d not in source.blobs:
                return False
            self._repo(repository, create=True).blobs.add(d)
            self._persist()
        return True

    def _tags(self, repository: str) -> list[str]:
        with self._lock:
            return sorted(self._repo(repository).tags)

    def _catalog(self) -> list[str]:
        with self._lock:
            return sorted(self._repos)


class _CountingReader(io.RawIOBase):
    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        chunk = self._source.read(n)
        self.count += len(chunk)
        return chunk


def _document_references(document: Manifest | Index) -> list[Digest]:
    if isinstance(document, Index):
        return [as_sha256(m.digest) for m in document.manifests]
    return [as_sha256(document.config.digest)] + [as_sha256(layer.digest) for layer in document.layers]


def _references(data: bytes) -> list[Digest]:
    return _document_references(parse_document(data))


class ModelMirror(ModelRegistry):
    """A pull-through cache of ``upstream`` (a session with another registry, model or real)."""

    kind = "mirror"

    def __init__(self, name: str, upstream: RegistryClient, *, root: str | os.PathLike[str] | None = None) -> None:
        super().__init__(name, root=root)
        self.upstream = upstream

    def _refuse(self, what: str) -> UnsupportedOperationError:
        return UnsupportedOperationError(
            f"unsupported: {self.name} is a pull-through cache of {self.upstream.name}: {what} go to the upstream",
            code="UNSUPPORTED", status=405)

    def _cache_manifest(self, repository: str, reference: str, answer: ManifestResponse) -> Digest:
        digest = sha256_digest(answer.data)
        if answer.digest is not None and answer.digest != digest:
            raise DigestMismatchError(f"upstream {self.upstream.name} sent a manifest whose sha256 is {digest}, not {answer.digest}")
        if ":" in reference and as_sha256(reference) != digest:
            raise DigestMismatchError(f"upstream {self.upstream.name} answered {reference} with a manifest whose sha256 is {digest}")
        parse_document(answer.data, content_type=answer.media_type)
        self.content.put(answer.data, answer.media_type, digest=digest)
        with self._lock:
            repo = self._repo(repository, create=True)
            repo.manifests[digest] = answer.media_type
            if ":" not in reference:
                repo.tags[reference] = digest
            self._upstream += len(answer.data)
            self._persist()
        return digest

    def _get_manifest(self, repository: str, reference: str, accept: Sequence[str]) -> ManifestResponse:
        by_digest = ":" in reference
        if by_digest:
            try:
                return super()._get_manifest(repository, reference, accept)
            except ImageNotFoundError:
                pass  # not cached yet: ask the upstream
        try:
            answer = self.upstream.get_manifest(repository, reference, accept=accept)
        except RegistryUnavailableError:
            if by_digest:
                raise
            try:
                return super()._get_manifest(repository, reference, accept)  # upstream down: the cached tag
            except ImageNotFoundError:
                raise RegistryUnavailableError(
                    f"{self.name}: the upstream {self.upstream.name} cannot be reached and "
                    f"{repository}:{reference} was never cached", code="UNAVAILABLE", status=503) from None
        self._cache_manifest(repository, reference, answer)
        return super()._get_manifest(repository, reference, accept)

    def _fetch_blob(self, repository: str, digest: str) -> None:
        d = as_sha256(digest)
        with self.upstream.open_blob(repository, d) as reader:
            counted = _IterReader(iter(reader))
            self.content.ingest(cast(IO[bytes], counted), digest=d, size=reader.size)
        with self._lock:
            self._upstream += counted.count
            self._repo(repository, create=True).blobs.add(d)
            self._persist()

    def _stat_blob(self, repository: str, digest: str) -> int | None:
        size = super()._stat_blob(repository, digest)
        return size if size is not None else self.upstream.stat_blob(repository, digest)

    def _open_blob(self, repository: str, digest: str, offset: int) -> BlobReader:
        origin = "cache"
        if super()._stat_blob(repository, digest) is None:
            if self.content.has(digest):  # cached for another repository: link it, no transfer
                with self._lock:
                    self._repo(repository, create=True).blobs.add(as_sha256(digest))
            else:
                self._fetch_blob(repository, digest)
                origin = "upstream"
        reader = super()._open_blob(repository, digest, offset)
        assert isinstance(reader, _BytesReader)
        reader.origin = origin
        return reader

    def _tags(self, repository: str) -> list[str]:
        try:
            return self.upstream.tags(repository)
        except RegistryUnavailableError:
            return super()._tags(repository)

    def _put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> Digest:
        raise self._refuse("pushes")

    def _delete_manifest(self, repository: str, digest: str) -> None:
        raise self._refuse("deletes")

    def _put_blob(self, repository: str, digest: str, size: int, source: IO[bytes]) -> None:
        raise self._refuse("pushes")

    def _mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        raise self._refuse("pushes")


class _IterReader(io.RawIOBase):
    """A file object over an iterator of chunks (what ContentStore.ingest reads)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                return b""
        size = len(self._left) if n < 0 else n
        out, self._left = self._left[:size], self._left[size:]
        self.count += len(out)
        return out


class _Session(RegistryClient):
    """One client's view of a model registry: every call checks the login first."""

    def __init__(self, registry: ModelRegistry, credentials: Credentials | None) -> None:
        self.registry = registry
        self.name = registry.name
        self.kind = registry.kind
        self._credentials = credentials

    def _enter(self) -> ModelRegistry:
        self.registry._check_login(self._credentials)
        return self.registry

    def ping(self) -> None:
        self._enter()

    def tags(self, repository: str, *, page_size: int | None = None) -> list[str]:
        return self._enter()._tags(repository)

    def catalog(self, *, page_size: int | None = None) -> list[str]:
        return self._enter()._catalog()

    def get_manifest(self, repository: str, reference: str, *, accept: Sequence[str] = MANIFEST_ACCEPT) -> ManifestResponse:
        if ":" in reference and not is_image_id(reference):
            raise ImageNotFoundError(f"manifest unknown: {reference} is not a sha256 digest")
        return self._enter()._get_manifest(repository, reference, accept)

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> Digest:
        return self._enter()._put_manifest(repository, reference, data, media_type)

    def delete_manifest(self, repository: str, digest: str) -> None:
        self._enter()._delete_manifest(repository, digest)

    def stat_blob(self, repository: str, digest: str) -> int | None:
        return self._enter()._stat_blob(repository, digest)

    def open_blob(self, repository: str, digest: str, *, offset: int = 0) -> BlobReader:
        return self._enter()._open_blob(repository, digest, offset)

    def put_blob(self, repository: str, digest: str, size: int, source: IO[bytes], *, chunk_size: int | None = None) -> None:
        # Chunks change nothing in the model's storage: the bytes arrive whole either way.
        self._enter()._put_blob(repository, digest, size, source)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        return self._enter()._mount_blob(repository, digest, from_repository)

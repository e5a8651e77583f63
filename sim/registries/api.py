"""The registry interface: the distribution API's operations, one method each.

A :class:`RegistryClient` is one session with one registry, as the
distribution spec describes it (``/v2/<name>/manifests/<ref>``,
``/v2/<name>/blobs/<digest>``, uploads, ``tags/list``, ``_catalog``).  The
model's registries (:mod:`sim.registries.model`) and the HTTP client for real
servers (:mod:`realrt.registries.client`) both implement it, so push and pull
(:mod:`sim.registries.transfer`) are written once and run against either.

Contracts every implementation keeps:

* Digests are verified by the *caller* while it reads (see
  :mod:`sim.registries.transfer`): a client hands out bytes as the registry
  sent them and never retries silently into different content.
* Errors are typed: a missing repository, manifest or tag raises
  :class:`~sim.errors.ImageNotFoundError`, a missing blob
  :class:`~sim.images.blobs.BlobNotFoundError`, refused credentials
  :class:`~sim.errors.AuthenticationError`, an unreachable server
  :class:`~sim.errors.RegistryUnavailableError`, a push to a mirror
  :class:`~sim.errors.UnsupportedOperationError`; anything else the registry
  refuses is a :class:`~sim.errors.RegistryError` carrying its error code.
* A manifest larger than :data:`MAX_MANIFEST_BYTES` is refused before it is
  parsed (distribution's own limit is 4 MiB).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import IO

from sim.digest import Digest
from sim.images.oci import (
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
)

__all__ = [
    "RegistryClient",
    "BlobReader",
    "ManifestResponse",
    "MANIFEST_ACCEPT",
    "MAX_MANIFEST_BYTES",
    "DEFAULT_CHUNK_SIZE",
]

#: What a pull asks for, in preference order: an index first, so a platform can be chosen.
MANIFEST_ACCEPT: tuple[str, ...] = (
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST,
)
#: Distribution refuses manifests over 4 MiB; so does every client here, before parsing.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: Upload chunk size when a push is asked to upload in chunks.
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True)
class ManifestResponse:
    """A manifest or index as the registry answered: its exact bytes, the ``Content-Type`` it came
    with and the ``Docker-Content-Digest`` it claimed (``None`` when the registry sent none)."""

    data: bytes
    media_type: str
    digest: Digest | None


class BlobReader(abc.ABC):
    """A blob being read, from ``offset`` on: iterate for chunks, then close (or use ``with``).

    ``size`` is the whole blob's length as the registry declared it (``None``
    when it did not say); ``offset`` is where this reader starts, non-zero
    only when a ranged read was asked for and granted.
    """

    size: int | None
    offset: int

    @abc.abstractmethod
    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None:  # noqa: B027 - most readers hold nothing to release
        """Release the connection; idempotent."""

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class RegistryClient(abc.ABC):
    """One session with one registry (a host[:port] in references, ``docker.io`` for the Hub).

    ``name`` is how references spell the registry; ``kind`` says what it is
    (``"registry"`` or ``"mirror"``) so a notebook can say where bytes came from.
    """

    name: str
    kind: str = "registry"

    # -- the API root and discovery

    @abc.abstractmethod
    def ping(self) -> None:
        """``GET /v2/``: return if the registry answers and accepts this session's credentials."""

    @abc.abstractmethod
    def tags(self, repository: str, *, page_size: int | None = None) -> list[str]:
        """``GET /v2/<repository>/tags/list``, following every page (``n``/``last``, ``Link``): all tags, sorted."""

    @abc.abstractmethod
    def catalog(self, *, page_size: int | None = None) -> list[str]:
        """``GET /v2/_catalog``, every page: the repository names, sorted."""

    # -- manifests

    @abc.abstractmethod
    def get_manifest(self, repository: str, reference: str, *, accept: Sequence[str] = MANIFEST_ACCEPT) -> ManifestResponse:
        """``GET /v2/<repository>/manifests/<tag or digest>``."""

    @abc.abstractmethod
    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> Digest:
        """``PUT`` a manifest under a tag or its digest, ``Content-Type`` = ``media_type``; returns its digest.

        Every blob it references must already be in ``repository``.
        """

    @abc.abstractmethod
    def delete_manifest(self, repository: str, digest: str) -> None:
        """``DELETE /v2/<repository>/manifests/<digest>`` (by digest only, as the spec says); tags on it go too."""

    # -- blobs

    @abc.abstractmethod
    def stat_blob(self, repository: str, digest: str) -> int | None:
        """``HEAD /v2/<repository>/blobs/<digest>``: its size, or ``None`` when this repository has no such blob."""

    @abc.abstractmethod
    def open_blob(self, repository: str, digest: str, *, offset: int = 0) -> BlobReader:
        """``GET /v2/<repository>/blobs/<digest>`` (with ``Range: bytes=<offset>-`` when ``offset``).

        A registry that ignores the range answers from 0: then ``reader.offset``
        is 0 and the caller starts again.
        """

    @abc.abstractmethod
    def put_blob(self, repository: str, digest: str, size: int, source: IO[bytes], *, chunk_size: int | None = None) -> None:
        """Upload ``size`` bytes read from ``source`` as ``digest``: one monolithic ``PUT`` when
        ``chunk_size`` is ``None``, else ``PATCH`` chunks of that size and a closing ``PUT``."""

    @abc.abstractmethod
    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """``POST .../blobs/uploads/?mount=<digest>&from=<repository>``: True if the registry mounted it,
        False if it wants the bytes uploaded instead (any upload session it opened is cancelled)."""

    def close(self) -> None:  # noqa: B027 - a model session holds no connection
        """Release connections; idempotent."""

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

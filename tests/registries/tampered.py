"""A registry session that changes what another one answers: the faults a network or a hostile
registry can produce, applied to the model (FaultyProxy does the same to a real server over HTTP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import IO

from sim.digest import Digest
from sim.errors import RegistryUnavailableError
from sim.registries.api import MANIFEST_ACCEPT, BlobReader, ManifestResponse, RegistryClient


class _Reader(BlobReader):
    def __init__(self, inner: BlobReader, chunks: Iterator[bytes]) -> None:
        self.size, self.offset, self._inner, self._chunks = inner.size, inner.offset, inner, chunks
        self.origin = getattr(inner, "origin", None)

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self._inner.close()


class Tampered(RegistryClient):
    """``inner``'s answers passed through ``blob``/``manifest`` filters; ``cut_after``: the first
    blob read breaks (RegistryUnavailableError) after that many bytes; ``ignore_range``: reads
    always start at 0, as a registry without Range support answers."""

    def __init__(self, inner: RegistryClient, *,
                 blob: Callable[[bytes], bytes] | None = None,
                 manifest: Callable[[ManifestResponse], ManifestResponse] | None = None,
                 cut_after: int | None = None, ignore_range: bool = False) -> None:
        self.inner, self.name, self.kind = inner, inner.name, inner.kind
        self._blob, self._manifest = blob, manifest
        self.cut_after, self.ignore_range = cut_after, ignore_range
        self.offsets: list[int] = []  # the offset of every blob read, to see resumes

    def ping(self) -> None:
        self.inner.ping()

    def tags(self, repository: str, *, page_size: int | None = None) -> list[str]:
        return self.inner.tags(repository, page_size=page_size)

    def catalog(self, *, page_size: int | None = None) -> list[str]:
        return self.inner.catalog(page_size=page_size)

    def get_manifest(self, repository: str, reference: str, *, accept: Sequence[str] = MANIFEST_ACCEPT) -> ManifestResponse:
        answer = self.inner.get_manifest(repository, reference, accept=accept)
        return self._manifest(answer) if self._manifest else answer

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> Digest:
        return self.inner.put_manifest(repository, reference, data, media_type)

    def delete_manifest(self, repository: str, digest: str) -> None:
        self.inner.delete_manifest(repository, digest)

    def stat_blob(self, repository: str, digest: str) -> int | None:
        return self.inner.stat_blob(repository, digest)

    def open_blob(self, repository: str, digest: str, *, offset: int = 0) -> BlobReader:
        start = 0 if self.ignore_range else offset
        inner = self.inner.open_blob(repository, digest, offset=start)
        self.offsets.append(inner.offset)
        data = b"".join(inner)
        if self._blob is not None:
            data = self._blob(data)

        def chunks() -> Iterator[bytes]:
            if self.cut_after is not None and len(data) > self.cut_after:
                cut, self.cut_after = self.cut_after, None
                yield data[:cut]
                raise RegistryUnavailableError("connection reset by peer (cut by the test)")
            yield data

        return _Reader(inner, chunks())

    def put_blob(self, repository: str, digest: str, size: int, source: IO[bytes], *, chunk_size: int | None = None) -> None:
        self.inner.put_blob(repository, digest, size, source, chunk_size=chunk_size)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        return self.inner.mount_blob(repository, digest, from_repository)

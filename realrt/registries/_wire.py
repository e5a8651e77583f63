"""What :class:`~realrt.registries.client.HttpRegistry` sends and reads on the wire, below the API.

:class:`Body` is a request body streamed in pieces (an upload never holds more
than :data:`PIECE` bytes of a blob in memory) that knows whether it can be sent
again; :class:`HttpBlob` is a blob read from an open response; the small
parsers read the headers the distribution API answers with (``Content-Length``,
``Content-Range``, an upload's ``Range``, ``Link``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import IO

import httpx

from realrt.registries._errors import transport_error
from sim.digest import Digest
from sim.errors import DigestMismatchError, RegistryConfigError, RegistryError
from sim.images.oci import ImageFormatError
from sim.images.reference import is_image_id
from sim.registries.api import BlobReader

__all__ = ["PIECE", "Body", "HttpBlob", "Count", "check_digest", "check_count", "content_length", "content_range",
           "upload_end", "next_link"]

#: Pieces a body is streamed in.
PIECE = 1 << 20
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_UPLOAD_RANGE = re.compile(r"^(?:bytes=)?0-(\d+)$")
_LINK = re.compile(r"<([^>]*)>\s*((?:;[^,;]*)*)")

#: How a body or reader adds to its session's counters: ``count("bytes_sent", n)``.
Count = Callable[[str, int], None]


def check_digest(value: str) -> Digest:
    """``value`` as a sha256 :class:`~sim.digest.Digest`, else the model's ImageFormatError."""
    if not isinstance(value, str) or not value.startswith("sha256:") or not is_image_id(value):
        raise ImageFormatError(f"not a sha256 digest: {value!r} (this store keeps sha256 blobs only)")
    return Digest(value)


def check_count(value: object, what: str, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise RegistryConfigError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise RegistryError(f"the registry sent a malformed Content-Length: {value!r}", status=response.status_code)
    return int(value)


def content_range(response: httpx.Response) -> tuple[int, int | None] | None:
    """A 206's ``Content-Range: bytes <start>-<end>/<total>`` as ``(start, total or None)``."""
    match = _CONTENT_RANGE.match(response.headers.get("content-range", "").strip())
    if match is None:
        return None
    return int(match.group(1)), None if match.group(3) == "*" else int(match.group(3))


def upload_end(response: httpx.Response) -> int | None:
    """The last byte an upload session holds, from its ``Range: 0-<end>``; -1 if malformed, None if absent."""
    said = response.headers.get("range")
    if said is None:
        return None
    match = _UPLOAD_RANGE.match(said.strip())
    return int(match.group(1)) if match else -1


def next_link(values: list[str]) -> str | None:
    """The target of ``Link: <...>; rel="next"`` (RFC 8288), if any."""
    for value in values:
        for match in _LINK.finditer(value):
            for param in match.group(2).split(";"):
                name, _, rel = param.partition("=")
                if name.strip().lower() == "rel" and "next" in rel.strip().strip('"').split():
                    return match.group(1)
    return None


class Body:
    """A request body: ``data``, or ``length`` bytes streamed from ``source`` in pieces.

    Sending it again is possible for bytes, and for a seekable source (it is
    seeked back to where it stood first); :meth:`can_resend` says which.  A
    source that ends early raises :class:`~sim.errors.DigestMismatchError`.
    """

    def __init__(self, count: Count, *, data: bytes | None = None, source: IO[bytes] | None = None,
                 length: int = 0) -> None:
        self._count = count
        self._data = data
        self._source = source
        self.length = len(data) if data is not None else length
        self._start: int | None = None
        if source is not None:
            try:
                self._start = source.tell() if source.seekable() else None
            except (OSError, ValueError):
                self._start = None
        self._used = False

    def can_resend(self) -> bool:
        return not self._used or self._data is not None or self._start is not None

    def content(self) -> bytes | Iterator[bytes]:
        """What to send now (rewinding the source first when it was sent before)."""
        if self._used and self._source is not None and self._start is not None:
            self._source.seek(self._start)
        self._used = True
        if self._data is not None:
            self._count("bytes_sent", len(self._data))
            return self._data
        return self._pieces()

    def _pieces(self) -> Iterator[bytes]:
        assert self._source is not None
        left = self.length
        while left > 0:
            piece = self._source.read(min(PIECE, left))
            if not piece:
                raise DigestMismatchError(f"the upload's source ended {left} bytes short of the {self.length} promised")
            piece = bytes(piece[:left])
            left -= len(piece)
            self._count("bytes_sent", len(piece))
            yield piece


class HttpBlob(BlobReader):
    """A blob streamed from an open response; iterate once, then it is closed.

    A connection that breaks mid-blob raises
    :class:`~sim.errors.RegistryUnavailableError` after the bytes that did
    arrive were yielded: no silent retry, the caller resumes with
    ``open_blob(offset=...)`` and verifies the whole.
    """

    def __init__(self, response: httpx.Response, *, offset: int, size: int | None, where: str, registry: str,
                 count: Count, timeout: float) -> None:
        self.offset = offset
        self.size = size
        self._response = response
        self._where = where
        self._registry = registry
        self._count = count
        self._timeout = timeout

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        try:
            for chunk in self._response.iter_bytes():
                received += len(chunk)
                self._count("bytes_received", len(chunk))
                yield chunk
        except httpx.TransportError as exc:
            raise transport_error(exc, registry=self._registry, attempts=1, timeout=self._timeout,
                                  action=f"GET {self._where} (after {self.offset + received} of {self.size} bytes)"
                                  ) from exc
        finally:
            self.close()

    def close(self) -> None:
        self._response.close()

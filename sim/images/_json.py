"""The JSON under the OCI documents: canonical bytes out, strict loading and typed field getters in.

The document classes (:mod:`sim.images.oci`) read every field through these
getters, so a wrong type, a missing required field, a malformed digest or an
oversized document fails the same way everywhere: :class:`ImageFormatError`
(a ``ValueError``) naming the field's path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sim.digest import Digest
from sim.errors import LayerlabError

#: Largest manifest, index or config accepted (containerd's and the distribution spec's 4 MiB).
MAX_DOCUMENT_SIZE = 4 * 1024 * 1024


class ImageFormatError(LayerlabError, ValueError):
    """An image document (config, manifest, index, layout) breaks the OCI image-spec."""


class DocumentTooLargeError(ImageFormatError):
    """A manifest, index or config over :data:`MAX_DOCUMENT_SIZE`."""


class MediaTypeError(ImageFormatError):
    """Media-type confusion: a document that is two kinds at once, or not the kind it claims."""


def canonical_json(value: Any) -> bytes:
    """Sorted keys, compact separators, UTF-8: equal values give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


class FrozenMap(Mapping[str, str]):
    """A read-only, hashable ``str -> str`` mapping (labels, annotations)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


def fmap(value: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> FrozenMap:
    return value if isinstance(value, FrozenMap) else FrozenMap(value or ())


# -- reading helpers ----------------------------------------------------------------------------

_ANY_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")


def _where(what: str, key: str) -> str:
    return f"{what}.{key}" if what else key


def load_json(data: bytes, what: str) -> dict[str, Any]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be bytes")
    if len(data) > MAX_DOCUMENT_SIZE:
        raise DocumentTooLargeError(f"{what} is {len(data)} bytes; the limit is {MAX_DOCUMENT_SIZE} (4 MiB)")
    try:
        value = json.loads(bytes(data).decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise ImageFormatError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ImageFormatError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def get_field(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str, *, required: bool = False) -> Any:
    if key not in doc or doc[key] is None:
        if required:
            raise ImageFormatError(f"{_where(what, key)} is required")
        return None
    value = doc[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ImageFormatError(f"{_where(what, key)} must be {names}, got {type(value).__name__}")
    return value


def str_list(doc: Mapping[str, Any], key: str, what: str) -> tuple[str, ...] | None:
    value = get_field(doc, key, list, what)
    if value is None:
        return None
    if not all(isinstance(v, str) for v in value):
        raise ImageFormatError(f"{_where(what, key)} must be a list of strings")
    return tuple(value)


def str_map(doc: Mapping[str, Any], key: str, what: str) -> FrozenMap:
    value = get_field(doc, key, dict, what)
    if value is None:
        return FrozenMap()
    if not all(isinstance(v, str) for v in value.values()):
        raise ImageFormatError(f"{_where(what, key)} must map strings to strings")
    return FrozenMap(value)


def set_keys(doc: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    """``{"80/tcp": {}}`` -> ``("80/tcp",)``: Go's ``map[string]struct{}``."""
    value = get_field(doc, key, dict, what)
    if value is None:
        return ()
    if not all(isinstance(v, dict) for v in value.values()):
        raise ImageFormatError(f"{_where(what, key)} must map names to empty objects")
    return tuple(sorted(value))


def check_digest(value: str, what: str) -> str:
    if not _ANY_DIGEST.match(value):
        raise ImageFormatError(f"{what}: {value!r} is not a digest (algorithm:encoded)")
    algorithm, encoded = value.split(":", 1)
    length = _HEX_LENGTH.get(algorithm)
    if length is not None and not re.fullmatch(rf"[a-f0-9]{{{length}}}", encoded):
        raise ImageFormatError(f"{what}: {value!r} is not a valid {algorithm} digest ({length} lowercase hex digits)")
    return Digest(value) if algorithm == "sha256" else value


def get_created(doc: Mapping[str, Any], what: str) -> str | None:
    value: str | None = get_field(doc, "created", str, what)
    if value is not None and not RFC3339.match(value):
        raise ImageFormatError(f"{_where(what, 'created')} must be an RFC 3339 date-time, got {value!r}")
    return value


def drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}

"""OCI image documents: descriptors, image config, manifest and index, as frozen dataclasses.

An image (镜像) on disk or in a registry is three kinds of JSON document plus
layer blobs, every one of them named by its sha256 (content addressing):

* the **image config** (镜像配置): platform, the container defaults (``Env``,
  ``Cmd`` ...), ``rootfs.diff_ids`` (the DiffID of every layer, bottom first)
  and ``history``.  Its sha256 is the **ImageID** (``docker images`` shows the
  first 12 hex digits);
* the **manifest** (清单): a descriptor of the config and one of each layer blob;
* the **index** (索引): descriptors of manifests (per platform, or per tag in an
  OCI layout's ``index.json``).

Writing gives **canonical JSON** (sorted keys, no spaces, UTF-8), so equal
configs give equal bytes and so equal ImageIDs.  Reading validates: required
fields and their types, ``schemaVersion: 2``, digests, the 4 MiB size limit,
the history/``diff_ids`` agreement and media-type confusion (CVE-2021-41190:
a document holding both ``layers`` and ``manifests``, or whose ``mediaType``
disagrees with the Content-Type it came with, is refused).  Errors are
:class:`ImageFormatError` and its subclasses (``ValueError``).

Unknown JSON fields are ignored by the parsed views; the store keeps the
original bytes, so an ImageID never changes by being read.
"""

from __future__ import annotations

import datetime
import json
import platform as _platform
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.digest import Digest, sha256_digest
from sim.errors import LayerlabError

__all__ = [
    "MEDIA_TYPE_OCI_INDEX",
    "MEDIA_TYPE_OCI_MANIFEST",
    "MEDIA_TYPE_OCI_CONFIG",
    "MEDIA_TYPE_OCI_LAYER",
    "MEDIA_TYPE_OCI_LAYER_GZIP",
    "MEDIA_TYPE_OCI_LAYER_ZSTD",
    "MEDIA_TYPE_OCI_EMPTY",
    "MEDIA_TYPE_DOCKER_MANIFEST",
    "MEDIA_TYPE_DOCKER_MANIFEST_LIST",
    "MEDIA_TYPE_DOCKER_CONFIG",
    "MEDIA_TYPE_DOCKER_LAYER",
    "MEDIA_TYPE_DOCKER_LAYER_GZIP",
    "MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP",
    "MANIFEST_MEDIA_TYPES",
    "INDEX_MEDIA_TYPES",
    "CONFIG_MEDIA_TYPES",
    "LAYER_MEDIA_TYPES",
    "ANNOTATION_REF_NAME",
    "ANNOTATION_CONTAINERD_IMAGE_NAME",
    "MAX_DOCUMENT_SIZE",
    "ImageFormatError",
    "DocumentTooLargeError",
    "MediaTypeError",
    "FrozenMap",
    "Platform",
    "Descriptor",
    "ContainerConfig",
    "History",
    "RootFS",
    "ImageConfig",
    "Manifest",
    "Index",
    "canonical_json",
    "image_id",
    "parse_document",
    "validate_image",
    "layer_compression",
    "rfc3339",
    "host_platform",
]

# -- media types (media-types.md, and Docker's schema 2) -------------------------------------------
MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_TYPE_OCI_EMPTY = "application/vnd.oci.empty.v1+json"
_OCI_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_TYPE_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_TYPE_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_TYPE_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_MEDIA_TYPES = frozenset({MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST})
INDEX_MEDIA_TYPES = frozenset({MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST})
CONFIG_MEDIA_TYPES = frozenset({MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_DOCKER_CONFIG})
#: Layer media type -> compression (None: a plain tar).
LAYER_MEDIA_TYPES: Mapping[str, str | None] = {
    MEDIA_TYPE_OCI_LAYER: None,
    MEDIA_TYPE_OCI_LAYER_GZIP: "gzip",
    MEDIA_TYPE_OCI_LAYER_ZSTD: "zstd",
    _OCI_NONDIST: None,
    _OCI_NONDIST + "+gzip": "gzip",
    _OCI_NONDIST + "+zstd": "zstd",
    MEDIA_TYPE_DOCKER_LAYER: None,
    MEDIA_TYPE_DOCKER_LAYER_GZIP: "gzip",
    MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP: "gzip",
}

#: image-layout.md: the tag of a manifest in an OCI layout's index.json.
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
#: The full reference containerd and ``docker save`` (25+) record beside the tag.
ANNOTATION_CONTAINERD_IMAGE_NAME = "io.containerd.image.name"

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


def image_id(config_bytes: bytes) -> Digest:
    """The ImageID: sha256 of the config blob exactly as stored."""
    return sha256_digest(config_bytes)


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


def _fmap(value: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> FrozenMap:
    return value if isinstance(value, FrozenMap) else FrozenMap(value or ())


def _tuple(value: Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError("expected a sequence of strings, got one str")
    return tuple(value)


# -- reading helpers ----------------------------------------------------------------------------

_ANY_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")


def _where(what: str, key: str) -> str:
    return f"{what}.{key}" if what else key


def _load_json(data: bytes, what: str) -> dict[str, Any]:
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


def _get(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str, *, required: bool = False) -> Any:
    if key not in doc or doc[key] is None:
        if required:
            raise ImageFormatError(f"{_where(what, key)} is required")
        return None
    value = doc[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ImageFormatError(f"{_where(what, key)} must be {names}, got {type(value).__name__}")
    return value


def _str_list(doc: Mapping[str, Any], key: str, what: str) -> tuple[str, ...] | None:
    value = _get(doc, key, list, what)
    if value is None:
        return None
    if not all(isinstance(v, str) for v in value):
        raise ImageFormatError(f"{_where(what, key)} must be a list of strings")
    return tuple(value)


def _str_map(doc: Mapping[str, Any], key: str, what: str) -> FrozenMap:
    value = _get(doc, key, dict, what)
    if value is None:
        return FrozenMap()
    if not all(isinstance(v, str) for v in value.values()):
        raise ImageFormatError(f"{_where(what, key)} must map strings to strings")
    return FrozenMap(value)


def _set_keys(doc: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    """``{"80/tcp": {}}`` -> ``("80/tcp",)``: Go's ``map[string]struct{}``."""
    value = _get(doc, key, dict, what)
    if value is None:
        return ()
    if not all(isinstance(v, dict) for v in value.values()):
        raise ImageFormatError(f"{_where(what, key)} must map names to empty objects")
    return tuple(sorted(value))


def _check_digest(value: str, what: str) -> str:
    if not _ANY_DIGEST.match(value):
        raise ImageFormatError(f"{what}: {value!r} is not a digest (algorithm:encoded)")
    algorithm, encoded = value.split(":", 1)
    length = _HEX_LENGTH.get(algorithm)
    if length is not None and not re.fullmatch(rf"[a-f0-9]{{{length}}}", encoded):
        raise ImageFormatError(f"{what}: {value!r} is not a valid {algorithm} digest ({length} lowercase hex digits)")
    return Digest(value) if algorithm == "sha256" else value


def rfc3339(seconds: float | int) -> str:
    """``created`` as Go's RFC3339Nano prints it in UTC: ``2024-01-02T03:04:05Z``."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _created(doc: Mapping[str, Any], what: str) -> str | None:
    value = _get(doc, "created", str, what)
    if value is not None and not _RFC3339.match(value):
        raise ImageFormatError(f"{_where(what, 'created')} must be an RFC 3339 date-time, got {value!r}")
    return value


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


# -- platform and descriptor ------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    architecture: str
    os: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({
            "architecture": self.architecture,
            "os": self.os,
            "variant": self.variant,
            "os.version": self.os_version,
            "os.features": list(self.os_features) or None,
        })

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], what: str = "platform") -> Platform:
        return cls(
            architecture=_get(doc, "architecture", str, what, required=True),
            os=_get(doc, "os", str, what, required=True),
            variant=_get(doc, "variant", str, what),
            os_version=_get(doc, "os.version", str, what),
            os_features=_str_list(doc, "os.features", what) or (),
        )

    def matches(self, other: Platform) -> bool:
        """Same OS and architecture, and the same variant when both name one."""
        return (self.os, self.architecture) == (other.os, other.architecture) and (
            self.variant is None or other.variant is None or self.variant == other.variant
        )

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


_MACHINE_TO_GOARCH = {
    "x86_64": ("amd64", None), "amd64": ("amd64", None), "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "i386": ("386", None), "i686": ("386", None),
    "ppc64le": ("ppc64le", None), "s390x": ("s390x", None), "riscv64": ("riscv64", None),
}


def host_platform() -> Platform:
    """This machine as Go names it (``linux/amd64``, ``linux/arm64/v8`` ...)."""
    machine = _platform.machine().lower()
    arch, variant = _MACHINE_TO_GOARCH.get(machine, (machine, None))
    return Platform(arch, "linux", variant)


@dataclass(frozen=True)
class Descriptor:
    """What a document says about another blob: media type, digest, size (all three required)."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=FrozenMap)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "annotations", _fmap(self.annotations))
        object.__setattr__(self, "urls", tuple(self.urls))
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ImageFormatError(f"descriptor size must be a non-negative integer, got {self.size!r}")
        object.__setattr__(self, "digest", _check_digest(self.digest, "descriptor digest"))

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
            "annotations": dict(self.annotations) or None,
            "platform": self.platform.to_dict() if self.platform else None,
            "urls": list(self.urls) or None,
            "artifactType": self.artifact_type,
        })

    @classmethod
    def from_dict(cls, doc: Any, what: str = "descriptor") -> Descriptor:
        if not isinstance(doc, dict):
            raise ImageFormatError(f"{what} must be a JSON object")
        size = _get(doc, "size", int, what, required=True)
        if size < 0:
            raise ImageFormatError(f"{what}.size must not be negative")
        platform = _get(doc, "platform", dict, what)
        return cls(
            media_type=_get(doc, "mediaType", str, what, required=True),
            digest=_check_digest(_get(doc, "digest", str, what, required=True), f"{what}.digest"),
            size=size,
            annotations=_str_map(doc, "annotations", what),
            platform=Platform.from_dict(platform, f"{what}.platform") if platform is not None else None,
            urls=_str_list(doc, "urls", what) or (),
            artifact_type=_get(doc, "artifactType", str, what),
        )

    def with_annotations(self, annotations: Mapping[str, str] | None) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size, _fmap(annotations), self.platform, self.urls, self.artifact_type)


# -- image config -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerConfig:
    """The ``config`` object: defaults for a container of this image.

    ``cmd``/``entrypoint`` are ``None`` when unset and ``()`` when set empty
    (``CMD []``); both forms round-trip.  ``volumes`` and ``exposed_ports`` are
    the keys of Go's ``map[string]struct{}`` (sorted).
    """

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    labels: Mapping[str, str] = field(default_factory=FrozenMap)
    volumes: tuple[str, ...] = ()
    exposed_ports: tuple[str, ...] = ()
    stop_signal: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", _tuple(self.env) or ())
        object.__setattr__(self, "cmd", _tuple(self.cmd))
        object.__setattr__(self, "entrypoint", _tuple(self.entrypoint))
        object.__setattr__(self, "labels", _fmap(self.labels))
        object.__setattr__(self, "volumes", tuple(sorted(set(_tuple(self.volumes) or ()))))
        object.__setattr__(self, "exposed_ports", tuple(sorted(set(_tuple(self.exposed_ports) or ()))))

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({
            "Env": list(self.env) or None,
            "Cmd": list(self.cmd) if self.cmd is not None else None,
            "Entrypoint": list(self.entrypoint) if self.entrypoint is not None else None,
            "WorkingDir": self.working_dir or None,
            "User": self.user or None,
            "Labels": dict(self.labels) or None,
            "Volumes": {v: {} for v in self.volumes} or None,
            "ExposedPorts": {p: {} for p in self.exposed_ports} or None,
            "StopSignal": self.stop_signal or None,
        })

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], what: str = "config") -> ContainerConfig:
        return cls(
            env=_str_list(doc, "Env", what) or (),
            cmd=_str_list(doc, "Cmd", what),
            entrypoint=_str_list(doc, "Entrypoint", what),
            working_dir=_get(doc, "WorkingDir", str, what) or "",
            user=_get(doc, "User", str, what) or "",
            labels=_str_map(doc, "Labels", what),
            volumes=_set_keys(doc, "Volumes", what),
            exposed_ports=_set_keys(doc, "ExposedPorts", what),
            stop_signal=_get(doc, "StopSignal", str, what) or "",
        )

    @property
    def env_dict(self) -> dict[str, str]:
        """``Env`` as a mapping (a later ``KEY=`` wins, as in ``execve``'s callers)."""
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out


@dataclass(frozen=True)
class History:
    """One ``history`` entry; ``empty_layer`` entries (ENV, CMD ...) have no layer."""

    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({
            "created": self.created,
            "created_by": self.created_by,
            "author": self.author,
            "comment": self.comment,
            "empty_layer": True if self.empty_layer else None,
        })

    @classmethod
    def from_dict(cls, doc: Any, what: str = "history[]") -> History:
        if not isinstance(doc, dict):
            raise ImageFormatError(f"{what} must be a JSON object")
        return cls(
            created=_created(doc, what),
            created_by=_get(doc, "created_by", str, what),
            author=_get(doc, "author", str, what),
            comment=_get(doc, "comment", str, what),
            empty_layer=bool(_get(doc, "empty_layer", bool, what)),
        )


@dataclass(frozen=True)
class RootFS:
    diff_ids: tuple[str, ...] = ()
    type: str = "layers"

    def __post_init__(self) -> None:
        object.__setattr__(self, "diff_ids", tuple(_check_digest(d, "rootfs.diff_ids[]") for d in self.diff_ids))
        if self.type != "layers":
            raise ImageFormatError(f'rootfs.type must be "layers", got {self.type!r}')

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "diff_ids": [str(d) for d in self.diff_ids]}


@dataclass(frozen=True)
class ImageConfig:
    """The image config (``application/vnd.oci.image.config.v1+json``)."""

    architecture: str
    os: str
    rootfs: RootFS = field(default_factory=RootFS)
    config: ContainerConfig = field(default_factory=ContainerConfig)
    history: tuple[History, ...] = ()
    created: str | None = None
    author: str | None = None
    variant: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "history", tuple(self.history))
        if not self.architecture or not self.os:
            raise ImageFormatError("an image config needs architecture and os")
        if self.created is not None and not _RFC3339.match(self.created):
            raise ImageFormatError(f"created must be an RFC 3339 date-time, got {self.created!r}")
        if self.history:
            layered = sum(not h.empty_layer for h in self.history)
            if layered != len(self.rootfs.diff_ids):
                raise ImageFormatError(
                    f"history has {layered} entries with a layer (empty_layer false) but rootfs.diff_ids has "
                    f"{len(self.rootfs.diff_ids)}; each non-empty history entry describes one layer"
                )

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return self.rootfs.diff_ids

    @property
    def platform(self) -> Platform:
        return Platform(self.architecture, self.os, self.variant)

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({
            "architecture": self.architecture,
            "os": self.os,
            "variant": self.variant,
            "created": self.created,
            "author": self.author,
            "config": self.config.to_dict(),
            "rootfs": self.rootfs.to_dict(),
            "history": [h.to_dict() for h in self.history] or None,
        })

    def to_json(self) -> bytes:
        """Canonical bytes: the same config always gives the same ImageID."""
        return canonical_json(self.to_dict())

    @property
    def image_id(self) -> Digest:
        return image_id(self.to_json())

    @classmethod
    def from_json(cls, data: bytes) -> ImageConfig:
        return cls.from_dict(_load_json(data, "image config"))

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ImageConfig:
        what = ""
        rootfs = _get(doc, "rootfs", dict, what, required=True)
        rtype = _get(rootfs, "type", str, "rootfs", required=True)
        diff_ids = _get(rootfs, "diff_ids", list, "rootfs", required=True)
        if not all(isinstance(d, str) for d in diff_ids):
            raise ImageFormatError("rootfs.diff_ids must be a list of digests")
        history = _get(doc, "history", list, what) or []
        container = _get(doc, "config", dict, what) or {}
        architecture = _get(doc, "architecture", str, what, required=True)
        os_name = _get(doc, "os", str, what, required=True)
        if not architecture or not os_name:
            raise ImageFormatError("architecture and os must not be empty")
        return cls(
            architecture=architecture,
            os=os_name,
            variant=_get(doc, "variant", str, what),
            created=_created(doc, what),
            author=_get(doc, "author", str, what),
            config=ContainerConfig.from_dict(container),
            rootfs=RootFS(tuple(_check_digest(d, "rootfs.diff_ids[]") for d in diff_ids), rtype),
            history=tuple(History.from_dict(h, f"history[{i}]") for i, h in enumerate(history)),
        )


# -- manifest and index ---------------------------------------------------------------------------


def _check_schema(doc: Mapping[str, Any], what: str) -> None:
    version = _get(doc, "schemaVersion", int, what, required=True)
    if version != 2:
        raise ImageFormatError(f"{what}: schemaVersion must be 2, got {version}")


def _check_media_type(doc: Mapping[str, Any], allowed: frozenset[str], content_type: str | None, what: str) -> str | None:
    declared = _get(doc, "mediaType", str, what)
    if declared is not None and declared not in allowed:
        raise MediaTypeError(f"{what}: mediaType {declared!r} is not one of {sorted(allowed)}")
    if content_type is not None:
        content_type = content_type.split(";", 1)[0].strip()
        if content_type not in allowed or (declared is not None and declared != content_type):
            raise MediaTypeError(f"{what}: Content-Type {content_type!r} disagrees with mediaType {declared!r}")
    return declared


@dataclass(frozen=True)
class Manifest:
    """An image manifest: one config descriptor and the layer descriptors, base layer first."""

    config: Descriptor
    layers: tuple[Descriptor, ...] = ()
    media_type: str | None = MEDIA_TYPE_OCI_MANIFEST
    annotations: Mapping[str, str] = field(default_factory=FrozenMap)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    schema_version = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "annotations", _fmap(self.annotations))

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "artifactType": self.artifact_type,
            "config": self.config.to_dict(),
            "layers": [d.to_dict() for d in self.layers],
            "subject": self.subject.to_dict() if self.subject else None,
            "annotations": dict(self.annotations) or None,
        })

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes, *, content_type: str | None = None) -> Manifest:
        """Parse and validate; ``content_type`` is the HTTP header or descriptor media type it came with."""
        doc = _load_json(data, "manifest")
        if "manifests" in doc:
            raise MediaTypeError("manifest holds both 'layers'/'config' and 'manifests' (CVE-2021-41190): refused")
        _check_schema(doc, "manifest")
        media_type = _check_media_type(doc, MANIFEST_MEDIA_TYPES, content_type, "manifest")
        layers = _get(doc, "layers", list, "manifest", required=True)
        subject = _get(doc, "subject", dict, "manifest")
        return cls(
            config=Descriptor.from_dict(_get(doc, "config", dict, "manifest", required=True), "manifest.config"),
            layers=tuple(Descriptor.from_dict(d, f"manifest.layers[{i}]") for i, d in enumerate(layers)),
            media_type=media_type,
            annotations=_str_map(doc, "annotations", "manifest"),
            subject=Descriptor.from_dict(subject, "manifest.subject") if subject is not None else None,
            artifact_type=_get(doc, "artifactType", str, "manifest"),
        )


@dataclass(frozen=True)
class Index:
    """An image index: manifests per platform, or (in a layout's index.json) per tag."""

    manifests: tuple[Descriptor, ...] = ()
    media_type: str | None = MEDIA_TYPE_OCI_INDEX
    annotations: Mapping[str, str] = field(default_factory=FrozenMap)

    schema_version = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "manifests", tuple(self.manifests))
        object.__setattr__(self, "annotations", _fmap(self.annotations))

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [d.to_dict() for d in self.manifests],
            "annotations": dict(self.annotations) or None,
        })

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes, *, content_type: str | None = None) -> Index:
        doc = _load_json(data, "index")
        if "layers" in doc or "config" in doc:
            raise MediaTypeError("index holds both 'manifests' and 'layers'/'config' (CVE-2021-41190): refused")
        _check_schema(doc, "index")
        media_type = _check_media_type(doc, INDEX_MEDIA_TYPES, content_type, "index")
        manifests = _get(doc, "manifests", list, "index", required=True)
        return cls(
            manifests=tuple(Descriptor.from_dict(d, f"index.manifests[{i}]") for i, d in enumerate(manifests)),
            media_type=media_type,
            annotations=_str_map(doc, "annotations", "index"),
        )


def parse_document(data: bytes, *, content_type: str | None = None) -> Manifest | Index:
    """A manifest or an index, told apart by ``mediaType`` (or ``content_type``), never by guesswork alone.

    A document with both ``layers`` and ``manifests`` is refused whatever it claims.
    """
    doc = _load_json(data, "document")
    if "manifests" in doc and ("layers" in doc or "config" in doc):
        raise MediaTypeError("document holds both 'manifests' and 'layers'/'config' (CVE-2021-41190): refused")
    declared = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else None
    kind = declared or (content_type.split(";", 1)[0].strip() if content_type else None)
    if kind in INDEX_MEDIA_TYPES or (kind is None and "manifests" in doc):
        return Index.from_json(data, content_type=content_type)
    if kind in MANIFEST_MEDIA_TYPES or (kind is None and "config" in doc):
        return Manifest.from_json(data, content_type=content_type)
    raise MediaTypeError(f"not an image manifest or index (mediaType {kind!r})")


def validate_image(manifest: Manifest, config: ImageConfig) -> None:
    """The checks that need both documents: config media type and one DiffID per layer."""
    if manifest.config.media_type not in CONFIG_MEDIA_TYPES:
        raise MediaTypeError(f"manifest.config.mediaType {manifest.config.media_type!r} is not an image config")
    if len(manifest.layers) != len(config.rootfs.diff_ids):
        raise ImageFormatError(
            f"the manifest has {len(manifest.layers)} layers but rootfs.diff_ids has {len(config.rootfs.diff_ids)}"
        )
    for i, layer in enumerate(manifest.layers):
        if layer.media_type not in LAYER_MEDIA_TYPES:
            raise MediaTypeError(f"manifest.layers[{i}].mediaType {layer.media_type!r} is not a layer media type")


def layer_compression(media_type: str) -> str | None:
    """``None``, ``"gzip"`` or ``"zstd"`` for a layer media type; unknown types raise MediaTypeError."""
    try:
        return LAYER_MEDIA_TYPES[media_type]
    except KeyError:
        raise MediaTypeError(f"{media_type!r} is not a layer media type") from None

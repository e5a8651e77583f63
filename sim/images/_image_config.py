"""The image config (镜像配置) and the platform it names, as frozen dataclasses.

The config's sha256 is the ImageID, so :meth:`ImageConfig.to_json` writes
canonical bytes; reading validates through :mod:`sim.images._json`.
"""

from __future__ import annotations

import datetime
import platform as _platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.digest import Digest, sha256_digest
from sim.images._json import (
    RFC3339,
    FrozenMap,
    ImageFormatError,
    canonical_json,
    check_digest,
    drop_none,
    fmap,
    get_created,
    get_field,
    load_json,
    set_keys,
    str_list,
    str_map,
)


def image_id(config_bytes: bytes) -> Digest:
    """The ImageID: sha256 of the config blob exactly as stored."""
    return sha256_digest(config_bytes)


def rfc3339(seconds: float | int) -> str:
    """``created`` as Go's RFC3339Nano prints it in UTC: ``2024-01-02T03:04:05Z``."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _tuple(value: Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError("expected a sequence of strings, got one str")
    return tuple(value)


@dataclass(frozen=True)
class Platform:
    architecture: str
    os: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return drop_none({
            "architecture": self.architecture,
            "os": self.os,
            "variant": self.variant,
            "os.version": self.os_version,
            "os.features": list(self.os_features) or None,
        })

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], what: str = "platform") -> Platform:
        return cls(
            architecture=get_field(doc, "architecture", str, what, required=True),
            os=get_field(doc, "os", str, what, required=True),
            variant=get_field(doc, "variant", str, what),
            os_version=get_field(doc, "os.version", str, what),
            os_features=str_list(doc, "os.features", what) or (),
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
        object.__setattr__(self, "labels", fmap(self.labels))
        object.__setattr__(self, "volumes", tuple(sorted(set(_tuple(self.volumes) or ()))))
        object.__setattr__(self, "exposed_ports", tuple(sorted(set(_tuple(self.exposed_ports) or ()))))

    def to_dict(self) -> dict[str, Any]:
        return drop_none({
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
            env=str_list(doc, "Env", what) or (),
            cmd=str_list(doc, "Cmd", what),
            entrypoint=str_list(doc, "Entrypoint", what),
            working_dir=get_field(doc, "WorkingDir", str, what) or "",
            user=get_field(doc, "User", str, what) or "",
            labels=str_map(doc, "Labels", what),
            volumes=set_keys(doc, "Volumes", what),
            exposed_ports=set_keys(doc, "ExposedPorts", what),
            stop_signal=get_field(doc, "StopSignal", str, what) or "",
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
        return drop_none({
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
            created=get_created(doc, what),
            created_by=get_field(doc, "created_by", str, what),
            author=get_field(doc, "author", str, what),
            comment=get_field(doc, "comment", str, what),
            empty_layer=bool(get_field(doc, "empty_layer", bool, what)),
        )


@dataclass(frozen=True)
class RootFS:
    diff_ids: tuple[str, ...] = ()
    type: str = "layers"

    def __post_init__(self) -> None:
        object.__setattr__(self, "diff_ids", tuple(check_digest(d, "rootfs.diff_ids[]") for d in self.diff_ids))
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
        if self.created is not None and not RFC3339.match(self.created):
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
        return drop_none({
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
        return cls.from_dict(load_json(data, "image config"))

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ImageConfig:
        what = ""
        rootfs = get_field(doc, "rootfs", dict, what, required=True)
        rtype = get_field(rootfs, "type", str, "rootfs", required=True)
        diff_ids = get_field(rootfs, "diff_ids", list, "rootfs", required=True)
        if not all(isinstance(d, str) for d in diff_ids):
            raise ImageFormatError("rootfs.diff_ids must be a list of digests")
        history = get_field(doc, "history", list, what) or []
        container = get_field(doc, "config", dict, what) or {}
        architecture = get_field(doc, "architecture", str, what, required=True)
        os_name = get_field(doc, "os", str, what, required=True)
        if not architecture or not os_name:
            raise ImageFormatError("architecture and os must not be empty")
        return cls(
            architecture=architecture,
            os=os_name,
            variant=get_field(doc, "variant", str, what),
            created=get_created(doc, what),
            author=get_field(doc, "author", str, what),
            config=ContainerConfig.from_dict(container),
            rootfs=RootFS(tuple(check_digest(d, "rootfs.diff_ids[]") for d in diff_ids), rtype),
            history=tuple(History.from_dict(h, f"history[{i}]") for i, h in enumerate(history)),
        )

"""What engines return: frozen dataclasses, the same on every backend."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sim.layers.changes import Change

__all__ = [
    "ExecResult",
    "HistoryEntry",
    "ImageInfo",
    "ContainerInfo",
    "VolumeInfo",
    "BuildStep",
    "BuildResult",
    "DiskUsage",
    "Change",
]


@dataclass(frozen=True)
class ExecResult:
    """A process's end: ``exit_code`` 128+N when killed by signal N, as Docker reports it.

    ``warnings`` are problems the engine met *after* the process ended, which do not
    change its result: e.g. a container layer that could not be read back or saved
    (the output and exit code are still the process's own; see docs/layers.md).
    """

    exit_code: int
    stdout: bytes
    stderr: bytes
    warnings: tuple[str, ...] = ()

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr).decode(errors="replace")


@dataclass(frozen=True)
class HistoryEntry:
    """One line of ``docker history``: ``layer`` is None for metadata-only steps."""

    created_by: str
    layer: str | None
    size: int
    empty_layer: bool
    comment: str = ""


@dataclass(frozen=True)
class ImageInfo:
    id: str  # sha256 of the config bytes
    tags: tuple[str, ...]
    diff_ids: tuple[str, ...]
    chain_ids: tuple[str, ...]
    size: int  # bytes of every layer's files, shared layers included
    created: str
    config: Mapping[str, object] = field(default_factory=dict)
    # The manifest's sha256 (what a registry names it by, `docker images --digests`); containerd's
    # image store, which Docker 25+ can use, knows it for every image, not only pulled ones.
    digest: str = ""


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    image: str
    state: str  # created, running, restarting, exited
    exit_code: int | None
    command: tuple[str, ...]
    upper_size: int  # bytes in the container layer (容器存储层)
    mounts: tuple[tuple[str, str], ...] = ()  # (source, destination)
    seccomp: str = "docker-default"  # the sandbox's seccomp filter: "docker-default" or "unconfined"
    # Its life, on the engine's clock (the model's is virtual; see docs/containers.md): seconds since the epoch.
    created: float = 0.0
    started_at: float | None = None  # its last run's start (None: never started)
    finished_at: float | None = None  # its last run's end (None: never ended)
    restart_count: int = 0  # restarts its --restart policy made since it was last started
    restart_policy: str = "no"  # no, on-failure[:N], always, unless-stopped
    auto_remove: bool = False  # --rm
    status: str = ""  # docker ps's STATUS: "Up 5 seconds", "Exited (0) 3 seconds ago" ...


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    size: int
    used_by: tuple[str, ...]


@dataclass(frozen=True)
class BuildStep:
    """One Buildfile instruction as the builder handled it."""

    number: int
    instruction: str
    cached: bool
    layer: str | None  # DiffID, or None for metadata-only steps
    size: int
    output: str = ""
    skipped: bool = False  # in a stage the target does not need (multi-stage builds): not run at all


@dataclass(frozen=True)
class BuildResult:
    image: ImageInfo
    steps: tuple[BuildStep, ...]


@dataclass(frozen=True)
class DiskUsage:
    """``docker system df -v`` in numbers: layers stored once however many images share them."""

    images: int
    layers: int
    shared_bytes: int  # bytes of layers used by two or more images
    unique_bytes: int  # bytes of layers used by exactly one image
    containers: int
    container_bytes: int  # writable layers
    volumes: int
    volume_bytes: int
    per_image: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # tag or id -> (shared, unique)

    @property
    def total_bytes(self) -> int:
        return self.shared_bytes + self.unique_bytes + self.container_bytes + self.volume_bytes

"""A container and what it runs: :class:`Container`, :class:`ProcessSpec`, and a container kept on disk.

What every runtime derives from a container before it runs a process (uid and gid from ``USER``,
``HOME``, the environment) is here too, and so is the containers folder's format: each
container's description, logs and writable layer, for the next engine (see
:meth:`sim.containers.core.EngineCore.close`).
"""

from __future__ import annotations

import json
import os
import stat as _stat
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.containers._policy import NO_RESTART, RestartPolicy, parse_restart_policy
from sim.containers._users import resolve_user
from sim.containers.limits import Limits
from sim.containers.userns import HOST_MAPS, IdMaps
from sim.errors import BuildError, ConflictError, ContainerStateError, ImageNotFoundError, LayerFormatError
from sim.images._durable import atomic_write
from sim.images.store import ImageRecord
from sim.interface import FileSystem, UnionMount
from sim.layers.layer import _NO_CLAMP, Device, Directory, Fifo, Layer, RegularFile, Symlink, Whiteout
from sim.network import PortMapping, parse_publish
from sim.results import ExecResult

__all__ = ["Container", "ProcessSpec", "FinishedProcess", "DEFAULT_PATH", "NAME_CHARS", "env_dict", "env_list",
           "user_ids", "home_of", "mkdir_p", "check_container_name", "check_mounts", "process_spec", "snapshot",
           "save_container", "load_container", "saved_upper"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@dataclass(frozen=True)
class ProcessSpec:
    """A process to run in a container: what the runtime half of an engine receives."""

    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    uid: int
    gid: int
    hostname: str
    stdin: bytes | None = None
    limits: Limits | None = None  # 资源限制: the container's cgroup limits (None: none)
    groups: tuple[int, ...] = ()  # supplementary groups, primary first (moby's AdditionalGids); () for none


@dataclass
class Container:
    """A container: an image's layers, its own writable layer, mounts and a state (容器).

    Its union is mounted when first needed (``mount``): a container an earlier run saved is
    only mounted again if something looks at it or runs in it.
    """

    id: str
    name: str
    image: ImageRecord
    mounted: UnionMount | None
    volumes: dict[str, str]  # container path -> volume name
    binds: dict[str, str]  # container path -> host path
    command: tuple[str, ...]
    env: tuple[str, ...]
    workdir: str
    user: str
    hostname: str
    anonymous: tuple[str, ...] = ()  # volumes made for the image's VOLUME paths
    state: str = "created"
    exit_code: int | None = None
    logs: bytes = b""
    process: Any = None  # a detached, running process (see EngineCore._spawn)
    mounter: Any = None  # makes ``mounted`` on demand (a container loaded from the state folder)
    saved_size: int = 0  # its writable layer's bytes when it was saved
    limits: Limits | None = None  # --memory, --cpus, --cpu-shares, --pids-limit (sim.containers.limits)
    last_usage: Any = None  # the final cgroup reading of its last detached run (see EngineCore.usage)
    network_mode: str = "none"  # "none", "host" or a network's name (sim.containers._networking)
    ports: tuple[PortMapping, ...] = ()  # -p 127.0.0.1:HOST:CONTAINER
    seccomp: str = "docker-default"  # the seccomp filter of its sandbox, or "unconfined" (sim.containers._security)
    #: Why the writable layer could not be read back or saved after its last process (None: it was).
    #: The process's result is not affected; ``diff``/``commit`` of an unmounted container then refuse.
    layer_error: str | None = None
    # -- its life (sim.containers._lifecycle): times on the engine's clock (virtual in the model) --
    started_at: float | None = None  # when its last run started
    finished_at: float | None = None  # when its last run ended
    restart_policy: RestartPolicy = NO_RESTART  # --restart
    restart_count: int = 0  # restarts the policy made since the last start
    restart_at: float | None = None  # "restarting": when the next run starts
    restart_delay: float = 0.0  # the last wait between two runs (moby's doubling backoff)
    auto_remove: bool = False  # --rm: removed, anonymous volumes too, once it exits
    stopped_by_user: bool = False  # stop or kill since the last start: the policy does not restart it
    #: Who supervises its runs when not this engine: the real backend's monitor (pid and start time).
    #: None: a run lives only as long as its engine (a running container then comes back exited 137).
    run_state: dict[str, Any] | None = None
    #: A model run saved while it went on (``TimelineProcess.to_dict``), for the next engine to resume.
    timeline: dict[str, Any] | None = None

    @property
    def mount(self) -> UnionMount:
        if self.mounted is None:
            self.mounted = self.mounter()
        return self.mounted

    @property
    def upper_size(self) -> int:
        if self.mounted is None:
            return self.saved_size
        try:
            return self.mounted.upper.size
        except LayerFormatError:
            return self.saved_size  # an upper layer that cannot be read back: its last known size
    created: float = field(default_factory=time.time)


@dataclass
class FinishedProcess:
    """The handle of a process that has already run to its end (the model's "detached" run)."""

    result: ExecResult
    running: bool = False

    @property
    def stdout(self) -> bytes:
        return self.result.stdout

    @property
    def stderr(self) -> bytes:
        return self.result.stderr

    def wait(self, timeout: float | None = None) -> int:
        return self.result.exit_code

    def stop(self, grace: float = 10.0) -> int:
        return self.result.exit_code

    def kill(self, sig: int = 9) -> None:
        raise ContainerStateError("the process has already exited")


def env_dict(env: Sequence[str]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in env if "=" in e)


def env_list(env: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(f"{k}={v}" for k, v in env.items())


def user_ids(user: str, fs: FileSystem) -> tuple[int, int]:
    """``USER`` as uid and gid, looked up in the image's /etc/passwd and /etc/group
    (see :func:`sim.containers._users.resolve_user`)."""
    found = resolve_user(user, fs)
    return found.uid, found.gid


def home_of(uid: int, fs: FileSystem) -> str:
    """HOME from the image's /etc/passwd, else ``/``."""
    try:
        lines = fs.read_bytes("/etc/passwd").decode(errors="replace").splitlines()
    except OSError:
        return "/"
    for line in lines:
        fields = line.split(":")
        if len(fields) >= 6 and fields[2] == str(uid) and fields[5]:
            return fields[5]
    return "/"


def mkdir_p(fs: FileSystem, path: str, mode: int = 0o755) -> None:
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts) + 1):
        sub = "/" + "/".join(parts[:i])
        try:
            st = fs.stat(sub)
        except FileNotFoundError:
            fs.mkdir(sub, mode)
            continue
        if not _stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(20, "Not a directory", sub)


def check_container_name(name: str, taken: Iterable[str]) -> None:
    """Refuse a container name Docker refuses, or one another container has."""
    if not name or name[0] not in NAME_CHARS - {"_", ".", "-"} or not set(name) <= NAME_CHARS:
        raise ValueError(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    if any(other == name for other in taken):
        raise ConflictError(f'Conflict. The container name "/{name}" is already in use')


def check_mounts(volumes: Mapping[str, str], binds: Mapping[str, str]) -> None:
    """Refuse mount targets other than absolute paths below /, and bind sources that are not host folders."""
    for target in [*volumes, *binds]:
        if not target.startswith("/") or target == "/":
            raise ValueError(f"invalid mount target {target!r}: an absolute path other than /")
    for source in binds.values():
        if not os.path.isabs(source) or not os.path.isdir(source):
            raise ValueError(f"bind source {source!r} must be an existing absolute host folder")


def process_spec(container: Container, fs: FileSystem, argv: tuple[str, ...], *, stdin: bytes | None,
                 id_maps: IdMaps = HOST_MAPS) -> ProcessSpec:
    """``argv`` as a process of ``container`` (``fs``: its whole tree, volumes included).  The user is
    resolved and checked against ``id_maps`` (:meth:`IdMaps.require`) before anything is made; then a
    missing WORKDIR and the mount points are made in the container layer, as Docker does."""
    user = resolve_user(container.user, fs)
    uid, gid = user.uid, user.gid
    id_maps.require(uid, gid)
    mkdir_p(container.mount, container.workdir)  # Docker creates a missing WORKDIR too
    for target in [*container.volumes, *container.binds]:
        mkdir_p(container.mount, target)  # mount points appear in the container layer, as with Docker
    # What every runtime adds, in this order, when the image did not set it (as Docker does).
    env = env_dict(container.env)
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", container.hostname)
    env.setdefault("HOME", user.home)
    return ProcessSpec(argv=argv, env=env_list(env), cwd=container.workdir, uid=uid, gid=gid,
                       hostname=container.hostname, stdin=stdin, limits=container.limits, groups=user.groups)


def snapshot(upper: Layer, *, freeze: bool = True) -> Layer:
    """A copy of a container layer (frozen unless ``freeze=False``), without the kernel's private bookkeeping."""
    out = Layer()
    copies: dict[int, Any] = {}
    for path, entry in upper.items():
        if isinstance(entry, Directory):
            if entry.redirect:
                raise BuildError("the container layer holds overlay redirects; it cannot be committed as a tar")
            new: Any = Directory(mode=entry.mode, uid=entry.uid, gid=entry.gid, mtime_ns=entry.mtime_ns,
                                 xattrs=entry.xattrs, opaque=entry.opaque)
        elif isinstance(entry, RegularFile):
            new = copies.get(id(entry)) or RegularFile(entry.data, mode=entry.mode, uid=entry.uid, gid=entry.gid,
                                                        mtime_ns=entry.mtime_ns, xattrs=entry.xattrs)
            copies[id(entry)] = new
        elif isinstance(entry, Symlink):
            new = Symlink(entry.target, uid=entry.uid, gid=entry.gid, mtime_ns=entry.mtime_ns)
        elif isinstance(entry, (Fifo, Device)):
            new = entry.copy()
        else:
            assert isinstance(entry, Whiteout)
            new = Whiteout()
        out._set(path, new)
    return out.freeze() if freeze else out


def save_container(folder: Path, container: Container) -> str | None:
    """Write a container's description, logs and (when mounted) writable layer to its own ``folder``.

    A writable layer that cannot be read back or written as a tar (a :class:`LayerFormatError`:
    a name starting with ``.wh.``, an entry type no layer holds) never stops the rest: the
    description and logs are written, the last good ``upper.tar`` stays, and the problem is
    kept in ``container.layer_error`` (and saved) and returned.  None when all was saved.
    """
    folder.mkdir(parents=True, exist_ok=True)
    live = container.state in ("running", "restarting")
    to_dict = getattr(container.process, "to_dict", None) if container.state == "running" else None
    if container.mounted is not None:
        try:
            layer = container.mounted.upper
            atomic_write(folder / "upper.tar", layer.tar_bytes(source_date_epoch=_NO_CLAMP))
        except LayerFormatError as exc:
            container.layer_error = f"the container layer could not be saved: {exc}"
        else:
            container.saved_size = layer.size
            container.layer_error = None
    meta = {
        "id": container.id, "name": container.name, "image": str(container.image.id),
        "volumes": container.volumes, "binds": container.binds, "command": list(container.command),
        "env": list(container.env), "workdir": container.workdir, "user": container.user,
        "hostname": container.hostname, "anonymous": list(container.anonymous),
        "state": container.state, "exit_code": container.exit_code,
        "created": container.created, "upper_size": container.saved_size,
        "started_at": container.started_at, "finished_at": container.finished_at,
        "restart_policy": str(container.restart_policy), "restart_count": container.restart_count,
        "restart_at": container.restart_at, "restart_delay": container.restart_delay,
        "auto_remove": container.auto_remove, "stopped_by_user": container.stopped_by_user,
        "run_state": container.run_state if live else None,
        "timeline": to_dict() if to_dict is not None else None,
        "limits": container.limits.to_dict() if container.limits else {},
        "network_mode": container.network_mode, "ports": [str(p) for p in container.ports],
        "seccomp": container.seccomp,
        "layer_error": container.layer_error,
    }
    # The logs first: a reader in another process that sees the new state (an ended run) sees its output too.
    atomic_write(folder / "logs", container.logs)
    atomic_write(folder / "config.json", json.dumps(meta, sort_keys=True).encode())
    return container.layer_error


def load_container(folder: Path, resolve: Callable[[str], ImageRecord]) -> Container | None:
    """The container :func:`save_container` wrote in ``folder``, not mounted (it has no ``mounter`` yet);
    ``resolve`` finds its image by ID.  A container saved while it ran comes back ``running`` with its
    ``run_state``: the engine decides whether its run goes on (``EngineCore._resume``) or died with its
    engine (exited 137)."""
    try:
        meta = json.loads((folder / "config.json").read_text())
        record = resolve(meta["image"])
    except (OSError, ValueError, KeyError, ImageNotFoundError):
        return None  # half-written or its image is gone: nothing to show
    return Container(
        id=meta["id"], name=meta["name"], image=record, mounted=None, volumes=dict(meta["volumes"]),
        binds=dict(meta["binds"]), command=tuple(meta["command"]), env=tuple(meta["env"]),
        workdir=meta["workdir"], user=meta["user"], hostname=meta["hostname"],
        anonymous=tuple(meta["anonymous"]), state=meta["state"], exit_code=meta["exit_code"],
        logs=(folder / "logs").read_bytes() if (folder / "logs").exists() else b"",
        created=meta["created"], saved_size=meta.get("upper_size", 0),
        limits=Limits.from_dict(meta.get("limits")) or None,
        network_mode=meta.get("network_mode", "none"),
        ports=tuple(parse_publish(_publish_spec(p)) for p in meta.get("ports", [])),
        seccomp=meta.get("seccomp", "docker-default"),
        layer_error=meta.get("layer_error"),
        started_at=meta.get("started_at"), finished_at=meta.get("finished_at"),
        restart_policy=parse_restart_policy(meta.get("restart_policy")), restart_count=meta.get("restart_count", 0),
        restart_at=meta.get("restart_at"), restart_delay=meta.get("restart_delay", 0.0),
        auto_remove=meta.get("auto_remove", False), stopped_by_user=meta.get("stopped_by_user", False),
        run_state=meta.get("run_state"), timeline=meta.get("timeline"),
    )


def _publish_spec(shown: str) -> str:
    """``127.0.0.1:8080->80/tcp`` (how a mapping prints) back to ``-p``'s ``127.0.0.1:8080:80/tcp``."""
    return shown.replace("->", ":")


def saved_upper(upper_tar: Path) -> Layer:
    """A saved writable layer, writable again (an empty one when none was saved)."""
    upper = Layer()
    if upper_tar.exists():
        with open(upper_tar, "rb") as fh:
            upper = snapshot(Layer.from_tar(fh), freeze=False)
    return upper

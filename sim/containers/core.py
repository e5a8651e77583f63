"""One engine, two runtimes: images, builds, containers and volumes over any backend.

Everything Docker does *around* a process is the same in the model and on
the kernel: the image store, the build steps and their cache, the container's
writable layer, ``diff``, ``commit``, ``df``.  Only three things differ and
are left to the subclass: mounting a union, running a process in it, and
where a volume's files live.  So the two backends cannot drift apart in
bookkeeping, and the parity tests compare what really differs.
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
import shlex
import shutil
import stat as _stat
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from sim.containers.limits import Limits, parse_limits
from sim.digest import chain_ids
from sim.errors import (
    BuildError,
    BuildfileError,
    ConflictError,
    ContainerNotFoundError,
    ContainerStateError,
    ImageNotFoundError,
    VolumeNotFoundError,
)
from sim.images.buildfile import Buildfile, Instruction, parse
from sim.images.oci import (
    ContainerConfig,
    History,
    ImageConfig,
    RootFS,
    host_platform,
    rfc3339,
)
from sim.images.reference import parse_reference
from sim.images.store import ImageRecord, ImageStore
from sim.interface import Engine, FileSystem, UnionMount
from sim.layers import _paths
from sim.layers._lowerview import LowerView
from sim.layers.changes import Change, upper_changes
from sim.layers.layer import (
    _NO_CLAMP,
    Directory,
    Layer,
    RegularFile,
    Symlink,
    Whiteout,
    source_date_epoch,
)
from sim.results import (
    BuildResult,
    BuildStep,
    ContainerInfo,
    DiskUsage,
    ExecResult,
    HistoryEntry,
    ImageInfo,
    VolumeInfo,
)

__all__ = ["EngineCore", "ProcessSpec", "Container"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


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

    @property
    def mount(self) -> UnionMount:
        if self.mounted is None:
            self.mounted = self.mounter()
        return self.mounted

    @property
    def upper_size(self) -> int:
        return self.mounted.upper.size if self.mounted is not None else self.saved_size
    created: float = field(default_factory=time.time)


def _created_stamp() -> str:
    sde = source_date_epoch()
    return rfc3339(sde if sde is not None else int(time.time()))


def _env_dict(env: Sequence[str]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in env if "=" in e)


def _env_list(env: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(f"{k}={v}" for k, v in env.items())


def _user_ids(user: str, fs: FileSystem) -> tuple[int, int]:
    """``USER`` as uid and gid: numbers, or names looked up in the image's /etc/passwd."""
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    uid = gid = None
    if name.isdigit():
        uid = int(name)
    try:
        passwd = fs.read_bytes("/etc/passwd").decode(errors="replace").splitlines()
    except OSError:
        passwd = []
    for line in passwd:
        fields = line.split(":")
        if len(fields) > 3 and (fields[0] == name or (uid is not None and fields[2] == str(uid))):
            uid, gid = int(fields[2]), int(fields[3])
            break
    if uid is None:
        raise ConflictError(f"unable to find user {name}: no matching entries in passwd file")
    if group:
        gid = int(group) if group.isdigit() else gid
    return uid, gid if gid is not None else 0


def _home_of(uid: int, fs: FileSystem) -> str:
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


def _mkdir_p(fs: FileSystem, path: str, mode: int = 0o755) -> None:
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


class EngineCore(Engine):
    """The engine both backends share; a subclass supplies the runtime (see the module docstring)."""

    name = "core"

    def __init__(self, store: ImageStore, *, containers_dir: Path | None = None) -> None:
        self.store = store
        self.containers_dir = containers_dir  # where containers outlive this engine (None: they do not)
        self._containers: dict[str, Container] = {}
        self._volumes: dict[str, Any] = {}
        self._cache: dict[str, str] = {}  # build cache key -> DiffID of the layer it made
        self._cache_file = containers_dir.parent / "build-cache.json" if containers_dir is not None else None
        if self._cache_file is not None and self._cache_file.exists():
            try:
                self._cache.update(json.loads(self._cache_file.read_text()))
            except ValueError:
                pass  # a damaged cache only costs a rebuild
        self._loaded: dict[str, Layer] = {}  # DiffID -> the frozen layer read from the store
        self._views: dict[str, LowerView] = {}  # ImageID -> its merged lower view (for diff)

    # -- what a backend supplies -------------------------------------------------------

    @abc.abstractmethod
    def _execute(self, container: Container, spec: ProcessSpec) -> ExecResult:
        """Run ``spec`` in ``container`` (its union mounted, its volumes in place) to the end."""

    def _check_limits(self, limits: Limits) -> None:
        """Refuse ``limits`` this backend cannot apply here, before anything is created (the
        model applies none: it stores them)."""

    def _spawn(self, container: Container, spec: ProcessSpec) -> Any:
        """Start ``spec`` in the background; the handle has ``wait(timeout)``, ``stop(grace)``,
        ``kill(sig)``, ``running``, ``stdout`` and ``stderr``.  The model has no scheduler:
        its processes run to the end at once, so its handle is already finished."""
        return _Finished(self._execute(container, spec))

    @abc.abstractmethod
    def _new_volume(self, name: str) -> Any:
        """Make the storage of a named volume."""

    @abc.abstractmethod
    def _volume_size(self, handle: Any) -> int: ...

    @abc.abstractmethod
    def _drop_volume(self, handle: Any) -> None: ...

    @abc.abstractmethod
    def container_fs(self, container: Container) -> FileSystem:
        """The container's whole tree as an os-shaped file system (volumes included)."""

    @abc.abstractmethod
    def base_layer(self) -> Layer:
        """The base image's one layer (the host's static busybox), identical in every backend."""

    def _layers(self, record: ImageRecord) -> list[Layer]:
        """An image's layers, each parsed from its blob once per engine (layers never change)."""
        missing = [d for d in record.diff_ids if d not in self._loaded]
        if missing:
            for diff_id, layer in zip(record.diff_ids, self.store.load_layers(record)):
                self._loaded.setdefault(diff_id, layer)
        return [self._loaded[d] for d in record.diff_ids]

    def _layer_by_diff_id(self, diff_id: str) -> Layer | None:
        """A stored layer by DiffID (a build-cache hit), or None when no image keeps it any more."""
        if diff_id not in self._loaded:
            for record in self.store.list(all=True):
                if diff_id in record.diff_ids:
                    self._layers(record)
                    break
        return self._loaded.get(diff_id)

    # -- images (镜像) -------------------------------------------------------------------

    def base_image(self, ref: str = "busybox:latest") -> ImageInfo:
        """Import the busybox base image under ``ref`` (idempotent: same bytes, same ImageID)."""
        layer = self.base_layer()
        created = rfc3339(source_date_epoch() or 0)
        config = ImageConfig(
            architecture=host_platform().architecture, os="linux",
            rootfs=RootFS(diff_ids=(layer.diff_id,)),
            config=ContainerConfig(env=(f"PATH={DEFAULT_PATH}",), cmd=("sh",)),
            history=(History(created=created, created_by="layerlab base: host busybox-static"),),
            created=created,
        )
        return self.image_info(self.store.add([layer], config, tags=[ref]))

    def _image(self, ref: str) -> ImageRecord:
        try:
            return self.store.resolve(ref)
        except ImageNotFoundError:
            if parse_reference(ref).path == "library/busybox" and not self.store.list():
                self.base_image(str(parse_reference(ref).familiar))  # first use: make the base image
                return self.store.resolve(ref)
            raise

    def image_info(self, record: ImageRecord) -> ImageInfo:
        diff_ids = tuple(record.diff_ids)
        return ImageInfo(
            id=str(record.id), tags=tuple(record.tags), diff_ids=diff_ids,
            chain_ids=tuple(chain_ids(list(diff_ids))) if diff_ids else (),
            size=sum(layer.size for layer in self._layers(record)), created=record.created or "",
            config=_config_summary(record.config),
        )

    def images(self) -> list[ImageInfo]:
        return [self.image_info(r) for r in self.store.list()]

    def inspect_image(self, ref: str) -> ImageInfo:
        return self.image_info(self._image(ref))

    def history(self, ref: str) -> list[HistoryEntry]:
        """``docker history``, newest first: metadata steps have no layer and size 0."""
        record = self._image(ref)
        layers = list(record.diff_ids)
        sizes = [layer.size for layer in self._layers(record)]  # file bytes, as docker history shows
        out: list[HistoryEntry] = []
        i = 0
        for h in record.config.history:
            if h.empty_layer:
                out.append(HistoryEntry(h.created_by or "", None, 0, True, h.comment or ""))
            else:
                out.append(HistoryEntry(h.created_by or "", layers[i] if i < len(layers) else None,
                                        sizes[i] if i < len(sizes) else 0, False, h.comment or ""))
                i += 1
        return out[::-1]

    def tag(self, source: str, target: str) -> ImageInfo:
        return self.image_info(self.store.tag(source, target))

    def remove_image(self, ref: str, *, force: bool = False) -> list[str]:
        record = self._image(ref)
        users = [c.name for c in self._containers.values() if c.image.id == record.id]
        if users and not force:
            raise ConflictError(
                f"unable to remove {ref} (must force) - image is being used by container {users[0]}"
            )
        return self.store.remove(ref, force=force).lines()

    def save(self, refs: Sequence[str], fileobj: IO[bytes]) -> None:
        self.store.save(list(refs), fileobj)

    def load(self, fileobj: IO[bytes]) -> list[ImageInfo]:
        return [self.image_info(r) for r in self.store.load(fileobj)]

    # -- build -------------------------------------------------------------------------------

    def build(self, context: str | os.PathLike[str], *, buildfile: str = "Buildfile", tag: str | None = None,
              build_args: Mapping[str, str] | None = None, no_cache: bool = False,
              progress: Callable[[BuildStep], None] | None = None) -> BuildResult:
        """Build the Buildfile in ``context``: one layer per file-changing step, cached by parent chain,
        instruction and copied content ("CACHED" steps).  A failing step leaves no layer behind.
        ``progress`` is called with each step as soon as it is done."""
        context = Path(context).resolve()
        path = context / buildfile
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise BuildfileError(f"cannot read the Buildfile: {exc.strerror}", filename=str(path)) from exc
        parsed = parse(text, filename=buildfile)
        if tag is not None:
            parse_reference(tag)  # refuse a bad name before doing any work
        return _Builder(self, parsed, context, dict(build_args or {}), no_cache, progress).run(tag)

    # -- containers (容器) ---------------------------------------------------------------------

    def create(self, image: str, command: Sequence[str] | str | None = None, *, name: str | None = None,
               env: Mapping[str, str] | None = None, volumes: Mapping[str, str] | None = None,
               binds: Mapping[str, str] | None = None, workdir: str | None = None, user: str | None = None,
               hostname: str | None = None, memory: int | str | None = None, cpus: Any = None,
               cpu_shares: int | str | None = None, pids_limit: int | str | None = None) -> ContainerInfo:
        """``docker create``: the image's layers, a new empty writable layer, the mounts named.

        ``volumes`` maps container paths to volume names (made on first use);
        ``binds`` maps container paths to host folders.  ``memory``, ``cpus``,
        ``cpu_shares`` and ``pids_limit`` are ``docker run``'s resource flags
        (see :func:`sim.containers.limits.parse_limits`), checked before anything is made.
        """
        limits = parse_limits(memory, cpus, cpu_shares, pids_limit)  # InvalidLimitError: nothing made yet
        if limits:
            self._check_limits(limits)
        record = self._image(image)
        if name is not None:
            if not name or name[0] not in _NAME_CHARS - {"_", ".", "-"} or not set(name) <= _NAME_CHARS:
                raise ValueError(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            if any(c.name == name for c in self._containers.values()):
                raise ConflictError(f'Conflict. The container name "/{name}" is already in use')
        for target in [*(volumes or {}), *(binds or {})]:
            if not target.startswith("/") or target == "/":
                raise ValueError(f"invalid mount target {target!r}: an absolute path other than /")
        for source in (binds or {}).values():
            if not os.path.isabs(source) or not os.path.isdir(source):
                raise ValueError(f"bind source {source!r} must be an existing absolute host folder")
        cfg = record.config.config
        if isinstance(command, str):
            command = ("/bin/sh", "-c", command)
        argv = tuple(cfg.entrypoint or ()) + tuple(command if command else (cfg.cmd or ()))
        if not argv:
            raise ConflictError("no command specified")
        cid = uuid.uuid4().hex + uuid.uuid4().hex
        layers = self._layers(record)
        mount = self.union(layers)
        volumes = dict(volumes or {})
        for vname in volumes.values():
            if vname not in self._volumes:
                self.create_volume(vname)
        anonymous = []
        for path in cfg.volumes:  # the image's VOLUME: an anonymous volume unless something is mounted there
            if path not in volumes and path not in (binds or {}):
                vname = uuid.uuid4().hex + uuid.uuid4().hex
                self.create_volume(vname)
                volumes[path] = vname
                anonymous.append(vname)
        container = Container(
            id=cid, name=name or f"layerlab_{cid[:8]}", image=record, mounted=mount,
            volumes=volumes, binds=dict(binds or {}), command=argv, anonymous=tuple(anonymous),
            env=_env_list({**_env_dict(cfg.env), **(env or {})}),
            workdir=workdir or cfg.working_dir or "/", user=user if user is not None else cfg.user,
            hostname=hostname or cid[:12], limits=limits or None,
        )
        self._containers[cid] = container
        self._save(container)
        return self.container_info(container)

    def run(self, image: str, command: Sequence[str] | str | None = None, *, remove: bool = False,
            stdin: bytes | None = None, **options: Any) -> ExecResult:
        """``docker run`` in the foreground: create, start, wait; ``remove`` is ``--rm``."""
        info = self.create(image, command, **options)
        try:
            result = self.start(info.id, stdin=stdin)
            assert result is not None
            return result
        finally:
            if remove:
                self.remove(info.id, volumes=True)  # --rm also removes the anonymous volumes

    def start(self, ref: str, *, stdin: bytes | None = None, detach: bool = False) -> ExecResult | None:
        """Run the container's command: to the end (its result), or ``detach`` and return None
        at once (``docker start``); :meth:`wait`, :meth:`stop` and :meth:`kill` then apply."""
        container = self._container(ref)
        self._refresh(container)
        if container.state == "running":
            raise ContainerStateError(f"container {container.name} is already running")
        if detach:
            container.process = self._spawn(container, self._spec(container, container.command, stdin=stdin))
            container.state, container.exit_code = "running", None
            self._refresh(container)
            return None
        result = self._run_in(container, container.command, stdin=stdin)
        container.state, container.exit_code = "exited", result.exit_code
        container.logs += result.stdout + result.stderr
        self._save(container)
        return result

    def _refresh(self, container: Container) -> None:
        """A detached process that ended: collect its status and output."""
        process = container.process
        if process is not None and not process.running:
            container.exit_code = process.wait(0)
            container.logs += process.stdout + process.stderr
            container.last_usage = getattr(process, "usage", lambda: None)()  # read before its cgroup went
            container.state, container.process = "exited", None
            self._save(container)

    def wait(self, ref: str, timeout: float | None = None) -> int:
        """``docker wait``: the exit code once the container's process ends."""
        container = self._container(ref)
        if container.process is not None:
            container.process.wait(timeout)
            self._refresh(container)
        if container.exit_code is None:
            raise ContainerStateError(f"container {container.name} has not been started")
        return container.exit_code

    def usage(self, ref: str) -> Any:
        """``docker stats``: the counters of the container's cgroup (the backend's reading, e.g.
        :class:`realrt.containers.cgroups.Usage`): now while a detached run goes on, else the last reading of
        its last detached run (taken just before the cgroup was removed).  ``None`` when there is
        none: never started detached, no cgroup (no limits), or a backend without cgroups (the model)."""
        container = self._container(ref)
        if container.process is not None:
            return getattr(container.process, "usage", lambda: None)()
        return container.last_usage

    def stop(self, ref: str, grace: float = 10.0) -> int | None:
        """``docker stop``: SIGTERM, then SIGKILL after ``grace`` seconds; the exit code (None if not running)."""
        container = self._container(ref)
        if container.process is not None:
            container.process.stop(grace)
        self._refresh(container)
        return container.exit_code

    def kill(self, ref: str, signal: int = 9) -> None:
        """``docker kill``: a signal to the container's PID 1; refused when it is not running."""
        container = self._container(ref)
        self._refresh(container)
        if container.process is None:
            raise ContainerStateError(f"Cannot kill container: {container.name}: container is not running")
        container.process.kill(signal)
        container.process.wait(10)
        self._refresh(container)

    def exec(self, ref: str, command: Sequence[str] | str, *, stdin: bytes | None = None) -> ExecResult:
        """``docker exec``: another process in the container.  In a running container it joins
        its namespaces; layerlab also lets you exec in a stopped one, over the same file system
        (Docker refuses that), to look at a container layer after the fact."""
        container = self._container(ref)
        self._refresh(container)
        argv = ("/bin/sh", "-c", command) if isinstance(command, str) else tuple(command)
        if container.process is not None:
            return self._exec_running(container, self._spec(container, argv, stdin=stdin))
        result = self._run_in(container, argv, stdin=stdin)
        self._save(container)
        return result

    def _exec_running(self, container: Container, spec: ProcessSpec) -> ExecResult:
        return self._execute(container, spec)

    def _spec(self, container: Container, argv: tuple[str, ...], *, stdin: bytes | None) -> ProcessSpec:
        fs = self.container_fs(container)
        uid, gid = _user_ids(container.user, fs)
        _mkdir_p(container.mount, container.workdir)  # Docker creates a missing WORKDIR too
        for target in [*container.volumes, *container.binds]:
            _mkdir_p(container.mount, target)  # mount points appear in the container layer, as with Docker
        # What every runtime adds, in this order, when the image did not set it (as Docker does).
        env = _env_dict(container.env)
        env.setdefault("PATH", DEFAULT_PATH)
        env.setdefault("HOSTNAME", container.hostname)
        env.setdefault("HOME", _home_of(uid, fs))
        return ProcessSpec(argv=argv, env=_env_list(env), cwd=container.workdir, uid=uid, gid=gid,
                           hostname=container.hostname, stdin=stdin, limits=container.limits)

    def _run_in(self, container: Container, argv: tuple[str, ...], *, stdin: bytes | None) -> ExecResult:
        return self._execute(container, self._spec(container, argv, stdin=stdin))

    def logs(self, ref: str) -> bytes:
        """``docker logs``: what the container wrote, stdout and stderr in the order they came;
        while a detached run goes on, what it has written so far."""
        container = self._container(ref)
        live = getattr(container.process, "logs", None) if container.process is not None else None
        return live() if live is not None else container.logs

    def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> int:
        """``docker rm``: the writable layer is gone (returns its bytes); volumes keep their data,
        except, with ``volumes`` (``docker rm -v``), the anonymous ones made for the image's VOLUMEs."""
        container = self._container(ref)
        self._refresh(container)
        if container.state == "running" and not force:
            raise ContainerStateError(
                f"cannot remove container {container.name}: container is running: stop the container before "
                "removing or force remove"
            )
        if container.process is not None:
            container.process.kill(9)
            container.process.wait(10)
            container.process = None
        freed = container.upper_size
        if container.mounted is not None:
            container.mounted.unmount()
        del self._containers[container.id]
        self._forget(container)
        if volumes:
            for vname in container.anonymous:
                self.remove_volume(vname)
        return freed

    def containers(self, *, all: bool = True) -> list[ContainerInfo]:
        for c in self._containers.values():
            self._refresh(c)
        return [self.container_info(c) for c in self._containers.values() if all or c.state == "running"]

    def container_info(self, container: Container) -> ContainerInfo:
        return ContainerInfo(
            id=container.id, name=container.name, image=(container.image.tags or (str(container.image.id),))[0],
            state=container.state, exit_code=container.exit_code, command=container.command,
            upper_size=container.upper_size,
            mounts=tuple([(v, p) for p, v in container.volumes.items()] + [(h, p) for p, h in container.binds.items()]),
        )

    def _container(self, ref: str) -> Container:
        for c in self._containers.values():
            if ref in (c.id, c.name) or (len(ref) >= 3 and c.id.startswith(ref)):
                return c
        raise ContainerNotFoundError(f"No such container: {ref}")

    def diff(self, ref: str) -> list[Change]:
        """``docker diff``: A/C/D from the container layer (see :mod:`sim.layers.changes`)."""
        container = self._container(ref)
        below = self._lower_view(container.image).nodes
        return upper_changes(container.mount.upper, lambda p: p in below)

    def _lower_view(self, record: ImageRecord) -> LowerView:
        """An image's merged read-only view, computed once per image (its layers never change)."""
        view = self._views.get(record.id)
        if view is None:
            view = self._views[record.id] = LowerView(self._layers(record))
        return view

    def commit(self, ref: str, tag: str | None = None, *, message: str = "") -> ImageInfo:
        """``docker commit``: the writable layer becomes a new image layer on top of the image's."""
        container = self._container(ref)
        if tag is not None:
            parse_reference(tag)
        upper = _snapshot(container.mount.upper)
        layers = [*self._layers(container.image), upper]
        base = container.image.config
        history = (*base.history, History(created=_created_stamp(), created_by=" ".join(container.command),
                                          comment=message or None))
        config = replace(base, rootfs=RootFS(diff_ids=(*base.rootfs.diff_ids, upper.diff_id)),
                         history=history, created=_created_stamp())
        return self.image_info(self.store.add(layers, config, tags=[tag] if tag else [], parent=str(container.image.id)))

    # -- volumes (数据卷) ----------------------------------------------------------------------

    def _adopt_volumes(self, folder: Path | None) -> None:
        """Volumes a previous run left in ``folder`` (they outlive every container, by design)."""
        if folder is not None and folder.is_dir():
            for entry in sorted(folder.iterdir()):
                if (entry / "_data").is_dir() and entry.name not in self._volumes:
                    self._volumes[entry.name] = self._new_volume(entry.name)

    def create_volume(self, name: str) -> VolumeInfo:
        if not name or not set(name) <= _NAME_CHARS or name[0] in "_.-":
            raise ValueError(f"invalid volume name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if name not in self._volumes:
            self._volumes[name] = self._new_volume(name)
        return self.volume_info(name)

    def volume_info(self, name: str) -> VolumeInfo:
        if name not in self._volumes:
            raise VolumeNotFoundError(f"no such volume: {name}")
        users = tuple(c.name for c in self._containers.values() if name in c.volumes.values())
        return VolumeInfo(name=name, size=self._volume_size(self._volumes[name]), used_by=users)

    def list_volumes(self) -> list[VolumeInfo]:
        return [self.volume_info(n) for n in sorted(self._volumes)]

    def remove_volume(self, name: str) -> None:
        info = self.volume_info(name)
        if info.used_by:
            raise ConflictError(f"remove {name}: volume is in use - [{', '.join(info.used_by)}]")
        self._drop_volume(self._volumes.pop(name))

    # -- disk usage ---------------------------------------------------------------------------

    def df(self) -> DiskUsage:
        """``docker system df -v``: each layer counted once, split into shared and unique bytes."""
        records = self.store.list()
        users: dict[str, set[str]] = {}
        sizes: dict[str, int] = {}
        for r in records:
            for diff_id, layer in zip(r.diff_ids, self._layers(r)):
                users.setdefault(str(diff_id), set()).add(str(r.id))
                sizes[str(diff_id)] = layer.size  # file bytes, each layer once
        shared = sum(sizes[d] for d, u in users.items() if len(u) > 1)
        unique = sum(sizes[d] for d, u in users.items() if len(u) == 1)
        per_image = {
            (r.tags[0] if r.tags else r.short_id): (
                sum(sizes[str(d)] for d in r.diff_ids if len(users[str(d)]) > 1),
                sum(sizes[str(d)] for d in r.diff_ids if len(users[str(d)]) == 1),
            )
            for r in records
        }
        return DiskUsage(
            images=len(records), layers=len(sizes), shared_bytes=shared, unique_bytes=unique,
            containers=len(self._containers),
            container_bytes=sum(c.upper_size for c in self._containers.values()),
            volumes=len(self._volumes), volume_bytes=sum(self._volume_size(v) for v in self._volumes.values()),
            per_image=per_image,
        )

    def close(self) -> None:
        """Stop every container and unmount it.  With a containers folder they are saved there
        (writable layer included) for the next engine; without one they are gone (``docker rm -f``)."""
        for container in list(self._containers.values()):
            if self.containers_dir is None:
                self.remove(container.id, force=True)
                continue
            if container.process is not None:
                container.process.kill(9)
                container.process.wait(10)
                self._refresh(container)
            self._save(container)
            if container.mounted is not None:
                container.mounted.unmount()
            del self._containers[container.id]

    # -- containers that outlive the engine ------------------------------------------------------

    def _save(self, container: Container) -> None:
        """Write a container's description and writable layer to the containers folder."""
        if self.containers_dir is None or container.image is None:
            return
        folder = self.containers_dir / container.id
        folder.mkdir(parents=True, exist_ok=True)
        if container.mounted is not None:
            layer = container.mounted.upper
            _atomic_write(folder / "upper.tar", layer.tar_bytes(source_date_epoch=_NO_CLAMP))
            container.saved_size = layer.size
        meta = {
            "id": container.id, "name": container.name, "image": str(container.image.id),
            "volumes": container.volumes, "binds": container.binds, "command": list(container.command),
            "env": list(container.env), "workdir": container.workdir, "user": container.user,
            "hostname": container.hostname, "anonymous": list(container.anonymous),
            "state": "exited" if container.state == "running" else container.state,
            "exit_code": container.exit_code if container.state != "running" else 137,
            "created": container.created, "upper_size": container.saved_size,
            "limits": container.limits.to_dict() if container.limits else {},
        }
        _atomic_write(folder / "config.json", json.dumps(meta, sort_keys=True).encode())
        _atomic_write(folder / "logs", container.logs)

    def _forget(self, container: Container) -> None:
        if self.containers_dir is not None:
            shutil.rmtree(self.containers_dir / container.id, ignore_errors=True)

    def _load_containers(self) -> None:
        """The containers an earlier engine saved.  A container that was running then was
        killed with its engine: it comes back exited (137)."""
        if self.containers_dir is None or not self.containers_dir.is_dir():
            return
        for folder in sorted(self.containers_dir.iterdir()):
            try:
                meta = json.loads((folder / "config.json").read_text())
                record = self.store.resolve(meta["image"])
            except (OSError, ValueError, KeyError, ImageNotFoundError):
                continue  # half-written or its image is gone: nothing to show
            container = Container(
                id=meta["id"], name=meta["name"], image=record, mounted=None, volumes=dict(meta["volumes"]),
                binds=dict(meta["binds"]), command=tuple(meta["command"]), env=tuple(meta["env"]),
                workdir=meta["workdir"], user=meta["user"], hostname=meta["hostname"],
                anonymous=tuple(meta["anonymous"]), state=meta["state"], exit_code=meta["exit_code"],
                logs=(folder / "logs").read_bytes() if (folder / "logs").exists() else b"",
                created=meta["created"], saved_size=meta.get("upper_size", 0),
                limits=Limits.from_dict(meta.get("limits")) or None,
            )
            container.mounter = self._remounter(container, folder / "upper.tar")
            self._containers[container.id] = container

    def _remounter(self, container: Container, upper_tar: Path) -> Any:
        def mount() -> UnionMount:
            upper = Layer()
            if upper_tar.exists():
                with open(upper_tar, "rb") as fh:
                    upper = _snapshot(Layer.from_tar(fh), freeze=False)
            return self.union(self._layers(container.image), upper)

        return mount


@dataclass
class _Finished:
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


def _config_summary(config: ImageConfig) -> dict[str, object]:
    c = config.config
    return {
        "Env": list(c.env), "Cmd": list(c.cmd or ()), "Entrypoint": list(c.entrypoint or ()),
        "WorkingDir": c.working_dir, "User": c.user, "Labels": dict(c.labels), "Volumes": list(c.volumes),
        "ExposedPorts": list(c.exposed_ports),
    }


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _snapshot(upper: Layer, *, freeze: bool = True) -> Layer:
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
        else:
            assert isinstance(entry, Whiteout)
            new = Whiteout()
        out._set(path, new)
    return out.freeze() if freeze else out


class _Builder:
    """One build: steps in order, each a container over the layers so far."""

    def __init__(self, engine: EngineCore, buildfile: Buildfile, context: Path, build_args: dict[str, str],
                 no_cache: bool, progress: Callable[[BuildStep], None] | None = None) -> None:
        self.engine = engine
        self.progress = progress
        self.buildfile = buildfile
        self.context = context
        self.build_args = build_args
        self.no_cache = no_cache

    def run(self, tag: str | None) -> BuildResult:
        bf = self.buildfile
        meta_env: dict[str, str] = {}
        for ins in bf.meta_args:
            for key, value in ins.expanded(meta_env, filename=bf.filename).pairs:
                meta_env[key] = self.build_args.get(key, value or "")
        layers: list[Layer] = []
        config = ContainerConfig()
        history: list[History] = []
        args: dict[str, str] = {}
        steps: list[BuildStep] = []
        started = False
        for number, raw in enumerate(bf.instructions, start=1):
            if not started and raw.kind == "ARG":
                continue
            env = {**_env_dict(config.env), **args}
            ins = raw.expanded(env, filename=bf.filename) if raw.kind not in ("RUN", "CMD", "ENTRYPOINT") else raw
            text = f"{ins.kind} {' '.join(ins.args)}"
            if ins.kind == "FROM":
                started = True
                source = raw.expanded(meta_env, filename=bf.filename).image
                if source == "scratch":
                    layers, config, history = [], ContainerConfig(), []
                else:
                    try:
                        base = self.engine._image(source)
                    except ImageNotFoundError:
                        raise bf.error(raw, f"pull access denied for {source}, repository does not exist") from None
                    layers = list(self.engine._layers(base))
                    config, history = base.config.config, list(base.config.history)
                self._done(steps, BuildStep(number, text, False, None, 0))
                continue
            if ins.kind in ("COPY", "ADD", "RUN"):
                step = self._layer_step(number, ins, layers, config, env, text)
                self._done(steps, step)
                history.append(History(created=_created_stamp(), created_by=self._created_by(ins)))
                continue
            config = self._metadata(ins, config, args)
            history.append(History(created=_created_stamp(), created_by=self._created_by(ins), empty_layer=True))
            self._done(steps, BuildStep(number, text, False, None, 0))
        if not started:
            raise BuildfileError("no FROM instruction", filename=bf.filename)
        image_config = ImageConfig(
            architecture=host_platform().architecture, os="linux",
            rootfs=RootFS(diff_ids=tuple(layer.diff_id for layer in layers)),
            config=config, history=tuple(history), created=_created_stamp(),
        )
        record = self.engine.store.add(layers, image_config, tags=[tag] if tag else [])
        return BuildResult(self.engine.image_info(record), tuple(steps))

    def _done(self, steps: list[BuildStep], step: BuildStep) -> None:
        steps.append(step)
        if self.progress is not None:
            self.progress(step)

    def _created_by(self, ins: Instruction) -> str:
        if ins.kind == "RUN":
            body = " ".join(ins.args) if ins.form == "shell" else shlex.join(ins.args)
            return f"RUN /bin/sh -c {body}" if ins.form == "shell" else f"RUN {body}"
        return f"{ins.kind} {' '.join(ins.args)}"

    def _metadata(self, ins: Instruction, config: ContainerConfig, args: dict[str, str]) -> ContainerConfig:
        kind = ins.kind
        if kind == "ENV":
            env = _env_dict(config.env)
            for key, value in ins.pairs:
                env[key] = value or ""
            return replace(config, env=_env_list(env))
        if kind == "ARG":
            for key, value in ins.pairs:
                args[key] = self.build_args.get(key, value or "")
            return config
        if kind == "WORKDIR":
            return replace(config, working_dir=_paths_join(config.working_dir or "/", ins.args[0]))
        if kind == "USER":
            return replace(config, user=ins.args[0])
        if kind == "LABEL":
            labels = dict(config.labels)
            labels.update({k: v or "" for k, v in ins.pairs})
            return replace(config, labels=labels)  # type: ignore[arg-type]
        if kind in ("CMD", "ENTRYPOINT"):
            argv = ("/bin/sh", "-c", ins.args[0]) if ins.form == "shell" else tuple(ins.args)
            return replace(config, cmd=argv) if kind == "CMD" else replace(config, entrypoint=argv)
        if kind == "VOLUME":
            return replace(config, volumes=tuple(sorted({*config.volumes, *ins.args})))
        if kind == "EXPOSE":
            ports = [p if "/" in p else f"{p}/tcp" for p in ins.args]
            return replace(config, exposed_ports=tuple(sorted({*config.exposed_ports, *ports})))
        raise self.buildfile.error(ins, f"{kind} is not supported by this builder")

    def _content_key(self, ins: Instruction) -> str:
        if ins.kind == "RUN":
            return ""
        digest = hashlib.sha256()
        for src in ins.sources:
            for path in sorted(self._context_paths(ins, src)):
                st = path.lstat()
                digest.update(str(path.relative_to(self.context)).encode() + b"\0")
                digest.update(f"{st.st_mode:o}".encode())
                if path.is_file() and not path.is_symlink():
                    digest.update(path.read_bytes())
                elif path.is_symlink():
                    digest.update(os.readlink(path).encode())
        return digest.hexdigest()

    def _context_paths(self, ins: Instruction, src: str) -> list[Path]:
        base = (self.context / src.lstrip("/")).resolve()
        if base != self.context.resolve() and self.context.resolve() not in base.parents:
            raise self.buildfile.error(ins, f"forbidden path outside the build context: {src}")
        if not base.exists() and not base.is_symlink():
            raise self.buildfile.error(ins, f'failed to compute cache key: "{src}" not found')
        if base.is_dir():
            return [base, *base.rglob("*")]
        return [base]

    def _layer_step(self, number: int, ins: Instruction, layers: list[Layer], config: ContainerConfig,
                    env: dict[str, str], text: str) -> BuildStep:
        parent = chain_ids([layer.diff_id for layer in layers])[-1] if layers else "scratch"
        key = hashlib.sha256(
            "\0".join([parent, text, ins.form, repr(sorted(ins.flags.items())), self._content_key(ins),
                       config.working_dir, config.user, repr(sorted(env.items()))]).encode()  # ENV and ARG values
        ).hexdigest()
        cached = None if self.no_cache else self.engine._cache.get(key)
        layer = self.engine._layer_by_diff_id(cached) if cached is not None else None
        if layer is not None:
            layers.append(layer)
            return BuildStep(number, text, True, cached, layer.size)
        mount = self.engine.union(layers)
        output = b""
        try:
            fake = Container(id="build-" + key[:12], name="build-" + key[:12], image=None,  # type: ignore[arg-type]
                             mounted=mount, volumes={}, binds={}, command=(), env=_env_list({**_env_dict(config.env), **env}),
                             workdir=config.working_dir or "/", user=config.user, hostname="buildkitsandbox")
            if ins.kind == "RUN":
                argv = ("/bin/sh", "-c", ins.args[0]) if ins.form == "shell" else tuple(ins.args)
                result = self.engine._run_in(fake, argv, stdin=None)
                output = result.stdout + result.stderr
                if result.exit_code != 0:
                    raise BuildError(
                        f"{self.buildfile.filename}:{ins.line}: process \"{self._created_by(ins)[4:]}\" did not "
                        f"complete successfully: exit code: {result.exit_code}\n{output.decode(errors='replace')}"
                    )
            else:
                self._copy(ins, mount, config)
            layer = _snapshot(mount.upper)
        finally:
            mount.unmount()
        layers.append(layer)
        self.engine._cache[key] = layer.diff_id
        self.engine._loaded.setdefault(layer.diff_id, layer)
        cache_file = self.engine._cache_file
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(cache_file, json.dumps(self.engine._cache, sort_keys=True).encode())
        return BuildStep(number, text, False, layer.diff_id, layer.size, output.decode(errors="replace"))

    def _copy(self, ins: Instruction, fs: UnionMount, config: ContainerConfig) -> None:
        dest = ins.dest
        if not dest.startswith("/"):
            dest = _paths_join(config.working_dir or "/", dest)
        uid = gid = 0
        if ins.chown:
            user, _, group = ins.chown.partition(":")
            uid = int(user) if user.isdigit() else _user_ids(user, fs)[0]
            gid = int(group) if group.isdigit() else (uid if not group else _user_ids(group, fs)[1])
        sources = ins.sources
        many = len(sources) > 1 or dest.endswith("/")
        for src in sources:
            paths = self._context_paths(ins, src)
            base = paths[0]
            if ins.kind == "ADD" and base.is_file() and _is_tar(base):
                target = dest
                _mkdir_p(fs, target)
                with open(base, "rb") as fh:
                    _apply_layer(fs, target, Layer.from_tar(fh))
                continue
            if base.is_dir():
                target_root = dest
                _mkdir_p(fs, target_root)
                for path in paths[1:]:
                    rel = path.relative_to(base)
                    self._put(fs, path, _paths_join(target_root, str(rel)), uid, gid, ins.chmod)
            else:
                target = _paths_join(dest, base.name) if many or _is_dir(fs, dest) else dest
                _mkdir_p(fs, "/" + _paths.parent_of(target.lstrip("/")))
                self._put(fs, base, target, uid, gid, ins.chmod)

    @staticmethod
    def _put(fs: UnionMount, source: Path, target: str, uid: int, gid: int, chmod: int | None) -> None:
        st = source.lstat()
        if source.is_symlink():
            try:
                fs.unlink(target)
            except FileNotFoundError:
                pass
            fs.symlink(os.readlink(source), target)
            return
        if source.is_dir():
            _mkdir_p(fs, target)
            fs.chmod(target, chmod if chmod is not None else _stat.S_IMODE(st.st_mode))
            return
        fs.write_bytes(target, source.read_bytes())
        fs.chmod(target, chmod if chmod is not None else _stat.S_IMODE(st.st_mode))
        fs.utime(target, ns=(st.st_mtime_ns, st.st_mtime_ns))
        if (uid, gid) != (0, 0):
            _chown(fs, target, uid, gid)


def _chown(fs: UnionMount, path: str, uid: int, gid: int) -> None:
    chown = getattr(fs, "chown", None)
    if chown is None:
        raise BuildError("--chown needs a file system with chown")
    chown(path, uid, gid)


def _is_dir(fs: FileSystem, path: str) -> bool:
    try:
        return _stat.S_ISDIR(fs.stat(path).st_mode)
    except OSError:
        return False


def _is_tar(path: Path) -> bool:
    head = path.read_bytes()[:512]
    return head[:2] == b"\x1f\x8b" or head[257:262] == b"ustar"


def _paths_join(base: str, path: str) -> str:
    if path.startswith("/"):
        return path
    return base.rstrip("/") + "/" + path


def _apply_layer(fs: FileSystem, target: str, layer: Layer) -> None:
    """ADD of a local tar: unpack it (through the file system, so copy-ups happen) under ``target``."""
    for path, entry in layer.items():
        where = _paths_join(target, path)
        if isinstance(entry, Directory):
            _mkdir_p(fs, where, entry.mode)
        elif isinstance(entry, RegularFile):
            fs.write_bytes(where, entry.data)
            fs.chmod(where, entry.mode)
            fs.utime(where, ns=(entry.mtime_ns, entry.mtime_ns))
        elif isinstance(entry, Symlink):
            fs.symlink(entry.target, where)

"""One engine, two runtimes: images, builds, containers and volumes over any backend.

Everything Docker does *around* a process is the same in the model and on
the kernel: the image store, the build steps and their cache, the container's
writable layer, ``diff``, ``commit``, ``df``.  Only three things differ and
are left to the subclass: mounting a union, running a process in it, and
where a volume's files live.  So the two backends cannot drift apart in
bookkeeping, and the parity tests compare what really differs.

The build steps are in ``_build``, a container and its saved state in
``_container``, the images' layers and what the engine reports about them in ``_images``.
"""

from __future__ import annotations

import abc
import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from sim.containers._build import BuildCache, Builder, created_stamp
from sim.containers._container import (
    NAME_CHARS,
    Container,
    ProcessSpec,
    check_container_name,
    check_mounts,
    env_dict,
    env_list,
    load_container,
    process_spec,
    save_container,
    saved_upper,
    snapshot,
)
from sim.containers._distribution import RegistryCommands, seed_hub
from sim.containers._images import LayerCache, base_image_config, history_entries, image_summary, layer_usage
from sim.containers._init_layer import init_layer
from sim.containers._lifecycle import LifecycleCommands
from sim.containers._maintenance import MaintenanceCommands
from sim.containers._networking import NetworkCommands
from sim.containers._policy import parse_restart_policy, status_text
from sim.containers._security import seccomp_profile
from sim.containers._users import check_user_spec
from sim.containers.limits import Limits, parse_limits
from sim.containers.userns import HOST_MAPS, IdMaps
from sim.errors import (
    BuildfileError,
    ConflictError,
    ContainerNotFoundError,
    ContainerStateError,
    ImageNotFoundError,
    InvalidSpecError,
    LayerFormatError,
    VolumeNotFoundError,
)
from sim.images._faults import fault_point
from sim.images.buildfile import parse
from sim.images.oci import History, RootFS
from sim.images.reference import parse_reference
from sim.images.store import ImageRecord, ImageStore
from sim.interface import Engine, FileSystem, UnionMount
from sim.layers.changes import Change, upper_changes
from sim.layers.layer import Layer
from sim.registries.config import Registries, RegistryConfig
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


class EngineCore(LifecycleCommands, MaintenanceCommands, RegistryCommands, NetworkCommands, Engine):
    """The engine both backends share; a subclass supplies the runtime (see the module docstring)."""

    name = "core"
    #: The uid and gid maps of this engine's containers (用户命名空间; see :mod:`sim.containers.userns`):
    #: a backend that runs them in a user namespace sets its own on the instance.
    id_maps: IdMaps = HOST_MAPS

    def __init__(self, store: ImageStore, *, containers_dir: Path | None = None,
                 registries: RegistryConfig | None = None, registries_dir: Path | None = None) -> None:
        self.store = store
        self.registries = Registries(registries, root=registries_dir, seed=seed_hub)
        self._init_networks(containers_dir.parent / "networks.json" if containers_dir is not None else None)
        self.containers_dir = containers_dir  # where containers outlive this engine (None: they do not)
        self._containers: dict[str, Container] = {}
        # What each container loaded from the folder looked like: close() saves back only what changed
        # here, never a stale copy over what another engine (a monitor, another command) wrote since.
        self._as_loaded: dict[str, tuple[object, ...]] = {}
        self._volumes: dict[str, Any] = {}
        self._build_cache = BuildCache(containers_dir.parent / "build-cache.json" if containers_dir is not None else None)
        self._layer_cache = LayerCache(store)

    # -- what a backend supplies -------------------------------------------------------

    @abc.abstractmethod
    def _execute(self, container: Container, spec: ProcessSpec) -> ExecResult:
        """Run ``spec`` in ``container`` (its union mounted, its volumes in place) to the end."""

    def _check_limits(self, limits: Limits) -> None:
        """Refuse ``limits`` this backend cannot apply here, before anything is created (the
        model applies none: it stores them)."""

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
        return self._layer_cache.layers(record)

    # -- images (镜像) -------------------------------------------------------------------

    def base_image(self, ref: str = "busybox:latest") -> ImageInfo:
        """Import the busybox base image under ``ref`` (idempotent: same bytes, same ImageID)."""
        layer = self.base_layer()
        return self.image_info(self.store.add([layer], base_image_config(layer), tags=[ref]))

    def _image(self, ref: str) -> ImageRecord:
        try:
            return self.store.resolve(ref)
        except ImageNotFoundError:
            if parse_reference(ref).path == "library/busybox" and not self.store.list():
                self.base_image(str(parse_reference(ref).familiar))  # first use: make the base image
                return self.store.resolve(ref)
            raise

    def image_info(self, record: ImageRecord) -> ImageInfo:
        return image_summary(record, self._layers(record))

    def images(self) -> list[ImageInfo]:
        return [self.image_info(r) for r in self.store.list()]

    def inspect_image(self, ref: str) -> ImageInfo:
        return self.image_info(self._image(ref))

    def history(self, ref: str) -> list[HistoryEntry]:
        """``docker history``, newest first: metadata steps have no layer and size 0."""
        record = self._image(ref)
        return history_entries(record, self._layers(record))

    def tag(self, source: str, target: str) -> ImageInfo:
        return self.image_info(self.store.tag(source, target))

    def remove_image(self, ref: str, *, force: bool = False) -> list[str]:
        record = self._image(ref)
        users = [c.name for c in self._containers.values() if c.image.id == record.id]
        if users and not force:
            raise ConflictError(
                f"unable to remove {ref} (must force) - image is being used by container {users[0]}"
            )
        lines = self.store.remove(ref, force=force).lines()
        self._layers_released()
        return lines

    def _layers_released(self) -> None:
        """Images or build-cache layers went: a backend frees what it kept of their layers (the kernel's
        extracted layer folders); the model keeps nothing besides the blobs."""

    def save(self, refs: Sequence[str], fileobj: IO[bytes] | str | os.PathLike[str], *,
             format: str = "docker-archive", compression: str | None = None) -> None:
        """``docker save``: ``format`` ``docker-archive`` (the default), ``oci-archive`` (to a file object or
        a path) or ``oci-dir`` (a folder path); ``compression="gzip"`` gzips the layers, keeping the ImageIDs.
        Every check runs before anything is written (see :meth:`ImageStore.export`)."""
        self.store.export([refs] if isinstance(refs, str) else list(refs), fileobj, format=format, compression=compression)

    def load(self, fileobj: IO[bytes] | str | os.PathLike[str]) -> list[ImageInfo]:
        return [self.image_info(r) for r in self.store.load(fileobj)]

    def pull(self, ref: str, **options: Any) -> Any:
        """:meth:`RegistryCommands.pull` inside a store lease: the blobs it downloads or finds stay,
        whatever another engine prunes, until the image that references them is committed."""
        with self.store.lease():
            return super().pull(ref, **options)

    # -- build -------------------------------------------------------------------------------

    def build(self, context: str | os.PathLike[str], *, buildfile: str = "Buildfile", tag: str | None = None,
              build_args: Mapping[str, str] | None = None, no_cache: bool = False,
              progress: Callable[[BuildStep], None] | None = None, target: str | None = None) -> BuildResult:
        """Build the Buildfile in ``context``: one layer per file-changing step, cached by parent chain,
        instruction and copied content ("CACHED" steps).  A failing step leaves no layer behind.
        ``progress`` is called with each step as soon as it is done.  In a multi-stage Buildfile the
        image is the stage ``target`` names (the last stage by default), built with only the stages it
        needs; the others' steps are reported with ``skipped=True`` (see :meth:`Builder.run`)."""
        context = Path(context).resolve()
        path = context / buildfile
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise BuildfileError(f"cannot read the Buildfile: {exc.strerror}", filename=str(path)) from exc
        parsed = parse(text, filename=buildfile)
        if tag is not None:
            parse_reference(tag)  # refuse a bad name before doing any work
        return Builder(self, self._build_cache, self._layer_cache, parsed, context, dict(build_args or {}), no_cache,
                       progress).run(tag, target)

    # -- containers (容器) ---------------------------------------------------------------------

    def create(self, image: str, command: Sequence[str] | str | None = None, *, name: str | None = None,
               env: Mapping[str, str] | None = None, volumes: Mapping[str, str] | None = None,
               binds: Mapping[str, str] | None = None, workdir: str | None = None, user: str | None = None,
               hostname: str | None = None, memory: int | str | None = None, cpus: Any = None,
               cpu_shares: int | str | None = None, pids_limit: int | str | None = None,
               network: str | None = None, publish: Sequence[str] = (),
               security_opt: Sequence[str] = (), restart: str | None = None,
               auto_remove: bool = False) -> ContainerInfo:
        """``docker create``: the image's layers, a new empty writable layer, the mounts named.

        ``volumes`` maps container paths to volume names (made on first use);
        ``binds`` maps container paths to host folders.  ``user`` is ``--user`` (NAME, UID, NAME:GROUP or
        UID:GID; default the image's ``USER``), resolved in the image's /etc/passwd and /etc/group when a
        process starts (:func:`sim.containers._users.resolve_user`).  ``memory``, ``cpus``,
        ``cpu_shares`` and ``pids_limit`` are ``docker run``'s resource flags
        (see :func:`sim.containers.limits.parse_limits`), checked before anything is made.
        ``security_opt`` is ``--security-opt``: ``("seccomp=unconfined",)`` runs without Docker's default
        seccomp filter (:func:`sim.containers._security.seccomp_profile`; ``ContainerInfo.seccomp`` says which).
        ``restart`` is ``--restart`` (:func:`sim.containers._policy.parse_restart_policy`) and ``auto_remove``
        ``--rm`` of a detached run; both together are refused ("conflicting options"), before anything is made.
        """
        policy = parse_restart_policy(restart)  # InvalidSpecError: nothing made yet
        if auto_remove and policy.name != "no":
            raise InvalidSpecError("conflicting options: cannot specify both --restart and --rm")
        limits = parse_limits(memory, cpus, cpu_shares, pids_limit)  # InvalidLimitError: nothing made yet
        seccomp = seccomp_profile(security_opt)  # InvalidSpecError: nothing made yet
        network_mode, ports = self._network_options(network, publish)
        if user is not None:
            check_user_spec(user)  # InvalidSpecError; names are looked up in the image when it starts, as Docker does
        if limits:
            self._check_limits(limits)
        self._image(image)  # a first use of busybox makes it (a store write: not under the shared lock)
        # The shared store lock from the image's lookup until the container is saved: a prune in another
        # process (exclusive) sees the container that uses the image, or runs before the lookup.
        with self.store.content.lock.shared():
            record = self.store.resolve(image)
            fault_point("create.resolved")
            if name is not None:
                check_container_name(name, (c.name for c in self._containers.values()))
            check_mounts(volumes or {}, binds or {})
            cfg = record.config.config
            if isinstance(command, str):
                command = ("/bin/sh", "-c", command)
            argv = tuple(cfg.entrypoint or ()) + tuple(command if command else (cfg.cmd or ()))
            if not argv:
                raise ConflictError("no command specified")
            cid = uuid.uuid4().hex + uuid.uuid4().hex
            layers = self._layers(record)
            mount = self.union(self._with_init(layers, network_mode))
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
                env=env_list({**env_dict(cfg.env), **(env or {})}),
                workdir=workdir or cfg.working_dir or "/", user=user if user is not None else cfg.user,
                hostname=hostname or cid[:12], limits=limits or None, network_mode=network_mode, ports=ports,
                seccomp=seccomp, restart_policy=policy, auto_remove=auto_remove, created=self._now(),
            )
            self._containers[cid] = container
            self._join_networks(container)
            self._save(container)
            return self.container_info(container)

    def run(self, image: str, command: Sequence[str] | str | None = None, *, remove: bool = False,
            stdin: bytes | None = None, **options: Any) -> ExecResult:
        """``docker run`` in the foreground: create, start, wait; ``remove`` is ``--rm``.  A restart
        policy needs a detached run (:meth:`run_detached`): refused here before anything is made."""
        if parse_restart_policy(options.get("restart")).name != "no":
            raise InvalidSpecError("a restart policy needs a detached run (docker run -d)")
        info = self.create(image, command, **options)
        try:
            result = self.start(info.id, stdin=stdin)
            assert result is not None
            return result
        finally:
            if remove:
                self.remove(info.id, volumes=True)  # --rm also removes the anonymous volumes

    def run_detached(self, image: str, command: Sequence[str] | str | None = None, *, remove: bool = False,
                     monitor: bool = False, **options: Any) -> ContainerInfo:
        """``docker run -d``: create and start in the background (``remove`` is ``--rm``: the container
        goes when it exits; ``restart=...`` its policy); ``monitor`` as in :meth:`start`."""
        info = self.create(image, command, auto_remove=remove, **options)
        try:
            self.start(info.id, detach=True, monitor=monitor)
        except BaseException:
            self.remove(info.id, force=True, volumes=True)  # nothing started: nothing stays
            raise
        container = self._containers.get(info.id)
        return self.container_info(container) if container is not None else info

    def usage(self, ref: str) -> Any:
        """``docker stats``: the counters of the container's cgroup (the backend's reading, e.g.
        :class:`realrt.containers.cgroups.Usage`): now while a detached run goes on, else the last reading of
        its last detached run (taken just before the cgroup was removed).  ``None`` when there is
        none: never started detached, no cgroup (no limits), or a backend without cgroups (the model)."""
        container = self._container(ref)
        if container.process is not None:
            return getattr(container.process, "usage", lambda: None)()
        return container.last_usage

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
        return self._with_layer_warning(result, self._save(container))

    @staticmethod
    def _with_layer_warning(result: ExecResult, problem: str | None) -> ExecResult:
        """The process's own result, plus the container-layer problem met after it (if any):
        never the problem *instead of* the output and exit status."""
        return replace(result, warnings=(*result.warnings, problem)) if problem else result

    def _exec_running(self, container: Container, spec: ProcessSpec) -> ExecResult:
        return self._execute(container, spec)

    def _spec(self, container: Container, argv: tuple[str, ...], *, stdin: bytes | None) -> ProcessSpec:
        return process_spec(container, self.container_fs(container), argv, stdin=stdin, id_maps=self.id_maps)

    def _run_in(self, container: Container, argv: tuple[str, ...], *, stdin: bytes | None) -> ExecResult:
        return self._execute(container, self._spec(container, argv, stdin=stdin))

    def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> int:
        """``docker rm``: the writable layer is gone (returns its bytes); volumes keep their data,
        except, with ``volumes`` (``docker rm -v``), the anonymous ones made for the image's VOLUMEs."""
        container = self._container(ref)
        self._refresh(container)
        if container.id not in self._containers:
            return 0  # an --rm container that had just ended: already gone
        if container.state in ("running", "restarting") and not force:
            raise ContainerStateError(
                f"cannot remove container {container.name}: container is running: stop the container before "
                "removing or force remove"
            )
        self._end_process(container)
        freed = container.upper_size
        if container.mounted is not None:
            container.mounted.unmount()
        del self._containers[container.id]
        self._leave_networks(container)
        self._forget(container)
        if volumes:
            for vname in container.anonymous:
                self.remove_volume(vname)
        return freed

    def containers(self, *, all: bool = True) -> list[ContainerInfo]:
        for c in list(self._containers.values()):
            self._refresh(c)  # an --rm container that ended goes from the list
        # Without ``all``, as `docker ps`: running ones, and restarting ones (moby keeps Running set on them).
        return [self.container_info(c) for c in self._containers.values()
                if all or c.state in ("running", "restarting")]

    def container_info(self, container: Container) -> ContainerInfo:
        return ContainerInfo(
            id=container.id, name=container.name, image=(container.image.tags or (str(container.image.id),))[0],
            state=container.state, exit_code=container.exit_code, command=container.command,
            upper_size=container.upper_size,
            mounts=tuple([(v, p) for p, v in container.volumes.items()] + [(h, p) for p, h in container.binds.items()]),
            seccomp=container.seccomp, created=container.created, started_at=container.started_at,
            finished_at=container.finished_at, restart_count=container.restart_count,
            restart_policy=str(container.restart_policy), auto_remove=container.auto_remove,
            status=status_text(container.state, container.exit_code, self._now(), container.started_at,
                               container.finished_at),
        )

    def _container(self, ref: str) -> Container:
        for c in self._containers.values():
            if ref in (c.id, c.name) or (len(ref) >= 3 and c.id.startswith(ref)):
                return c
        raise ContainerNotFoundError(f"No such container: {ref}")

    @staticmethod
    def _require_layer_here(container: Container, what: str) -> None:
        """Refuse ``what`` on a container whose monitor (another process) holds its layer: this
        engine would read the layer as the monitor last saved it, not as it is now."""
        if getattr(container.process, "remote", False):
            raise ContainerStateError(f"{what} of container {container.name}: it is run by its monitor (run -d from "
                                      "another process), which holds its layer; stop it first")

    def diff(self, ref: str) -> list[Change]:
        """``docker diff``: A/C/D from the container layer (see :mod:`sim.layers.changes`)."""
        container = self._container(ref)
        self._refresh(container)
        self._require_layer_here(container, "diff")
        below = self._layer_cache.lower_view(container.image).nodes
        return upper_changes(self._upper_of(container), lambda p: p in below)

    @staticmethod
    def _upper_of(container: Container) -> Layer:
        """The container layer as it is now.  A layer an earlier engine could not save is not
        shown from its stale tar: the saved problem is raised (:class:`LayerFormatError`)."""
        if container.mounted is None and container.layer_error:
            raise LayerFormatError(container.layer_error)
        return container.mount.upper

    def commit(self, ref: str, tag: str | None = None, *, message: str = "") -> ImageInfo:
        """``docker commit``: the writable layer becomes a new image layer on top of the image's."""
        container = self._container(ref)
        if tag is not None:
            parse_reference(tag)
        self._refresh(container)
        self._require_layer_here(container, "commit")
        upper = snapshot(self._upper_of(container))
        layers = [*self._layers(container.image), upper]
        base = container.image.config
        history = (*base.history, History(created=created_stamp(), created_by=" ".join(container.command),
                                          comment=message or None))
        config = replace(base, rootfs=RootFS(diff_ids=(*base.rootfs.diff_ids, upper.diff_id)),
                         history=history, created=created_stamp())
        return self.image_info(self.store.add(layers, config, tags=[tag] if tag else [], parent=str(container.image.id)))

    # -- volumes (数据卷) ----------------------------------------------------------------------

    def _adopt_volumes(self, folder: Path | None) -> None:
        """Volumes a previous run left in ``folder`` (they outlive every container, by design)."""
        if folder is not None and folder.is_dir():
            for entry in sorted(folder.iterdir()):
                if (entry / "_data").is_dir() and entry.name not in self._volumes:
                    self._volumes[entry.name] = self._new_volume(entry.name)

    def create_volume(self, name: str) -> VolumeInfo:
        if not name or not set(name) <= NAME_CHARS or name[0] in "_.-":
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
        layers = layer_usage(records, self._layers)
        return DiskUsage(
            images=len(records), layers=layers.layers, shared_bytes=layers.shared_bytes,
            unique_bytes=layers.unique_bytes, containers=len(self._containers),
            container_bytes=sum(c.upper_size for c in self._containers.values()),
            volumes=len(self._volumes), volume_bytes=sum(self._volume_size(v) for v in self._volumes.values()),
            per_image=layers.per_image,
        )

    def close(self) -> None:
        """Stop every container and unmount it.  With a containers folder they are saved there
        (writable layer included) for the next engine; without one they are gone (``docker rm -f``)."""
        for container in list(self._containers.values()):
            if self.containers_dir is None:
                self.remove(container.id, force=True)
                continue
            if not self._outlives_engine(container):  # a model timeline or a monitor's run goes on without it
                self._end_process(container)
                if container.auto_remove and container.state == "exited":
                    self.remove(container.id, volumes=True)
                    continue
            # Gone from the folder: another engine removed it meanwhile (`rm` from another terminal);
            # saving it now would bring it back.  Unchanged here: the folder may hold newer news.
            unchanged = container.mounted is None and self._as_loaded.get(container.id) == _as_saved(container)
            if (self.containers_dir / container.id).is_dir() and not unchanged:
                self._save(container)
            if container.mounted is not None:
                container.mounted.unmount()
            del self._containers[container.id]

    # -- containers that outlive the engine ------------------------------------------------------

    def _save(self, container: Container) -> str | None:
        """Write a container's description and writable layer to the containers folder; the
        container-layer problem met, if any (see :func:`save_container`: the rest is saved)."""
        if self.containers_dir is None or container.image is None or getattr(container.process, "remote", False):
            return None  # a container another process supervises is written by that process only
        return save_container(self.containers_dir / container.id, container)

    def _forget(self, container: Container) -> None:
        if self.containers_dir is not None:
            shutil.rmtree(self.containers_dir / container.id, ignore_errors=True)

    def _load_containers(self) -> None:
        """The containers an earlier engine saved.  A container that was running then was
        killed with its engine: it comes back exited (137); a detached run that outlives its engine
        (the model's timeline, a real monitor's) goes on (:meth:`_resume`)."""
        if self.containers_dir is None or not self.containers_dir.is_dir():
            return
        for folder in sorted(self.containers_dir.iterdir()):
            container = load_container(folder, self.store.resolve)
            if container is None:
                continue  # half-written or its image is gone: nothing to show
            container.mounter = self._remounter(container, folder / "upper.tar")
            self._containers[container.id] = container
            self._as_loaded[container.id] = _as_saved(container)  # before _resume: a run found dead is news
            if container.state in ("running", "restarting"):
                self._resume(container)

    @staticmethod
    def _with_init(layers: list[Layer], network_mode: str) -> list[Layer]:
        """The image's layers and, under a namespace of its own, the init layer of the files bound in."""
        init = init_layer(layers) if network_mode != "host" else None
        return [*layers, init] if init is not None else list(layers)

    def _remounter(self, container: Container, upper_tar: Path) -> Callable[[], UnionMount]:
        def mount() -> UnionMount:
            upper = saved_upper(upper_tar)
            return self.union(self._with_init(self._layers(container.image), container.network_mode), upper)

        return mount


def _as_saved(container: Container) -> tuple[object, ...]:
    """What :meth:`EngineCore.close` compares to tell a container this engine changed from one it only read."""
    return (container.state, container.exit_code, container.started_at, container.finished_at,
            container.restart_count, container.restart_at, len(container.logs), container.name)

"""The real engine: kernel overlayfs today; namespaces, cgroups and registries as the chapters grow."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from realrt import _idmap, _syscalls
from realrt._container_network import ContainerNetworking
from realrt.journal import Journal, default_state_dir
from realrt.layers.overlay import KernelUnionFS
from sim.containers.core import Container, EngineCore, ProcessSpec
from sim.containers.limits import Limits
from sim.containers.mounts import HostDirFS, MountedFS
from sim.errors import BackendUnavailableError, ContainerStateError
from sim.images.store import ImageStore
from sim.interface import FileSystem
from sim.layers.layer import Layer
from sim.network import Endpoint, NetworkInfo
from sim.registries.config import RegistryConfig
from sim.results import ExecResult

__all__ = ["RealEngine", "check_host"]


def check_host(*, rootless: bool) -> None:
    """Raise :class:`BackendUnavailableError` saying what this machine lacks."""
    if not os.path.exists("/proc/filesystems"):
        raise BackendUnavailableError("the real backend needs Linux (no /proc/filesystems here)")
    with open("/proc/filesystems", encoding="ascii") as fh:
        if not any(line.split()[-1:] == ["overlay"] for line in fh):
            raise BackendUnavailableError("the kernel has no overlay file system (modprobe overlay)")
    if not _syscalls.openat2_supported():
        raise BackendUnavailableError("the kernel lacks openat2(2) (Linux 5.6+), needed to confine paths to the mount")
    if not rootless and os.geteuid() != 0:
        raise BackendUnavailableError("mounting as root needs root; use connect('real', rootless=True)")


def _drop_tombstones(containers: Path, older_than: float = 60.0) -> None:
    """The exit records monitors leave of ``--rm`` containers they removed, once no waiter needs them."""
    from realrt.containers._remote import TOMBSTONES

    for path in (containers / TOMBSTONES).glob("*.json"):
        try:
            if time.time() - path.stat().st_mtime > older_than:
                path.unlink()
        except OSError:
            pass


class RealEngine(EngineCore):
    """``rootless`` defaults to "not root".  Starting an engine sweeps what killed runs left.

    Images live in an OCI layout under the state folder; containers are kernel
    overlay mounts run by :mod:`realrt.containers.runtime`; volumes are host folders bind
    mounted into them.

    ``id_maps`` (:class:`sim.containers.userns.IdMaps`) says which uids its containers have: the
    host's as root; rootless, podman's mapping over the caller's ranges in /etc/subuid and
    /etc/subgid when there are some and newuidmap/newgidmap are installed (``subordinate_ids=False``
    turns that off), else only uid 0, with ``id_maps.note`` saying what was missing.
    """

    name = "real"

    def __init__(self, *, rootless: bool | None = None, state_dir: str | os.PathLike[str] | None = None,
                 registries: RegistryConfig | None = None, subordinate_ids: bool = True) -> None:
        self.rootless = os.geteuid() != 0 if rootless is None else rootless
        check_host(rootless=self.rootless)
        self.id_maps = _idmap.detect(rootless=self.rootless, subordinate=subordinate_ids)
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.journal = Journal(self.state_dir)
        self.journal.sweep()
        self.workspace = self.state_dir / "mounts"
        super().__init__(ImageStore(self.state_dir / "images"), containers_dir=self.state_dir / "containers",
                         registries=registries, registries_dir=self.state_dir / "registries")
        self._adopt_volumes(self.state_dir / "volumes")
        _drop_tombstones(self.state_dir / "containers")
        self._load_containers()
        self._net = ContainerNetworking(self.journal, self.network_model, self.state_dir / "netfiles",
                                        rootless=self.rootless)
        self._net.restore()  # the sweep removed a dead engine's bridges: the saved networks come back

    def union(
        self,
        layers: Sequence[Layer],
        upper: Layer | None = None,
        *,
        redirect_dir: bool = False,
        index: bool = False,
        umask: int = 0o022,
    ) -> KernelUnionFS:
        return KernelUnionFS(layers, upper, redirect_dir=redirect_dir, index=index, umask=umask,
                             rootless=self.rootless, journal=self.journal, workspace=self.workspace,
                             layer_cache=self.state_dir / "layers", id_maps=self.id_maps)

    def base_layer(self) -> Layer:
        from sim.images.base import busybox_layer

        return busybox_layer()

    def container_fs(self, container: Container) -> FileSystem:
        mounts: dict[str, FileSystem] = {p: HostDirFS(self._volumes[v]) for p, v in container.volumes.items()}
        mounts.update({p: HostDirFS(h) for p, h in container.binds.items()})
        return MountedFS(container.mount, mounts)

    def _execute(self, container: Container, spec: ProcessSpec) -> ExecResult:
        from realrt.containers import runtime

        netns, files = self._net.up(container)
        try:
            return runtime.run_on(container.mount, self._runtime_spec(container, spec, netns, files),
                                  journal=self.journal, cgroup_name=container.id)
        finally:
            self._net.down(container)

    def _runtime_spec(self, container: Container, spec: ProcessSpec, netns: str | None = None,
                      files: Sequence[tuple[str, str]] = ()) -> Any:
        from realrt.containers import runtime

        binds = [runtime.BindMount(str(self._volumes[v]), p) for p, v in container.volumes.items()]
        binds += [runtime.BindMount(h, p) for p, h in container.binds.items()]
        binds += [runtime.BindMount(h, p) for h, p in files if p not in container.binds]
        return runtime.ContainerSpec(argv=spec.argv, env=spec.env, cwd=spec.cwd, uid=spec.uid, gid=spec.gid,
                                     hostname=spec.hostname, mounts=tuple(binds), stdin=spec.stdin,
                                     limits=spec.limits, groups=spec.groups,
                                     network=container.network_mode == "host", netns=netns,
                                     seccomp=container.seccomp != "unconfined")

    def _spawn(self, container: Container, spec: ProcessSpec, at: float | None = None) -> Any:
        from realrt.containers import runtime

        netns, files = self._net.up(container, detached=True)
        try:
            process = runtime.start_on(container.mount, self._runtime_spec(container, spec, netns, files),
                                       journal=self.journal, cgroup_name=container.id)
            self._net.started(container, process.pid)
        except BaseException:
            self._net.down(container)
            raise
        return process

    # -- networks: the kernel's half of each decision the engine's network model makes

    def _check_networking(self, mode: str) -> None:
        self._net.check(mode)

    def _network_made(self, info: NetworkInfo) -> None:
        self._net.network_made(info)

    def _network_gone(self, info: NetworkInfo) -> None:
        self._net.network_gone(info)

    def _endpoint_made(self, container: Any, endpoint: Endpoint) -> None:
        self._net.attached(container, endpoint)

    def _endpoint_gone(self, container: Any, endpoint: Endpoint) -> None:
        self._net.detached(container, endpoint)

    def _discard_state(self) -> None:
        """Delete the whole state folder of this closed engine, files of subordinate ids included (a
        throwaway engine's, as :func:`sim.testing.both_backends` makes)."""
        from realrt._idmap import remove_tree

        remove_tree(self.state_dir, self.id_maps)

    def _layers_released(self) -> None:
        """Remove the extracted folders of layers no stored image has and no mount stands on (as
        Docker's overlay2 driver removes a layer's folder with the layer); a build-cache layer alone is
        extracted again when a build needs it."""
        from realrt.layers.overlay import collect_layer_cache, layer_cache_dir

        keep = {layer.content_id.hex for record in self.store.list(all=True) for layer in self._layers(record)}
        cache = layer_cache_dir(self.state_dir / "layers", rootless=self.rootless, id_maps=self.id_maps)
        collect_layer_cache(cache, keep, self.id_maps)

    def _process_ended(self, container: Container) -> None:
        self._net.down(container)  # the process ended: its namespace and forwarders go

    def _end_saved(self, container: Container) -> None:
        if (container.run_state or {}).get("monitor") == os.getpid():
            from realrt.containers._remote import record_exit

            # Every end, in order, once its state and output are saved: a waiter elsewhere polls, and a
            # restart can come before its next look.
            record_exit(self.state_dir / "containers" / container.id, container.exit_code, container.finished_at)

    # -- the lifecycle on the wall clock; detached runs that outlive the engine (realrt.containers._monitor)

    def _now(self) -> float:
        return time.time()

    def _sleep_until(self, when: float) -> None:
        time.sleep(max(0.0, when - time.time()))

    def _is_virtual(self) -> bool:
        return False

    def _hand_to_monitor(self, container: Container, spec: ProcessSpec) -> None:
        """``start(detach=True, monitor=True)``: this engine lets the container go (its layer saved, its
        mount released, so the monitor mounts it alone) and a monitor process starts and supervises it."""
        from realrt.containers import _monitor
        from realrt.containers._remote import RemoteProcess

        self._save(container)
        if container.mounted is not None:
            container.mounted.unmount()
            container.mounted = None
        # Mounted again from the layer the monitor saves, should this engine look at it after the monitor.
        container.mounter = self._remounter(container, self.state_dir / "containers" / container.id / "upper.tar")
        pid, started = _monitor.spawn(self.state_dir, container.id, rootless=self.rootless)
        container.process = RemoteProcess(self.state_dir / "containers" / container.id, pid, started, self.journal)
        container.process.sync(container)

    def _auto_remove(self, container: Container) -> None:
        from realrt.containers._remote import write_tombstone

        if (container.run_state or {}).get("monitor") == os.getpid():  # a waiter elsewhere reads it there
            write_tombstone(self.state_dir / "containers" / container.id, container.exit_code, container.logs)
        super()._auto_remove(container)

    def _removed_elsewhere(self, container: Container) -> None:
        super()._removed_elsewhere(container)
        for name in container.anonymous:  # its monitor removed these with it
            if name in self._volumes and not Path(self._volumes[name]).exists():
                del self._volumes[name]

    def _resume(self, container: Container) -> None:
        """A container saved while it ran: a live monitor's goes on (seen through the store); any other
        died with its engine or monitor: exited 137 (a restarting one keeps its last exit code)."""
        from realrt.containers._remote import RemoteProcess, monitor_alive

        owner = container.run_state or {}
        pid, started = int(owner.get("monitor", 0)), int(owner.get("monitor_start", 0))
        if pid and pid != os.getpid() and monitor_alive(pid, started):
            container.process = RemoteProcess(self.state_dir / "containers" / container.id, pid, started, self.journal)
            container.process.sync(container)
        elif container.state == "running":
            self._died_with_engine(container)
        else:
            container.state, container.restart_at, container.run_state = "exited", None, None
        container.timeline = None

    def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> int:
        container = self._container(ref)
        freed = super().remove(ref, force=force, volumes=volumes)
        self._net.down(container)
        self._net.forget(container.id)
        return freed

    def kernel_network(self, ref: str) -> tuple[list[Any], list[Any]]:
        """A running container's interfaces and routes read back from the kernel (pyroute2), in
        the model's dataclasses: compare them with :meth:`container_network`."""
        container = self._container(ref)
        netns = self._net.netns(container.id)
        if netns is None:
            raise ContainerStateError(f"container {container.name} has no network namespace of its own running")
        return self._net.kernel.snapshot(netns), self._net.kernel.routes(netns)

    def close(self) -> None:
        super().close()
        self._net.close()  # any namespace still up goes with its forwarders

    def _check_limits(self, limits: Limits) -> None:
        from realrt.containers import cgroups

        cgroups.plan(limits, rootless=self.rootless)  # rootless on cgroup v1: refused before create

    def _exec_running(self, container: Container, spec: ProcessSpec) -> ExecResult:
        from realrt.containers import runtime

        if getattr(container.process, "remote", False):
            raise ContainerStateError(f"container {container.name} is run by its monitor (run -d from another "
                                      "process): exec into it is not supported yet; stop it, then exec")

        return runtime.exec(container.process, spec.argv, env=spec.env, cwd=spec.cwd, uid=spec.uid, gid=spec.gid,
                            stdin=spec.stdin, groups=spec.groups)

    def _new_volume(self, name: str) -> Any:
        path = self.state_dir / "volumes" / name / "_data"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _volume_size(self, handle: Any) -> int:
        return sum(p.stat().st_size for p in Path(handle).rglob("*") if p.is_file() and not p.is_symlink())

    def _drop_volume(self, handle: Any) -> None:
        # Rootless with a range, a container's files may belong to subordinate ids: removed from a namespace.
        _idmap.remove_tree(Path(handle).parent, self.id_maps)

    # -- chapter 4: measurements the model has no twin of (they return the model's types) --------

    def measure_hog(self, hog: Any, **flags: Any) -> Any:
        """Run one of :mod:`sim.capacity.hogs` in a busybox container with ``docker run``'s
        limits and measure it from its cgroup (:func:`realrt.measure.measure_hog`)."""
        from realrt.measure import measure_hog

        return measure_hog(self, hog, **flags)

    def boot_vm(self, **options: Any) -> Any:
        """Boot a QEMU VM on Debian's cloud kernel and measure its start, then stop it
        (:func:`realrt.vm.boot_and_measure`); the journal is this engine's state folder's."""
        from realrt.vm import boot_and_measure

        return boot_and_measure(state_dir=self.state_dir, **options)

    def __repr__(self) -> str:
        return f"<RealEngine {'rootless' if self.rootless else 'root'}>"

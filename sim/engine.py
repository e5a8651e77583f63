"""The model's engine: everything in memory, processes run by the model's shell."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.containers._container import env_dict
from sim.containers.core import Container, EngineCore, ProcessSpec
from sim.containers.mounts import FileMount, HostDirFS, MountedFS
from sim.containers.userns import HOST_MAPS, IdMaps
from sim.images.store import ImageStore
from sim.interface import FileSystem
from sim.layers.layer import Layer
from sim.layers.unionfs import UnionFS
from sim.registries.config import RegistryConfig
from sim.results import ExecResult

__all__ = ["SimEngine"]


class SimEngine(EngineCore):
    """Images in a store, unions in :class:`UnionFS`, ``RUN`` by :mod:`sim.containers.shell`.

    Without ``state_dir`` everything lives in memory (a notebook's world);
    with it, images are kept in an OCI layout folder and volumes in folders,
    so the ``layerlab`` command finds them again in its next run.
    ``registries`` says where registry hosts lead (default: ``docker.io`` is
    the model hub, loopback hosts are real servers).  ``id_maps`` is the user namespace the
    model's containers pretend to run in (default: none, as a root engine's; pass a real rootless
    engine's ``id_maps`` to model that engine): it decides which users may run and what
    ``/proc/self/uid_map`` reads.
    """

    name = "sim"

    def __init__(self, *, state_dir: str | os.PathLike[str] | None = None,
                 registries: RegistryConfig | None = None, id_maps: IdMaps = HOST_MAPS) -> None:
        if not isinstance(id_maps, IdMaps):
            raise TypeError(f"id_maps must be a sim.containers.userns.IdMaps, not {type(id_maps).__name__}")
        self.id_maps = id_maps
        self.state_dir = Path(state_dir) if state_dir is not None else None
        super().__init__(ImageStore(self.state_dir / "images" if self.state_dir else None),
                         containers_dir=self.state_dir / "containers" if self.state_dir else None,
                         registries=registries, registries_dir=self.state_dir / "registries" if self.state_dir else None)
        self._adopt_volumes(self.state_dir / "volumes" if self.state_dir else None)
        self._load_containers()

    def union(
        self,
        layers: Sequence[Layer],
        upper: Layer | None = None,
        *,
        redirect_dir: bool = False,
        index: bool = False,
        umask: int = 0o022,
    ) -> UnionFS:
        return UnionFS(layers, upper, redirect_dir=redirect_dir, index=index, umask=umask)

    def base_layer(self) -> Layer:
        # The same bytes as the real backend's base: the host's static busybox, read, never run.
        from sim.images.base import busybox_layer

        return busybox_layer()

    def container_fs(self, container: Container) -> FileSystem:
        mounts: dict[str, FileSystem] = {p: self._volumes[v] for p, v in container.volumes.items()}
        mounts.update({p: HostDirFS(h) for p, h in container.binds.items()})
        known = container.id in self.network_model.containers()  # a build step's container is not
        if known and container.network_mode != "host":  # names resolve through files the engine writes
            view = self.container_network(container.id)
            mounts.update({"/etc/hosts": FileMount(view.hosts.encode()), "/etc/resolv.conf": FileMount(view.resolv_conf.encode())})
        return MountedFS(container.mount, mounts)

    def _execute(self, container: Container, spec: ProcessSpec) -> ExecResult:
        from sim.containers.shell import run as run_shell

        argv = spec.argv
        script: str | Sequence[str] = argv[2] if len(argv) == 3 and argv[0] in ("/bin/sh", "sh") and argv[1] == "-c" else list(argv)
        result = run_shell(script, self.container_fs(container), env=env_dict(spec.env), cwd=spec.cwd,
                           uid=spec.uid, gid=spec.gid, hostname=spec.hostname, stdin=spec.stdin or b"",
                           groups=spec.groups, id_maps=self.id_maps)
        return ExecResult(result.exit_code, result.stdout, result.stderr)

    def _new_volume(self, name: str) -> Any:
        if self.state_dir is None:
            return UnionFS([])  # a volume is a plain writable tree: a union with nothing below
        folder = self.state_dir / "volumes" / name / "_data"
        folder.mkdir(parents=True, exist_ok=True)
        return HostDirFS(folder)

    def _volume_size(self, handle: Any) -> int:
        if isinstance(handle, UnionFS):
            return int(handle.upper.size)
        return sum(p.stat().st_size for p in Path(handle.root).rglob("*") if p.is_file() and not p.is_symlink())

    def _drop_volume(self, handle: Any) -> None:
        if isinstance(handle, UnionFS):
            handle.unmount()
        else:
            import shutil

            shutil.rmtree(Path(handle.root).parent, ignore_errors=True)

    def __repr__(self) -> str:
        return "<SimEngine>"

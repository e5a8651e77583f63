"""The real engine: kernel overlayfs today; namespaces, cgroups and registries as the chapters grow."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sim.errors import BackendUnavailableError
from sim.interface import Engine
from sim.layer import Layer

from . import _syscalls
from .journal import Journal, default_state_dir
from .overlay import KernelUnionFS

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


class RealEngine(Engine):
    """``rootless`` defaults to "not root".  Starting an engine sweeps what killed runs left."""

    name = "real"

    def __init__(self, *, rootless: bool | None = None, state_dir: str | os.PathLike[str] | None = None) -> None:
        self.rootless = os.geteuid() != 0 if rootless is None else rootless
        check_host(rootless=self.rootless)
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.journal = Journal(self.state_dir)
        self.journal.sweep()
        self.workspace = self.state_dir / "mounts"

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
                             rootless=self.rootless, journal=self.journal, workspace=self.workspace)

    def __repr__(self) -> str:
        return f"<RealEngine {'rootless' if self.rootless else 'root'}>"

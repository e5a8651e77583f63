"""The real engine's half of a container's network: a named namespace while it runs.

:class:`ContainerNetworking` turns the engine's :class:`~sim.network.NetworkModel` into kernel
state at the moments Docker does: a network's bridge when it is made, kept for as long as the
network is in the store (every engine over the store adopts it; made again if it is missing); a
container's namespace, veth pairs, addresses, routes, ``/etc/hosts`` and ``/etc/resolv.conf`` when
its process starts; its published ports as forwarders on 127.0.0.1 for as long as it runs; all of it gone when the process ends.  A
container that joins or leaves a network while it runs is attached or detached at once, and the
hosts files of the running containers on that network are rewritten in place (the same inode: a
bind mount keeps showing the file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realrt.journal import Journal
from sim.errors import BackendUnavailableError
from sim.network import Endpoint, NetworkInfo, NetworkModel

__all__ = ["ContainerNetworking", "Running"]


@dataclass
class Running:
    """What one running container holds: its namespace, its files and its forwarders."""

    netns: str
    folder: Path
    published: list[Any] = field(default_factory=list)


class ContainerNetworking:
    """Kernel networks for one engine (``rootless`` engines get ``none`` and ``host`` only)."""

    def __init__(self, journal: Journal, model: NetworkModel, folder: Path, *, rootless: bool) -> None:
        self._journal = journal
        self._model = model
        self._folder = folder  # per container: the hosts and resolv.conf files bind-mounted in
        self._rootless = rootless
        self._kernel: Any = None
        self._running: dict[str, Running] = {}

    @property
    def kernel(self) -> Any:
        """The :class:`realrt.network.KernelNetworks` (made on first use: it needs pyroute2)."""
        if self._kernel is None:
            from realrt.network import KernelNetworks

            self._kernel = KernelNetworks(self._journal)
        return self._kernel

    def check(self, mode: str) -> None:
        if mode in ("none", "host"):
            return
        if self._rootless:
            raise BackendUnavailableError(
                f"--network {mode} needs bridges and veth pairs, which need CAP_NET_ADMIN on the host: a rootless "
                "engine has only --network none and --network host (run as root for networks)")
        from realrt.network import require_net_admin

        require_net_admin()

    def restore(self) -> None:
        """Every saved network's bridge up: made again where it is missing (after a reboot, or a
        sweep of a store whose networks file was damaged), adopted where it exists with the
        network's address (the engine or monitor that made it, or a sibling engine open on the
        same store: ``ps`` while ``logs -f`` runs, a ``run -d`` monitor).  The bridge is the
        network's, not this engine's: it stays when the engine closes and goes with ``network rm``."""
        for info in self._model.networks():
            self.kernel.add_bridge(info, adopt=True)

    def network_made(self, info: NetworkInfo) -> None:
        self.kernel.add_bridge(info)

    def network_gone(self, info: NetworkInfo) -> None:
        self.kernel.remove_bridge(info.name)

    def netns(self, container_id: str) -> str | None:
        running = self._running.get(container_id)
        return running.netns if running is not None else None

    # -- a container's process starts and ends

    def up(self, container: Any, *, detached: bool = False) -> tuple[str | None, list[tuple[str, str]]]:
        """Before the process starts: the namespace to join (None: none/host as the runtime makes
        them) and the ``(host file, container path)`` binds for ``/etc/hosts`` and ``/etc/resolv.conf``.

        A ``detached`` process of a root engine always gets a namespace of layerlab's, even with
        ``--network none`` and no endpoint: :meth:`attached` can only add a veth to a namespace
        it holds, and ``network connect`` is allowed while such a container runs."""
        mode = container.network_mode
        if mode == "host" or container.id not in self._model.containers():
            return None, []
        folder = self._folder / container.id
        folder.mkdir(parents=True, exist_ok=True)
        files = {"hosts": self._model.hosts_file(container.id), "resolv.conf": self._model.resolv_conf(container.id)}
        for name, text in files.items():
            _rewrite(folder / name, text)
        binds = [(str(folder / "hosts"), "/etc/hosts"), (str(folder / "resolv.conf"), "/etc/resolv.conf")]
        if mode == "none" and not self._model.endpoints(container=container.id) and (self._rootless or not detached):
            return None, binds  # the runtime's own new namespace with lo: nothing to make
        path = self.kernel.make_netns(container.id)
        self._running[container.id] = Running(path, folder)
        try:
            for endpoint in self._model.endpoints(container=container.id):
                self.kernel.attach(endpoint, path, endpoint.index)
        except BaseException:
            self.down(container)
            raise
        self._refresh_hosts(container.id)
        return path, binds

    def started(self, container: Any, pid: int) -> None:
        """The process runs as ``pid`` (its init): publish its ports, watched by that pid."""
        running = self._running.get(container.id)
        if running is None or not container.ports:
            return
        from realrt.network import publish

        endpoints = self._model.endpoints(container=container.id)
        target = endpoints[0].ip if endpoints else "127.0.0.1"
        try:
            for mapping in container.ports:
                running.published.append(publish(mapping, str(target), self._journal, watch_pid=pid))
        except BaseException:
            self.down(container)
            raise

    def down(self, container: Any) -> None:
        """The process ended: forwarders, veths and the namespace go (idempotent)."""
        running = self._running.pop(container.id, None)
        if running is None:
            return
        from realrt.network import unpublish

        for handle in running.published:
            unpublish(handle)
        self.kernel.remove_netns(container.id)
        self._refresh_hosts(container.id)

    def forget(self, container_id: str) -> None:
        """A removed container's files go too."""
        import shutil

        shutil.rmtree(self._folder / container_id, ignore_errors=True)

    # -- membership changes while containers run

    def attached(self, container: Any, endpoint: Endpoint) -> None:
        running = self._running.get(container.id)
        if running is not None:
            self.kernel.attach(endpoint, running.netns, endpoint.index)
        self._refresh_hosts(container.id)

    def detached(self, container: Any, endpoint: Endpoint) -> None:
        running = self._running.get(container.id)
        if running is not None:
            self.kernel.detach(endpoint, running.netns)
        self._refresh_hosts(container.id)

    def _refresh_hosts(self, changed: str) -> None:
        """Rewrite the hosts files of every running container (a peer came or went)."""
        known = set(self._model.containers())
        for cid, running in self._running.items():
            if cid in known:
                _rewrite(running.folder / "hosts", self._model.hosts_file(cid))

    def close(self) -> None:
        """Take down what is still up (the engine closed with containers running), then the socket."""
        from realrt.network import unpublish

        for container_id in list(self._running):
            running = self._running.pop(container_id)
            for handle in running.published:
                unpublish(handle)
            self.kernel.remove_netns(container_id)
        if self._kernel is not None:
            self._kernel.close()
            self._kernel = None


def _rewrite(path: Path, text: str) -> None:
    """Write ``text`` into ``path`` in place (no rename: a bind mount of it must see the change)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        os.ftruncate(fd, 0)
        data = text.encode()
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)

"""The engine's network commands (网络): ``network create/rm/ls/connect/disconnect`` and what a
container's ``--network`` and ``-p`` mean, on both backends.

The engine keeps one :class:`~sim.network.NetworkModel`: the model backend shows its views as
they are, the kernel backend applies each decision to the kernel through four hooks
(:meth:`NetworkCommands._network_made` ... :meth:`NetworkCommands._endpoint_gone`) and reads
the kernel back for comparison.  A container's network mode is ``"none"`` (a namespace with
only ``lo``, the default here: Docker's default bridge exists to NAT to the outside, which
layerlab never does), ``"host"`` (the host's namespace) or the name of a network made with
:meth:`create_network`.  Every argument is checked before anything is made.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import ConflictError, InvalidNetworkError
from sim.images._durable import atomic_write
from sim.network import Endpoint, Interface, NetworkInfo, NetworkModel, PortMapping, Route, parse_publish
from sim.network.names import check_network_name

__all__ = ["NetworkCommands", "ContainerNetwork", "NETWORK_MODES"]

#: The modes that are not networks one makes.
NETWORK_MODES = ("none", "host")


@dataclass(frozen=True)
class ContainerNetwork:
    """What a container sees of the network (``docker inspect``'s NetworkSettings, ``ip addr``,
    ``ip route``, its ``/etc/hosts`` and ``/etc/resolv.conf``)."""

    mode: str
    endpoints: tuple[Endpoint, ...]
    interfaces: tuple[Interface, ...]
    routes: tuple[Route, ...]
    hosts: str
    resolv_conf: str
    ports: tuple[PortMapping, ...]


class NetworkCommands:
    """Mixed into :class:`~sim.containers.core.EngineCore`; needs ``_containers`` and ``_container``."""

    network_model: NetworkModel
    _network_file: Path | None
    _containers: dict[str, Any]

    def _init_networks(self, state_file: Path | None) -> None:
        self._network_file = state_file
        if state_file is not None and state_file.exists():
            self.network_model = NetworkModel.from_json(state_file.read_bytes())
        else:
            self.network_model = NetworkModel()

    def _save_networks(self) -> None:
        if self._network_file is not None:
            self._network_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self._network_file, self.network_model.to_json().encode())

    # -- what a backend does with each decision (the model: nothing more)

    def _check_networking(self, mode: str) -> None:
        """Refuse ``mode`` when this backend cannot give it here (before anything is made)."""

    def _network_made(self, info: NetworkInfo) -> None:
        """A network was added to the model: make its bridge."""

    def _network_gone(self, info: NetworkInfo) -> None:
        """A network left the model: remove its bridge."""

    def _endpoint_made(self, container: Any, endpoint: Endpoint) -> None:
        """A container joined a network (while it may be running): attach it."""

    def _endpoint_gone(self, container: Any, endpoint: Endpoint) -> None:
        """A container left a network: detach it."""

    # -- networks

    def create_network(self, name: str, *, subnet: str | None = None) -> NetworkInfo:
        """``docker network create [--subnet CIDR] NAME``: a bridge with the subnet's first address."""
        self._check_networking(check_network_name(name))
        info = self.network_model.create_network(name, subnet)
        try:
            self._network_made(info)
        except BaseException:
            self.network_model.remove_network(name)
            raise
        self._save_networks()
        return info

    def remove_network(self, name: str) -> None:
        """``docker network rm``: refused while a container is connected."""
        info = self.network_model.network(name)
        if info.containers:
            users = [self._containers[c].name if c in self._containers else c for c in info.containers]
            raise ConflictError(f"error while removing network: network {name} has active endpoints ({', '.join(users)})")
        self.network_model.remove_network(name)
        self._save_networks()
        self._network_gone(info)

    def networks(self) -> list[NetworkInfo]:
        return self.network_model.networks()

    def inspect_network(self, name: str) -> NetworkInfo:
        return self.network_model.network(name)

    def connect(self, network: str, ref: str, *, aliases: Sequence[str] = ()) -> Endpoint:
        """``docker network connect [--alias A] NETWORK CONTAINER`` (also while it runs)."""
        container = self._container(ref)  # type: ignore[attr-defined]
        if container.network_mode == "host":
            raise ConflictError(f"container {container.name} uses the host's network: it cannot join {network}")
        self._check_networking(network)
        endpoint = self.network_model.connect(network, container.id, hostname=container.hostname,
                                              aliases=aliases, name=container.name)
        try:
            self._endpoint_made(container, endpoint)
        except BaseException:
            self.network_model.disconnect(network, container.id)
            raise
        self._save_networks()
        return endpoint

    def disconnect(self, network: str, ref: str) -> Endpoint:
        """``docker network disconnect NETWORK CONTAINER``."""
        container = self._container(ref)  # type: ignore[attr-defined]
        endpoint = self.network_model.disconnect(network, container.id)
        self._save_networks()
        self._endpoint_gone(container, endpoint)
        return endpoint

    def container_network(self, ref: str) -> ContainerNetwork:
        """The model's view of a container's network (the kernel backend can read its own back)."""
        container = self._container(ref)  # type: ignore[attr-defined]
        model = self.network_model
        if container.network_mode == "host":
            return ContainerNetwork("host", (), (), (), "", "", container.ports)
        return ContainerNetwork(
            container.network_mode, model.endpoints(container=container.id),
            tuple(model.interfaces(container.id)), tuple(model.routes(container.id)),
            model.hosts_file(container.id), model.resolv_conf(container.id), container.ports)

    # -- a container's network, from create to rm

    def _network_options(self, mode: str | None, publish: Iterable[str]) -> tuple[str, tuple[PortMapping, ...]]:
        """Check ``--network`` and ``-p`` before a container is made: the mode, the mappings."""
        mode = mode or "none"
        if not isinstance(mode, str):
            raise InvalidNetworkError(f"--network takes a name, not {mode!r}")
        if mode not in NETWORK_MODES:
            self._check_networking(mode)  # a rootless engine has no networks: say that, not "not found"
            self.network_model.network(mode)  # NetworkNotFoundError
        if isinstance(publish, str):
            publish = [publish]
        ports = tuple(parse_publish(p) for p in publish)
        if ports and mode in NETWORK_MODES:
            raise InvalidNetworkError(f"-p needs a network the container has an address on, not --network {mode}")
        taken = {(p.host_ip, p.host_port) for c in self._containers.values() for p in c.ports}
        mine: set[tuple[str, int]] = set()
        for p in ports:
            key = (p.host_ip, p.host_port)
            if key in taken or key in mine:
                raise ConflictError(f"Bind for {p.host_ip}:{p.host_port} failed: port is already allocated")
            mine.add(key)
        return mode, ports

    def _join_networks(self, container: Any) -> None:
        """A new container joins its network (or becomes known with only ``lo``)."""
        if container.network_mode == "host":
            return
        if container.network_mode == "none":
            self.network_model.add_container(container.id, hostname=container.hostname, name=container.name)
        else:
            endpoint = self.network_model.connect(container.network_mode, container.id,
                                                  hostname=container.hostname, name=container.name)
            self._endpoint_made(container, endpoint)
        self._save_networks()

    def _leave_networks(self, container: Any) -> None:
        """A removed container leaves every network."""
        if container.id not in self.network_model.containers():
            return
        for endpoint in self.network_model.forget_container(container.id):
            self._endpoint_gone(container, endpoint)
        self._save_networks()

    def network_state(self) -> str:
        """The networks and endpoints as JSON (what a notebook prints, what the state folder keeps)."""
        return json.dumps(json.loads(self.network_model.to_json()), indent=1, sort_keys=True)

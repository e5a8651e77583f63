"""The model's networks (网络): bridges, veth pairs, addresses, routes and names, as layerlab makes them.

A :class:`NetworkModel` is the bookkeeping of every layerlab network and every container on one:
which subnet each network has (:mod:`sim.network.ipam`), which address and interface each
container has on it, and from those, what each namespace sees -- ``ip addr``
(:meth:`~NetworkModel.interfaces`), ``ip route`` (:meth:`~NetworkModel.routes`), ``/etc/hosts`` and
``/etc/resolv.conf`` -- and who can reach whom.  The kernel backend applies the same decisions
with the same names (:mod:`sim.network.names`), so its views read back from the kernel equal these.

The rules are the ones the kernel backend enforces:

- a network is a bridge with the subnet's first address (the gateway); a container on it has a
  veth pair, the host side enslaved to the bridge, the other side ``eth0``, ``eth1`` ... in its
  own network namespace (the lowest free index when it connects);
- containers reach each other exactly when they share a network: bridges never forward to each
  other nor to the outside (no NAT, no route out), so two networks are isolated;
- names resolve through ``/etc/hosts`` only: on each shared network, a container's hostname,
  name and its aliases on that network;
- the default route goes via the gateway of the network on ``eth0``.

Every bad input raises a typed error from :mod:`sim.errors` before anything changes: an invalid
or reserved name (:class:`~sim.errors.InvalidNetworkError`), an unknown network
(:class:`~sim.errors.NetworkNotFoundError`) or container (:class:`~sim.errors.ContainerNotFoundError`),
a network in use, a container connected twice, no address left (:class:`~sim.errors.ConflictError`).
The state is plain data: :meth:`~NetworkModel.to_json` / :meth:`~NetworkModel.from_json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sim.errors import ConflictError, ContainerNotFoundError, InvalidNetworkError, LayerlabError, NetworkNotFoundError
from sim.network import _views
from sim.network._records import Endpoint, Interface, InterfaceKind, NetworkInfo, PortMapping, Route
from sim.network.ipam import Subnet, default_subnet
from sim.network.names import (
    RESERVED_NETWORKS,
    bridge_name,
    check_container_id,
    check_dns_name,
    check_network_name,
    interface_name,
    netns_name,
    veth_names,
)

if TYPE_CHECKING:
    import networkx as nx
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["NetworkModel", "Interface", "InterfaceKind", "Route", "NetworkInfo", "Endpoint", "PortMapping"]

_STATE_VERSION = 1
_ETH = re.compile(r"eth(0|[1-9][0-9]{0,11})", re.ASCII)
#: ``interfaces(where)`` names the host's view with this word; no container may have it as its id.
HOST = "host"


class NetworkModel:
    """Every layerlab network and the containers on them (see the module docstring for the rules).

    Containers are known by id from their first :meth:`connect` (or :meth:`add_container`, for
    one on no network) until :meth:`forget_container`; a container disconnected from every
    network stays known, with only its loopback.
    """

    def __init__(self) -> None:
        self._subnets: dict[str, Subnet] = {}  # by network name, in creation order
        self._identities: dict[str, _views.Identity] = {}  # container id -> (hostname, name)
        self._endpoints: dict[tuple[str, str], Endpoint] = {}  # (network, container), in connect order

    # -- networks ------------------------------------------------------------------------------

    def create_network(self, name: str, subnet: str | None = None) -> NetworkInfo:
        """``docker network create [--subnet SUBNET] NAME``.  Without a subnet, the first free
        ``10.89.N.0/24``.  Refused: an invalid or reserved name, a subnet that is not private,
        not /16../29 or overlaps another network's (:class:`~sim.errors.InvalidNetworkError`); a
        name in use (:class:`~sim.errors.ConflictError`)."""
        check_network_name(name)
        if name in self._subnets:
            raise ConflictError(f"network with name {name} already exists")
        bridge = bridge_name(name)
        clash = next((other for other in self._subnets if bridge_name(other) == bridge), None)
        if clash is not None:  # pragma: no cover - needs a 32-bit hash collision
            raise ConflictError(f"network {name!r} would share bridge {bridge} with network {clash!r}: pick another name")
        if subnet is None:
            allocator = Subnet(default_subnet(self._subnets.values()))
        else:
            allocator = Subnet(subnet)
            for other, taken in self._subnets.items():
                if allocator.overlaps(taken):
                    raise InvalidNetworkError(f"subnet {allocator.cidr} overlaps {taken.cidr} of network {other!r}")
        self._subnets[name] = allocator
        return self._info(name)

    def remove_network(self, name: str) -> None:
        """``docker network rm NAME``: refused with :class:`~sim.errors.ConflictError` while any
        container is connected to it."""
        self._network(name)
        connected = [c for (n, c) in self._endpoints if n == name]
        if connected:
            raise ConflictError(f"network {name} has active endpoints: {', '.join(connected)}")
        del self._subnets[name]

    def networks(self) -> list[NetworkInfo]:
        """Every network, by name."""
        return [self._info(name) for name in sorted(self._subnets)]

    def network(self, name: str) -> NetworkInfo:
        """``docker network inspect NAME``."""
        self._network(name)
        return self._info(name)

    # -- containers ----------------------------------------------------------------------------

    def containers(self) -> tuple[str, ...]:
        """The ids of the containers the model knows, in the order it met them."""
        return tuple(self._identities)

    def endpoints(self, *, network: str | None = None, container: str | None = None) -> tuple[Endpoint, ...]:
        """The endpoints, in connect order; only those of ``network`` and/or ``container`` if given."""
        if network is not None:
            self._network(network)
        if container is not None:
            self._container(container)
        return tuple(e for (n, c), e in self._endpoints.items()
                     if (network is None or n == network) and (container is None or c == container))

    def add_container(self, container_id: str, *, hostname: str, name: str | None = None) -> None:
        """Know a container that is on no network (``network="none"``): its views are its
        loopback only.  Refused when the id is known already (:class:`~sim.errors.ConflictError`)."""
        identity = self._check_identity(container_id, hostname, name)
        if container_id in self._identities:
            raise ConflictError(f"container {container_id} is known already")
        self._check_new_id(container_id)
        self._identities[container_id] = identity

    def connect(self, network: str, container_id: str, *, hostname: str, aliases: Sequence[str] = (),
                name: str | None = None) -> Endpoint:
        """``docker network connect [--alias A] NETWORK CONTAINER``: the next free address of the
        network, the container's lowest free ``ethN``, the veth pair's host side.

        ``hostname`` (and ``name``, the container's name, if given) must be what the model knows
        of an already known container; ``aliases`` resolve on this network only.  Refused: an
        unknown network, a container already connected to it, no address left, a different
        hostname or name for a known container (:class:`~sim.errors.ConflictError`)."""
        subnet = self._network(network)
        identity = self._check_identity(container_id, hostname, name)
        names = self._check_aliases(aliases)
        known = self._identities.get(container_id)
        if known is None:
            self._check_new_id(container_id)
        elif known[0] != hostname or (name is not None and known[1] != name):
            raise ConflictError(f"container {container_id} is known as hostname {known[0]!r}, name {known[1]!r}")
        if (network, container_id) in self._endpoints:
            raise ConflictError(f"endpoint with name {identity[1] or container_id} already exists in network {network}")
        host_veth = veth_names(container_id, network)[0]
        if any(e.host_veth == host_veth for e in self._endpoints.values()):  # pragma: no cover - 48-bit collision
            raise ConflictError(f"veth name {host_veth} is taken: a hash collision")
        used = {e.index for (_, c), e in self._endpoints.items() if c == container_id}
        index = next(i for i in range(len(used) + 1) if i not in used)
        address = subnet.allocate()  # ConflictError when full; the last step that can fail
        endpoint = Endpoint(network, container_id, interface_name(index), subnet.interface_address(address),
                            str(subnet.gateway), host_veth, names)
        if known is None:
            self._identities[container_id] = identity
        self._endpoints[(network, container_id)] = endpoint
        return endpoint

    def disconnect(self, network: str, container_id: str) -> Endpoint:
        """``docker network disconnect NETWORK CONTAINER``: its address is free again; the
        endpoint removed is returned.  Refused when it is not connected (:class:`~sim.errors.ConflictError`)."""
        subnet = self._network(network)
        self._container(container_id)
        endpoint = self._endpoints.get((network, container_id))
        if endpoint is None:
            raise ConflictError(f"container {container_id} is not connected to network {network}")
        subnet.release(endpoint.ip)
        del self._endpoints[(network, container_id)]
        return endpoint

    def forget_container(self, container_id: str) -> tuple[Endpoint, ...]:
        """The container is gone (``docker rm``): every endpoint of it removed (and returned, in
        connect order), its addresses free, its id unknown."""
        self._container(container_id)
        gone = tuple(e for (_, c), e in self._endpoints.items() if c == container_id)
        for endpoint in gone:
            self._subnets[endpoint.network].release(endpoint.ip)
            del self._endpoints[(endpoint.network, container_id)]
        del self._identities[container_id]
        return gone

    # -- views ---------------------------------------------------------------------------------

    def interfaces(self, where: str) -> list[Interface]:
        """``ip addr`` in one namespace, sorted by name: ``"host"`` lists layerlab's bridges and
        host-side veths (never the machine's own links); a container id lists ``lo`` and its
        ``ethN``.  Only IPv4 addresses are listed."""
        if where == HOST:
            return _views.host_interfaces([self._info(n) for n in self._subnets], list(self._endpoints.values()))
        return _views.container_interfaces(self._own(where))

    def routes(self, container_id: str) -> list[Route]:
        """``ip route`` in the container: the default route via the gateway of its ``eth0``
        network (none while no interface is ``eth0``), then one connected route per interface by name."""
        return _views.container_routes(self._own(container_id), {n: s.cidr for n, s in self._subnets.items()})

    def hosts_file(self, container_id: str) -> str:
        """The container's ``/etc/hosts``: localhost, its own addresses, then every container it
        shares a network with, each with its hostname, name and aliases on that network."""
        return _views.format_hosts(self._hosts(container_id))

    def resolv_conf(self, container_id: str) -> str:
        """The container's ``/etc/resolv.conf``: no nameserver (none is reachable), a comment
        saying names resolve through ``/etc/hosts``, and ``options ndots:0``."""
        self._container(container_id)
        return _views.RESOLV_CONF

    def resolve(self, container_id: str, name: str) -> str | None:
        """The IPv4 address ``name`` resolves to inside the container (its ``/etc/hosts``, first
        match, case-insensitive), or ``None``."""
        if not isinstance(name, str):
            raise InvalidNetworkError(f"a name to resolve is a string, not {type(name).__name__}")
        return _views.lookup(self._hosts(container_id), name)

    def reachable(self, a: str, b: str) -> bool:
        """Whether container ``a`` reaches container ``b``: they share a network (a container
        always reaches itself)."""
        self._container(a)
        self._container(b)
        return a == b or bool(self._networks_of(a) & self._networks_of(b))

    def reachability(self, ids: Iterable[str]) -> dict[tuple[str, str], bool]:
        """:meth:`reachable` for every ordered pair of distinct containers of ``ids``."""
        unique = list(dict.fromkeys(ids))
        for cid in unique:
            self._container(cid)
        return {(a, b): self.reachable(a, b) for a in unique for b in unique if a != b}

    def graph(self) -> nx.Graph:
        """The host, bridges, veth pairs and container namespaces as a :class:`networkx.Graph`
        (see :func:`sim.network.draw.build_graph`)."""
        from sim.network.draw import build_graph  # networkx only when a graph is asked for

        hostnames = {cid: ident[0] for cid, ident in self._identities.items()}
        return build_graph([self._info(n) for n in self._subnets], list(self._endpoints.values()), hostnames)

    def draw(self, ax: Axes | None = None) -> Figure:
        """The :meth:`graph` drawn with matplotlib's object API, with a title and a legend; on
        ``ax`` if given, else on a new figure.  Returns the figure."""
        from sim.network.draw import draw_graph  # matplotlib only when a figure is asked for

        return draw_graph(self.graph(), ax)

    # -- state ---------------------------------------------------------------------------------

    def to_json(self) -> str:
        """The state as JSON text (the same state gives the same text): the networks with their
        subnets, the containers' names, the endpoints in connect order."""
        state = {
            "version": _STATE_VERSION,
            "networks": [{"name": n, "subnet": s.cidr} for n, s in self._subnets.items()],
            "containers": [{"id": c, "hostname": h, "name": m} for c, (h, m) in self._identities.items()],
            "endpoints": [{"network": e.network, "container": e.container, "interface": e.interface,
                           "address": e.address, "aliases": list(e.aliases)} for e in self._endpoints.values()],
        }
        return json.dumps(state, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> NetworkModel:
        """A model in the state :meth:`to_json` wrote, checked as thoroughly as the calls that
        made it; anything else raises :class:`~sim.errors.InvalidNetworkError`."""
        try:
            state = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise InvalidNetworkError(f"network state is not JSON: {exc}") from exc
        model = cls()
        try:
            if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
                raise InvalidNetworkError(f"network state must be an object with version {_STATE_VERSION}")
            for net in _items(state, "networks"):
                model.create_network(_text(net, "name"), _text(net, "subnet"))
            for box in _items(state, "containers"):
                name = box.get("name")
                model.add_container(_text(box, "id"), hostname=_text(box, "hostname"),
                                    name=None if name is None else _text(box, "name"))
            for end in _items(state, "endpoints"):
                aliases = end.get("aliases")
                if not isinstance(aliases, list):
                    raise InvalidNetworkError("an endpoint's aliases must be a list")
                model._restore(_text(end, "network"), _text(end, "container"), _text(end, "interface"),
                               _text(end, "address"), aliases)
        except InvalidNetworkError:
            raise
        except LayerlabError as exc:
            raise InvalidNetworkError(f"network state is inconsistent: {exc}") from exc
        return model

    def _restore(self, network: str, container_id: str, interface: str, address: str, aliases: list[Any]) -> None:
        subnet = self._network(network)
        self._container(container_id)
        if (network, container_id) in self._endpoints:
            raise InvalidNetworkError(f"container {container_id} is connected to {network} twice")
        if not _ETH.fullmatch(interface):
            raise InvalidNetworkError(f"invalid interface name {interface!r}: eth<N>")
        if any(e.interface == interface for (_, c), e in self._endpoints.items() if c == container_id):
            raise InvalidNetworkError(f"container {container_id} has {interface} twice")
        ip, _, prefix = address.partition("/")
        if prefix != str(subnet.prefixlen):
            raise InvalidNetworkError(f"address {address!r} does not have the prefix of {subnet.cidr}")
        names = self._check_aliases(aliases)
        subnet.claim(ip)
        self._endpoints[(network, container_id)] = Endpoint(
            network, container_id, interface, subnet.interface_address(ip), str(subnet.gateway),
            veth_names(container_id, network)[0], names)

    # -- helpers -------------------------------------------------------------------------------

    def _network(self, name: str) -> Subnet:
        if name in RESERVED_NETWORKS:
            raise InvalidNetworkError(
                f"{name!r} is a predefined network, not one of layerlab's: pass network={name!r} to create/run"
                if name != "bridge" else "layerlab has no default bridge network: create one and connect to it")
        check_network_name(name)
        subnet = self._subnets.get(name)
        if subnet is None:
            raise NetworkNotFoundError(f"network {name} not found")
        return subnet

    def _container(self, container_id: str) -> _views.Identity:
        check_container_id(container_id)
        identity = self._identities.get(container_id)
        if identity is None:
            raise ContainerNotFoundError(f"no container {container_id} on any network the model knows")
        return identity

    def _own(self, container_id: str) -> list[Endpoint]:
        self._container(container_id)
        return [e for (_, c), e in self._endpoints.items() if c == container_id]

    def _networks_of(self, container_id: str) -> set[str]:
        return {n for (n, c) in self._endpoints if c == container_id}

    def _hosts(self, container_id: str) -> list[_views.HostsEntry]:
        mine = self._own(container_id)
        peers = {e.network: [p for (n, _), p in self._endpoints.items() if n == e.network] for e in mine}
        return _views.hosts_entries(container_id, mine, self._identities, peers)

    def _check_identity(self, container_id: str, hostname: str, name: str | None) -> _views.Identity:
        check_container_id(container_id)
        if container_id == HOST:
            raise InvalidNetworkError("'host' names the host's view: it cannot be a container id")
        check_dns_name(hostname, "hostname", hostname=True)
        if name is not None:
            check_dns_name(name, "container name")
        return hostname, name

    def _check_aliases(self, aliases: Sequence[Any]) -> tuple[str, ...]:
        if isinstance(aliases, str | bytes) or not isinstance(aliases, Sequence):
            raise InvalidNetworkError(f"aliases are a sequence of names, not {aliases!r}")
        return tuple(dict.fromkeys(check_dns_name(a, "alias") for a in aliases))

    def _check_new_id(self, container_id: str) -> None:
        prefix = netns_name(container_id)
        clash = next((c for c in self._identities if netns_name(c) == prefix), None)
        if clash is not None:
            raise ConflictError(f"container ids {clash} and {container_id} share the namespace name {prefix}")

    def _info(self, name: str) -> NetworkInfo:
        subnet = self._subnets[name]
        members = tuple(c for (n, c) in self._endpoints if n == name)
        return NetworkInfo(name, subnet.cidr, str(subnet.gateway), bridge_name(name), members)

    def __repr__(self) -> str:
        return f"NetworkModel({len(self._subnets)} networks, {len(self._identities)} containers)"


def _items(state: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = state.get(key)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InvalidNetworkError(f"network state: {key!r} must be a list of objects")
    return items


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidNetworkError(f"network state: {key!r} must be a string, not {value!r}")
    return value

"""The kernel side of layerlab's networks: bridges, veth pairs, named namespaces, addresses, routes.

:class:`KernelNetworks` applies what :class:`sim.network.model.NetworkModel` decided (the same
names from :mod:`sim.network.names`, the same addresses) with pyroute2's ``IPRoute`` -- netlink
requests, no process per step -- and reads the result back from the kernel into the model's
dataclasses (:meth:`~KernelNetworks.snapshot`, :meth:`~KernelNetworks.routes`), so a test
compares model and kernel with ``==``.

Every resource is written into the journal *before* it is made: a bridge or a host-side veth as
a "link" record (its name), a namespace as a "netns" record (its path), the isolation table as an
"nft" record; :meth:`realrt.journal.Journal.sweep` removes what a killed run left
(:mod:`realrt.network._undo`).  Only the host side of a veth pair is recorded: deleting it deletes
its peer too.

Two choices differ from a literal reading of the contract, with the same result:

- the container side of a veth pair is created directly inside the namespace under its final name
  (``eth<index>``): one request instead of create, move and rename, and no half-moved peer with its
  temporary ``llp...`` name (:func:`sim.network.names.veth_names`) can ever be left on the host;
- IPv6 address generation is off on every link layerlab makes (``addrgenmode none``): the
  networks are IPv4 only, as the model is, and an ``fe80::`` address would have each link send
  router solicitations and multicast reports nobody asked for.  :meth:`~KernelNetworks.snapshot`
  lists IPv4 addresses only (``lo`` keeps its ``::1``).

A :class:`KernelNetworks` is used from one thread at a time (an internal lock makes concurrent
calls wait); it needs ``CAP_NET_ADMIN`` in the host's namespaces.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from realrt.journal import Journal, Record
from realrt.network import _netns, _nft
from realrt.network._links import LAYERLAB_LINK_PREFIXES, delete_link, layerlab_bridges
from realrt.network._loop import loop_safe
from sim.errors import (
    BackendUnavailableError,
    ConflictError,
    InvalidNetworkError,
    NetworkNotFoundError,
    NotFoundError,
)
from sim.network.ipam import parse_subnet
from sim.network.model import Endpoint, Interface, InterfaceKind, NetworkInfo, Route
from sim.network.names import bridge_name, check_container_id, check_network_name, interface_name, veth_names

__all__ = ["KernelNetworks", "netns_path", "require_net_admin", "address_mac"]


def address_mac(ip: str) -> str:
    """``02:42`` and the four bytes of ``ip``: a container interface's MAC, stable per address."""
    return "02:42:" + ":".join(f"{byte:02x}" for byte in ipaddress.IPv4Address(ip).packed)

_CAP_NET_ADMIN = 12
_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8
_MAIN_TABLE = 254
_RTN_UNICAST = 1
#: ``ip link set ... addrgenmode none``: IN6_ADDR_GEN_MODE_NONE in the link's IPv6 settings.
_NO_IPV6_ADDRESSES: Final = {"attrs": [("AF_INET6", {"attrs": [("IFLA_INET6_ADDR_GEN_MODE", 1)]})]}
_KINDS: Final[dict[str, InterfaceKind]] = {"bridge": "bridge", "veth": "veth"}


def netns_path(container_id: str) -> str:
    """``/run/netns/ll-<first 12 characters of the id>``, where :meth:`KernelNetworks.make_netns`
    keeps the container's network namespace."""
    return _netns.path_of(container_id)


def require_net_admin() -> None:
    """Raise :class:`~sim.errors.BackendUnavailableError` unless this process has ``CAP_NET_ADMIN``
    in the host's (the initial) user namespace: bridges and veth pairs on the host need it, and a
    rootless user namespace's own capability does not reach the host's network."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            caps = next(int(line.split()[1], 16) for line in fh if line.startswith("CapEff:"))
        with open("/proc/self/uid_map", encoding="ascii") as fh:
            initial = fh.read().split() == ["0", "0", "4294967295"]
    except (OSError, StopIteration, ValueError):
        caps, initial = 0, False
    if not (caps >> _CAP_NET_ADMIN) & 1 or not initial:
        raise BackendUnavailableError(
            "layerlab's networks need CAP_NET_ADMIN in the host's namespaces (run as root): bridges and veth "
            "pairs live on the host; rootless containers can use network='none' or network='host'")


class KernelNetworks:
    """Applies the model's networks to the kernel and reads them back; see the module docstring.

    Every method checks its arguments before it changes anything: malformed values raise
    :class:`~sim.errors.InvalidNetworkError`, a missing bridge :class:`~sim.errors.NetworkNotFoundError`,
    a missing namespace or veth :class:`~sim.errors.NotFoundError`, something that exists already
    :class:`~sim.errors.ConflictError`.  :meth:`close` releases the netlink socket and leaves the
    kernel as it is: remove what was made first (or let the journal's sweep do it).
    """

    @loop_safe
    def __init__(self, journal: Journal) -> None:
        require_net_admin()
        self._journal = journal
        self._ipr = IPRoute(groups=0)  # groups=0: no multicast events, only answers to requests
        self._lock = threading.RLock()
        self._bridges: dict[str, Record] = {}
        self._veths: dict[str, tuple[str, Record]] = {}  # host veth -> (namespace path, record)
        self._namespaces: dict[str, Record] = {}
        self._nft: Record | None = None

    @loop_safe
    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> KernelNetworks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- bridges -------------------------------------------------------------------------------

    @loop_safe
    def add_bridge(self, info: NetworkInfo, *, adopt: bool = False) -> None:
        """Make ``info.bridge`` up with ``info.gateway`` on it (prefix of ``info.subnet``), after
        making sure the isolation table exists and knows the bridge (:mod:`realrt.network._nft`).
        Refused: ``info.bridge`` is not ``bridge_name(info.name)``, the gateway is not a host
        address of the subnet (:class:`~sim.errors.InvalidNetworkError`); the bridge exists, or the
        subnet overlaps a network the host routes to already -- its own LAN, another layerlab
        engine's bridge (:class:`~sim.errors.ConflictError`).

        With ``adopt`` (an engine opening a store whose networks another engine, or a monitor, made
        already): a bridge ``info.bridge`` that exists with exactly ``info.gateway``/prefix as its
        IPv4 addresses is taken as it is -- brought up and known to the isolation table, nothing
        journalled (the store owns it: :mod:`realrt.network._undo` spares a saved network's
        bridge) -- and one with other addresses is refused (:class:`~sim.errors.ConflictError`).
        The look and the make are one step under the host lock: two engines restoring at once
        never both make the bridge, nor does one's failed attempt delete the other's."""
        if not isinstance(info, NetworkInfo):
            raise InvalidNetworkError(f"add_bridge takes a NetworkInfo, not {type(info).__name__}")
        check_network_name(info.name)
        if info.bridge != bridge_name(info.name):
            raise InvalidNetworkError(f"bridge {info.bridge!r} is not network {info.name!r}'s ({bridge_name(info.name)})")
        subnet = parse_subnet(info.subnet)
        gateway = _host_address(info.gateway, subnet, "gateway")
        with self._lock, _netns.host_lock():
            existing = self._index(self._ipr, info.bridge)
            if existing is not None:
                if not adopt:
                    raise ConflictError(f"bridge {info.bridge} of network {info.name} exists already")
                self._adopt_locked(info, existing, f"{gateway}/{subnet.prefixlen}")
                return
            clash = self._overlapping_route(subnet)
            if clash is not None:
                raise ConflictError(f"subnet {subnet} of network {info.name} overlaps {clash} on the host: "
                                    "give the network another subnet")
            if self._nft is None:
                self._nft = self._journal.record("nft", f"{_nft.FAMILY} {_nft.TABLE}")
            self._bridges[info.bridge] = self._journal.record("link", info.bridge)
            try:
                _nft.ensure(info.bridge)  # before the link: no moment without the drop rules
                self._ipr.link("add", ifname=info.bridge, kind="bridge")
                index = self._require(self._ipr, info.bridge)
                _no_ipv6(self._ipr, index)
                self._ipr.addr("add", index=index, address=str(gateway), prefixlen=subnet.prefixlen)
                self._ipr.link("set", index=index, state="up")
            except BaseException:
                # The first failure is the one to report; if the cleanup fails too, its records
                # stay and the journal's sweep finishes the job.
                with contextlib.suppress(Exception):
                    self._drop_bridge_locked(info.bridge)
                raise

    def _adopt_locked(self, info: NetworkInfo, index: int, address: str) -> None:
        # Under host_lock: the table's "is a bridge left?" check must not run between our look and ensure.
        links = self._ipr.get_links(index)
        found = sorted(f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}" for m in self._ipr.get_addr(family=socket.AF_INET, index=index))
        if not links or _kind(links[0]) != "bridge" or found != [address]:
            raise ConflictError(f"bridge {info.bridge} of network {info.name} exists with {', '.join(found) or 'no address'}, "
                                f"not {address}: it is not this store's network (remove it, or the network)")
        _nft.ensure(info.bridge)  # the table may have gone with a sweep of another store's last bridge
        self._ipr.link("set", index=index, state="up")

    @loop_safe
    def remove_bridge(self, name: str) -> None:
        """Delete network ``name``'s bridge (``name`` is the *network's* name, as for
        :meth:`sim.network.model.NetworkModel.remove_network`); the isolation table goes with the
        last ``llbr-*`` bridge on the host.  Refused: no such bridge
        (:class:`~sim.errors.NetworkNotFoundError`); veths still enslaved to it
        (:class:`~sim.errors.ConflictError`)."""
        bridge = bridge_name(check_network_name(name))
        with self._lock:
            index = self._index(self._ipr, bridge)
            if index is None:
                raise NetworkNotFoundError(f"network {name} has no bridge ({bridge}) in the kernel")
            ports = sorted(str(m.get("ifname")) for m in self._ipr.get_links() if m.get("master") == index)
            if ports:
                raise ConflictError(f"network {name} has active endpoints: {', '.join(ports)} on {bridge}")
            with _netns.host_lock():
                self._drop_bridge_locked(bridge)

    def _drop_bridge_locked(self, bridge: str) -> None:
        # Called under host_lock: the check for "no bridge left" and the table's deletion must not
        # interleave with another process's ensure-then-create in add_bridge.
        delete_link(self._ipr, bridge)
        rec = self._bridges.pop(bridge, None)
        if rec is not None:
            self._journal.forget(rec)
        for other in self._journal.records():  # the bridge's records from the engines that made it before
            if other.kind == "link" and other.path == bridge:
                self._journal.forget(other)
        if layerlab_bridges(self._ipr):
            _nft.drop_bridge(bridge)
        else:
            _nft.delete_table()
        if not self._bridges and self._nft is not None:
            self._journal.forget(self._nft)
            self._nft = None

    # -- namespaces ----------------------------------------------------------------------------

    @loop_safe
    def make_netns(self, container_id: str) -> str:
        """A new network namespace for the container, kept at :func:`netns_path`, with ``lo`` up
        (``network="none"`` is exactly this); returns the path.  Refused: an id that cannot name
        a namespace (:class:`~sim.errors.InvalidNetworkError`); the path exists
        (:class:`~sim.errors.ConflictError`)."""
        path = netns_path(check_container_id(container_id))
        with self._lock:
            if os.path.lexists(path):
                raise ConflictError(f"network namespace {path} exists already")
            rec = self._journal.record("netns", path)
            try:
                _netns.create(path)  # removes its own file when it fails; a ConflictError made none
            except BaseException:
                self._journal.forget(rec)
                raise
            try:
                with self._inside(path) as ns:
                    ns.link("set", index=self._require(ns, "lo"), state="up")
            except BaseException:
                _netns.remove(path)
                self._journal.forget(rec)
                raise
            self._namespaces[path] = rec
        return path

    @loop_safe
    def remove_netns(self, container_id: str) -> None:
        """Delete the container's veths (their host sides go with them, at once rather than when
        the kernel gets round to freeing the namespace), then unmount and unlink its namespace.
        Refused: no such namespace (:class:`~sim.errors.NotFoundError`)."""
        path = netns_path(check_container_id(container_id))
        with self._lock:
            if not os.path.lexists(path):
                raise NotFoundError(f"no network namespace at {path}")
            with self._inside(path) as ns:
                for link in ns.get_links():
                    if _kind(link) == "veth":
                        delete_link(ns, str(link.get("ifname")))
            _netns.remove(path)
            for veth, (where, rec) in list(self._veths.items()):
                if where == path:
                    self._journal.forget(rec)
                    del self._veths[veth]
            own = self._namespaces.pop(path, None)
            if own is not None:
                self._journal.forget(own)

    # -- endpoints -----------------------------------------------------------------------------

    @loop_safe
    def attach(self, endpoint: Endpoint, netns_path: str, index: int) -> None:
        """Connect the namespace at ``netns_path`` to ``endpoint.network``: a veth pair whose host
        side (``endpoint.host_veth``) is enslaved to the bridge and up, whose other side is
        ``eth<index>`` inside the namespace with ``endpoint.address``, up; ``lo`` up; the subnet's
        route (the kernel adds it with the address); for ``index == 0`` (``eth0``, the first
        network) the default route via ``endpoint.gateway``.

        Refused (before anything changes): ``endpoint.interface`` is not ``eth<index>``, the veth
        name is not the network's, the address or gateway is not in the bridge's subnet
        (:class:`~sim.errors.InvalidNetworkError`); no such bridge
        (:class:`~sim.errors.NetworkNotFoundError`) or namespace (:class:`~sim.errors.NotFoundError`);
        the veth or the interface exists already (:class:`~sim.errors.ConflictError`)."""
        _check_endpoint(endpoint)
        if endpoint.interface != interface_name(index):
            raise InvalidNetworkError(f"endpoint {endpoint.interface} is not eth{index}")
        address = ipaddress.ip_interface(endpoint.address)
        bridge = bridge_name(endpoint.network)
        with self._lock:
            br_index = self._index(self._ipr, bridge)
            if br_index is None:
                raise NetworkNotFoundError(f"network {endpoint.network} has no bridge ({bridge}): add_bridge first")
            subnet = self._bridge_subnet(br_index, bridge)
            if address.network != subnet or address.ip in (subnet.network_address, subnet.broadcast_address):
                raise InvalidNetworkError(f"address {endpoint.address} is not a host address of {bridge}'s subnet {subnet}")
            _host_address(endpoint.gateway, subnet, "gateway")
            if self._index(self._ipr, endpoint.host_veth) is not None:
                raise ConflictError(f"veth {endpoint.host_veth} exists already")
            fd = _netns.open_netns(netns_path)
            try:
                with self._inside(netns_path, fd) as ns:
                    if self._index(ns, endpoint.interface) is not None:
                        raise ConflictError(f"{netns_path} has an interface {endpoint.interface} already")
                    rec = self._journal.record("link", endpoint.host_veth)
                    self._veths[endpoint.host_veth] = (netns_path, rec)
                    try:
                        # The MAC the address names (02:42 + its four bytes, as Docker did): IPAM hands a
                        # freed address out again at once, and a peer's neighbour cache would still map
                        # it to the old holder's MAC for up to a minute.
                        self._ipr.link("add", ifname=endpoint.host_veth, kind="veth",
                                       peer={"ifname": endpoint.interface, "net_ns_fd": fd,
                                             "address": address_mac(str(address.ip))})
                        host = self._require(self._ipr, endpoint.host_veth)
                        _no_ipv6(self._ipr, host)
                        self._ipr.link("set", index=host, master=br_index, state="up")
                        inner = self._require(ns, endpoint.interface)
                        _no_ipv6(ns, inner)
                        ns.addr("add", index=inner, address=str(address.ip), prefixlen=address.network.prefixlen)
                        ns.link("set", index=inner, state="up")
                        ns.link("set", index=self._require(ns, "lo"), state="up")
                        if index == 0:
                            ns.route("add", dst="0.0.0.0/0", gateway=endpoint.gateway, oif=inner)
                    except BaseException:
                        delete_link(self._ipr, endpoint.host_veth)
                        del self._veths[endpoint.host_veth]
                        self._journal.forget(rec)
                        raise
            finally:
                os.close(fd)

    @loop_safe
    def detach(self, endpoint: Endpoint, netns_path: str) -> None:
        """Delete the endpoint's veth pair (its ``ethN`` and the routes through it go too: with
        ``eth0`` the default route, as the model has none while no interface is ``eth0``).
        Refused: no such namespace or veth (:class:`~sim.errors.NotFoundError`)."""
        _check_endpoint(endpoint)
        with self._lock:
            os.close(_netns.open_netns(netns_path))
            if not delete_link(self._ipr, endpoint.host_veth):
                raise NotFoundError(f"no veth {endpoint.host_veth}: {endpoint.container} is not attached to {endpoint.network}")
            entry = self._veths.pop(endpoint.host_veth, None)
            if entry is not None:
                self._journal.forget(entry[1])

    # -- views ---------------------------------------------------------------------------------

    @loop_safe
    def snapshot(self, where: str) -> list[Interface]:
        """``ip addr`` read back from the kernel, in the model's terms and order (by name).

        ``where`` is ``"host"`` -- only layerlab's links (``llbr-*``, ``llv*``, ``llp*``), never the
        machine's own -- or a namespace: a path (``/run/netns/...``, ``/proc/<pid>/ns/net``) or a
        container id (:func:`netns_path`); there every loopback, veth and bridge is listed
        (devices of other kinds the kernel puts in each namespace, such as ``sit0`` when its module
        is loaded, are not layerlab's and are left out).  IPv4 addresses only."""
        with self._lock:
            if where == "host":
                return _interfaces(self._ipr, lambda name: name.startswith(LAYERLAB_LINK_PREFIXES))
            with self._inside(self._where(where)) as ns:
                return _interfaces(ns, lambda name: True)

    @loop_safe
    def routes(self, netns_path: str) -> list[Route]:
        """``ip route`` (the main table, IPv4) in a namespace (a path or a container id, as for
        :meth:`snapshot`), in the model's order: default routes first, then by device and
        destination."""
        with self._lock, self._inside(self._where(netns_path)) as ns:
            names = {m["index"]: str(m.get("ifname")) for m in ns.get_links()}
            found = []
            for msg in ns.get_routes(family=socket.AF_INET, table=_MAIN_TABLE):
                if msg.get("table") != _MAIN_TABLE or msg["type"] != _RTN_UNICAST:
                    continue
                dst = "default" if msg["dst_len"] == 0 else f"{msg.get('dst')}/{msg['dst_len']}"
                found.append(Route(dst, msg.get("gateway"), names.get(msg.get("oif"), "?")))
            return sorted(found, key=lambda r: (r.destination != "default", r.device, r.destination))

    # -- helpers -------------------------------------------------------------------------------

    def _where(self, where: object) -> str:
        if not isinstance(where, str) or not where:
            raise InvalidNetworkError(f"a namespace is 'host', a path or a container id, not {where!r}")
        return where if where.startswith("/") else netns_path(check_container_id(where))

    @contextmanager
    def _inside(self, path: str, fd: int | None = None) -> Iterator[IPRoute]:
        """An IPRoute whose socket was made inside the namespace at ``path`` (or ``fd``); closed after."""
        own = fd is None
        nsfd = _netns.open_netns(path) if fd is None else fd
        try:
            sock = _netns.run_inside(nsfd, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0))
        finally:
            if own:
                os.close(nsfd)
        ipr = IPRoute(fileno=sock.detach(), groups=0)
        try:
            yield ipr
        finally:
            ipr.close()

    def _overlapping_route(self, subnet: ipaddress.IPv4Network) -> str | None:
        """A route of the host's main table (not the default one) that overlaps ``subnet``: a
        network the host reaches already -- its own LAN, another engine's bridge -- would be
        hidden behind the bridge, or hide it."""
        names = {m["index"]: str(m.get("ifname")) for m in self._ipr.get_links()}
        for msg in self._ipr.get_routes(family=socket.AF_INET, table=_MAIN_TABLE):
            if msg["dst_len"] == 0 or msg.get("table") != _MAIN_TABLE:
                continue
            network = ipaddress.IPv4Network(f"{msg.get('dst')}/{msg['dst_len']}", strict=False)
            if network.overlaps(subnet):
                return f"{network} (dev {names.get(msg.get('oif'), '?')})"
        return None

    def _bridge_subnet(self, index: int, bridge: str) -> ipaddress.IPv4Network:
        for msg in self._ipr.get_addr(family=socket.AF_INET, index=index):
            return ipaddress.IPv4Interface(f"{msg.get('IFA_ADDRESS')}/{msg['prefixlen']}").network
        raise NetworkNotFoundError(f"bridge {bridge} has no IPv4 address: it is not one layerlab made")

    @staticmethod
    def _index(ipr: IPRoute, name: str) -> int | None:
        found = ipr.link_lookup(ifname=name)
        return int(found[0]) if found else None

    def _require(self, ipr: IPRoute, name: str) -> int:
        index = self._index(ipr, name)
        if index is None:
            raise NotFoundError(f"link {name} vanished while layerlab was setting it up")
        return index


def _check_endpoint(endpoint: object) -> None:
    if not isinstance(endpoint, Endpoint):
        raise InvalidNetworkError(f"expected an Endpoint, not {type(endpoint).__name__}")
    if endpoint.host_veth != veth_names(endpoint.container, endpoint.network)[0]:
        raise InvalidNetworkError(f"veth {endpoint.host_veth!r} is not {endpoint.container} on {endpoint.network}'s")
    try:
        address = ipaddress.ip_interface(endpoint.address)
    except ValueError as exc:
        raise InvalidNetworkError(f"invalid endpoint address {endpoint.address!r}: {exc}") from exc
    if address.version != 4 or "/" not in endpoint.address:
        raise InvalidNetworkError(f"endpoint address {endpoint.address!r} must be IPv4 CIDR such as 10.89.0.2/24")


def _host_address(text: str, subnet: ipaddress.IPv4Network, what: str) -> ipaddress.IPv4Address:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError as exc:
        raise InvalidNetworkError(f"invalid {what} {text!r}: {exc}") from exc
    if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
        raise InvalidNetworkError(f"{what} {text} is not a host address of {subnet}")
    return address


def _no_ipv6(ipr: IPRoute, index: int) -> None:
    try:
        ipr.link("set", index=index, IFLA_AF_SPEC=_NO_IPV6_ADDRESSES)
    except NetlinkError as exc:
        if exc.code not in (errno.EAFNOSUPPORT, errno.EOPNOTSUPP):  # a kernel without IPv6: nothing to keep quiet
            raise


def _kind(link: Any) -> InterfaceKind | None:
    if link["flags"] & _IFF_LOOPBACK:
        return "loopback"
    return _KINDS.get(link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"))


def _interfaces(ipr: IPRoute, wanted: Callable[[str], bool]) -> list[Interface]:
    links = list(ipr.get_links())
    names = {m["index"]: str(m.get("ifname")) for m in links}
    addresses: dict[int, list[str]] = {}
    for msg in ipr.get_addr(family=socket.AF_INET):
        addresses.setdefault(msg["index"], []).append(f"{msg.get('IFA_LOCAL') or msg.get('IFA_ADDRESS')}/{msg['prefixlen']}")
    found = []
    for link in links:
        name, kind = names[link["index"]], _kind(link)
        if kind is None or not wanted(name):
            continue
        master = link.get("master")
        found.append(Interface(name, kind, tuple(addresses.get(link["index"], ())), bool(link["flags"] & _IFF_UP),
                               names.get(master) if master else None, _peer(ipr, link, names) if kind == "veth" else None))
    return sorted(found, key=lambda i: i.name)


def _peer(ipr: IPRoute, link: Any, names: dict[int, str]) -> str | None:
    """The name of a veth's other end, asked of the kernel: in this namespace by index, else in
    the peer's namespace through its id (``IFLA_IF_NETNSID``, Linux >= 4.20)."""
    peer, nsid = link.get("link"), link.get("IFLA_LINK_NETNSID")
    if not peer:
        return None
    if nsid is None:
        return names.get(peer)
    try:
        for msg in ipr.link("get", index=peer, IFLA_IF_NETNSID=nsid):
            return str(msg.get("ifname"))
    except NetlinkError:
        return None  # the peer is being deleted
    return None

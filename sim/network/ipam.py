"""IP address management (IPAM): one IPv4 subnet per network, addresses handed out lowest first.

A :class:`Subnet` is an allocator over one private IPv4 network.  Its first host address is the
gateway (the bridge's own address on the host); :meth:`Subnet.allocate` hands out the lowest free
host address after it and :meth:`Subnet.release` gives one back, so a released address is the next
one handed out again (Docker and Podman do the same for a network's addresses).

Only the private ranges of RFC 1918 (:data:`PRIVATE_RANGES`) are accepted, with a prefix from /16
(65 534 hosts) to /29 (the gateway and 5 containers): layerlab's networks never route to the
outside, so a public range would only hide real hosts.  Unnamed networks get
:func:`default_subnet`: ``10.89.N.0/24`` for N = 0, 1, ... skipping any that overlaps an existing
network (Podman's default pool for new networks).
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, ip_network
from typing import Final

from sim.errors import ConflictError, InvalidNetworkError

__all__ = ["PRIVATE_RANGES", "DEFAULT_POOL", "MIN_PREFIX", "MAX_PREFIX", "Subnet", "parse_subnet", "default_subnet"]

#: RFC 1918's private IPv4 ranges: a network's subnet lies inside one of them.
PRIVATE_RANGES: Final = (IPv4Network("10.0.0.0/8"), IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16"))
#: Where unnamed networks' subnets come from, one /24 each (Podman's default pool).
DEFAULT_POOL: Final = IPv4Network("10.89.0.0/16")
#: The largest (/16) and the smallest (/29) subnet accepted.
MIN_PREFIX: Final = 16
MAX_PREFIX: Final = 29
_DEFAULT_PREFIX = 24


def parse_subnet(cidr: str | IPv4Network) -> IPv4Network:
    """The IPv4 network ``cidr`` names (``"10.89.0.0/24"``), checked: IPv4, no host bits set, inside
    :data:`PRIVATE_RANGES`, prefix from :data:`MIN_PREFIX` to :data:`MAX_PREFIX`.  Anything else
    raises :class:`~sim.errors.InvalidNetworkError` saying which rule it breaks."""
    if isinstance(cidr, IPv4Network):
        network = cidr
    elif isinstance(cidr, str):
        if "/" not in cidr:
            raise InvalidNetworkError(f"invalid subnet {cidr!r}: give a CIDR such as 10.89.0.0/24")
        try:
            parsed = ip_network(cidr, strict=False)
        except ValueError as exc:  # AddressValueError and NetmaskValueError are ValueErrors
            raise InvalidNetworkError(f"invalid subnet {cidr!r}: {exc}") from exc
        if not isinstance(parsed, IPv4Network):
            raise InvalidNetworkError(f"invalid subnet {cidr!r}: layerlab's networks are IPv4 only")
        if IPv4Address(cidr.split("/", 1)[0]) != parsed.network_address:
            raise InvalidNetworkError(f"invalid subnet {cidr!r}: host bits are set; it should be {parsed}")
        network = parsed
    else:
        raise InvalidNetworkError(f"a subnet is a CIDR string, not {type(cidr).__name__}")
    if not any(network.subnet_of(private) for private in PRIVATE_RANGES):
        raise InvalidNetworkError(
            f"subnet {network} is not private: use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 "
            "(layerlab's networks never reach the outside)")
    if network.prefixlen < MIN_PREFIX:
        raise InvalidNetworkError(f"subnet {network} is too large: the prefix must be /{MIN_PREFIX} or longer")
    if network.prefixlen > MAX_PREFIX:
        raise InvalidNetworkError(
            f"subnet {network} is too small: the prefix must be /{MAX_PREFIX} or shorter "
            "(a gateway and at least five containers)")
    return network


def default_subnet(taken: Iterable[IPv4Network | Subnet]) -> IPv4Network:
    """The first ``10.89.N.0/24`` (N = 0, 1, ... 255) overlapping none of ``taken``; when every one
    overlaps, :class:`~sim.errors.ConflictError` (name a subnet explicitly then)."""
    networks = [t.network if isinstance(t, Subnet) else t for t in taken]
    for candidate in DEFAULT_POOL.subnets(new_prefix=_DEFAULT_PREFIX):
        if not any(candidate.overlaps(other) for other in networks):
            return candidate
    raise ConflictError(f"every default subnet in {DEFAULT_POOL} overlaps an existing network: give a subnet")


class Subnet:
    """The address allocator of one network: which host addresses of ``cidr`` are in use.

    ``cidr`` is checked by :func:`parse_subnet`.  The gateway is the first host address and is
    never handed out; neither are the network and broadcast addresses.  The allocator keeps no
    history: releasing an address makes it the lowest free one again if it is.
    """

    def __init__(self, cidr: str | IPv4Network) -> None:
        self._network = parse_subnet(cidr)
        self._first = int(self._network.network_address) + 1  # the gateway
        self._last = int(self._network.broadcast_address) - 1
        self._used: set[int] = set()

    @property
    def network(self) -> IPv4Network:
        return self._network

    @property
    def cidr(self) -> str:
        """``"10.89.0.0/24"``."""
        return str(self._network)

    @property
    def prefixlen(self) -> int:
        return self._network.prefixlen

    @property
    def gateway(self) -> IPv4Address:
        """The first host address: the bridge's address, the containers' gateway."""
        return IPv4Address(self._first)

    @property
    def capacity(self) -> int:
        """How many addresses containers can have at most (the hosts minus the gateway)."""
        return self._last - self._first

    @property
    def allocated(self) -> tuple[IPv4Address, ...]:
        """The addresses in use, lowest first."""
        return tuple(IPv4Address(n) for n in sorted(self._used))

    def interface_address(self, address: IPv4Address | str) -> str:
        """``address`` with this subnet's prefix, as an interface carries it: ``"10.89.0.2/24"``."""
        return f"{self._host(address)}/{self._network.prefixlen}"

    def overlaps(self, other: Subnet | IPv4Network) -> bool:
        return self._network.overlaps(other.network if isinstance(other, Subnet) else other)

    def allocate(self) -> IPv4Address:
        """The lowest free host address after the gateway, now in use; when none is free,
        :class:`~sim.errors.ConflictError` and nothing changes."""
        for number in range(self._first + 1, self._last + 1):
            if number not in self._used:
                self._used.add(number)
                return IPv4Address(number)
        raise ConflictError(f"no free address left in {self._network} ({self.capacity} in use)")

    def claim(self, address: IPv4Address | str) -> IPv4Address:
        """Mark this exact host address as in use (restoring saved state); refused with
        :class:`~sim.errors.InvalidNetworkError` for the gateway or an address outside the hosts,
        with :class:`~sim.errors.ConflictError` when it is already in use."""
        host = self._host(address)
        number = int(host)
        if number == self._first:
            raise InvalidNetworkError(f"{host} is the gateway of {self._network}")
        if number in self._used:
            raise ConflictError(f"{host} is already in use in {self._network}")
        self._used.add(number)
        return host

    def release(self, address: IPv4Address | str) -> None:
        """Give back an address :meth:`allocate` or :meth:`claim` handed out; one not in use (or not
        a host address of this subnet) raises :class:`~sim.errors.InvalidNetworkError`."""
        host = self._host(address)
        if int(host) not in self._used:
            raise InvalidNetworkError(f"{host} is not allocated in {self._network}")
        self._used.discard(int(host))

    def _host(self, address: IPv4Address | str) -> IPv4Address:
        try:
            host = address if isinstance(address, IPv4Address) else IPv4Address(address)
        except ValueError as exc:
            raise InvalidNetworkError(f"invalid IPv4 address {address!r}: {exc}") from exc
        if not self._first <= int(host) <= self._last:
            raise InvalidNetworkError(f"{host} is not a host address of {self._network}")
        return host

    def __repr__(self) -> str:
        return f"Subnet({self.cidr!r}, allocated={len(self._used)})"

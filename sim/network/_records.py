"""The network model's results: frozen dataclasses both backends return and compare.

They live in their own module so the views (``_views``), the drawing (``draw``) and the ports
(``ports``) can use them without importing the model; :mod:`sim.network.model` re-exports them.
Addresses of interfaces are CIDR strings (``"10.89.0.2/24"``), gateways plain addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from sim.errors import InvalidNetworkError

__all__ = ["InterfaceKind", "Interface", "Route", "NetworkInfo", "Endpoint", "PortMapping", "LOOPBACK", "LOOPBACK_IP"]

InterfaceKind = Literal["loopback", "bridge", "veth"]
#: The only host address layerlab publishes ports on.
LOOPBACK_IP: Final = "127.0.0.1"


@dataclass(frozen=True)
class Interface:
    """One network interface as ``ip addr`` shows it in one namespace.

    ``addresses`` are its IPv4 addresses as CIDR strings; ``up`` is the administrative state
    (``IFF_UP``), not whether a cable is in; ``master`` is the bridge a host-side veth is enslaved
    to; ``peer`` is the other end's name of a veth: for a host-side veth the container-side name
    (``"eth0"``), for a container's ``ethN`` the host-side name (``"llv..."``).
    """

    name: str
    kind: InterfaceKind
    addresses: tuple[str, ...] = ()
    up: bool = True
    master: str | None = None
    peer: str | None = None


#: A container's loopback as every new network namespace has it once it is up.
LOOPBACK: Final = Interface("lo", "loopback", ("127.0.0.1/8",), True, None, None)


@dataclass(frozen=True)
class Route:
    """One route of a namespace's main table: ``destination`` is ``"default"`` or a CIDR;
    ``gateway`` is ``None`` for a directly connected subnet."""

    destination: str
    gateway: str | None
    device: str


@dataclass(frozen=True)
class NetworkInfo:
    """One network: its name, subnet (CIDR), gateway (the bridge's address), bridge name and the
    ids of the containers connected to it, in connect order."""

    name: str
    subnet: str
    gateway: str
    bridge: str
    containers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    """One container on one network: its interface inside (``"eth0"``), its address there (CIDR),
    the network's gateway, the host-side veth, and the aliases it answers to on this network only."""

    network: str
    container: str
    interface: str
    address: str
    gateway: str
    host_veth: str
    aliases: tuple[str, ...] = ()

    @property
    def ip(self) -> str:
        """The address without its prefix: ``"10.89.0.2"``."""
        return self.address.split("/", 1)[0]

    @property
    def index(self) -> int:
        """The ``N`` of ``ethN``."""
        return int(self.interface[3:])


@dataclass(frozen=True)
class PortMapping:
    """A published port: connections to ``host_ip:host_port`` reach ``container_port`` of the
    container.  layerlab publishes only TCP and only on 127.0.0.1; anything else is refused
    with :class:`~sim.errors.InvalidNetworkError` when the mapping is made."""

    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"

    def __post_init__(self) -> None:
        if self.host_ip != LOOPBACK_IP:
            raise InvalidNetworkError(f"host IP {self.host_ip!r} refused: layerlab publishes only on loopback (127.0.0.1)")
        for what, port in (("host port", self.host_port), ("container port", self.container_port)):
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise InvalidNetworkError(f"{what} {port!r} is out of range: ports are 1..65535")
        if self.protocol != "tcp":
            raise InvalidNetworkError(f"protocol {self.protocol!r} refused: layerlab publishes TCP only")

    def __str__(self) -> str:
        """As ``docker ps`` shows it: ``127.0.0.1:8080->80/tcp``."""
        return f"{self.host_ip}:{self.host_port}->{self.container_port}/{self.protocol}"

"""``docker run -p``: which published-port specs layerlab accepts, parsed into a :class:`PortMapping`.

Accepted forms (host port, then container port):

- ``8080:80`` -- published on 127.0.0.1 (Docker would listen on every address; layerlab never does);
- ``127.0.0.1:8080:80`` and ``localhost:8080:80``;
- any of them with ``/tcp`` after the container port.

Refused with :class:`~sim.errors.InvalidNetworkError`, each saying why: a bare container port
(``80``) or an empty host port (``127.0.0.1::80``), since layerlab picks no random host ports;
any other host address (``0.0.0.0``, ``[::1]``, ``127.0.0.2`` ...), since layerlab publishes only on
loopback; ``/udp`` and ``/sctp``, since it forwards TCP only; port ranges (``8000-8001:80-81``);
ports outside 1..65535.
"""

from __future__ import annotations

import re

from sim.errors import InvalidNetworkError
from sim.network._records import LOOPBACK_IP, PortMapping

__all__ = ["parse_publish", "PortMapping"]

_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
_LOOPBACK_NAMES = (LOOPBACK_IP, "localhost")


def parse_publish(spec: str) -> PortMapping:
    """The :class:`PortMapping` of one ``-p`` spec (see the module's list of forms); every
    spec layerlab cannot publish raises :class:`~sim.errors.InvalidNetworkError`."""
    if not isinstance(spec, str):
        raise InvalidNetworkError(f"a published port is a string such as '127.0.0.1:8080:80', not {type(spec).__name__}")
    ports, slash, protocol = spec.partition("/")
    if slash:
        if protocol.lower() == "udp":
            raise InvalidNetworkError(f"-p {spec!r}: layerlab publishes TCP only (its forwarder does not carry UDP)")
        if protocol.lower() != "tcp":
            raise InvalidNetworkError(f"-p {spec!r}: unknown protocol {protocol!r}; layerlab publishes TCP only")
    if ports.startswith("["):
        raise InvalidNetworkError(f"-p {spec!r}: layerlab publishes only on loopback (127.0.0.1), not on IPv6 addresses")
    parts = ports.split(":")
    if len(parts) == 1:
        raise InvalidNetworkError(
            f"-p {spec!r}: give the host port too (e.g. 127.0.0.1:8080:{ports}); "
            "layerlab picks no random host ports")
    if len(parts) > 3:
        raise InvalidNetworkError(f"-p {spec!r}: expected [127.0.0.1:]HOST_PORT:CONTAINER_PORT[/tcp]")
    host_ip = parts[0] if len(parts) == 3 else LOOPBACK_IP
    if host_ip not in _LOOPBACK_NAMES:
        raise InvalidNetworkError(
            f"-p {spec!r}: host address {host_ip!r} refused: layerlab publishes only on loopback (127.0.0.1 or localhost)")
    host_port, container_port = parts[-2], parts[-1]
    if host_port == "":
        raise InvalidNetworkError(f"-p {spec!r}: the host port is empty; layerlab picks no random host ports")
    return PortMapping(LOOPBACK_IP, _port(host_port, "host", spec), _port(container_port, "container", spec), "tcp")


def _port(text: str, which: str, spec: str) -> int:
    if "-" in text:
        raise InvalidNetworkError(f"-p {spec!r}: port ranges ({text}) are not supported; publish one port at a time")
    if not _PORT.fullmatch(text):
        raise InvalidNetworkError(f"-p {spec!r}: invalid {which} port {text!r}")
    port = int(text)
    if not 1 <= port <= 65535:
        raise InvalidNetworkError(f"-p {spec!r}: {which} port {port} is out of range: ports are 1..65535")
    return port

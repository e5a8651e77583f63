"""The one place layerlab's network names are made, so the kernel's links equal the model's.

Both backends call these functions: the model to say what exists, the kernel backend to make it,
so ``ip link`` on the host shows exactly the names :meth:`NetworkModel.interfaces` lists.  Every
interface name fits the kernel's ``IFNAMSIZ`` (16 bytes with the NUL, so at most 15).

- a network's bridge: ``"llbr-"`` + the first 8 hex digits of sha256(network name) (13 bytes);
- a container's veth pair on one network: ``"llv"`` + 12 hex digits of
  sha256(container id + network name) on the host, and ``"llp"`` + the same 12 digits for the
  peer until it is moved into the container and renamed (15 bytes each);
- inside the container the interfaces are ``eth0``, ``eth1`` ... (:func:`interface_name`);
- a container's named network namespace: ``"ll-"`` + the first 12 characters of its id
  (``/run/netns/<name>`` on the kernel).

The hashes are of the UTF-8 bytes.  A hash shared by two names is possible in principle (32 bits
for bridges): :class:`~sim.network.model.NetworkModel` refuses the second name rather than let
two networks share one bridge.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from sim.errors import InvalidNetworkError

__all__ = [
    "IFNAMSIZ", "RESERVED_NETWORKS", "bridge_name", "veth_names", "netns_name", "interface_name",
    "check_network_name", "check_container_id", "check_dns_name",
]

#: The kernel's buffer for an interface name, NUL included: a name has at most 15 bytes.
IFNAMSIZ: Final = 16
#: Docker's predefined networks: not names a user may create, remove or connect to.
RESERVED_NETWORKS: Final = ("bridge", "host", "none")

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", re.ASCII)
#: Longest name /etc/hosts gets (a DNS name); HOST_NAME_MAX is what sethostname(2) accepts.
_DNS_MAX = 253
_HOST_NAME_MAX = 64


def check_network_name(name: str) -> str:
    """Return ``name`` if it is a network name a user may create: Docker's
    ``[a-zA-Z0-9][a-zA-Z0-9_.-]*`` (ASCII) and none of :data:`RESERVED_NETWORKS`;
    else raise :class:`~sim.errors.InvalidNetworkError`."""
    _check_shape(name, "network name")
    if name in RESERVED_NETWORKS:
        raise InvalidNetworkError(
            f"network name {name!r} is reserved: {', '.join(RESERVED_NETWORKS)} are Docker's predefined networks "
            "(pass network='none' or network='host' to create/run; layerlab has no default bridge)")
    return name


def check_container_id(container_id: str) -> str:
    """Return ``container_id`` if it can name a namespace and a hash input: the same characters as a
    network name (no ``/``, no spaces); else raise :class:`~sim.errors.InvalidNetworkError`."""
    return _check_shape(container_id, "container id")


def check_dns_name(name: str, what: str = "name", *, hostname: bool = False) -> str:
    """Return ``name`` if /etc/hosts can list it: the network-name characters, at most 253 bytes
    (64 for a ``hostname``, the kernel's HOST_NAME_MAX); else raise
    :class:`~sim.errors.InvalidNetworkError`.  A space or ``#`` would split or end a hosts line."""
    _check_shape(name, what)
    limit = _HOST_NAME_MAX if hostname else _DNS_MAX
    if len(name) > limit:
        raise InvalidNetworkError(f"{what} {name[:20]!r}... has {len(name)} characters: at most {limit}")
    return name


def _check_shape(name: object, what: str) -> str:
    if not isinstance(name, str):
        raise InvalidNetworkError(f"{what} must be a string, not {type(name).__name__}")
    if not _NAME.fullmatch(name):
        raise InvalidNetworkError(f"invalid {what} {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed")
    return name


def _hex(text: str, digits: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:digits]


def bridge_name(network_name: str) -> str:
    """``"llbr-"`` + 8 hex digits of sha256(network name): the network's bridge on the host."""
    return "llbr-" + _hex(_check_shape(network_name, "network name"), 8)


def veth_names(container_id: str, network_name: str) -> tuple[str, str]:
    """``(host_side, container_side_tmp)`` of the container's veth pair on that network:
    ``"llv"`` and ``"llp"`` + the same 12 hex digits of sha256(container id + network name).
    The container side keeps its temporary name only until it is moved into the container's
    namespace and renamed to ``eth<index>``."""
    digest = _hex(check_container_id(container_id) + _check_shape(network_name, "network name"), 12)
    return "llv" + digest, "llp" + digest


def netns_name(container_id: str) -> str:
    """``"ll-"`` + the first 12 characters of the container id: its named network namespace."""
    return "ll-" + check_container_id(container_id)[:12]


def interface_name(index: int) -> str:
    """``eth<index>``: the container's interface on its ``index``-th network (0 first)."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0 or index >= 10**12:
        raise InvalidNetworkError(f"interface index must be an integer from 0, not {index!r}")
    return f"eth{index}"

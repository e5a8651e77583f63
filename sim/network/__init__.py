"""网络 / 命名空间 networks and namespaces: the sandbox a container's process lives in.

A container is a process in namespaces of its own (命名空间): its own mount table, process IDs,
hostname, user IDs and network stack.  This package is the model of that sandbox, and the
bookkeeping the real backend applies to the kernel:

- :mod:`~sim.network.namespaces` -- which namespaces a process is in (:class:`NamespaceSet`),
  uid/gid maps in ``/proc/self/uid_map``'s format (:class:`IdMap`, :func:`rootless_maps`,
  :func:`to_host`, :func:`to_container`) and PID 1 inside being PID N outside (:class:`ProcessView`);
- :mod:`~sim.network.names` -- the names of bridges, veth pairs and network namespaces, the same
  on both backends;
- :mod:`~sim.network.ipam` -- one private IPv4 subnet per network, addresses lowest first
  (:class:`Subnet`);
- :mod:`~sim.network.model` -- :class:`NetworkModel`: networks, containers on them, and each
  namespace's interfaces, routes, ``/etc/hosts``, reachability, as a graph and a figure;
- :mod:`~sim.network.ports` -- ``-p`` specs (:func:`parse_publish`), published on 127.0.0.1 only.

Unlike Docker there is no default ``bridge`` network and no NAT: a container is on no network
(``"none"``: only ``lo``) unless it is connected to one, and no network reaches the outside.
"""

from __future__ import annotations

from sim.network.ipam import Subnet, default_subnet, parse_subnet
from sim.network.model import Endpoint, Interface, NetworkInfo, NetworkModel, PortMapping, Route
from sim.network.names import bridge_name, interface_name, netns_name, veth_names
from sim.network.namespaces import (
    HOST_NAMESPACES,
    IdMap,
    NamespaceAllocator,
    NamespaceSet,
    ProcessView,
    format_id_map,
    parse_id_map,
    rootless_maps,
    to_container,
    to_host,
)
from sim.network.ports import parse_publish

__all__ = [
    "NetworkModel", "NetworkInfo", "Endpoint", "Interface", "Route", "PortMapping", "parse_publish",
    "Subnet", "parse_subnet", "default_subnet",
    "bridge_name", "veth_names", "netns_name", "interface_name",
    "NamespaceSet", "HOST_NAMESPACES", "NamespaceAllocator", "ProcessView",
    "IdMap", "parse_id_map", "format_id_map", "rootless_maps", "to_host", "to_container",
]

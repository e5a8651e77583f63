"""The kernel side of layerlab's networks (网络): what :mod:`sim.network` models, made with pyroute2.

- :class:`~realrt.network.kernel.KernelNetworks` -- bridges, veth pairs, named network namespaces,
  addresses and routes through netlink (pyroute2's ``IPRoute``), every resource in the journal
  before it exists, and the views read back into the model's dataclasses;
- :mod:`~realrt.network._nft` -- the ``inet layerlab`` table that drops whatever would be
  forwarded into, out of or between layerlab's bridges (the ``nft`` command);
- :mod:`~realrt.network.proxy` -- :func:`publish` / :func:`unpublish`: a userspace forwarder per
  published port, listening on 127.0.0.1 only;
- :mod:`~realrt.network.probe` -- :func:`reachable` and :func:`listen`: real TCP reachability
  between namespaces, measured.

No NAT and no route to the outside, ever: the only packets layerlab's networks carry are between
containers on one bridge, and between the host and a container (a published port).

The names are imported on first use: ``python -m realrt.network.proxy`` and the journal's sweep
import this package, and neither should pay for pyroute2 (or find the forwarder imported twice).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from realrt.network.kernel import KernelNetworks, netns_path, require_net_admin
    from realrt.network.probe import PROBE_PORT, Listener, listen, reachable
    from realrt.network.proxy import Published, publish, unpublish

__all__ = [
    "KernelNetworks", "netns_path", "require_net_admin",
    "publish", "unpublish", "Published",
    "reachable", "listen", "Listener", "PROBE_PORT",
]

_MODULES = {
    "KernelNetworks": "kernel", "netns_path": "kernel", "require_net_admin": "kernel",
    "publish": "proxy", "unpublish": "proxy", "Published": "proxy",
    "reachable": "probe", "listen": "probe", "Listener": "probe", "PROBE_PORT": "probe",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'realrt.network' has no attribute {name!r}")
    return getattr(importlib.import_module(f"realrt.network.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)

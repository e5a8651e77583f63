"""Netlink helpers shared by :mod:`realrt.network.kernel` and the journal's undo (:mod:`realrt.network._undo`).

Kept apart from the kernel module so that undoing a record needs nothing that imports the journal.
"""

from __future__ import annotations

import errno
from typing import Final

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

__all__ = ["LAYERLAB_LINK_PREFIXES", "delete_link", "layerlab_bridges"]

#: Names of the links layerlab makes on the host: bridges, host-side veths, (temporary) peers.
LAYERLAB_LINK_PREFIXES: Final = ("llbr-", "llv", "llp")


def layerlab_bridges(ipr: IPRoute) -> list[str]:
    """The names of every ``llbr-*`` link in ``ipr``'s namespace."""
    return sorted(n for n in (m.get("ifname") for m in ipr.get_links()) if n and n.startswith("llbr-"))


def delete_link(ipr: IPRoute, name: str) -> bool:
    """Delete the link ``name`` if it exists (for a veth, its peer goes with it); True if it did."""
    try:
        ipr.link("del", ifname=name)
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return False
        raise
    return True

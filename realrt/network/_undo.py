"""Undoing the network records of :mod:`realrt.journal` ("link", "netns", "nft") after a killed run.

:meth:`realrt.journal.Journal.release` calls :func:`release`; each undo is a no-op when the
resource is gone already, so a sweep can run any number of times.  A record's path is checked to
name something layerlab makes (``llbr-*``/``llv*``/``llp*`` links, ``/run/netns/ll-*``) before
anything is deleted: a damaged record never removes the machine's own links or mounts.
The sweep releases links before namespaces and the table last, so the table's "is any bridge
left?" check sees the dead run's bridges already gone.
"""

from __future__ import annotations

import shutil

from pyroute2 import IPRoute

from realrt.network import _netns, _nft
from realrt.network._links import LAYERLAB_LINK_PREFIXES, delete_link, layerlab_bridges
from realrt.network._loop import off_loop
from sim.errors import InvalidNetworkError

__all__ = ["release"]


def release(kind: str, path: str) -> None:
    """See :func:`_release`; pyroute2 refuses a thread running an asyncio loop (a notebook's)."""
    off_loop(_release, kind, path)


def _release(kind: str, path: str) -> None:
    """Undo one record: delete the link ``path`` if it exists (a bridge also leaves the isolation
    table's set); unmount and unlink the namespace
    ``path``; delete the isolation table if no ``llbr-*`` bridge is left (a live process's bridges
    keep it).  A path that is not layerlab's raises :class:`~sim.errors.InvalidNetworkError`."""
    if kind == "link":
        if not path.startswith(LAYERLAB_LINK_PREFIXES) or len(path.encode()) > 15:
            raise InvalidNetworkError(f"journal record names link {path!r}, which layerlab does not make")
        with IPRoute(groups=0) as ipr:
            delete_link(ipr, path)
        if path.startswith("llbr-") and shutil.which("nft") is not None:
            with _netns.host_lock():
                _nft.drop_bridge(path)  # a swept bridge leaves the isolation set too, not only the links
    elif kind == "netns":
        _netns.remove(_netns.check_own_path(path))
    elif kind == "nft":
        if shutil.which("nft") is None:  # pragma: no cover - without the command no table was ever made
            return
        with _netns.host_lock(), IPRoute(groups=0) as ipr:
            if not layerlab_bridges(ipr):
                _nft.delete_table()
    else:
        raise InvalidNetworkError(f"not a network record kind: {kind!r}")

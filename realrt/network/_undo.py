"""Undoing the network records of :mod:`realrt.journal` ("link", "netns", "nft") after a killed run.

:meth:`realrt.journal.Journal.release` calls :func:`release`; each undo is a no-op when the
resource is gone already, so a sweep can run any number of times.  A record's path is checked to
name something layerlab makes (``llbr-*``/``llv*``/``llp*`` links, ``/run/netns/ll-*``) before
anything is deleted: a damaged record never removes the machine's own links or mounts.
The sweep releases links before namespaces (veths before bridges) and the table last, so the
table's "is any bridge left?" check sees the dead run's bridges already gone.  A bridge that is
still a saved network of the journal's state folder, or still has ports, is kept with its record.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pyroute2 import IPRoute

from realrt.network import _netns, _nft
from realrt.network._links import LAYERLAB_LINK_PREFIXES, delete_link, layerlab_bridges
from realrt.network._loop import off_loop
from sim.errors import InvalidNetworkError
from sim.network import NetworkModel

__all__ = ["release"]


def release(kind: str, path: str, state_dir: Path | None = None) -> bool:
    """See :func:`_release`; pyroute2 refuses a thread running an asyncio loop (a notebook's)."""
    return off_loop(_release, kind, path, state_dir)


def _release(kind: str, path: str, state_dir: Path | None) -> bool:
    """Undo one record and return True, or return False when the resource is still in use and the
    record must stay: delete the link ``path`` if it exists (a bridge also leaves the isolation
    table's set), unless it is a bridge still in use -- a network saved in ``state_dir``'s
    ``networks.json`` (a network's bridge lives as long as the network: ``network create`` to
    ``network rm``, whichever process made it) or one with ports still enslaved (a live container's
    veth); unmount and unlink the namespace ``path``; delete the isolation table if no ``llbr-*``
    bridge is left (a live process's bridges keep it).  A path that is not layerlab's raises
    :class:`~sim.errors.InvalidNetworkError`."""
    if kind == "link":
        if not path.startswith(LAYERLAB_LINK_PREFIXES) or len(path.encode()) > 15:
            raise InvalidNetworkError(f"journal record names link {path!r}, which layerlab does not make")
        if not path.startswith("llbr-"):
            with IPRoute(groups=0) as ipr:
                delete_link(ipr, path)
            return True
        # The look and the delete under the host lock, as add_bridge's look and make: no engine adopts
        # the bridge between them.
        with _netns.host_lock(), IPRoute(groups=0) as ipr:
            if _bridge_in_use(ipr, path, state_dir):
                return False
            delete_link(ipr, path)
            if shutil.which("nft") is not None:  # a swept bridge leaves the isolation set too, not only the links
                if layerlab_bridges(ipr):
                    _nft.drop_bridge(path)
                else:  # the last one: the table's own record may be gone already (swept while this bridge was kept)
                    _nft.delete_table()
    elif kind == "netns":
        _netns.remove(_netns.check_own_path(path))
    elif kind == "nft":
        if shutil.which("nft") is None:  # pragma: no cover - without the command no table was ever made
            return True
        with _netns.host_lock(), IPRoute(groups=0) as ipr:
            if not layerlab_bridges(ipr):
                _nft.delete_table()
    else:
        raise InvalidNetworkError(f"not a network record kind: {kind!r}")
    return True


def _bridge_in_use(ipr: IPRoute, bridge: str, state_dir: Path | None) -> bool:
    found = ipr.link_lookup(ifname=bridge)
    if not found:
        return False  # gone already: the record is done with
    if any(m.get("master") == found[0] for m in ipr.get_links()):
        return True
    if state_dir is None:
        return False
    try:
        saved = (state_dir / "networks.json").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # unreadable now: keep the bridge, a later sweep decides
    try:
        return any(info.bridge == bridge for info in NetworkModel.from_json(saved).networks())
    except Exception:  # a damaged file (the engine reports it when it opens the store): never delete on a guess
        return True

"""The isolation table ``inet layerlab``: nothing is forwarded into, out of or between layerlab's bridges.

::

    table inet layerlab {
        set same_bridge { type ifname . ifname; elements = { "llbr-1a2b3c4d" . "llbr-1a2b3c4d", ... } }
        chain forward {
            type filter hook forward priority filter; policy accept;
            iifname . oifname @same_bridge accept
            iifname "llbr-*" drop
            oifname "llbr-*" drop
        }
    }

Containers on one bridge are switched, not routed, so the forward hook never sees their
packets -- unless ``br_netfilter`` is loaded with ``bridge-nf-call-iptables=1`` (as on many hosts,
this one included): then every bridged frame passes the forward hook with the bridge as both
input and output device.  The ``same_bridge`` set lets exactly those through; anything else that
enters or leaves a layerlab bridge is dropped, whatever ``net.ipv4.ip_forward`` says.  A drop in
any base chain is final, so the priority does not matter against other tables.

Done with the ``nft`` command and its JSON input (``nft -j -f -``), not pyroute2's nftables
module: pyroute2 0.9.7 has no API for sets, concatenations or wildcard interface names (its
rule builder covers a few iptables-like matches, and its own documentation calls the module
experimental), so these rules would have to be assembled as raw netlink expressions.  The
command runs only when a bridge is added or removed, never per container; JSON needs no
quoting of names, and each call is one atomic transaction.

Whether the table is still needed is decided under :func:`realrt.network._netns.host_lock`:
the table is deleted when no ``llbr-*`` link is left, checked in the same critical section in
which a new bridge's element is added and its link created, so no bridge ever exists without the
table while another process removes its last one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any, Final

from sim.errors import BackendUnavailableError

__all__ = ["FAMILY", "TABLE", "SET", "BRIDGE_PATTERN", "ensure", "drop_bridge", "delete_table", "listing"]

FAMILY: Final = "inet"
TABLE: Final = "layerlab"
SET: Final = "same_bridge"
#: nft's wildcard for every layerlab bridge (:func:`sim.network.names.bridge_name`).
BRIDGE_PATTERN: Final = "llbr-*"
_CHAIN = "forward"
_TIMEOUT = 30.0

_Json = dict[str, Any]


def _table() -> _Json:
    return {"family": FAMILY, "name": TABLE}


def _set() -> _Json:
    return {"family": FAMILY, "table": TABLE, "name": SET, "type": ["ifname", "ifname"]}


def _element(bridge: str) -> _Json:
    return {"family": FAMILY, "table": TABLE, "name": SET, "elem": [{"concat": [bridge, bridge]}]}


def _rule(*expr: _Json) -> _Json:
    return {"rule": {"family": FAMILY, "table": TABLE, "chain": _CHAIN, "expr": list(expr)}}


def _meta(key: str) -> _Json:
    return {"meta": {"key": key}}


def _rules() -> list[_Json]:
    same = {"match": {"op": "==", "left": {"concat": [_meta("iifname"), _meta("oifname")]}, "right": f"@{SET}"}}
    into = {"match": {"op": "==", "left": _meta("iifname"), "right": BRIDGE_PATTERN}}
    out = {"match": {"op": "==", "left": _meta("oifname"), "right": BRIDGE_PATTERN}}
    return [_rule(same, {"accept": None}), _rule(into, {"drop": None}), _rule(out, {"drop": None})]


def ensure(bridge: str) -> None:
    """Create the table if it is missing (or bring its chain back to the rules above) and let
    ``bridge``'s own traffic through; idempotent, one transaction.  ``add`` of an existing table,
    set or chain changes nothing, and flushing the chain before adding its rules keeps exactly
    one copy of them; the set's elements (the other bridges) are kept."""
    chain = {"family": FAMILY, "table": TABLE, "name": _CHAIN, "type": "filter", "hook": "forward",
             "prio": 0, "policy": "accept"}
    commands: list[_Json] = [{"add": {"table": _table()}}, {"add": {"set": _set()}}, {"add": {"chain": chain}},
                             {"flush": {"chain": {"family": FAMILY, "table": TABLE, "name": _CHAIN}}}]
    commands += [{"add": r} for r in _rules()]
    commands.append({"add": {"element": _element(bridge)}})
    _run(commands)


def drop_bridge(bridge: str) -> None:
    """Take ``bridge`` out of the set, if the table is there; a no-op otherwise.  (nft 1.0.6 has no
    ``destroy``: adding the element first makes the delete succeed whether or not it was in.)"""
    if listing() is None:
        return
    _run([{"add": {"element": _element(bridge)}}, {"delete": {"element": _element(bridge)}}])


def delete_table() -> None:
    """Delete the table if it exists (``add`` then ``delete`` in one transaction: idempotent)."""
    _run([{"add": {"table": _table()}}, {"delete": {"table": _table()}}])


def listing() -> list[_Json] | None:
    """``nft -j list table inet layerlab``: the table's objects (table, set, chain, rules) without
    the metainfo, or ``None`` when there is no such table."""
    done = subprocess.run([_nft(), "-j", "list", "table", FAMILY, TABLE], capture_output=True, text=True,
                          check=False, timeout=_TIMEOUT)
    if done.returncode != 0:
        if "No such file or directory" in done.stderr:
            return None
        raise BackendUnavailableError(f"nft list table {FAMILY} {TABLE} failed: {done.stderr.strip()}")
    objects: list[_Json] = json.loads(done.stdout)["nftables"]
    return [o for o in objects if "metainfo" not in o]


def _nft() -> str:
    found = shutil.which("nft")
    if found is None:
        raise BackendUnavailableError(
            "layerlab's networks need the nft command (package nftables): their isolation table is an nftables table")
    return found


def _run(commands: list[_Json]) -> None:
    done = subprocess.run([_nft(), "-j", "-f", "-"], input=json.dumps({"nftables": commands}), capture_output=True,
                          text=True, check=False, timeout=_TIMEOUT)
    if done.returncode != 0:
        raise BackendUnavailableError(f"nft refused layerlab's isolation table: {done.stderr.strip()}")

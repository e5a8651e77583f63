"""Helpers of the engine network tests; chiefly what one engine made on this host, so a test checks
that it, and only it, is gone afterwards.

Other runs may use layerlab's networks on the same host at the same time (a benchmark, another
engineer's engine): their ``llbr-*`` bridges, ``llv*`` veths, ``ll-*`` namespaces and the shared
``inet layerlab`` table are theirs.  :class:`Made` watches one engine's network model and notes
every name it could have put into the kernel; :func:`leftovers` lists those still there.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from typing import Any

import pytest

from sim.network import Interface, NetworkInfo, NetworkModel
from sim.network.names import netns_name

__all__ = ["Made", "leftovers", "tool", "unique", "free_port", "hosts_ip", "host_address", "retry"]


def tool(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} failed (the real tools are required): {done.stderr}"
    return done.stdout


class Made:
    """The bridge, veth and namespace names a :class:`NetworkModel` handed out since it was
    watched (they are what the kernel backend makes from the model's decisions)."""

    def __init__(self, model: NetworkModel) -> None:
        self.bridges: set[str] = set()
        self.veths: set[str] = set()
        self.netns: set[str] = set()
        create, connect, add = model.create_network, model.connect, model.add_container

        def create_network(name: str, subnet: str | None = None) -> NetworkInfo:
            info = create(name, subnet)
            self.bridges.add(info.bridge)
            return info

        def connect_(network: str, container_id: str, **options: Any) -> Any:
            endpoint = connect(network, container_id, **options)
            self.veths.add(endpoint.host_veth)
            self.netns.add(netns_name(container_id))
            return endpoint

        def add_container(container_id: str, **options: Any) -> None:
            add(container_id, **options)
            self.netns.add(netns_name(container_id))

        # Instance attributes shadow the methods: the engine calls these through its model.
        setattr(model, "create_network", create_network)  # noqa: B010
        setattr(model, "connect", connect_)  # noqa: B010
        setattr(model, "add_container", add_container)  # noqa: B010

    @property
    def links(self) -> set[str]:
        """Host-side names: bridges, veths and the veths' temporary peer names (``llp...``)."""
        return self.bridges | self.veths | {"llp" + v[3:] for v in self.veths}

    def host_view(self, snapshot: list[Interface]) -> list[Interface]:
        """The part of the host's ``kernel.snapshot("host")`` this engine made."""
        return [i for i in snapshot if i.name in self.links]


def leftovers(made: Made) -> dict[str, list[str]]:
    """What of ``made`` is still on the host; and the ``inet layerlab`` table if no layerlab
    bridge of anyone's is left to need it."""
    names = [str(m["ifname"]) for m in json.loads(tool("ip", "-j", "link"))]
    netns = [line.split()[0] for line in tool("ip", "netns", "list").splitlines() if line.strip()]
    tables = [t for t in tool("nft", "list", "tables").splitlines() if "layerlab" in t]
    anyone_bridged = any(n.startswith("llbr-") for n in names)
    return {"links": sorted(n for n in names if n in made.links),
            "netns": sorted(n for n in netns if n in made.netns),
            "nft": [] if anyone_bridged else tables}


def unique(base: str) -> str:
    """A network name no other engine on this host uses (bridge names are hashes of it)."""
    return f"{base}-{uuid.uuid4().hex[:6]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hosts_ip(hosts: str, name: str) -> str | None:
    """The IPv4 address ``name`` has in a hosts file (first match), as the C library reads it."""
    for line in hosts.splitlines():
        address, *names = line.split("#", 1)[0].split()
        if ":" not in address and name in names:
            return address
    return None


def host_address() -> tuple[str, str]:
    """The host's own (non-loopback, non-layerlab) IPv4 address and its link's name."""
    for link in json.loads(tool("ip", "-j", "-4", "addr")):
        if link["ifname"] == "lo" or link["ifname"].startswith("ll"):
            continue
        for addr in link.get("addr_info", ()):
            if addr.get("scope") == "global":
                return str(addr["local"]), str(link["ifname"])
    pytest.fail("the host has no global IPv4 address to check a published port is not on")


def retry(call: Any, until: Any, seconds: float = 4.0) -> Any:
    """``call()`` again until ``until(result)`` or ``seconds`` passed (a server may still be starting)."""
    deadline = time.monotonic() + seconds
    while True:
        result = call()
        if until(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.05)

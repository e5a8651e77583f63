"""The kernel side of layerlab's networks (realrt.network) against the model (sim.network).

Root only: bridges, veth pairs and named namespaces are made on this host.  Every test runs inside
``clean_host``: afterwards ``ip -j link``, ``ip netns list``, the nftables ruleset and the
namespace mounts are what they were before, and the test's journal is empty.  Packets go only
between namespaces the tests make and over loopback: the subnets are in 10.250.0.0/16, the one
"outside" address probed from a container (192.0.2.1) is dropped by the host, and the test that
turns forwarding on does so in a throwaway namespace playing the host.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from realrt.journal import Journal
from realrt.network import KernelNetworks, _nft, listen, netns_path, publish, reachable, unpublish
from realrt.network.probe import PROBE_PORT
from sim.errors import ConflictError, InvalidNetworkError, NetworkNotFoundError, NotFoundError
from sim.network.model import Endpoint, Interface, NetworkInfo, NetworkModel, PortMapping, Route
from sim.network.names import bridge_name
from tests.network._kernel_scripts import KILLED_RUN, SANDBOX_HOST

pytestmark = [pytest.mark.real, pytest.mark.root_only]

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = "192.0.2.1"  # this host's gateway: a container must never reach it


# -- the host's state, before and after ---------------------------------------------------------


def _tool(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} failed (the real tools are required): {done.stderr}"
    return done.stdout


def links() -> list[tuple[Any, ...]]:
    """``ip -j link``: every link's name, type, flags and master (counters and queue states change
    on their own and are left out)."""
    return sorted((m["ifname"], m.get("link_type"), tuple(m.get("flags", ())), m.get("master"))
                  for m in json.loads(_tool("ip", "-j", "link")))


def netns_list() -> str:
    return _tool("ip", "netns", "list")


def ruleset() -> str:
    return _tool("nft", "list", "ruleset")


def mounts() -> list[str]:
    """/proc/self/mountinfo from the mount point on, every mount outside /tmp: other engineers'
    tests mount overlays below their /tmp folders on this host at the same time, and this code
    mounts only under /run/netns."""
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        lines = [line.split(" ", 4)[4] for line in fh]
    return sorted(line for line in lines if not line.startswith("/tmp/"))


def host_state() -> dict[str, Any]:
    return {"links": links(), "netns": netns_list(), "nft": ruleset(), "mounts": mounts()}


@pytest.fixture(autouse=True)
def clean_host() -> Iterator[None]:
    """Every test: afterwards ``ip -j link``, ``ip netns list``, the ruleset and the namespace
    mounts are what they were before."""
    before = host_state()
    yield
    assert host_state() == before


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """The test's journal: afterwards it must be empty.  What is left is released before the
    failure is reported, so one failing test does not spoil the host for the next."""
    jr = Journal(tmp_path / "state")
    yield jr
    left = list(jr.records())
    for rec in left:
        jr.release(rec)
    assert left == [], f"journal records left: {left}"


@pytest.fixture
def kernel(journal: Journal) -> Iterator[KernelNetworks]:
    with KernelNetworks(journal) as k:
        yield k


def uid() -> str:
    return uuid.uuid4().hex[:12]


class World:
    """A model and the kernel made from it, with unique names (tests may run beside others)."""

    def __init__(self, kernel: KernelNetworks) -> None:
        self.kernel = kernel
        self.model = NetworkModel()
        self.nets: dict[str, str] = {}  # short name -> network name
        self.ids: dict[str, str] = {}  # short name -> container id
        self.paths: dict[str, str] = {}

    def network(self, short: str, subnet: str) -> NetworkInfo:
        name = self.nets[short] = f"lltest-{short}-{uid()}"
        info = self.model.create_network(name, subnet)
        self.kernel.add_bridge(info)
        return info

    def container(self, short: str) -> str:
        cid = self.ids[short] = uid() + uuid.uuid4().hex
        self.model.add_container(cid, hostname=short)
        self.paths[short] = self.kernel.make_netns(cid)
        return cid

    def connect(self, net: str, box: str) -> Endpoint:
        endpoint = self.model.connect(self.nets[net], self.ids[box], hostname=box)
        self.kernel.attach(endpoint, self.paths[box], endpoint.index)
        return endpoint

    def disconnect(self, net: str, box: str) -> Endpoint:
        endpoint = self.model.disconnect(self.nets[net], self.ids[box])
        self.kernel.detach(endpoint, self.paths[box])
        return endpoint

    def ip(self, net: str, box: str) -> str:
        return next(e.ip for e in self.model.endpoints(network=self.nets[net], container=self.ids[box]))

    def teardown(self) -> None:
        for endpoint in list(self.model.endpoints()):
            self.model.disconnect(endpoint.network, endpoint.container)
            self.kernel.detach(endpoint, netns_path(endpoint.container))
        for short in list(self.paths):
            self.kernel.remove_netns(self.ids[short])
            del self.paths[short]
        for net in list(self.nets.values()):
            self.model.remove_network(net)
            self.kernel.remove_bridge(net)
        self.nets.clear()

    def assert_views_agree(self) -> None:
        assert self.kernel.snapshot("host") == self.model.interfaces("host")
        for short, cid in self.ids.items():
            assert self.kernel.snapshot(self.paths[short]) == self.model.interfaces(cid), short
            assert self.kernel.snapshot(cid) == self.model.interfaces(cid)
            assert self.kernel.routes(self.paths[short]) == self.model.routes(cid), short


@pytest.fixture
def world(kernel: KernelNetworks) -> Iterator[World]:
    w = World(kernel)
    try:
        yield w
    finally:
        w.teardown()


# -- views: the kernel shows what the model says ------------------------------------------------


def test_snapshot_and_routes_equal_the_model(world: World) -> None:
    red = world.network("red", "10.250.1.0/24")
    world.network("blue", "10.250.2.0/28")
    for box in ("a", "b", "c"):
        world.container(box)
    ea = world.connect("red", "a")
    world.connect("red", "b")
    world.connect("blue", "c")
    eb2 = world.connect("blue", "b")  # b's second network: eth1, no second default route
    world.assert_views_agree()

    host = world.kernel.snapshot("host")
    assert Interface(red.bridge, "bridge", ("10.250.1.1/24",), True, None, None) in host
    assert Interface(ea.host_veth, "veth", (), True, red.bridge, "eth0") in host
    assert world.kernel.snapshot(world.paths["a"]) == [
        Interface("eth0", "veth", (ea.address,), True, None, ea.host_veth),
        Interface("lo", "loopback", ("127.0.0.1/8",), True, None, None)]
    assert world.kernel.routes(world.paths["b"]) == [
        Route("default", "10.250.1.1", "eth0"), Route("10.250.1.0/24", None, "eth0"),
        Route("10.250.2.0/28", None, "eth1")]
    assert eb2.interface == "eth1"

    # The host side really is enslaved to the bridge, as the ip command sees it (not only pyroute2).
    shown = {m["ifname"]: m for m in json.loads(_tool("ip", "-j", "link"))}
    assert shown[ea.host_veth]["master"] == red.bridge and "UP" in shown[ea.host_veth]["flags"]
    assert "UP" in shown[red.bridge]["flags"]
    # No IPv6 address on layerlab's links (addrgenmode none): nothing but IPv4 is spoken there.
    for dev in (ea.host_veth, red.bridge):
        assert all(not m.get("addr_info") for m in json.loads(_tool("ip", "-j", "-6", "addr", "show", "dev", dev)))

    # Disconnecting eth0 takes the default route with it, in both.
    world.disconnect("red", "b")
    world.assert_views_agree()
    assert world.kernel.routes(world.paths["b"]) == [Route("10.250.2.0/28", None, "eth1")]
    # ... and the next network gets the lowest free index, eth0, with the default route again.
    world.connect("red", "b")
    world.assert_views_agree()
    assert Route("default", "10.250.1.1", "eth0") in world.kernel.routes(world.ids["b"])


def test_a_namespace_on_no_network_has_only_loopback(world: World) -> None:
    world.container("none")
    world.assert_views_agree()
    assert world.kernel.snapshot(world.paths["none"]) == [Interface("lo", "loopback", ("127.0.0.1/8",), True, None, None)]
    assert world.kernel.routes(world.paths["none"]) == []
    assert not reachable(world.paths["none"], OUTSIDE)


# -- reachability, measured ---------------------------------------------------------------------


def test_reachability_follows_the_networks(world: World) -> None:
    world.network("red", "10.250.3.0/24")
    world.network("blue", "10.250.4.0/24")
    for box in ("a", "b", "c"):
        world.container(box)
    world.connect("red", "a")
    world.connect("red", "b")
    world.connect("blue", "c")
    listeners = {box: listen(world.paths[box]) for box in ("a", "b", "c")}
    try:
        assert reachable(world.paths["a"], world.ip("red", "b"))
        assert reachable(world.paths["b"], world.ip("red", "a"))
        # The handshake completes in the kernel before the listener's thread accepts: wait for it.
        _wait_for(lambda: listeners["b"].accepted == 1 and listeners["a"].accepted == 1)
        assert not reachable(world.paths["a"], world.ip("blue", "c"))
        assert not reachable(world.paths["c"], world.ip("red", "a"))
        assert listeners["c"].accepted == 0
        assert not reachable(world.paths["a"], OUTSIDE)  # a default route exists, but it leads nowhere
        # The kernel's matrix is the model's.
        ids = {v: k for k, v in world.ids.items()}
        expected = world.model.reachability(world.ids.values())
        measured = {(a, b): reachable(world.paths[ids[a]], next(e.ip for e in world.model.endpoints(container=b)))
                    for (a, b) in expected}
        assert measured == expected
    finally:
        for each in listeners.values():
            each.close()
    assert not reachable(world.paths["a"], world.ip("red", "b"))  # nothing listens any more: refused


def test_isolation_holds_with_forwarding_on(journal: Journal, tmp_path: Path) -> None:
    """In a namespace playing the host, with ``ip_forward=1`` and a reachable "outside": the table
    is what keeps the networks apart and the outside out (without it both are reached)."""
    tag = uid()[:8]
    done = subprocess.run([sys.executable, "-c", SANDBOX_HOST, str(tmp_path / "sandbox-state"), tag], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["with_table"] == {"a-b": True, "a-c": False, "a-out": False, "out-a": False}
    # br_netfilter hands bridged frames to the forward hook: without the same-bridge set they drop.
    same_bridge = results["bridge_nf"] == "0"
    assert results["without_same_bridge"] == {"a-b": same_bridge, "a-c": False, "a-out": False, "out-a": False}
    assert results["without_table"] == {"a-b": True, "a-c": True, "a-out": True, "out-a": True}
    assert results["table_after"] is None
    Journal(tmp_path / "sandbox-state").sweep()  # nothing to do; run in case the child failed half-way


# -- removal ------------------------------------------------------------------------------------


def test_detach_and_remove_leave_nothing(world: World, journal: Journal) -> None:
    world.network("red", "10.250.7.0/24")
    world.container("a")
    endpoint = world.connect("red", "a")
    assert {r.kind for r in journal.records()} == {"nft", "link", "netns"}
    assert _nft.listing() is not None
    world.disconnect("red", "a")
    assert endpoint.host_veth not in [name for name, *_ in links()]
    assert world.kernel.snapshot(world.paths["a"]) == world.model.interfaces(world.ids["a"])
    world.teardown()
    assert _nft.listing() is None  # the last bridge took the table with it
    assert list(journal.records()) == []


def test_remove_netns_takes_its_veths_along(world: World) -> None:
    world.network("red", "10.250.8.0/24")
    world.container("a")
    endpoint = world.connect("red", "a")
    world.kernel.remove_netns(world.ids["a"])  # without detaching first
    del world.paths["a"]
    world.model.disconnect(endpoint.network, endpoint.container)
    assert endpoint.host_veth not in [name for name, *_ in links()]  # gone at once, not later
    assert world.kernel.snapshot("host") == world.model.interfaces("host")


def test_the_table_stays_while_another_bridge_does(world: World) -> None:
    red = world.network("red", "10.250.9.0/24")
    blue = world.network("blue", "10.250.10.0/24")
    world.model.remove_network(red.name)
    world.kernel.remove_bridge(red.name)
    del world.nets["red"]
    listing = _nft.listing()
    assert listing is not None
    elements = next(o["set"].get("elem", []) for o in listing if "set" in o)
    assert {"concat": [blue.bridge, blue.bridge]} in elements
    assert {"concat": [red.bridge, red.bridge]} not in elements


# -- bad input ----------------------------------------------------------------------------------


def test_bad_input_is_refused_before_anything_changes(world: World, kernel: KernelNetworks) -> None:
    red = world.network("red", "10.250.11.0/24")
    cid = world.container("a")
    before = links()
    good = world.model.connect(red.name, cid, hostname="a")
    with pytest.raises(InvalidNetworkError):
        kernel.add_bridge(NetworkInfo("x" + red.name, red.subnet, red.gateway, red.bridge))
    with pytest.raises(InvalidNetworkError, match="not a host address"):
        kernel.add_bridge(NetworkInfo("other", "10.250.12.0/24", "10.250.13.1", bridge_name("other")))
    with pytest.raises(InvalidNetworkError, match="not private"):
        kernel.add_bridge(NetworkInfo("public", "8.8.8.0/24", "8.8.8.1", bridge_name("public")))
    with pytest.raises(ConflictError):
        kernel.add_bridge(red)
    twin = NetworkModel().create_network("twin-" + uid(), red.subnet)  # another engine's model, same subnet
    with pytest.raises(ConflictError, match="overlaps 10.250.11.0/24"):
        kernel.add_bridge(twin)
    with pytest.raises(InvalidNetworkError):
        kernel.attach(good, world.paths["a"], 1)  # eth0 is not eth1
    with pytest.raises(InvalidNetworkError):
        kernel.attach(Endpoint(red.name, cid, "eth0", "10.250.99.2/24", red.gateway, good.host_veth),
                      world.paths["a"], 0)
    with pytest.raises(InvalidNetworkError):
        kernel.attach(Endpoint(red.name, cid, "eth0", good.address, red.gateway, "llv000000000000"), world.paths["a"], 0)
    with pytest.raises(NotFoundError):
        kernel.attach(good, "/run/netns/ll-nosuchthing", 0)
    ghost = NetworkModel()
    ghost.create_network("ghost-" + uid(), "10.250.14.0/24")
    stray = ghost.connect(ghost.networks()[0].name, cid, hostname="a")
    with pytest.raises(NetworkNotFoundError):
        kernel.attach(stray, world.paths["a"], 0)
    with pytest.raises(NetworkNotFoundError):
        kernel.remove_bridge("ghost-" + uid())
    with pytest.raises(ConflictError):
        kernel.make_netns(cid)
    with pytest.raises(InvalidNetworkError):
        kernel.make_netns("../etc")
    with pytest.raises(NotFoundError):
        kernel.remove_netns("nosuch" + uid())
    with pytest.raises(NotFoundError):
        kernel.detach(good, world.paths["a"])  # never attached
    with pytest.raises(InvalidNetworkError):
        reachable(world.paths["a"], "not-an-ip")
    with pytest.raises(InvalidNetworkError):
        reachable(world.paths["a"], "10.0.0.1", port=0)
    with pytest.raises(InvalidNetworkError):
        reachable("/proc/self/ns/mnt", "10.0.0.1")  # not a network namespace
    with pytest.raises(InvalidNetworkError):
        listen(world.paths["a"], 70000)
    assert links() == before
    kernel.attach(good, world.paths["a"], 0)
    with pytest.raises(ConflictError):
        kernel.remove_bridge(red.name)  # a veth is still enslaved
    with pytest.raises(ConflictError):
        kernel.attach(good, world.paths["a"], 0)  # twice


def test_networks_need_cap_net_admin_in_the_host(tmp_path: Path) -> None:
    script = ("import sys, pathlib\n"
              "from realrt.journal import Journal\nfrom realrt.network import KernelNetworks\n"
              "from sim.errors import BackendUnavailableError\n"
              "try:\n    KernelNetworks(Journal(pathlib.Path(sys.argv[1])))\n"
              "except BackendUnavailableError as exc:\n    print(exc)\nelse:\n    sys.exit(3)\n")
    # Root of a user namespace has every capability -- in that namespace, not in the host's.
    done = subprocess.run(["unshare", "--user", "--map-root-user", sys.executable, "-c", script, str(tmp_path / "s")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "CAP_NET_ADMIN" in done.stdout and "network='none'" in done.stdout


# -- published ports ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe_sock:
        probe_sock.bind(("127.0.0.1", 0))
        return int(probe_sock.getsockname()[1])


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} has them) listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as fh:
            for line in list(fh)[1:]:
                fields = line.split()
                address, hexport = fields[1].rsplit(":", 1)
                if int(hexport, 16) == port and fields[3] == "0A":  # TCP_LISTEN
                    found.append(address)
    return found


def test_a_published_port_answers_on_loopback_only(world: World, journal: Journal) -> None:
    world.network("red", "10.250.15.0/24")
    world.container("web")
    endpoint = world.connect("red", "web")
    port = _free_port()
    with listen(world.paths["web"], 8080) as server:
        handle = publish(PortMapping("127.0.0.1", port, 8080), endpoint.ip, journal)
        try:
            assert handle.running and [r.kind for r in journal.records()].count("process") == 1
            assert _listening(port) == ["0100007F"]  # 127.0.0.1 and nothing else, IPv4 or IPv6
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(b"ping through the forwarder")
                assert conn.recv(100) == b"ping through the forwarder"
            _wait_for(lambda: server.accepted == 1)
            host_ip = next(a.split("/")[0] for a in _host_addresses() if not a.startswith("127."))
            with pytest.raises(OSError):
                socket.create_connection((host_ip, port), timeout=2).close()
            _bulk_round_trip(port, 3 << 20)  # more than the forwarder buffers, both directions at once
        finally:
            unpublish(handle)
    assert handle.process.poll() is not None and _listening(port) == []
    assert [r.kind for r in journal.records()].count("process") == 0
    unpublish(handle)  # idempotent


def _host_addresses() -> list[str]:
    return [f"{a['local']}/{a['prefixlen']}" for m in json.loads(_tool("ip", "-j", "-4", "addr")) for a in m["addr_info"]]


def _bulk_round_trip(port: int, size: int) -> None:
    payload = os.urandom(size)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        def send() -> None:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)  # the half-close reaches the container, then its EOF comes back

        sender = threading.Thread(target=send)
        sender.start()
        got = bytearray()
        while chunk := conn.recv(1 << 16):
            got += chunk
        sender.join()
    assert bytes(got) == payload


def test_a_forwarder_ends_with_its_container(world: World, journal: Journal) -> None:
    world.network("red", "10.250.16.0/24")
    world.container("web")
    endpoint = world.connect("red", "web")
    stand_in = subprocess.Popen(["sleep", "60"])  # the container's init
    try:
        handle = publish(PortMapping("127.0.0.1", _free_port(), 80), endpoint.ip, journal, watch_pid=stand_in.pid)
        assert handle.running
    finally:
        stand_in.kill()
        stand_in.wait()
    handle.process.wait(timeout=5)
    unpublish(handle)


def test_a_port_in_use_is_a_conflict(world: World, journal: Journal) -> None:
    world.network("red", "10.250.17.0/24")
    world.container("web")
    endpoint = world.connect("red", "web")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConflictError, match="port is already allocated"):
            publish(PortMapping("127.0.0.1", taken.getsockname()[1], 80), endpoint.ip, journal)
    assert [r.kind for r in journal.records()].count("process") == 0
    with pytest.raises(InvalidNetworkError):
        publish(PortMapping("127.0.0.1", 8080, 80), "nonsense", journal)
    with pytest.raises(InvalidNetworkError):
        publish("127.0.0.1:8080:80", endpoint.ip, journal)  # type: ignore[arg-type]


# -- a killed run is swept ----------------------------------------------------------------------




@pytest.mark.parametrize("stop", ["bridge", "netns", "veth", "forwarder"])
def test_a_killed_run_is_swept(tmp_path: Path, stop: str) -> None:
    before = host_state()
    state = tmp_path / "state"
    net, cid, port = f"lltest-killed-{uid()}", uid() + uid(), _free_port()
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(state), net, cid, stop, str(port)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == "ready\n", child.stderr.read() if child.stderr else ""
        made = host_state()
        assert made != before
        assert (_nft.listing() is not None) and any(n.startswith("llbr-") for n, *_ in made["links"])
        if stop != "bridge":
            assert "ll-" + cid[:12] in made["netns"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()
    journal = Journal(state)
    swept = journal.sweep()
    assert {r.kind for r in swept} >= {"link", "nft"}
    assert journal.sweep() == []  # the second sweep finds nothing left to do
    _wait_for(lambda: _listening(port) == [])
    assert host_state() == before
    assert list(journal.records()) == []


def test_the_sweep_is_a_no_op_for_what_is_gone_and_spares_what_is_not_ours(tmp_path: Path) -> None:
    before = host_state()
    journal = Journal(tmp_path / "state")
    gone = uid()
    owner = subprocess.Popen(["true"])
    owner.wait()  # a dead owner: its records are the sweep's
    for kind, path in [("link", "llbr-" + gone[:8]), ("link", "llv" + gone), ("netns", f"/run/netns/ll-{gone}"),
                       ("nft", "inet layerlab"), ("link", "eth0"), ("link", "lo"), ("netns", "/proc/1/ns/net"),
                       ("netns", "/run/netns/../../etc")]:
        rec = journal.record(kind, path)
        (journal.root / f"{rec.id}.json").write_text(json.dumps({**rec.__dict__, "owner": owner.pid}))
    assert len(journal.sweep()) == 8
    assert journal.sweep() == [] and list(journal.records()) == []
    assert host_state() == before  # eth0 and lo are still there


def _wait_for(condition: Callable[[], bool], limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_probe_enters_the_namespace_in_a_child_only(world: World) -> None:
    world.container("a")
    own = os.readlink("/proc/self/ns/net")
    threads = {t.ident for t in threading.enumerate()}
    assert not reachable(world.paths["a"], "127.0.0.1", port=PROBE_PORT)  # the container's own loopback: no listener
    with listen(world.paths["a"]) as lo_listener:
        assert reachable(world.paths["a"], "127.0.0.1")  # its loopback, not the host's
        _wait_for(lambda: lo_listener.accepted == 1)
        assert PROBE_PORT not in _host_ports()  # the listener is in the namespace, not on the host
    assert os.readlink("/proc/self/ns/net") == own  # the caller never changed namespace
    assert {t.ident for t in threading.enumerate()} == threads  # the listener's thread is gone


def _host_ports() -> set[int]:
    return {int(line.split()[1].rsplit(":", 1)[1], 16) for table in ("/proc/net/tcp", "/proc/net/tcp6")
            for line in list(open(table, encoding="ascii"))[1:] if line.split()[3] == "0A"}

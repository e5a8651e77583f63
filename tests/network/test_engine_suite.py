"""Networks through the engine (网络): one abstract suite, run on the model and on the kernel.

:class:`NetworkSuite` says what ``network create/ls/inspect/rm/connect/disconnect``, ``--network``
and ``-p`` do; each backend's fixture class answers its few questions (the fsspec pattern):

- the kernel (:class:`TestRealNetworks`, root): containers really talk -- busybox ``nc`` and
  ``wget`` by name between containers, ``ip`` inside, ``httpd`` behind a published port -- and the
  model's views (:meth:`~sim.containers._networking.NetworkCommands.container_network`) must equal
  what the kernel shows (``kernel_network``), after every step that changes them;
- the model (:class:`TestSimNetworks`): it runs no ``nc``, so "client reaches server by name"
  is what its files and rules say: the name resolves in the client's ``/etc/hosts`` (read inside
  the container) to an address on a network the client is on (:meth:`NetworkModel.reachable`).

Every test leaves nothing: its containers and networks are removed, its engine closed, and on
the kernel none of its links or namespaces and no journal record is left (nor the ``inet
layerlab`` table, unless another engine's bridges need it).  Packets go only between the tests' containers and over loopback:
subnets are given, in 10.250.0.0/16: other layerlab engines on this host (a tour, a benchmark) may
hold the default pool's 10.89.0.0/24 at the same time, and the kernel refuses an overlapping bridge.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

import sim
from sim.containers.core import EngineCore
from sim.errors import (
    BackendUnavailableError,
    ConflictError,
    ContainerNotFoundError,
    ContainerStateError,
    InvalidNetworkError,
    NetworkNotFoundError,
)
from sim.network import PortMapping
from sim.network._records import LOOPBACK
from sim.network.names import bridge_name
from tests.backends import RealBackend, SimBackend, require_real
from tests.network._engine_tools import Made, free_port, host_address, hosts_ip, leftovers, retry, unique

if TYPE_CHECKING:
    from realrt.engine import RealEngine

#: A container that only waits (what ``exec`` goes into).
IDLE = "sleep 600"
#: What a server's client gets back from the ``nc`` and ``httpd`` servers below.
HI, HELLO = "hi\n", "hello\n"
RED, BLUE = "10.250.1.0/24", "10.250.2.0/24"
LOCALHOST = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def state_of(eng: EngineCore) -> tuple[Any, ...]:
    """Everything a refused call must leave as it was (the model's side)."""
    return (eng.networks(), eng.containers(), eng.network_state())


class NetworkSuite:
    """The contract; the fixture class supplies ``engine`` and the hooks at the end."""

    made: Made
    #: The commands of a container that answers ``HI`` on 8080 (``nc``) and ``HELLO`` on 80 (``httpd``).
    nc_server: str
    http_server: str

    @pytest.fixture
    def eng(self, engine: Any) -> Iterator[EngineCore]:
        core = cast(EngineCore, engine)
        self.made = Made(core.network_model)
        try:
            yield core
        finally:
            try:
                for info in core.containers():
                    core.remove(info.id, force=True, volumes=True)
                for net in core.networks():
                    core.remove_network(net.name)
            finally:
                core.close()
        self.after(core)

    # -- helpers every backend shares ----------------------------------------------------------

    def box(self, eng: EngineCore, name: str, network: str, command: str = IDLE, **options: Any) -> str:
        """A container made and started in the background; its id."""
        info = eng.create("busybox", command, name=name, network=network, **options)
        eng.start(info.id, detach=True)
        return info.id

    def etc(self, eng: EngineCore, ref: str) -> tuple[str, str]:
        """``/etc/hosts`` and ``/etc/resolv.conf`` as read inside the container."""
        hosts = eng.exec(ref, "cat /etc/hosts")
        resolv = eng.exec(ref, "cat /etc/resolv.conf")
        assert hosts.exit_code == resolv.exit_code == 0, (hosts, resolv)
        return hosts.stdout.decode(), resolv.stdout.decode()

    def address(self, eng: EngineCore, ref: str, network: str) -> str:
        return next(e.ip for e in eng.container_network(ref).endpoints if e.network == network)

    # -- create / ls / inspect / rm ------------------------------------------------------------

    def test_create_ls_inspect_rm(self, eng: EngineCore) -> None:
        red, blue = unique("red"), unique("blue")
        made = eng.create_network(red, subnet=RED)
        assert (made.name, made.subnet, made.gateway, made.bridge, made.containers) == (
            red, RED, "10.250.1.1", bridge_name(red), ())
        other = eng.create_network(blue, subnet="10.250.7.0/28")
        assert (other.subnet, other.gateway) == ("10.250.7.0/28", "10.250.7.1")
        assert eng.networks() == sorted([made, other], key=lambda n: n.name)
        assert eng.inspect_network(red) == made
        self.agree(eng)
        cid = self.box(eng, "c", blue)
        assert eng.inspect_network(blue).containers == (cid,)
        eng.remove(cid, force=True)
        eng.remove_network(red)
        assert eng.networks() == [other]
        with pytest.raises(NetworkNotFoundError):
            eng.inspect_network(red)
        with pytest.raises(NetworkNotFoundError):
            eng.remove_network(red)
        eng.remove_network(blue)
        assert eng.networks() == []
        self.agree(eng)

    def test_rm_is_refused_while_in_use(self, eng: EngineCore) -> None:
        red = unique("red")
        eng.create_network(red, subnet=RED)
        self.box(eng, "user", red)
        eng.create("busybox", IDLE, name="waiting", network=red)  # made, never started: in use too
        before = state_of(eng)
        with pytest.raises(ConflictError, match=f"network {red} has active endpoints.*user"):
            eng.remove_network(red)
        assert state_of(eng) == before
        self.agree(eng)
        eng.remove("user", force=True)
        with pytest.raises(ConflictError, match="waiting"):
            eng.remove_network(red)
        eng.disconnect(red, "waiting")
        eng.remove_network(red)
        assert eng.networks() == []

    # -- who reaches whom ----------------------------------------------------------------------

    def test_two_containers_on_one_network_reach_each_other_by_name(self, eng: EngineCore) -> None:
        red = unique("red")
        eng.create_network(red, subnet=RED)
        a = self.box(eng, "a", red, self.nc_server)
        b = self.box(eng, "b", red, self.nc_server)
        assert self.talk(eng, "a", "b") == (True, HI)
        assert self.talk(eng, "b", "a") == (True, HI)
        assert eng.network_model.reachability([a, b]) == {(a, b): True, (b, a): True}
        hosts_a = eng.container_network("a").hosts
        assert hosts_a == (LOCALHOST + f"{self.address(eng, 'a', red)}\t{a[:12]} a\n"
                           f"{self.address(eng, 'b', red)}\t{b[:12]} b\n")
        assert hosts_ip(hosts_a, "b") == self.address(eng, "b", red) == "10.250.1.3"
        self.agree(eng)

    def test_wget_fetches_from_httpd_by_name(self, eng: EngineCore) -> None:
        red = unique("red")
        eng.create_network(red, subnet=RED)
        self.box(eng, "web", red, self.http_server)
        self.box(eng, "client", red)
        assert self.fetch(eng, "client", "http://web/") == (True, HELLO)
        self.agree(eng)

    def test_containers_on_different_networks_do_not_reach_each_other(self, eng: EngineCore) -> None:
        red, blue = unique("red"), unique("blue")
        eng.create_network(red, subnet=RED)
        eng.create_network(blue, subnet=BLUE)
        a = self.box(eng, "a", red, self.nc_server)
        b = self.box(eng, "b", blue, self.nc_server)
        ok, said = self.talk(eng, "a", "b")
        assert not ok and "bad address 'b'" in said  # the name is not in a's /etc/hosts
        assert hosts_ip(eng.container_network("a").hosts, "b") is None
        # Nor by address: blue's bridge does not forward to red's.
        assert not self.tcp(eng, "a", self.address(eng, "b", blue), 8080)
        assert not self.tcp(eng, "b", self.address(eng, "a", red), 8080)
        assert eng.network_model.reachability([a, b]) == {(a, b): False, (b, a): False}
        self.agree(eng)

    def test_a_container_on_two_networks_reaches_both(self, eng: EngineCore) -> None:
        red, blue = unique("red"), unique("blue")
        eng.create_network(red, subnet=RED)
        eng.create_network(blue, subnet=BLUE)
        self.box(eng, "a", red, self.nc_server)
        self.box(eng, "b", blue, self.nc_server)
        eng.create("busybox", IDLE, name="both", network=red)
        eng.connect(blue, "both")
        eng.start("both", detach=True)
        assert self.talk(eng, "both", "a") == (True, HI)
        assert self.talk(eng, "both", "b") == (True, HI)
        assert not self.talk(eng, "a", "b")[0]
        view = eng.container_network("both")
        assert [(e.network, e.interface) for e in view.endpoints] == [(red, "eth0"), (blue, "eth1")]
        assert self.ip_addr(eng, "both") == {
            "lo": ("127.0.0.1/8",), "eth0": (view.endpoints[0].address,), "eth1": (view.endpoints[1].address,)}
        assert [r.destination for r in view.routes] == ["default", RED, BLUE]
        assert view.routes[0].gateway == "10.250.1.1"
        model = eng.network_model
        ids = {c.name: c.id for c in eng.containers()}
        assert model.reachable(ids["both"], ids["a"]) and model.reachable(ids["both"], ids["b"])
        assert not model.reachable(ids["a"], ids["b"])
        self.agree(eng)

    def test_connect_and_disconnect_while_running(self, eng: EngineCore) -> None:
        red, blue = unique("red"), unique("blue")
        eng.create_network(red, subnet=RED)
        eng.create_network(blue, subnet=BLUE)
        self.box(eng, "x", red, self.nc_server)
        self.box(eng, "peer", blue, self.nc_server)
        assert not self.talk(eng, "x", "peer")[0]
        assert set(self.ip_addr(eng, "x")) == {"lo", "eth0"}

        endpoint = eng.connect(blue, "x", aliases=("ex",))
        assert (endpoint.interface, endpoint.address, endpoint.aliases) == ("eth1", "10.250.2.3/24", ("ex",))
        assert self.ip_addr(eng, "x")["eth1"] == (endpoint.address,)
        hosts, _ = self.etc(eng, "peer")  # the running peer's file was rewritten in place
        assert hosts == eng.container_network("peer").hosts
        assert hosts_ip(hosts, "x") == hosts_ip(hosts, "ex") == endpoint.ip
        assert self.talk(eng, "x", "peer") == (True, HI)
        assert self.talk(eng, "peer", "ex") == (True, HI)  # an alias resolves on that network
        self.agree(eng)

        assert eng.disconnect(blue, "x") == endpoint
        assert set(self.ip_addr(eng, "x")) == {"lo", "eth0"}
        hosts, _ = self.etc(eng, "peer")
        assert hosts == eng.container_network("peer").hosts and hosts_ip(hosts, "x") is None
        ok, said = self.talk(eng, "peer", "x")
        assert not ok and "bad address 'x'" in said
        self.agree(eng)

    def test_a_reused_address_is_reachable_at_once(self, eng: EngineCore) -> None:
        """IPAM hands a freed address out again: a peer that talked to its last holder must reach
        the new one at once (not after its neighbour cache forgets the old MAC, up to a minute)."""
        red = unique("red")
        eng.create_network(red, subnet=RED)
        self.box(eng, "a", red, self.nc_server)
        self.box(eng, "old", red, self.nc_server)
        ip = self.address(eng, "old", red)
        assert self.talk(eng, "a", "old") == (True, HI)
        eng.remove("old", force=True)
        self.box(eng, "new", red, self.nc_server)
        assert self.address(eng, "new", red) == ip
        assert retry(lambda: self.tcp(eng, "a", ip, 8080), bool, seconds=2)
        assert self.talk(eng, "a", "new") == (True, HI)
        self.agree(eng)

    def test_a_running_container_on_no_network_can_join_one(self, eng: EngineCore) -> None:
        red = unique("red")
        eng.create_network(red, subnet=RED)
        self.box(eng, "srv", red, self.nc_server)
        self.box(eng, "loner", "none")
        endpoint = eng.connect(red, "loner")
        assert endpoint.interface == "eth0"
        assert self.ip_addr(eng, "loner") == {"lo": ("127.0.0.1/8",), "eth0": (endpoint.address,)}
        assert self.talk(eng, "loner", "srv") == (True, HI)
        self.agree(eng)
        eng.disconnect(red, "loner")
        assert self.ip_addr(eng, "loner") == {"lo": ("127.0.0.1/8",)}
        self.agree(eng)

    # -- none and host -------------------------------------------------------------------------

    def test_network_none_has_only_loopback(self, eng: EngineCore) -> None:
        cid = self.box(eng, "alone", "none")
        view = eng.container_network("alone")
        assert (view.mode, view.endpoints, view.interfaces, view.routes, view.ports) == ("none", (), (LOOPBACK,), (), ())
        assert view.hosts == LOCALHOST
        assert self.ip_addr(eng, "alone") == {"lo": ("127.0.0.1/8",)}
        assert self.etc(eng, "alone") == (view.hosts, view.resolv_conf)
        assert eng.network_model.reachability([cid]) == {}
        self.agree(eng)

    def test_network_host(self, eng: EngineCore) -> None:
        self.box(eng, "hosted", "host")
        view = eng.container_network("hosted")
        assert (view.mode, view.endpoints, view.interfaces, view.routes, view.hosts) == ("host", (), (), (), "")
        red = unique("red")
        eng.create_network(red, subnet=RED)
        with pytest.raises(ConflictError, match="uses the host's network"):
            eng.connect(red, "hosted")
        with pytest.raises(InvalidNetworkError, match="-p needs a network"):
            eng.create("busybox", IDLE, network="host", publish=["127.0.0.1:8080:80"])
        assert eng.inspect_network(red).containers == ()

    def test_published_port_is_recorded(self, eng: EngineCore) -> None:
        red, port = unique("red"), free_port()
        eng.create_network(red, subnet=RED)
        self.box(eng, "web", red, self.http_server, publish=[f"127.0.0.1:{port}:80"])
        view = eng.container_network("web")
        assert view.ports == (PortMapping("127.0.0.1", port, 80),)
        assert str(view.ports[0]) == f"127.0.0.1:{port}->80/tcp"

    # -- every bad input, refused before anything changes ---------------------------------------

    def test_bad_input_is_refused_before_anything_changes(self, eng: EngineCore) -> None:
        red, port = unique("red"), free_port()
        eng.create_network(red, subnet="10.250.8.0/24")
        self.box(eng, "web", red, self.http_server, publish=[f"127.0.0.1:{port}:80"])
        before = state_of(eng)
        kernel_before = self.kernel_state(eng)
        refused: list[tuple[type[Exception], str, Any]] = [
            (NetworkNotFoundError, "network nowhere not found", lambda: eng.create("busybox", IDLE, network="nowhere")),
            (NetworkNotFoundError, "not found", lambda: eng.connect("nowhere", "web")),
            (ContainerNotFoundError, "No such container", lambda: eng.connect(red, "nobody")),
            (InvalidNetworkError, "invalid network name", lambda: eng.create_network("bad name")),
            (InvalidNetworkError, "invalid network name", lambda: eng.create_network("-dash")),
            (InvalidNetworkError, "reserved", lambda: eng.create_network("bridge")),
            (InvalidNetworkError, "not private", lambda: eng.create_network(unique("pub"), subnet="203.0.113.0/24")),
            (InvalidNetworkError, "host bits", lambda: eng.create_network(unique("bits"), subnet="10.250.9.1/24")),
            (InvalidNetworkError, "overlaps 10.250.8.0/24",
             lambda: eng.create_network(unique("over"), subnet="10.250.8.128/25")),
            (ConflictError, "already exists", lambda: eng.create_network(red)),
            (InvalidNetworkError, "loopback", lambda: eng.create("busybox", IDLE, network=red, publish=["0.0.0.0:80:80"])),
            (InvalidNetworkError, "host port", lambda: eng.create("busybox", IDLE, network=red, publish=["80"])),
            (InvalidNetworkError, "TCP only", lambda: eng.create("busybox", IDLE, network=red, publish=["8081:80/udp"])),
            (ConflictError, "already allocated",
             lambda: eng.create("busybox", IDLE, network=red, publish=[f"127.0.0.1:{port}:8080"])),
            (ConflictError, "already allocated",
             lambda: eng.create("busybox", IDLE, network=red, publish=["127.0.0.1:8082:80", "localhost:8082:81"])),
            (InvalidNetworkError, "-p needs a network",
             lambda: eng.create("busybox", IDLE, network="none", publish=["127.0.0.1:8083:80"])),
            (ConflictError, "already exists in network", lambda: eng.connect(red, "web")),
        ]
        for kind, message, call in refused:
            with pytest.raises(kind, match=message):
                call()
            assert state_of(eng) == before, message
            assert self.kernel_state(eng) == kernel_before, message
        eng.disconnect(red, "web")
        after_disconnect = state_of(eng)
        with pytest.raises(ConflictError, match="not connected"):
            eng.disconnect(red, "web")
        assert state_of(eng) == after_disconnect

    # -- what the container reads ----------------------------------------------------------------

    def test_etc_files_inside_equal_the_model(self, eng: EngineCore) -> None:
        red, blue = unique("red"), unique("blue")
        eng.create_network(red, subnet=RED)
        eng.create_network(blue, subnet=BLUE)
        self.box(eng, "a", red)
        self.box(eng, "b", red)
        self.box(eng, "c", blue)
        eng.connect(blue, "a", aliases=("alias-a",))
        self.box(eng, "d", "none")
        for ref in "abcd":
            view = eng.container_network(ref)
            assert self.etc(eng, ref) == (view.hosts, view.resolv_conf), ref
            assert not any(line.startswith("nameserver") for line in view.resolv_conf.splitlines())
            assert "options ndots:0" in view.resolv_conf
        hosts_c = eng.container_network("c").hosts
        assert hosts_ip(hosts_c, "alias-a") == self.address(eng, "a", blue)
        assert hosts_ip(hosts_c, "b") is None  # b shares no network with c
        # A foreground run reads the same files as a detached one.
        done = eng.create("busybox", "cat /etc/hosts", name="once", network=red)
        result = eng.start(done.id)
        assert result is not None and result.stdout.decode() == eng.container_network("once").hosts

    # -- what each backend answers (what reaching, ``ip addr`` and leaving nothing mean there) --------

    def talk(self, eng: EngineCore, client: str, name: str, port: int = 8080) -> tuple[bool, str]:
        raise NotImplementedError  # ``nc -w 2 NAME PORT`` in ``client``: (it connected, what it printed)

    def fetch(self, eng: EngineCore, client: str, url: str) -> tuple[bool, str]:
        raise NotImplementedError  # ``wget -q -O - URL`` in ``client``: (it succeeded, what it printed)

    def tcp(self, eng: EngineCore, client: str, ip: str, port: int) -> bool:
        raise NotImplementedError  # whether a TCP handshake from ``client`` to ``ip:port`` completes

    def ip_addr(self, eng: EngineCore, ref: str) -> dict[str, tuple[str, ...]]:
        raise NotImplementedError  # ``ip addr`` inside: each interface's name and IPv4 addresses

    def agree(self, eng: EngineCore) -> None:
        raise NotImplementedError  # assert the backend shows the model's views, for every container

    def kernel_state(self, eng: EngineCore) -> Any:
        raise NotImplementedError  # what a refused call must leave as it was on the backend's side

    def after(self, eng: EngineCore) -> None:
        raise NotImplementedError  # assert nothing of the engine's is left once it is closed


# -- the model ------------------------------------------------------------------------------------


class TestSimNetworks(NetworkSuite, SimBackend):
    """The model runs no ``nc``: reaching a server is resolving its name in the client's own
    ``/etc/hosts`` to an address on a network the client is on."""

    nc_server = IDLE
    http_server = IDLE

    def _connects(self, eng: EngineCore, client: str, ip: str) -> bool:
        mine = {e.network for e in eng.container_network(client).endpoints}
        return any(e.ip == ip and e.network in mine for e in eng.network_model.endpoints())

    def talk(self, eng: EngineCore, client: str, name: str, port: int = 8080) -> tuple[bool, str]:
        hosts, _ = self.etc(eng, client)
        ip = hosts_ip(hosts, name)
        if ip is None:
            return False, f"nc: bad address '{name}'\n"
        return (True, HI) if self._connects(eng, client, ip) else (False, "nc: timed out\n")

    def fetch(self, eng: EngineCore, client: str, url: str) -> tuple[bool, str]:
        ok, said = self.talk(eng, client, url.split("/")[2], 80)
        return (True, HELLO) if ok else (False, said.replace("nc:", "wget:"))

    def tcp(self, eng: EngineCore, client: str, ip: str, port: int) -> bool:
        return self._connects(eng, client, ip)

    def ip_addr(self, eng: EngineCore, ref: str) -> dict[str, tuple[str, ...]]:
        return {i.name: i.addresses for i in eng.container_network(ref).interfaces}

    def agree(self, eng: EngineCore) -> None:
        for info in eng.containers():
            view = eng.container_network(info.id)
            if view.mode != "host":
                assert self.etc(eng, info.id) == (view.hosts, view.resolv_conf), info.name

    def kernel_state(self, eng: EngineCore) -> Any:
        return None

    def after(self, eng: EngineCore) -> None:
        assert eng.network_model.containers() == () and eng.networks() == []

    def test_a_network_without_a_subnet_gets_the_next_of_the_default_pool(self, eng: EngineCore) -> None:
        first, second = eng.create_network(unique("red")), eng.create_network(unique("blue"))
        assert [(n.subnet, n.gateway) for n in (first, second)] == [
            ("10.89.0.0/24", "10.89.0.1"), ("10.89.1.0/24", "10.89.1.1")]
        eng.remove_network(first.name)
        assert eng.create_network(unique("green")).subnet == "10.89.0.0/24"  # a freed subnet is reused

    def test_a_detached_container_runs_on_the_virtual_clock_and_connects_while_running(self, eng: EngineCore) -> None:
        """In the model a detached process runs on a virtual clock: ``sleep`` keeps it running
        until ``stop`` (or a ``wait`` that moves the clock), and connecting it is connecting a
        running container, whose ``eth0`` appears at once."""
        red = unique("red")
        eng.create_network(red)
        self.box(eng, "x", "none")
        assert [c.state for c in eng.containers()] == ["running"]
        eng.connect(red, "x")
        assert self.ip_addr(eng, "x") == {"lo": ("127.0.0.1/8",), "eth0": ("10.89.0.2/24",)}
        eng.stop("x", grace=0)
        assert [c.state for c in eng.containers()] == ["exited"]


# -- the kernel -----------------------------------------------------------------------------------


@pytest.mark.real
@pytest.mark.root_only
class TestRealNetworks(NetworkSuite, RealBackend):
    """Busybox really talks: ``nc -ll`` keeps answering, so a client may retry while it starts."""

    nc_server = "nc -ll -p 8080 -e echo hi"
    http_server = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"

    def talk(self, eng: EngineCore, client: str, name: str, port: int = 8080) -> tuple[bool, str]:
        def once() -> tuple[bool, str]:
            done = eng.exec(client, f"nc -w 2 {name} {port} </dev/null")
            said = (done.stdout + done.stderr).decode()
            return done.exit_code == 0 and said == HI, said

        return cast(tuple[bool, str], retry(once, lambda r: r[0] or "bad address" in r[1]))

    def fetch(self, eng: EngineCore, client: str, url: str) -> tuple[bool, str]:
        def once() -> tuple[bool, str]:
            # busybox 1.35 wget crashes (SIGSEGV) with -T and on an unknown name: timeout(1) bounds it.
            done = eng.exec(client, f"timeout 5 wget -q -O - {url}")
            return done.exit_code == 0, (done.stdout + done.stderr).decode()

        return cast(tuple[bool, str], retry(once, lambda r: r[0]))

    def tcp(self, eng: EngineCore, client: str, ip: str, port: int) -> bool:
        from realrt.network import reachable

        netns = self.real(eng)._net.netns(next(c.id for c in eng.containers() if client in (c.id, c.name)))
        assert netns is not None, f"{client} has no namespace of its own running"
        return bool(reachable(netns, ip, port, timeout=0.3))

    def ip_addr(self, eng: EngineCore, ref: str) -> dict[str, tuple[str, ...]]:
        links = eng.exec(ref, "ip -o link")
        addrs = eng.exec(ref, "ip -o -4 addr")
        assert links.exit_code == addrs.exit_code == 0, (links, addrs)
        found: dict[str, tuple[str, ...]] = {}
        for line in links.stdout.decode().splitlines():  # "2: eth0@if231: <BROADCAST,...> ..."
            name = line.split(":")[1].strip().split("@")[0]
            if name not in ("sit0", "tunl0", "ip6tnl0"):  # tunnel devices a loaded module puts everywhere
                found[name] = ()
        for line in addrs.stdout.decode().splitlines():  # "2: eth0    inet 10.89.0.2/24 scope global eth0..."
            fields = line.split()
            found[fields[1]] = (*found.get(fields[1], ()), fields[3])
        return found

    def agree(self, eng: EngineCore) -> None:
        real, model = self.real(eng), eng.network_model
        # The model lists a host-side veth for every endpoint; the kernel has one only while the
        # container's process runs (its namespace, and the pair, are made at start).
        running = {c.id for c in eng.containers(all=False)}
        live = {e.host_veth for e in model.endpoints() if e.container in running}
        expected = [i for i in model.interfaces("host") if i.kind == "bridge" or i.name in live]
        assert self.made.host_view(real._net.kernel.snapshot("host")) == expected
        for info in eng.containers(all=False):
            view = eng.container_network(info.id)
            if view.mode == "host":
                continue
            assert real.kernel_network(info.id) == (list(view.interfaces), list(view.routes)), info.name
            assert self.etc(eng, info.id) == (view.hosts, view.resolv_conf), info.name

    def kernel_state(self, eng: EngineCore) -> Any:
        real = self.real(eng)
        running = {c.name: real.kernel_network(c.id) for c in eng.containers(all=False)}
        return self.made.host_view(real._net.kernel.snapshot("host")), running, leftovers(self.made)

    def after(self, eng: EngineCore) -> None:
        assert list(self.real(eng).journal.records()) == [], "a journal record is left"
        assert leftovers(self.made) == {"links": [], "netns": [], "nft": []}

    @staticmethod
    def real(eng: EngineCore) -> RealEngine:
        from realrt.engine import RealEngine

        assert isinstance(eng, RealEngine)
        return eng

    # -- what only the kernel can show ----------------------------------------------------------

    def test_published_port_answers_on_loopback_only(self, eng: EngineCore) -> None:
        red, port = unique("red"), free_port()
        eng.create_network(red, subnet=RED)
        self.box(eng, "web", red, self.http_server, publish=[f"127.0.0.1:{port}:80"])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def get() -> bytes | None:
            try:
                return cast(bytes, opener.open(f"http://127.0.0.1:{port}/", timeout=2).read())
            except (urllib.error.URLError, OSError):
                return None

        assert retry(get, lambda body: body is not None) == HELLO.encode()
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:  # a plain socket too
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.")
        other, _ = host_address()
        with pytest.raises(OSError):  # refused: nothing listens on the host's other address
            socket.create_connection((other, port), timeout=1).close()
        assert eng.stop("web", grace=0.5) is not None
        with pytest.raises(OSError):  # the forwarder went with the process
            socket.create_connection(("127.0.0.1", port), timeout=1).close()

    def test_network_host_sees_the_host_interfaces(self, eng: EngineCore) -> None:
        address, link = host_address()
        self.box(eng, "hosted", "host")
        inside = self.ip_addr(eng, "hosted")
        assert address in (a.split("/")[0] for a in inside[link]) and "lo" in inside
        with pytest.raises(ContainerStateError, match="no network namespace"):
            self.real(eng).kernel_network("hosted")

    def test_network_none_in_the_foreground(self, eng: EngineCore) -> None:
        result = eng.run("busybox", "ip -o link | cut -d: -f2", network="none", remove=True)
        assert result.exit_code == 0 and result.stdout.split() == [b"lo"]

    def test_kernel_network_equals_the_model_for_running_containers(self, eng: EngineCore) -> None:
        red, blue = unique("red"), unique("blue")
        eng.create_network(red, subnet="10.250.3.0/29")
        eng.create_network(blue, subnet=BLUE)
        self.box(eng, "a", red)
        self.box(eng, "b", "none")
        eng.connect(blue, "b")
        eng.connect(red, "b")
        eng.disconnect(blue, "b")  # b keeps eth1 on red and no default route
        view = eng.container_network("b")
        assert [e.interface for e in view.endpoints] == ["eth1"] and view.routes == (
            sim.network.Route("10.250.3.0/29", None, "eth1"),)
        self.agree(eng)
        eng.connect(blue, "b")  # back on eth0: the default route via blue's gateway returns
        assert self.real(eng).kernel_network("b")[1][0] == sim.network.Route("default", "10.250.2.1", "eth0")
        self.agree(eng)
        eng.stop("a", grace=0.5)
        with pytest.raises(ContainerStateError, match="no network namespace"):
            self.real(eng).kernel_network("a")  # its namespace went with its process
        self.agree(eng)

    def test_a_rootless_engine_has_no_networks(self, tmp_path: Path) -> None:
        rootless: Any = require_real(rootless=True, state_dir=str(tmp_path / "rootless"))
        try:
            with pytest.raises(BackendUnavailableError, match="rootless"):
                rootless.create_network(unique("red"))
            with pytest.raises(BackendUnavailableError, match="rootless"):
                rootless.create("busybox", IDLE, network=unique("red"))
            assert rootless.networks() == [] and rootless.containers() == []
            result = rootless.run("busybox", "ip -o link | cut -d: -f2; cat /etc/hosts", network="none", remove=True)
            assert result.exit_code == 0 and result.stdout.decode() == " lo\n" + LOCALHOST
        finally:
            rootless.close()
        assert list(rootless.journal.records()) == []

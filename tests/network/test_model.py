"""The model's networks and namespaces (sim.network): IPAM, names, the network model's views,
its graph and figure, ``-p`` specs and uid maps.  Pure Python: no root, no kernel."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sim.errors import (
    ConflictError,
    ContainerNotFoundError,
    InvalidNetworkError,
    InvalidSpecError,
    LayerlabError,
    NetworkNotFoundError,
)
from sim.network import (
    HOST_NAMESPACES,
    IdMap,
    Interface,
    NamespaceAllocator,
    NetworkModel,
    PortMapping,
    ProcessView,
    Route,
    Subnet,
    bridge_name,
    default_subnet,
    format_id_map,
    interface_name,
    netns_name,
    parse_id_map,
    parse_publish,
    rootless_maps,
    to_container,
    to_host,
    veth_names,
)
from sim.network.draw import TITLE

A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


def _model() -> NetworkModel:
    """front: A (web, alias www), B (db); back: A, C (api); D on no network."""
    model = NetworkModel()
    model.create_network("front")
    model.create_network("back")
    model.connect("front", A, hostname="web", name="web_1", aliases=("www",))
    model.connect("front", B, hostname="db")
    model.connect("back", A, hostname="web")
    model.connect("back", C, hostname="api")
    model.add_container(D, hostname="lonely")
    return model


# -- names -------------------------------------------------------------------------------------


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=80).filter(lambda s: s[0].isalnum()))
def test_names_fit_ifnamsiz_and_are_stable(name: str) -> None:
    for made in (bridge_name(name), *veth_names(A, name), netns_name(A), interface_name(99)):
        assert len(made.encode()) <= 15
    assert bridge_name(name) == bridge_name(name) and veth_names(A, name) == veth_names(A, name)


def test_names_follow_the_contract() -> None:
    import hashlib

    assert bridge_name("front") == "llbr-" + hashlib.sha256(b"front").hexdigest()[:8]
    digest = hashlib.sha256((A + "front").encode()).hexdigest()[:12]
    assert veth_names(A, "front") == ("llv" + digest, "llp" + digest)
    assert netns_name(A) == "ll-" + A[:12]
    assert [interface_name(i) for i in range(3)] == ["eth0", "eth1", "eth2"]
    assert bridge_name("front") != bridge_name("back") and veth_names(A, "front") != veth_names(B, "front")


@pytest.mark.parametrize("call", [lambda: bridge_name(""), lambda: bridge_name("-x"), lambda: veth_names("a/b", "n"),
                                  lambda: netns_name("a b"), lambda: interface_name(-1), lambda: interface_name(True)])
def test_bad_names_are_typed(call: Callable[[], object]) -> None:
    with pytest.raises(InvalidNetworkError):
        call()


# -- IPAM --------------------------------------------------------------------------------------


def test_ipam_allocates_lowest_first_and_reuses_released() -> None:
    subnet = Subnet("10.89.0.0/24")
    assert subnet.gateway == IPv4Address("10.89.0.1") and subnet.capacity == 253
    assert [str(subnet.allocate()) for _ in range(3)] == ["10.89.0.2", "10.89.0.3", "10.89.0.4"]
    subnet.release("10.89.0.3")
    assert str(subnet.allocate()) == "10.89.0.3"
    assert str(subnet.allocate()) == "10.89.0.5"
    assert subnet.interface_address("10.89.0.5") == "10.89.0.5/24"


def test_ipam_runs_out_without_changing() -> None:
    subnet = Subnet("192.168.7.0/29")
    assert [str(subnet.allocate()) for _ in range(5)] == [f"192.168.7.{n}" for n in range(2, 7)]
    with pytest.raises(ConflictError, match="no free address"):
        subnet.allocate()
    assert len(subnet.allocated) == 5


@pytest.mark.parametrize("address", ["10.89.0.1", "10.89.0.0", "10.89.0.255", "10.89.1.2", "10.89.0.9", "nope"])
def test_ipam_release_refuses_what_it_did_not_hand_out(address: str) -> None:
    subnet = Subnet("10.89.0.0/24")
    subnet.allocate()
    with pytest.raises(InvalidNetworkError):
        subnet.release(address)
    assert subnet.allocated == (IPv4Address("10.89.0.2"),)


@pytest.mark.parametrize(("cidr", "why"), [
    ("203.0.113.0/24", "not private"), ("172.32.0.0/16", "not private"), ("100.64.0.0/16", "not private"),
    ("10.0.0.0/8", "too large"), ("172.16.0.0/15", "too large"), ("10.0.0.0/30", "too small"),
    ("10.0.0.5/24", "host bits"), ("fd00::/64", "IPv4 only"), ("10.0.0.0", "CIDR"), ("10.0.0.0/33", "invalid"),
])
def test_subnets_refused(cidr: str, why: str) -> None:
    with pytest.raises(InvalidNetworkError, match=why):
        Subnet(cidr)


def test_the_edges_of_the_accepted_range() -> None:
    assert Subnet("172.16.0.0/16").capacity == 65533 and Subnet("192.168.0.0/29").capacity == 5


def test_default_subnets_skip_overlaps() -> None:
    assert default_subnet([]) == IPv4Network("10.89.0.0/24")
    taken: list[IPv4Network | Subnet] = [IPv4Network("10.89.0.0/24"), IPv4Network("10.89.1.128/25"), Subnet("10.89.2.0/23")]
    assert default_subnet(taken) == IPv4Network("10.89.4.0/24")
    with pytest.raises(ConflictError):
        default_subnet([IPv4Network("10.89.0.0/16")])


@st.composite
def _ipam_runs(draw: st.DrawFn) -> tuple[str, list[int | None]]:
    prefix = draw(st.integers(24, 29))
    third = draw(st.integers(0, 255))
    cidr = str(IPv4Network(f"10.{third}.{third}.0/{prefix}", strict=False))
    # None: allocate; an int: release the n-th live address (mod how many are live).
    return cidr, draw(st.lists(st.one_of(st.none(), st.integers(0, 300)), max_size=120))


@given(_ipam_runs())
def test_ipam_never_hands_out_an_address_twice(run: tuple[str, list[int | None]]) -> None:
    cidr, steps = run
    subnet, network, live = Subnet(cidr), IPv4Network(cidr), set[IPv4Address]()
    hosts = list(network.hosts())
    for step in steps:
        if step is None:
            free = [h for h in hosts[1:] if h not in live]
            if not free:
                with pytest.raises(ConflictError):
                    subnet.allocate()
                continue
            address = subnet.allocate()
            assert address == min(free)  # the lowest free one
            assert address not in live and address != subnet.gateway and address in network
            assert address not in (network.network_address, network.broadcast_address)
            live.add(address)
        elif live:
            victim = sorted(live)[step % len(live)]
            subnet.release(victim)
            live.remove(victim)
        assert set(subnet.allocated) == live


# -- the network model -------------------------------------------------------------------------


def test_create_list_and_remove() -> None:
    model = NetworkModel()
    front = model.create_network("front")
    assert front.subnet == "10.89.0.0/24" and front.gateway == "10.89.0.1" and front.bridge == bridge_name("front")
    assert model.create_network("mine", "172.20.0.0/16").gateway == "172.20.0.1"
    assert model.create_network("next").subnet == "10.89.1.0/24"
    assert [n.name for n in model.networks()] == ["front", "mine", "next"]
    model.remove_network("mine")
    assert [n.name for n in model.networks()] == ["front", "next"]
    assert model.create_network("again").subnet == "10.89.2.0/24"


def test_connect_disconnect_forget() -> None:
    model = _model()
    assert model.network("front").containers == (A, B)
    ep = model.endpoints(network="back", container=A)[0]
    assert (ep.interface, ep.address, ep.gateway, ep.host_veth) == ("eth1", "10.89.1.2/24", "10.89.1.1",
                                                                     veth_names(A, "back")[0])
    gone = model.disconnect("front", A)
    assert gone.interface == "eth0" and model.network("front").containers == (B,)
    # the freed eth0 and address are the next ones handed out
    again = model.connect("front", C, hostname="api")
    assert (again.interface, again.address) == ("eth1", "10.89.0.2/24")
    assert model.connect("front", A, hostname="web").interface == "eth0"
    with pytest.raises(ConflictError):
        model.remove_network("back")
    assert [e.network for e in model.forget_container(A)] == ["back", "front"]
    assert A not in model.containers() and model.network("back").containers == (C,)
    model.forget_container(C)
    model.remove_network("back")


def test_two_networks_are_isolated() -> None:
    model = _model()
    matrix = model.reachability([A, B, C, D])
    assert {pair for pair, ok in matrix.items() if ok} == {(A, B), (B, A), (A, C), (C, A)}
    assert len(matrix) == 12 and not model.reachable(B, C) and model.reachable(D, D)


def test_a_container_on_two_networks_reaches_both() -> None:
    model = _model()
    assert model.reachable(A, B) and model.reachable(A, C)
    assert model.resolve(A, "db") == "10.89.0.3" and model.resolve(A, "api") == "10.89.1.3"
    assert model.resolve(B, "api") is None and model.resolve(C, "db") is None


def test_hosts_files_list_exactly_the_peers() -> None:
    model = _model()
    assert model.hosts_file(B) == ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                                   "10.89.0.3\tdb\n10.89.0.2\tweb web_1 www\n")
    lines = model.hosts_file(A).splitlines()[2:]
    assert lines == ["10.89.0.2\tweb web_1 www", "10.89.1.2\tweb web_1", "10.89.0.3\tdb", "10.89.1.3\tapi"]
    assert model.hosts_file(D).splitlines() == ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]


def test_resolve_by_name_hostname_and_alias() -> None:
    model = _model()
    assert model.resolve(B, "web") == model.resolve(B, "WEB_1") == model.resolve(B, "www") == "10.89.0.2"
    assert model.resolve(C, "web") == "10.89.1.2"
    assert model.resolve(C, "www") is None  # the alias was given on "front" only
    assert model.resolve(B, "localhost") == "127.0.0.1" and model.resolve(B, "nobody") is None


def test_resolv_conf_names_no_nameserver() -> None:
    text = _model().resolv_conf(A)
    assert "nameserver" not in text.replace("no nameserver", "") and "/etc/hosts" in text
    assert text.endswith("options ndots:0\n")


def test_routes_default_via_the_first_network() -> None:
    model = _model()
    assert model.routes(A) == [Route("default", "10.89.0.1", "eth0"), Route("10.89.0.0/24", None, "eth0"),
                               Route("10.89.1.0/24", None, "eth1")]
    assert model.routes(D) == []
    model.disconnect("front", A)  # no eth0 left: no default route, as the kernel has it
    assert model.routes(A) == [Route("10.89.1.0/24", None, "eth1")]


def test_interface_views_host_and_container() -> None:
    model = _model()
    host = model.interfaces("host")
    assert [i.name for i in host] == sorted([bridge_name("front"), bridge_name("back")]
                                            + [e.host_veth for e in model.endpoints()])
    assert Interface(bridge_name("front"), "bridge", ("10.89.0.1/24",), True, None, None) in host
    ep = model.endpoints(network="back", container=C)[0]
    assert Interface(ep.host_veth, "veth", (), True, bridge_name("back"), "eth0") in host
    assert "lo" not in {i.name for i in host}
    assert model.interfaces(C) == [Interface("eth0", "veth", ("10.89.1.3/24",), True, None, ep.host_veth),
                                   Interface("lo", "loopback", ("127.0.0.1/8",), True, None, None)]
    assert [i.name for i in model.interfaces(D)] == ["lo"]


def _refusals() -> list[tuple[str, Callable[[NetworkModel], object], type[Exception]]]:
    return [
        ("bad name", lambda m: m.create_network("-bad"), InvalidNetworkError),
        ("space", lambda m: m.create_network("a b"), InvalidNetworkError),
        ("newline", lambda m: m.create_network("ok\n"), InvalidNetworkError),
        ("unicode", lambda m: m.create_network("nétwork"), InvalidNetworkError),
        ("reserved", lambda m: m.create_network("bridge"), InvalidNetworkError),
        ("not a str", lambda m: m.create_network(7), InvalidNetworkError),  # type: ignore[arg-type]
        ("duplicate", lambda m: m.create_network("front"), ConflictError),
        ("overlap", lambda m: m.create_network("x", "10.89.0.128/25"), InvalidNetworkError),
        ("public", lambda m: m.create_network("x", "203.0.113.0/24"), InvalidNetworkError),
        ("too large", lambda m: m.create_network("x", "10.0.0.0/12"), InvalidNetworkError),
        ("rm unknown", lambda m: m.remove_network("nope"), NetworkNotFoundError),
        ("rm in use", lambda m: m.remove_network("front"), ConflictError),
        ("rm host", lambda m: m.remove_network("host"), InvalidNetworkError),
        ("connect unknown", lambda m: m.connect("nope", C, hostname="api"), NetworkNotFoundError),
        ("connect none", lambda m: m.connect("none", C, hostname="api"), InvalidNetworkError),
        ("connect twice", lambda m: m.connect("front", A, hostname="web"), ConflictError),
        ("other hostname", lambda m: m.connect("front", C, hostname="other"), ConflictError),
        ("other name", lambda m: m.connect("front", A, hostname="web", name="x"), ConflictError),
        ("bad hostname", lambda m: m.connect("front", "e" * 64, hostname="a b"), InvalidNetworkError),
        ("long hostname", lambda m: m.connect("front", "e" * 64, hostname="h" * 65), InvalidNetworkError),
        ("alias string", lambda m: m.connect("front", C, hostname="api", aliases="www"), InvalidNetworkError),
        ("bad alias", lambda m: m.connect("front", C, hostname="api", aliases=["#x"]), InvalidNetworkError),
        ("bad id", lambda m: m.connect("front", "../x", hostname="h"), InvalidNetworkError),
        ("host id", lambda m: m.connect("front", "host", hostname="h"), InvalidNetworkError),
        ("netns clash", lambda m: m.connect("front", A[:12] + "f", hostname="h"), ConflictError),
        ("add known", lambda m: m.add_container(D, hostname="lonely"), ConflictError),
        ("disconnect unknown", lambda m: m.disconnect("front", "e" * 64), ContainerNotFoundError),
        ("not connected", lambda m: m.disconnect("front", C), ConflictError),
        ("disconnect nope", lambda m: m.disconnect("nope", A), NetworkNotFoundError),
        ("forget unknown", lambda m: m.forget_container("e" * 64), ContainerNotFoundError),
        ("view unknown", lambda m: m.interfaces("e" * 64), ContainerNotFoundError),
        ("routes unknown", lambda m: m.routes("e" * 64), ContainerNotFoundError),
        ("hosts unknown", lambda m: m.hosts_file("e" * 64), ContainerNotFoundError),
        ("resolv unknown", lambda m: m.resolv_conf("e" * 64), ContainerNotFoundError),
        ("resolve non-str", lambda m: m.resolve(A, 5), InvalidNetworkError),  # type: ignore[arg-type]
        ("reachable unknown", lambda m: m.reachable(A, "e" * 64), ContainerNotFoundError),
        ("matrix unknown", lambda m: m.reachability([A, "e" * 64]), ContainerNotFoundError),
        ("endpoints unknown", lambda m: m.endpoints(network="nope"), NetworkNotFoundError),
    ]


@pytest.mark.parametrize(("what", "call", "error"), _refusals(), ids=[r[0] for r in _refusals()])
def test_every_bad_input_is_typed_and_changes_nothing(what: str, call: Callable[[NetworkModel], object],
                                                     error: type[Exception]) -> None:
    model = _model()
    before = model.to_json()
    with pytest.raises(error):
        call(model)
    assert model.to_json() == before
    # the allocators are untouched too: the next address is the one an untouched model hands out
    untouched = _model().connect("front", "e" * 64, hostname="late")
    assert model.connect("front", "e" * 64, hostname="late") == untouched


def test_a_full_network_refuses_the_next_container_and_changes_nothing() -> None:
    model = NetworkModel()
    model.create_network("tiny", "192.168.9.0/29")
    for n in range(5):
        model.connect("tiny", f"{n}" * 64, hostname=f"h{n}")
    before = model.to_json()
    with pytest.raises(ConflictError, match="no free address"):
        model.connect("tiny", "f" * 64, hostname="late")
    assert model.to_json() == before and "f" * 64 not in model.containers()


def test_json_round_trip() -> None:
    model = _model()
    model.disconnect("front", B)
    again = NetworkModel.from_json(model.to_json())
    assert again.to_json() == model.to_json()
    for where in ("host", A, B, C, D):
        assert again.interfaces(where) == model.interfaces(where)
    assert again.hosts_file(A) == model.hosts_file(A) and again.routes(A) == model.routes(A)
    assert again.connect("front", B, hostname="db").address == model.connect("front", B, hostname="db").address
    assert NetworkModel.from_json(NetworkModel().to_json()).networks() == []


@pytest.mark.parametrize("mutate", [
    lambda s: "not json", lambda s: "[]", lambda s: s.replace('"version": 1', '"version": 2'),
    lambda s: s.replace('"10.89.1.0/24"', '"10.89.0.0/25"'),         # overlapping subnets
    lambda s: s.replace('"10.89.1.2/24"', '"10.89.1.3/24"', 1),      # one address twice
    lambda s: s.replace('"10.89.0.2/24"', '"10.89.0.1/24"'),         # the gateway
    lambda s: s.replace('"eth1"', '"eth0"', 1),                      # one interface twice
    lambda s: s.replace('"eth1"', '"eth²"', 1), lambda s: s.replace('"www"', '7'),
    lambda s: s.replace('"hostname": "api"', '"hostname": 1'),
])
def test_from_json_refuses_bad_state(mutate: Callable[[str], str]) -> None:
    text = _model().to_json()
    bad = mutate(text)
    assert bad != text
    with pytest.raises(InvalidNetworkError):
        NetworkModel.from_json(bad)


def test_graph_nodes_and_edges() -> None:
    model = _model()
    graph = model.graph()
    assert graph.number_of_nodes() == 1 + 2 + 4 + 4 and graph.number_of_edges() == 2 + 2 * 4
    kinds = [k for _, k in graph.nodes(data="kind")]
    assert {k: kinds.count(k) for k in set(kinds)} == {"host": 1, "bridge": 2, "veth": 4, "netns": 4}
    assert graph.nodes[bridge_name("front")]["address"] == "10.89.0.1/24"
    assert graph.nodes[netns_name(D)]["address"] is None and graph.degree(netns_name(D)) == 0
    veth = veth_names(C, "back")[0]
    assert graph.nodes[veth]["address"] == "10.89.1.3/24"
    assert set(graph.neighbors(veth)) == {bridge_name("back"), netns_name(C)}
    assert NetworkModel().graph().number_of_nodes() == 1


def test_draw_returns_a_figure_with_title_and_legend() -> None:
    figure = _model().draw()
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    legend = ax.get_legend()
    assert ax.get_title() == TITLE and legend is not None
    assert {t.get_text() for t in legend.get_texts()} >= {"bridge", "veth pair", "container namespace"}
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)  # type: ignore[no-untyped-call]
    assert buffer.getvalue().startswith(b"\x89PNG")
    mine = Figure()
    axes = mine.add_subplot()
    assert NetworkModel().draw(axes) is mine and axes.get_title() == TITLE


# -- published ports ---------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "host_port", "container_port"), [
    ("8080:80", 8080, 80), ("127.0.0.1:8080:80", 8080, 80), ("localhost:1:65535", 1, 65535),
    ("8080:80/tcp", 8080, 80), ("127.0.0.1:9000:9000/TCP", 9000, 9000),
])
def test_parse_publish_accepts(spec: str, host_port: int, container_port: int) -> None:
    mapping = parse_publish(spec)
    assert mapping == PortMapping("127.0.0.1", host_port, container_port, "tcp")
    assert str(mapping) == f"127.0.0.1:{host_port}->{container_port}/tcp"


@pytest.mark.parametrize(("spec", "why"), [
    ("80", "no random host ports"), ("127.0.0.1::80", "no random host ports"),
    ("0.0.0.0:8080:80", "only on loopback"), ("127.0.0.2:8080:80", "only on loopback"),
    ("192.168.1.5:8080:80", "only on loopback"), ("[::1]:8080:80", "only on loopback"),
    ("8080:80/udp", "TCP only"), ("8080:80/sctp", "TCP only"), ("8080:80/", "TCP only"),
    ("0:80", "out of range"), ("8080:65536", "out of range"), ("8080:0", "out of range"),
    ("8000-8001:80-81", "ranges"), ("a:80", "invalid host port"), ("8080:+80", "invalid container port"),
    ("8080:٨٠", "invalid container port"), ("1:2:3:4", "expected"), ("", "host port"),
])
def test_parse_publish_refuses(spec: str, why: str) -> None:
    with pytest.raises(InvalidNetworkError, match=re.escape(why)):
        parse_publish(spec)


@pytest.mark.parametrize("args", [("0.0.0.0", 80, 80, "tcp"), ("127.0.0.1", 0, 80, "tcp"),
                                  ("127.0.0.1", 80, True, "tcp"), ("127.0.0.1", 80, 80, "udp")])
def test_port_mapping_checks_itself(args: tuple[Any, ...]) -> None:
    with pytest.raises(InvalidNetworkError):
        PortMapping(*args)


# -- namespaces and id maps --------------------------------------------------------------------


def test_id_maps_read_and_write_the_kernels_format() -> None:
    real = Path("/proc/self/uid_map").read_text()
    assert format_id_map(parse_id_map(real)) == real  # whatever this process's map is
    assert format_id_map((IdMap(0, 0, 4294967295),)) == "         0          0 4294967295\n"
    maps = parse_id_map("0 1000 1\n1 100000 65536")
    assert maps == (IdMap(0, 1000, 1), IdMap(1, 100000, 65536))
    assert format_id_map(maps) == "         0       1000          1\n         1     100000      65536\n"
    assert parse_id_map("") == () and format_id_map(()) == ""


@pytest.mark.parametrize("text", ["0 0", "0 0 0", "a b c", "0 0 1 2", "0 0 1\n\n1 1 1", "-1 0 1", "1 0 4294967295",
                                  "0 1000 10\n5 2000 10", "0 1000 10\n20 1005 10", "0 0 1\n" * 341])
def test_bad_id_maps_are_refused(text: str) -> None:
    with pytest.raises(InvalidSpecError):
        parse_id_map(text)


def test_rootless_maps_follow_podman() -> None:
    assert rootless_maps(1000, None) == (IdMap(0, 1000, 1),)
    maps = rootless_maps(1000, (100000, 65536))
    assert maps == (IdMap(0, 1000, 1), IdMap(1, 100000, 65536))
    for bad in ((1000, (999, 10)), (-1, None), (1000, (100000, 0)), (1000, (100000,))):
        with pytest.raises(InvalidSpecError):
            rootless_maps(*bad)


def test_to_host_and_back() -> None:
    maps = rootless_maps(1000, (100000, 65536))
    assert [to_host(maps, u) for u in (0, 1, 33, 65536, 65537)] == [1000, 100000, 100032, 165535, 65534]
    assert [to_container(maps, u) for u in (1000, 100000, 165535, 0, 999)] == [0, 1, 65536, 65534, 65534]
    single = rootless_maps(1000, None)
    assert to_host(single, 0) == 1000 and to_host(single, 1) == 65534 and to_container(single, 1000) == 0
    with pytest.raises(InvalidSpecError):
        to_host(maps, 4294967295)


def test_namespace_sets() -> None:
    assert HOST_NAMESPACES.net == "net:[4026531833]" and HOST_NAMESPACES.inode("ipc") == 0xEFFFFFFF
    ids = NamespaceAllocator()
    first = ids.for_container()
    second = ids.for_container(host_network=True, user_namespace=True)
    assert first.mnt == "mnt:[4026532001]" and first.net == "net:[4026532003]" and first.user == HOST_NAMESPACES.user
    assert first.shared_with(HOST_NAMESPACES) == ("user",)
    assert second.shared_with(HOST_NAMESPACES) == ("net",) and second.shared_with(first) == ()
    assert ids.next_inode == 4026532001 + 6 + 6
    again = NamespaceAllocator(next_inode=ids.next_inode).unshare(["net"], parent=first)
    assert again.shared_with(first) == ("mnt", "pid", "uts", "ipc", "user", "cgroup")
    with pytest.raises(InvalidSpecError):
        ids.unshare(["time"])  # type: ignore[list-item]
    with pytest.raises(InvalidSpecError):
        HOST_NAMESPACES.__class__(**{**HOST_NAMESPACES.__dict__, "net": "mnt:[1]"})


def test_process_view() -> None:
    view = ProcessView(1, 4242, "sh")
    assert str(view) == "PID 1 inside is PID 4242 outside (sh)"
    for bad in ((0, 1, "sh"), (1, 1, ""), (1, 5_000_000, "sh"), (True, 1, "sh")):
        with pytest.raises(InvalidSpecError):
            ProcessView(*bad)


def test_importing_the_model_needs_neither_networkx_nor_matplotlib() -> None:
    import subprocess
    import sys

    code = "import sys, sim.network; print('networkx' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_every_error_here_is_a_layerlab_error() -> None:
    assert issubclass(InvalidNetworkError, ValueError) and issubclass(NetworkNotFoundError, LookupError)
    assert all(issubclass(e, LayerlabError) for _, _, e in _refusals())


def test_the_forwarder_runs_isolated_from_layerlab() -> None:
    """publish() runs proxy.py as ``python -I -S FILE``: no import of layerlab may reach its top
    level (one that did made every ``-p`` fail with "the forwarder ... exited")."""
    import socket
    import subprocess
    import sys

    import realrt.network.proxy as proxy

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [sys.executable, "-I", "-S", proxy.__file__, str(port), "127.0.0.1", "9", "--parent", str(os.getpid())]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"g")
        proc.stdin.close()
        assert proc.stdout.readline() == b"ready\n"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
    assert b"Traceback" not in err

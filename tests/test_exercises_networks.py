"""Chapter 6's checks, on the model: each typical wrong answer gets the hint that names the concept it
misses, the right one passes, bad input is refused, and each IPAM mutant breaks exactly its rule."""

from __future__ import annotations

import re
from collections.abc import Iterator
from ipaddress import IPv4Address
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sim.exercises as ex
from sim.errors import ConflictError, InvalidNetworkError
from sim.network import Subnet


@pytest.fixture(autouse=True)
def _model_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LAYERLAB_BACKEND", "sim")
    yield


def test_namespace_hints() -> None:
    assert ex.namespaces_shared("none") == (1, set())
    assert ex.namespaces_shared("host") == (1, {"net"})
    with pytest.raises(AssertionError, match="PID 1 inside is PID N outside"):
        ex.check_namespaces(4242, set(), network="none")
    with pytest.raises(AssertionError, match="shares the network only"):
        ex.check_namespaces(4242, {"net"}, network="host")
    with pytest.raises(AssertionError, match="layerlab's default network is none"):
        ex.check_namespaces(1, {"net"}, network="none")
    with pytest.raises(AssertionError, match="--network host means the host's network namespace"):
        ex.check_namespaces(1, set(), network="host")
    with pytest.raises(AssertionError, match="its own UTS namespace, also with --network host"):
        ex.check_namespaces(1, {"net", "uts"}, network="host")
    with pytest.raises(AssertionError, match="its own PID namespace"):
        ex.check_namespaces(1, {"pid"}, network="none")
    with pytest.raises(AssertionError, match="not asked"):
        ex.check_namespaces(1, {"user"}, network="none")
    with pytest.raises(AssertionError, match="must be a set of names"):
        ex.check_namespaces(1, "net", network="host")
    with pytest.raises(InvalidNetworkError):
        ex.namespaces_shared("frontend")


UID_MAP = "0 100000 65536"


def test_uid_map_hints() -> None:
    ex.check_uid_map(UID_MAP, to_host={1000: 101000, 0: 100000, 70000: None}, from_host={0: 65534, 101000: 1000})
    with pytest.raises(AssertionError, match="moves every id of a row"):
        ex.check_uid_map(UID_MAP, to_host={1000: 1000}, from_host={})
    with pytest.raises(AssertionError, match="find the row"):
        ex.check_uid_map(UID_MAP, to_host={1000: 100999}, from_host={})
    with pytest.raises(AssertionError, match="not mapped .* a process cannot become it"):
        ex.check_uid_map(UID_MAP, to_host={70000: 170000}, from_host={})
    with pytest.raises(AssertionError, match=r"how an unmapped id \*reads\*"):
        ex.check_uid_map(UID_MAP, to_host={70000: 65534}, from_host={})
    with pytest.raises(AssertionError, match="overflow id"):
        ex.check_uid_map(UID_MAP, to_host={}, from_host={0: 0})
    with pytest.raises(AssertionError, match="read the map backwards"):
        ex.check_uid_map(UID_MAP, to_host={}, from_host={101000: 101000})
    # podman's rootless layout: two rows, 0 is the caller
    ex.check_uid_map("0 1000 1\n1 200000 65536\n", to_host={0: 1000, 1000: 200999}, from_host={1000: 0, 0: 65534})


TOPOLOGY: dict[str, Any] = dict(
    networks=["frontend", "backend"],
    containers={"web": ["frontend"], "api": ["frontend", "backend"], "db": ["backend"], "batch": []},
    aliases={("api", "backend"): ["store"]},
    names=["api", "db", "store", "batch"],
)
PAIRS = {("web", "api"), ("api", "db")}
RESOLVES = {"web": {"api"}, "db": {"api", "db", "store"}}


def test_reachability_hints() -> None:
    ex.check_reachability(PAIRS, RESOLVES, **TOPOLOGY)
    with pytest.raises(AssertionError, match="db-web: they share no network: a bridge switches only between its own"):
        ex.check_reachability(PAIRS | {("web", "db")}, RESOLVES, **TOPOLOGY)
    with pytest.raises(AssertionError, match="batch runs with --network none"):
        ex.check_reachability(PAIRS | {("batch", "api")}, RESOLVES, **TOPOLOGY)
    with pytest.raises(AssertionError, match="api-db is missing: both are on backend"):
        ex.check_reachability({("web", "api")}, RESOLVES, **TOPOLOGY)
    with pytest.raises(AssertionError, match="an alias resolves only on the network it was given on"):
        ex.check_reachability(PAIRS, {"web": {"api", "store"}}, **TOPOLOGY)
    with pytest.raises(AssertionError, match="lists only containers that share a network with web"):
        ex.check_reachability(PAIRS, {"web": {"api", "db"}}, **TOPOLOGY)
    with pytest.raises(AssertionError, match="batch is on no network"):
        ex.check_reachability(PAIRS, {"db": {"api", "db", "store", "batch"}}, **TOPOLOGY)
    with pytest.raises(AssertionError, match="lists its own addresses and names"):
        ex.check_reachability(PAIRS, {"db": {"api", "store"}}, **TOPOLOGY)
    with pytest.raises(AssertionError, match="store resolves in db"):
        ex.check_reachability(PAIRS, {"db": {"api", "db"}}, **TOPOLOGY)


def test_reachability_bad_input() -> None:
    with pytest.raises(AssertionError, match="must be a set of"):
        ex.check_reachability("web-api", RESOLVES, **TOPOLOGY)
    with pytest.raises(AssertionError, match="two different container names"):
        ex.check_reachability({("web", "web")}, RESOLVES, **TOPOLOGY)
    with pytest.raises(AssertionError, match="no container 'cache'"):
        ex.check_reachability({("web", "cache")}, RESOLVES, **TOPOLOGY)
    with pytest.raises(AssertionError, match="resolves must be a dict"):
        ex.check_reachability(PAIRS, {}, **TOPOLOGY)
    with pytest.raises(InvalidNetworkError, match="aliases are given with network connect"):
        ex.reachability(TOPOLOGY["networks"], TOPOLOGY["containers"], {("web", "frontend"): ["www"]}, ["api"])


SUBNET = "10.89.40.0/29"
STEPS = [("create", "a"), ("create", "b"), ("create", "c"), ("rm", "b"),
         ("create", "d"), ("create", "e"), ("create", "f"), ("create", "g")]
ASKED = ["a", "d", "e", "f", "g"]
RIGHT: dict[str, str | None] = {"a": "10.89.40.2", "d": "10.89.40.3", "e": "10.89.40.5", "f": "10.89.40.6", "g": None}


def test_address_hints() -> None:
    assert ex.addresses(SUBNET, STEPS) == {"b": "10.89.40.3", "c": "10.89.40.4", **RIGHT}
    ex.check_addresses(RIGHT, SUBNET, STEPS, ASKED)
    wrong: list[tuple[dict[str, str | None], str]] = [
        ({"d": "10.89.40.5", "e": "10.89.40.6", "f": None}, "a released address is free again"),
        ({"a": "10.89.40.1"}, "the gateway, the bridge's own address"),
        ({"f": "10.89.40.7"}, "broadcast address"),
        ({"g": "10.89.40.7"}, "the network address, the gateway and the broadcast address leave 5"),
        ({"e": "10.89.41.5"}, "not in 10.89.40.0/29"),
        ({"a": "10.89.40.4"}, "lowest free first, after the gateway"),
        ({"a": "ten"}, "not an IPv4 address"),
    ]
    for change, hint in wrong:
        with pytest.raises(AssertionError, match=re.escape(hint)):
            ex.check_addresses({**RIGHT, **change}, SUBNET, STEPS, ASKED)
    with pytest.raises(AssertionError, match="give an address .* for g"):
        ex.check_addresses({k: v for k, v in RIGHT.items() if k != "g"}, SUBNET, STEPS, ASKED)
    with pytest.raises(InvalidNetworkError, match="unknown step"):
        ex.addresses(SUBNET, [("start", "a")])


SHOP: dict[str, Any] = dict(service="shop", service_port=80, host_port=28080, client="web", client_network="frontend",
                            networks=["frontend", "backend"])


def test_publish_hints() -> None:
    ex.check_publish("frontend", ["28080:80"], **SHOP)
    ex.check_publish("frontend", "127.0.0.1:28080:80/tcp", **SHOP)
    wrong = [
        (("frontend", ["80:28080"]), "the ports are swapped: -p is HOST_PORT:CONTAINER_PORT"),
        (("backend", ["28080:80"]), "-p opens a port on the host's 127.0.0.1 only"),
        (("frontend", []), "no port is published"),
        (("frontend", ["28081:80"]), "the host port (before the colon) is where the host's client connects"),
        (("frontend", ["28080:8080"]), "the service listens on 80, the part after the colon"),
        (("frontend", ["0.0.0.0:28080:80"]), "the engine refuses it: .* publishes only on loopback"),
        (("frontend", ["80"]), "layerlab picks no random host ports"),
        (("none", ["28080:80"]), "-p needs a network the container has an address on"),
        (("host", []), "--network host runs the service in the host's own network namespace"),
        (("shopnet", ["28080:80"]), "there is no network 'shopnet'"),
    ]
    for (network, publish), hint in wrong:
        with pytest.raises(AssertionError, match=hint if "*" in hint else re.escape(hint)):
            ex.check_publish(network, publish, **SHOP)


def _by_name() -> dict[str, Any]:
    return {mutant.name: kind for mutant, kind in ex.IPAM_MUTANTS}


def test_each_ipam_mutant_breaks_its_rule() -> None:
    mutants = _by_name()
    gateway_first = mutants["allocate hands out the gateway"](SUBNET)
    assert gateway_first.allocate() == IPv4Address("10.89.40.1")
    assert gateway_first.allocate() == IPv4Address("10.89.40.2")
    broadcast = mutants["a full subnet hands out its broadcast address"](SUBNET)
    handed = [broadcast.allocate() for _ in range(6)]
    assert handed[-1] == IPv4Address("10.89.40.7") and handed[:5] == [IPv4Address(f"10.89.40.{n}") for n in range(2, 7)]
    with pytest.raises(ConflictError):
        broadcast.allocate()
    wrong_release = mutants["release frees the wrong address"](SUBNET)
    a, b, _ = (wrong_release.allocate() for _ in range(3))
    wrong_release.release(a)
    assert wrong_release.allocate() == b  # still in use: handed out again
    correct = Subnet(SUBNET)
    a, b, _ = (correct.allocate() for _ in range(3))
    correct.release(a)
    assert correct.allocate() == a


@given(prefix=st.sampled_from([29, 28]), calls=st.lists(st.integers(0, 9), max_size=40))
def _full_property(new_subnet: Any, prefix: int, calls: list[int]) -> None:
    subnet = new_subnet(f"10.89.7.0/{prefix}")
    net = subnet.network
    held: list[IPv4Address] = []
    for call in calls:
        if call < 7 or not held:
            try:
                address = subnet.allocate()
            except ConflictError:
                assert len(held) == subnet.capacity
                continue
            assert address in net and address not in (net.network_address, subnet.gateway, net.broadcast_address)
            assert address not in held
            held.append(address)
        else:
            subnet.release(held.pop(call % len(held)))


@given(n=st.integers(1, 3))
def _gateway_only(new_subnet: Any, n: int) -> None:
    subnet = new_subnet("10.89.7.0/24")
    for _ in range(n):
        assert subnet.allocate() != subnet.gateway


@given(n=st.integers(1, 3))
def _claims_too_much(new_subnet: Any, n: int) -> None:
    subnet = new_subnet("10.89.7.0/24")
    first = subnet.allocate()
    subnet.release(first)
    assert subnet.allocate() != first  # false: the released address is the next one again


def test_ipam_property_hints(capsys: pytest.CaptureFixture[str]) -> None:
    ex.check_ipam_property(_full_property)
    assert capsys.readouterr().out.count("caught the mutant") == 3
    with pytest.raises(AssertionError) as missed:
        ex.check_ipam_property(_gateway_only)
    assert "allocate until the subnet is full" in str(missed.value)
    assert "never returns an address that is still in use" in str(missed.value)
    assert "hands out the gateway" not in str(missed.value)
    with pytest.raises(AssertionError, match="fails on the correct engine"):
        ex.check_ipam_property(_claims_too_much)
    with pytest.raises(AssertionError, match="must be a hypothesis property"):
        ex.check_ipam_property(lambda new_subnet: None)

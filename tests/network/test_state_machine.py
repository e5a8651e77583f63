"""The model engine against the kernel engine: random network histories, the same answers.

Each rule -- create or remove a network, create and start a container (on a network or on
none), connect, disconnect, remove a container -- runs on a model engine and on a real one (root),
and both must give the same result or the same typed error.  After every step:

- every running container's interfaces and routes as the real engine's model says them
  (``container_network``) equal what its kernel namespace shows (``kernel_network``);
- the two engines hand out the same addresses, interfaces, routes and ``/etc/hosts`` (up to
  container ids, which are random);
- the reachability matrix measured on the kernel -- a TCP listener in every container's
  namespace, a probe from each to each (:mod:`realrt.network.probe`) -- equals the model's
  :meth:`~sim.network.model.NetworkModel.reachability`.

Teardown removes everything and checks the host: none of the machine's links or namespaces is
left, and its journal is empty.  The default profile keeps this to a few short histories; the
deeper run is marked ``slow`` (``LAYERLAB_PROFILE=deep``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, cast

import pytest
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import sim
from sim.containers.core import EngineCore
from sim.errors import LayerlabError
from tests.backends import require_real
from tests.network._engine_tools import Made, leftovers

if TYPE_CHECKING:
    from realrt.engine import RealEngine

pytestmark = [pytest.mark.real, pytest.mark.root_only]

IDLE = "sleep 600"
MAX_NETWORKS = 3
MAX_CONTAINERS = 4
#: Subnets a rule may ask for; the last overlaps the first (refused by both engines when both are
#: asked for).  Never the default pool: another engine on this host (a tour, a benchmark) may hold
#: 10.89.0.0/24, which the kernel then refuses and the model engine does not.
SUBNETS = ("10.250.20.0/28", "10.250.21.0/24", "10.250.22.0/24", "10.250.20.0/24")

Outcome = tuple[str, Any]


class NetworkMachine(RuleBasedStateMachine):
    """One history on two engines (see the module docstring).  ``tmp`` is set by the test."""

    tmp: ClassVar[pytest.TempPathFactory]
    made: ClassVar[list[Made]] = []  # every machine's names, for the check after the run
    steps: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        self.model = cast(EngineCore, sim.connect("sim", state_dir=str(self.tmp.mktemp("model"))))
        self.real: RealEngine = cast("RealEngine", require_real(rootless=False, state_dir=str(self.tmp.mktemp("real"))))
        self.names = Made(self.real.network_model)
        type(self).made.append(self.names)
        self.token = uuid.uuid4().hex[:6]  # network names no other engine on this host uses
        self.nets: list[str] = []
        self.boxes: list[str] = []
        self.count = 0
        self.listeners: dict[str, Any] = {}
        self.pool = ThreadPoolExecutor(max_workers=16)

    # -- applying one call to both engines ------------------------------------------------------

    def both(self, call: Callable[[EngineCore], Any], show: Callable[[EngineCore, Any], Any] = lambda e, v: None) -> bool:
        """``call`` on the model engine, then on the real one: both succeed (``show`` of the two
        values equal) or both raise the same typed error.  True when they succeeded."""
        type(self).steps += 1
        got: list[Outcome] = []
        for eng in (self.model, self.real):
            try:
                got.append(("ok", show(eng, call(eng))))
            except LayerlabError as exc:
                got.append(("err", type(exc).__name__))
        note(f"-> {got}")
        assert got[0] == got[1], f"model engine {got[0]} != real engine {got[1]}"
        return got[0][0] == "ok"

    @staticmethod
    def endpoint_view(eng: EngineCore, endpoint: Any) -> tuple[Any, ...]:
        return endpoint.network, endpoint.interface, endpoint.address, endpoint.gateway, endpoint.aliases

    # -- rules ------------------------------------------------------------------------------------

    @initialize(subnet=st.sampled_from(SUBNETS), data=st.data())
    def start(self, subnet: str, data: st.DataObject) -> None:
        """Every history starts with something to reach: a network and two containers, each on
        it or on none (a few steps would otherwise mostly be spent getting there)."""
        self.create_network(subnet)
        self.run_container(data)
        self.run_container(data)

    @precondition(lambda self: len(self.nets) < MAX_NETWORKS)
    @rule(subnet=st.sampled_from(SUBNETS))
    def create_network(self, subnet: str) -> None:
        name = f"sm{self.count}-{self.token}"
        self.count += 1
        note(f"create_network({name!r}, subnet={subnet!r})")
        if self.both(lambda e: e.create_network(name, subnet=subnet), lambda e, info: (info.subnet, info.gateway)):
            self.nets.append(name)

    @precondition(lambda self: self.nets)
    @rule(data=st.data())
    def remove_network(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.nets), label="network")
        note(f"remove_network({name!r})")
        if self.both(lambda e: e.remove_network(name)):  # ConflictError on both while in use
            self.nets.remove(name)

    @precondition(lambda self: len(self.boxes) < MAX_CONTAINERS)
    @rule(data=st.data())
    def run_container(self, data: st.DataObject) -> None:
        network = data.draw(st.sampled_from(["none", *self.nets]), label="network")
        name = f"c{self.count}"
        self.count += 1
        note(f"run {name} --network {network}")

        def run(eng: EngineCore) -> None:
            eng.create("busybox", IDLE, name=name, network=network)
            eng.start(name, detach=True)

        assert self.both(run)
        self.boxes.append(name)
        from realrt.network import listen

        netns = self.real._net.netns(self.real_id(name))
        assert netns is not None, f"{name} runs without a namespace of layerlab's"
        self.listeners[name] = listen(netns)

    @precondition(lambda self: self.boxes and self.nets)
    @rule(data=st.data(), alias=st.booleans())
    def connect(self, data: st.DataObject, alias: bool) -> None:
        box = data.draw(st.sampled_from(self.boxes), label="container")
        net = data.draw(st.sampled_from(self.nets), label="network")
        aliases = (f"{box}-alias",) if alias else ()
        note(f"connect({net!r}, {box!r}, aliases={aliases})")
        self.both(lambda e: e.connect(net, box, aliases=aliases), self.endpoint_view)

    @precondition(lambda self: self.boxes and self.nets)
    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        box = data.draw(st.sampled_from(self.boxes), label="container")
        net = data.draw(st.sampled_from(self.nets), label="network")
        note(f"disconnect({net!r}, {box!r})")
        self.both(lambda e: e.disconnect(net, box), self.endpoint_view)

    @precondition(lambda self: self.boxes)
    @rule(data=st.data())
    def remove_container(self, data: st.DataObject) -> None:
        box = data.draw(st.sampled_from(self.boxes), label="container")
        note(f"remove({box!r}, force=True)")
        self.listeners.pop(box).close()
        assert self.both(lambda e: e.remove(box, force=True))
        self.boxes.remove(box)

    # -- agreement --------------------------------------------------------------------------------

    def real_id(self, name: str) -> str:
        return next(c.id for c in self.real.containers() if c.name == name)

    def by_name(self, eng: EngineCore) -> dict[str, str]:
        return {c.name: c.id for c in eng.containers()}

    @invariant()
    def networks_agree(self) -> None:
        def view(eng: EngineCore) -> list[tuple[Any, ...]]:
            names = {c.id: c.name for c in eng.containers()}
            return [(n.name, n.subnet, n.gateway, n.bridge, tuple(names[c] for c in n.containers)) for n in eng.networks()]

        assert view(self.model) == view(self.real)

    @invariant()
    def containers_agree(self) -> None:
        model_ids, real_ids = self.by_name(self.model), self.by_name(self.real)
        assert sorted(model_ids) == sorted(real_ids) == sorted(self.boxes)
        for name in self.boxes:
            mine, theirs = self.model.container_network(name), self.real.container_network(name)
            assert [self.endpoint_view(self.model, e) for e in mine.endpoints] == [
                self.endpoint_view(self.real, e) for e in theirs.endpoints], name
            # Interfaces and routes: equal but for the veths' host-side names (hashes of the ids).
            assert [(i.name, i.kind, i.addresses, i.up) for i in mine.interfaces] == [
                (i.name, i.kind, i.addresses, i.up) for i in theirs.interfaces], name
            assert mine.routes == theirs.routes, name
            assert self.anonymous(mine.hosts, model_ids) == self.anonymous(theirs.hosts, real_ids), name

    @staticmethod
    def anonymous(hosts: str, ids: dict[str, str]) -> str:
        for name, cid in ids.items():
            hosts = hosts.replace(cid[:12], f"<{name}>")  # the default hostname is the id's start
        return hosts

    @invariant()
    def kernel_agrees(self) -> None:
        for info in self.real.containers():
            assert info.state == "running", info
            view = self.real.container_network(info.id)
            assert self.real.kernel_network(info.id) == (list(view.interfaces), list(view.routes)), info.name

    @invariant()
    def reachability_agrees(self) -> None:
        from realrt.network import PROBE_PORT, reachable

        ids = self.by_name(self.real)
        if len(ids) < 2:
            return
        paths: dict[str, str] = {}
        for name, cid in ids.items():
            netns = self.real._net.netns(cid)
            assert netns is not None, f"{name} runs without a namespace of layerlab's"
            paths[name] = netns
        addresses = {name: [a.split("/")[0] for i in self.real.kernel_network(cid)[0] if i.kind == "veth" for a in i.addresses]
                     for name, cid in ids.items()}
        probes: dict[tuple[str, str], list[Future[bool]]] = {
            (a, b): [self.pool.submit(reachable, paths[a], ip, PROBE_PORT, 0.3) for ip in addresses[b]]
            for a in ids for b in ids if a != b}
        measured = {pair: any(f.result() for f in futures) for pair, futures in probes.items()}
        model = self.real.network_model.reachability(ids.values())
        expected = {(a, b): model[(ids[a], ids[b])] for (a, b) in probes}
        assert measured == expected
        model_ids = self.by_name(self.model)
        twin = self.model.network_model.reachability(model_ids.values())
        assert {(a, b): twin[(model_ids[a], model_ids[b])] for (a, b) in probes} == expected

    def teardown(self) -> None:
        try:
            for listener in self.listeners.values():
                listener.close()
            self.pool.shutdown()
            for eng in (self.model, self.real):
                for info in eng.containers():
                    eng.remove(info.id, force=True)
                for net in eng.networks():
                    eng.remove_network(net.name)
        finally:
            self.model.close()
            self.real.close()
        assert list(self.real.journal.records()) == [], "a journal record is left"
        assert leftovers(self.names) == {"links": [], "netns": [], "nft": []}


def _run(tmp: pytest.TempPathFactory, *, max_examples: int, steps: int) -> None:
    NetworkMachine.tmp = tmp
    NetworkMachine.made = []
    NetworkMachine.steps = 0
    run_state_machine_as_test(NetworkMachine, settings=settings(
        max_examples=max_examples, stateful_step_count=steps, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    assert NetworkMachine.made, "no history ran"
    for made in NetworkMachine.made:  # after the whole run, again: nothing of any history is left
        assert leftovers(made) == {"links": [], "netns": [], "nft": []}
    print(f"network state machine: {len(NetworkMachine.made)} histories, {NetworkMachine.steps} compared calls")


def test_model_and_kernel_agree_on_networks(tmp_path_factory: pytest.TempPathFactory) -> None:
    _run(tmp_path_factory, max_examples=5, steps=8)


@pytest.mark.slow
def test_model_and_kernel_agree_on_networks_deeply(tmp_path_factory: pytest.TempPathFactory) -> None:
    _run(tmp_path_factory, max_examples=40, steps=20)

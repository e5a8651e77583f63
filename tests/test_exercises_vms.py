"""Chapter 4's checks (containers vs VMs) on the model: each typical wrong answer gets the hint that
names the concept it misses, the right answer passes, and a bad setup is a typed error.  The data
are the instructor notebook's own setup cells, so the tests grade what a student is given."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sim.exercises as ex
from sim.capacity import GiB, Host, Instance, MiB, Placement, Workload, container, vm
from sim.errors import InvalidSpecError

ROOM = Host(cores=4, memory=8 * GiB, cpu_overcommit=1.0, ram_overcommit=1.0, reserved_memory=0, max_pods=None)


@pytest.fixture(autouse=True)
def _model_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LAYERLAB_BACKEND", "sim")
    yield


@pytest.fixture(scope="module")
def given_data() -> dict[str, Any]:
    """What the notebook's locked setup cells define (HOST, VM, KINDS, HOGS, SERVICE, ...)."""
    nb = ex.instructor_notebook(ex.exercise_set("vms_and_containers"))
    scope: dict[str, Any] = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and not meta.get("solution") and not meta.get("grade"):
            exec(cell.source, scope)
    return scope


def _fails(match: str, check: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(AssertionError, match=match) as caught:
        check(*args, **kwargs)
    return str(caught.value)


# -- 1. how many fit --------------------------------------------------------------------------------

def test_density_hints(given_data: dict[str, Any]) -> None:
    d = given_data
    specs = {"vm": d["VM"], "container": d["CONTAINER"]}

    def check(vms: Any, containers: Any) -> None:  # Any: wrong types are part of what is graded
        ex.check_density({"vm": vms, "container": containers}, d["HOST"], specs, d["APP"])

    check(92, 751)
    hint = _fails("a VM holds its whole memory from boot", check, 128, 751)  # counted on the app's 256 MiB
    assert "memory runs out first" in hint and "container" not in hint
    _fails("the hypervisor process", check, 95, 751)
    _fails("memory overcommit", check, 61, 751)
    _fails("reserved_memory", check, 93, 751)
    _fails("admitted on its request, not its limit", check, 92, 379)
    _fails("shim", check, 92, 766)
    _fails("overcommit: the host admits cores x cpu_overcommit", check, 92, 256)
    _fails("count on what admission books", check, 50, 751)
    _fails("a whole number", check, 92.5, 751)
    _fails("no count for", ex.check_density, {"vm": 92}, d["HOST"], specs, d["APP"])
    with pytest.raises(InvalidSpecError):
        ex.check_density({"vm": 92}, "a host", specs, d["APP"])  # type: ignore[arg-type]


def test_density_names_max_pods() -> None:
    host = Host(cores=64, memory=256 * GiB, max_pods=110)
    spec = container(0.25, 256 * MiB)
    _fails("--max-pods", ex.check_density, {"c": 1472}, host, {"c": spec}, Workload())
    ex.check_density({"c": 110}, host, {"c": spec}, Workload())


# -- 2. what the host holds -------------------------------------------------------------------------

def test_held_memory_hints(given_data: dict[str, Any]) -> None:
    d = given_data
    truth = {k: v / MiB for k, v in ex.held_memory(d["KINDS"], d["BUSY_HOUR"], d["THREE_HOURS"]).items()}
    assert truth["container"] == pytest.approx(1024)
    assert truth["vm"] - truth["vm_balloon"] == pytest.approx(2 * 1024)  # the high-water mark stays

    def check(**wrong: Any) -> None:
        ex.check_held_memory({**truth, **wrong}, d["KINDS"], d["BUSY_HOUR"], d["THREE_HOURS"])

    check()
    check(vm=truth["vm"] + 10)  # within the tolerance
    _fails("a guest never hands pages back", check, vm=truth["vm_balloon"])
    _fails("a balloon driver takes back the pages", check, vm_balloon=truth["vm"])
    _fails("guest kernel and OS", check, vm=3 * 1024)
    _fails("books the VM's whole RAM", check, vm=4 * 1024)
    _fails("charge follows what its processes use now", check, container=3 * 1024)
    _fails("the request is what admission books", check, container=512)
    _fails("a number of MiB", check, container="1 GiB")


# -- 3. hogs under limits ---------------------------------------------------------------------------

def test_hog_hints(given_data: dict[str, Any]) -> None:
    hogs = given_data["HOGS"]
    truth = ex.hog_outcome(hogs)
    assert truth == {"memory": pytest.approx(0.4), "cpu": pytest.approx(0.5), "fork": 10}

    def check(**wrong: Any) -> None:
        ex.check_hog_outcome({**truth, **wrong}, hogs)

    check()
    _fails("memory.max is a hard limit", check, memory=None)
    _fails("the old string and its copy", check, memory=0.8)  # 2 MiB every 0.1 s to 16 MiB, no copy, no shell
    _fails("even when the host's other cores are idle", check, cpu=1.0)
    _fails("refuses every fork beyond it", check, fork=31)
    _fails("its first shell included", check, fork=9)
    _fails("nothing for", ex.check_hog_outcome, {"memory": 0.4}, hogs)


def test_hog_outcome_on_a_machine_that_cannot_measure_is_the_model(given_data: dict[str, Any],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    hogs = given_data["HOGS"]
    assert ex.hog_outcome(hogs, measure=True) == ex.hog_outcome(hogs)  # the model's engine has no cgroup
    assert "cannot measure here" in capsys.readouterr().out


# -- 4. start order and the flash crowd --------------------------------------------------------------

def test_start_hints() -> None:
    fast = {"microvm", "container"}
    ex.check_start_order(["microvm", "container", "vm"], fast)
    _fails("a microVM boots a minimal guest kernel", ex.check_start_order, ["container", "microvm", "vm"], fast)
    _fails("a VM boots a whole machine", ex.check_start_order, ["vm", "microvm", "container"], fast)
    _fails("new replicas serve nothing until they run", ex.check_start_order, ["microvm", "container", "vm"],
           fast | {"vm"})
    _fails("run almost at once", ex.check_start_order, ["microvm", "container", "vm"], {"container"})
    _fails("each of", ex.check_start_order, ["microvm", "vm"], fast)
    _fails("not kinds", ex.check_start_order, ["microvm", "container", "vm"], {"lambda"})


# -- 5. limits that fit 100 hosts ---------------------------------------------------------------------

def test_fleet_hints(given_data: dict[str, Any]) -> None:
    d = given_data

    def check(spec: object) -> None:
        ex.check_fleet_fit(spec, d["SERVICE"], d["COUNT"], d["SMALL_HOST"], 100)  # type: ignore[arg-type]

    check(container(0.6, 2 * GiB, cpu_max=1.0, memory_max=3 * GiB))
    check(container(0.65, int(2.5 * GiB)))  # another answer that fits
    _fails("rejected: a container is admitted on its requests", check, container(1.0, 2 * GiB))
    _fails("rejected: .*requests are too high", check, container(0.6, int(2.7 * GiB)))
    _fails("host OOM kills: the memory request", check, container(0.15, int(1.5 * GiB)))
    hint = _fails("OOM kills: memory.max", check, container(0.6, int(1.5 * GiB), memory_max=int(1.5 * GiB)))
    assert "rejected" not in hint
    _fails("the quota throttles it", check, container(0.3, 2 * GiB, cpu_max=0.3))
    _fails("CPU contention", check, container(0.5, 2 * GiB))
    _fails("the answer is a VM", check, vm(1, 3 * GiB))
    _fails("must be a ContainerSpec", check, {"cpu_request": 0.6})
    with pytest.raises(InvalidSpecError):
        ex.check_fleet_fit(container(), d["SERVICE"], 0, d["SMALL_HOST"])


# -- 6. the placement property -------------------------------------------------------------------------

def _instance(kind: str, size: int, arrival: int, duration: float) -> Instance:
    spec = vm(1, size * GiB) if kind == "vm" else container(0.5, size * 512 * MiB)
    return Instance(spec, Workload(memory=256 * MiB, arrival=float(arrival), duration=duration))


def _instances(kinds: list[str]) -> st.SearchStrategy[list[Instance]]:
    return st.lists(st.builds(_instance, st.sampled_from(kinds), st.integers(1, 3), st.integers(0, 6),
                              st.sampled_from([2.0, 4.0, math.inf])), max_size=12)


def _room_left(instances: list[Instance], where: Any, k: int, h: int) -> bool:
    """Whether host ``h`` had room for instance ``k`` when it arrived (what is still there counted)."""
    now, spec = instances[k].workload.arrival, instances[k].spec
    earlier = [j for j in range(len(instances)) if (instances[j].workload.arrival, j) < (now, k)]
    held = [instances[j].spec for j in earlier
            if where[j] == h and instances[j].workload.arrival + instances[j].workload.duration > now]
    return (sum(s.cpu_request for s in held) + spec.cpu_request <= ROOM.admissible_cpu
            and sum(s.reserved_memory for s in held) + spec.reserved_memory <= ROOM.admissible_memory)


@given(instances=_instances(["vm", "container"]))
def _never_overbooked(place: Any, instances: list[Instance]) -> None:
    where = place([ROOM], instances).host
    assert all(_room_left(instances, where, k, 0) for k in range(len(instances)) if where[k] >= 0)


@given(instances=_instances(["container"]))
def _containers_only(place: Any, instances: list[Instance]) -> None:
    where = place([ROOM], instances).host
    for k in range(len(instances)):
        assert _room_left(instances, where, k, 0) == (where[k] >= 0)


@given(instances=_instances(["vm", "container"]))
def _never_rejects(place: Any, instances: list[Instance]) -> None:
    assert (place([ROOM], instances).host >= 0).all()


def test_placement_property_hints() -> None:
    # Checks capacity only: the scheduler that forgets departures books more, never too much.
    hint = _fails("departures forgotten", ex.check_placement_property, _never_overbooked, max_examples=30)
    assert "earlier placements ignored" not in hint and "a VM booked" not in hint
    # Draws no VM: a VM booked on its use is never seen.
    hint = _fails("a VM booked on what it uses", ex.check_placement_property, _containers_only, max_examples=30)
    assert "departures forgotten" not in hint
    _fails("fails on the correct engine", ex.check_placement_property, _never_rejects, max_examples=30)
    _fails("must be a hypothesis property", ex.check_placement_property, lambda place: None)


def test_placement_mutants_are_built_on_the_public_place() -> None:
    """Each mutant differs from place() in its one rule, on an example that shows it."""
    from sim.exercises._vm_checks import _books_vm_use, _forgets_departures, _ignores_placed

    big = [Instance(vm(1, 3 * GiB), Workload(memory=256 * MiB, duration=2.0)) for _ in range(3)]
    later = [*big, Instance(vm(1, 3 * GiB), Workload(memory=256 * MiB, arrival=2.0))]

    def hosts(p: Placement) -> list[int]:
        return [int(h) for h in p.host]

    from sim.capacity import place

    assert hosts(place([ROOM], later)) == [0, 0, -1, 0]
    assert hosts(_ignores_placed([ROOM], later)) == [0, 0, 0, 0]
    assert hosts(_forgets_departures([ROOM], later)) == [0, 0, -1, -1]
    assert hosts(_books_vm_use([ROOM], later)) == [0, 0, 0, 0]
    assert hosts(_ignores_placed([ROOM], [])) == []

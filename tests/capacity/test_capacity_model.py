"""The resource model's rules, one behaviour per test, and the fast path against the dense one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.capacity import (
    DEFAULTS,
    ContainerSpec,
    GiB,
    Host,
    Instance,
    MiB,
    VMSpec,
    Workload,
    container,
    density,
    diurnal,
    flat,
    microvm,
    place,
    simulate,
    step,
    trace,
    vm,
)
from sim.capacity._sharing import water_fill as _water_fill
from sim.containers.limits import parse_limits
from sim.errors import InvalidLimitError, InvalidSpecError

HOST = Host(cores=4, memory=16 * GiB, reserved_memory=0, max_pods=None)


def run1(*instances: Instance, host: Host = HOST, duration: float = 120, **options: object):  # type: ignore[no-untyped-def]
    return simulate([host], list(instances), duration=duration, trace=True, jitter=0.0, **options)  # type: ignore[arg-type]


# -- defaults and specs ------------------------------------------------------------------------


def test_every_default_names_its_source() -> None:
    for name, d in DEFAULTS.items():
        assert d.source and d.unit, name
    assert DEFAULTS["vm_boot_s"].value == 44.2 and "Mao" in DEFAULTS["vm_boot_s"].source
    assert DEFAULTS["microvm_boot_s"].value == 0.125 and "firecracker" in DEFAULTS["microvm_boot_s"].source
    assert DEFAULTS["cpu_overcommit"].value == 16.0 and DEFAULTS["ram_overcommit"].value == 1.5
    assert (DEFAULTS["power_idle_w"].value, DEFAULTS["power_max_w"].value) == (86.0, 117.0)
    with pytest.raises(TypeError):
        DEFAULTS["vm_boot_s"] = None  # type: ignore[index]


@pytest.mark.parametrize("make", [
    lambda: Host(cores=0),
    lambda: Host(memory=-1),
    lambda: Host(reserved_memory=GiB, memory=GiB),
    lambda: Host(power_idle_w=100, power_max_w=50),
    lambda: Host(max_pods=0),
    lambda: VMSpec(vcpus=0),
    lambda: VMSpec(vcpus=1.5),  # type: ignore[arg-type]
    lambda: VMSpec(memory=64 * MiB, guest_os=128 * MiB),
    lambda: VMSpec(page_sharing=1.0),
    lambda: VMSpec(kind="lxc"),
    lambda: ContainerSpec(cpu_request=-0.1),
    lambda: ContainerSpec(cpu_request=2, cpu_max=1),
    lambda: ContainerSpec(memory_request=GiB, memory_max=512 * MiB),
    lambda: ContainerSpec(memory_high=2 * GiB, memory_max=GiB),
    lambda: ContainerSpec(weight=0),
    lambda: ContainerSpec(pids_max=0),
    lambda: Workload(cpu=float("nan")),
    lambda: Workload(duration=0),
    lambda: Workload(pids=-1),
    lambda: Workload(cpu_profile="diurnal"),  # type: ignore[arg-type]
    lambda: diurnal(peak=0.5, trough=0.8),
    lambda: trace([]),
    lambda: trace([1, -1]),
    lambda: Instance("container"),  # type: ignore[arg-type]
])
def test_bad_specs_are_refused_with_a_typed_error(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidSpecError):
        make()


@pytest.mark.parametrize("options", [
    {"duration": 0}, {"duration": math.inf}, {"dt": 0}, {"dt": -1}, {"policy": "random-fit"},
    {"trace": [5]}, {"trace": ["nobody"]}, {"memory_high_slowdown": 0}, {"restart_backoff": -1},
    {"duration": 1e9, "dt": 1e-3}, {"jitter": -1},
])
def test_bad_run_arguments_are_refused_before_anything_runs(options: dict[str, object]) -> None:
    args = {"duration": 10, **options}
    with pytest.raises(InvalidSpecError):
        simulate([HOST], [Instance(container())], **args)  # type: ignore[arg-type]
    with pytest.raises(InvalidSpecError):
        simulate([], [Instance(container())], duration=10)


def test_docker_flags_become_a_container_spec_as_runc_writes_them() -> None:
    spec = ContainerSpec.from_limits(parse_limits(memory="512m", cpus="1.5", cpu_shares=1024, pids_limit=100))
    assert (spec.memory_max, spec.cpu_max, spec.pids_max) == (512 * MiB, 1.5, 100)
    assert spec.weight == 39  # runc: 1 + (1024 - 2) * 9999 / 262142
    assert (spec.cpu_request, spec.memory_request) == (1.5, 512 * MiB)  # requests default to the limits
    assert ContainerSpec.from_limits(parse_limits(pids_limit=-1)).pids_max is None
    with pytest.raises(InvalidLimitError, match="Minimum memory limit allowed is 6MB"):
        ContainerSpec.from_limits(parse_limits(memory="4m"))
    with pytest.raises(InvalidLimitError):
        parse_limits(cpus="-1")


# -- placement ---------------------------------------------------------------------------------


def test_a_vm_reserves_what_it_was_given_a_container_its_requests() -> None:
    host = Host(cores=8, memory=64 * GiB, cpu_overcommit=1, ram_overcommit=1, reserved_memory=0, max_pods=None)
    d_vm = density(host, vm(2, 4 * GiB, overhead=0))
    d_ct = density(host, container(0.25, 512 * MiB))
    assert (d_vm.count, d_vm.limited_by) == (4, "cpu")
    assert (d_ct.count, d_ct.limited_by) == (32, "cpu")
    big = Host(cores=64, memory=64 * GiB, cpu_overcommit=1, ram_overcommit=1, reserved_memory=0, max_pods=110)
    assert (density(big, vm(2, 4 * GiB, overhead=0)).count, density(big, vm(2, 4 * GiB)).limited_by) == (16, "memory")
    assert density(big, container(0.25, 128 * MiB)).limited_by == "max_pods"


@pytest.mark.parametrize("policy, expected", [("first-fit", [0, 0, 1, 1]), ("best-fit", [0, 0, 1, 1]),
                                              ("worst-fit", [0, 1, 2, 0])])
def test_placement_policies(policy: str, expected: list[int]) -> None:
    hosts = [Host(cores=4, memory=8 * GiB, cpu_overcommit=1, ram_overcommit=1, reserved_memory=0)] * 3
    insts = [Instance(container(1.5, GiB), Workload(arrival=i)) for i in range(4)]
    assert place(hosts, insts, policy=policy).host.tolist() == expected


def test_policy_names_are_forgiving_about_spelling_only() -> None:
    hosts = [Host(cores=4, memory=8 * GiB, cpu_overcommit=1, ram_overcommit=1, reserved_memory=0)] * 3
    insts = [Instance(container(1.5, GiB), Workload(arrival=i)) for i in range(4)]
    assert place(hosts, insts, policy="Worst_Fit").host.tolist() == [0, 1, 2, 0]
    assert simulate(hosts, insts, duration=5, policy="best fit").policy == "best-fit"
    for bad in ("next-fit", "", None, 3):
        with pytest.raises(InvalidSpecError):
            place(hosts, insts, policy=bad)  # type: ignore[arg-type]


def test_best_fit_fills_the_fullest_host_that_fits() -> None:
    hosts = [Host(cores=8, memory=8 * GiB, cpu_overcommit=1, ram_overcommit=1, reserved_memory=0)] * 2
    insts = [Instance(container(6, GiB)), Instance(container(1, GiB), Workload(arrival=1)),
             Instance(container(2, GiB), Workload(arrival=2)), Instance(container(1, GiB), Workload(arrival=3))]
    assert place(hosts, insts, policy="best-fit").host.tolist() == [0, 0, 1, 0]
    assert place(hosts, insts, policy="first-fit").host.tolist() == [0, 0, 1, 0]
    assert place(hosts, insts, policy="worst-fit").host.tolist() == [0, 1, 1, 1]


def test_what_fits_nowhere_is_rejected_and_a_departure_frees_room() -> None:
    host = Host(cores=2, memory=8 * GiB, cpu_overcommit=1, ram_overcommit=1, reserved_memory=0)
    insts = [Instance(container(2, GiB), Workload(duration=10)), Instance(container(2, GiB), Workload(arrival=5)),
             Instance(container(2, GiB), Workload(arrival=10))]
    p = place([host], insts)
    assert p.host.tolist() == [0, -1, 0] and p.rejected == 1 and math.isnan(p.latency[1])
    run = run1(*insts, host=host, duration=20)
    assert run.instances.unmet_cpu_s[1] == pytest.approx(0.25 * 15)  # its whole life unmet


def test_microvm_starts_queue_at_the_launch_rate() -> None:
    host = Host(cores=2, memory=64 * GiB)
    insts = [Instance(microvm()) for _ in range(30)]
    p = place([host], insts, jitter=0.0)
    assert np.allclose(np.diff(p.queued), 1 / (5 * 2))  # ~5 microVMs per core per second
    assert p.latency[0] == pytest.approx(0.125)


def test_start_latency_follows_the_defaults_and_is_seeded() -> None:
    insts = [Instance(vm(1, GiB))] * 50 + [Instance(container(0.1, 64 * MiB))] * 50
    a = place([Host(cores=64, memory=512 * GiB)], insts, seed=1)
    b = place([Host(cores=64, memory=512 * GiB)], insts, seed=1)
    c = place([Host(cores=64, memory=512 * GiB)], insts, seed=2)
    assert np.array_equal(a.latency, b.latency) and not np.array_equal(a.latency, c.latency)
    assert np.median(a.latency[:50]) == pytest.approx(44.2, rel=0.1)
    assert np.median(a.latency[50:]) == pytest.approx(0.225, rel=0.1)


# -- CPU -------------------------------------------------------------------------------------


@given(st.lists(st.tuples(st.floats(0, 5), st.floats(1, 1000)), min_size=1, max_size=12), st.floats(0.1, 8))
def test_water_filling_is_max_min_fair_by_weight(items: list[tuple[float, float]], capacity: float) -> None:
    want = np.array([w for w, _ in items])
    weight = np.array([w for _, w in items])
    alloc = _water_fill(want, weight, np.zeros(len(items), dtype=np.int64), np.array([capacity]))
    assert np.all(alloc <= want + 1e-9) and np.all(alloc >= -1e-12)
    assert alloc.sum() == pytest.approx(min(capacity, want.sum()), rel=1e-9, abs=1e-9)
    short = alloc < want - 1e-9
    if short.any():  # whoever got less than it wanted has the highest share per weight
        assert np.all(alloc[short] / weight[short] >= (alloc / weight).max() - 1e-9)


def test_weights_share_a_contended_host_and_idle_cpu_goes_to_whoever_wants_it() -> None:
    hog = Instance(container(0.1, 64 * MiB, weight=100), Workload(cpu=4.0, memory=0), name="hog")
    light = Instance(container(0.1, 64 * MiB, weight=300), Workload(cpu=3.0, memory=0,
                                                                   cpu_profile=step(60, 0.0, 1.0)), name="n")
    run = run1(hog, light)
    h, n = run.traces["hog"], run.traces["n"]
    assert h.at(30)["cpu"] == pytest.approx(4.0)  # alone: all the idle CPU
    assert (h.at(90)["cpu"], n.at(90)["cpu"]) == (pytest.approx(1.0), pytest.approx(3.0))  # 1:3 by weight
    assert run.instances.throttled_s.sum() == 0


def test_cpu_max_throttles_even_on_an_idle_host() -> None:
    hog = Instance(container(0.5, 64 * MiB, cpu_max=0.5), Workload(cpu=4.0, memory=0), name="hog")
    run = run1(hog, duration=60)
    assert run.traces["hog"].at(30)["cpu"] == pytest.approx(0.5)
    assert run.instances.throttled_s[0] == pytest.approx((60 - 1) * (1 - 0.5 / 4.0))  # stalled 7/8 of each tick
    assert run.instances.unmet_cpu_s[0] == pytest.approx(3.5 * 59 + 4.0 * 1)


def test_a_vm_uses_at_most_its_vcpus_and_shows_steal_on_a_full_host() -> None:
    host = Host(cores=2, memory=64 * GiB, reserved_memory=0)
    vms = [Instance(vm(2, GiB, boot_s=0), Workload(cpu=3.0, memory=0), name=f"v{i}") for i in range(2)]
    run = run1(*vms, host=host, duration=10)
    assert run.traces["v0"].at(5)["cpu"] == pytest.approx(1.0)  # two 2-vCPU guests on 2 cores
    assert run.used_cpu[5] == pytest.approx(2.0) and run.unmet_cpu[5] == pytest.approx(4.0)


# -- memory ----------------------------------------------------------------------------------


def test_a_vm_holds_its_high_water_mark_a_container_what_it_uses() -> None:
    wave = trace([1.0] * 30 + [0.25] * 30)
    v = Instance(vm(1, 4 * GiB, boot_s=0, overhead=100 * MiB, guest_os=200 * MiB), Workload(0.1, GiB, memory_profile=wave), name="vm")
    b = Instance(vm(1, 4 * GiB, boot_s=0, overhead=100 * MiB, guest_os=200 * MiB, balloon=True),
                 Workload(0.1, GiB, memory_profile=wave), name="balloon")
    c = Instance(container(0.1, 128 * MiB, start_s=0, overhead=10 * MiB), Workload(0.1, GiB, memory_profile=wave), name="ct")
    run = run1(v, b, c, duration=60)
    assert run.traces["vm"].at(45)["memory"] == 100 * MiB + 200 * MiB + GiB  # keeps the peak
    assert run.traces["balloon"].at(45)["memory"] == 100 * MiB + 200 * MiB + GiB / 4
    assert run.traces["ct"].at(45)["memory"] == GiB / 4  # the cgroup's charge: what it uses now
    assert run.reserved_memory[45] == 2 * (4 * GiB + 100 * MiB) + 128 * MiB + 10 * MiB  # RAM + hypervisor, request + shim


def test_page_sharing_keeps_one_copy_of_similar_guests() -> None:
    spec = vm(1, 2 * GiB, boot_s=0, overhead=0, guest_os=256 * MiB, page_sharing=0.9)
    run = run1(*[Instance(spec, Workload(0.1, 256 * MiB)) for _ in range(4)], duration=5)
    guest = 512 * MiB
    assert run.used_memory[3] == pytest.approx(4 * guest * 0.1 + guest * 0.9)
    alone = run1(Instance(spec, Workload(0.1, 256 * MiB)), duration=5)
    assert alone.used_memory[3] == pytest.approx(guest)  # nothing to share with


def test_memory_max_oom_kills_and_restarts_with_a_doubling_back_off() -> None:
    leak = Instance(container(0.1, 64 * MiB, memory_max=100 * MiB, start_s=0),
                    Workload(0.1, 0, leak=10 * MiB), name="leak")
    run = run1(leak, duration=200, restart_backoff=10, restart_backoff_max=40)
    series = run.traces["leak"]
    assert series.memory.max() <= 100 * MiB
    kills = np.nonzero(np.diff(series.oom_kills))[0] + 1
    # killed at 11 s (110 MiB > 100), then up again after 10, 20, 40, 40 s of back-off
    assert series.t[kills].tolist()[:4] == [11.0, 32.0, 63.0, 114.0]
    assert run.instances.oom_kills[0] == len(kills) and run.instances.host_oom_kills[0] == 0


def test_memory_high_slows_growth_and_the_cpu_before_memory_max_kills() -> None:
    spec = container(1, 64 * MiB, memory_high=100 * MiB, memory_max=200 * MiB, start_s=0)
    run = run1(Instance(spec, Workload(1.0, 0, leak=10 * MiB), name="leak"), duration=60, memory_high_slowdown=0.25)
    s = run.traces["leak"]
    assert s.at(5)["memory"] == 50 * MiB and s.at(5)["cpu"] == 1.0
    assert s.at(20)["memory"] == pytest.approx(100 * MiB + 0.25 * 100 * MiB)  # slowed above memory.high
    assert s.at(20)["cpu"] == 0.25
    assert s.at(20)["throttled"] > 0
    assert s.oom_kills[-1] >= 1 and s.memory.max() <= 200 * MiB  # 100 + 0.25 * 10 t > 200 at t = 51


def test_a_host_out_of_memory_kills_the_largest_usage_over_request() -> None:
    host = Host(cores=4, memory=16 * GiB, reserved_memory=0, max_pods=None)
    cache = Instance(container(0.1, 0, start_s=0, overhead=0), Workload(0.1, 8 * GiB), name="cache")
    leaker = Instance(container(0.1, 4 * GiB, start_s=0, overhead=0), Workload(0.1, 4 * GiB, leak=100 * MiB), name="leaker")
    run = run1(cache, leaker, host=host, duration=100)
    # At 16 GiB: the cache is 8 GiB over its request of 0, the leaker 4 GiB over its 4 GiB.
    kills = run.instances.host_oom_kills
    assert kills[0] >= 1 and kills[1] == 0
    first = int(np.argmax(np.diff(run.traces["cache"].oom_kills))) + 1
    assert run.traces["cache"].t[first] == 41.0  # 4 GiB + 100 MiB/s passes 8 GiB at 41 s
    assert run.traces["cache"].memory[first] == 0 and run.traces["leaker"].memory[first] > 8 * GiB
    alone = run1(Instance(container(0.1, 4 * GiB, start_s=0, overhead=0, memory_max=6 * GiB),
                          Workload(0.1, 4 * GiB, leak=100 * MiB)), cache, host=host, duration=120)
    assert alone.instances.host_oom_kills.tolist() == [0, 0] and alone.instances.oom_kills[0] >= 1


def test_a_vm_guest_oom_keeps_the_vm_a_host_oom_reboots_it() -> None:
    guest = Instance(vm(1, GiB, boot_s=0, guest_os=128 * MiB, overhead=0), Workload(0.1, 0, leak=100 * MiB), name="g")
    run = run1(guest, duration=30)
    assert run.instances.oom_kills[0] >= 1 and run.instances.host_oom_kills[0] == 0
    assert run.traces["g"].memory.max() <= GiB  # the guest's RAM: its high-water mark stays


def test_pids_max_counts_failed_forks() -> None:
    spec = container(0.1, 64 * MiB, pids_max=10, start_s=0)
    run = run1(Instance(spec, Workload(0.1, 0, pids=50), name="bomb"), duration=10)
    assert run.traces["bomb"].pids.max() == 10 and run.instances.fork_failures_s[0] == 10


# -- fleet series and metrics ----------------------------------------------------------------


def test_idle_hosts_are_switched_off_and_draw_nothing() -> None:
    hosts = [Host(cores=4, memory=16 * GiB)] * 3
    insts = [Instance(container(1, GiB, start_s=0), Workload(cpu=1.0, memory=0))]
    on = simulate(hosts, insts, duration=10, power_off_idle=False, jitter=0)
    off = simulate(hosts, insts, duration=10, jitter=0)
    assert on.active_hosts[5] == 3 and off.active_hosts[5] == 1
    busy = 86 + (117 - 86) * 0.25
    assert off.power_w[5] == pytest.approx(busy) and on.power_w[5] == pytest.approx(busy + 2 * 86)
    assert off.metrics().energy_kwh == pytest.approx(busy * 10 / 3.6e6)
    assert off.capacity_cpu[5] == 4 and on.capacity_cpu[5] == 12


def test_idle_waste_is_reserved_minus_in_use() -> None:
    spec = vm(1, 4 * GiB, boot_s=0, overhead=0, guest_os=128 * MiB)
    run = run1(Instance(spec, Workload(0.1, GiB)), duration=3600, dt=60)
    assert run.metrics().idle_waste_gib_h == pytest.approx(3.0)  # 4 GiB reserved, 1 GiB used, 1 h


def test_the_same_seed_gives_the_same_run() -> None:
    insts = [Instance(container(0.2, 128 * MiB), Workload(0.3, 100 * MiB, noise=0.3, cpu_profile=diurnal(period=600)))
             for _ in range(40)]
    a = simulate([HOST] * 2, insts, duration=300, seed=7)
    b = simulate([HOST] * 2, insts, duration=300, seed=7)
    c = simulate([HOST] * 2, insts, duration=300, seed=8)
    assert np.array_equal(a.used_cpu, b.used_cpu) and a.metrics() == b.metrics()
    assert not np.array_equal(a.used_cpu, c.used_cpu)


def test_results_are_read_only() -> None:
    run = run1(Instance(container()), duration=5)
    with pytest.raises(ValueError):
        run.used_cpu[0] = 1
    with pytest.raises(ValueError):
        run.traces[next(iter(run.traces))].cpu[0] = 1


def test_blocks_do_not_change_the_result() -> None:
    insts = [Instance(container(0.2, 128 * MiB, memory_max=300 * MiB), Workload(0.5, 100 * MiB, noise=0.2, leak=MiB))
             for _ in range(10)]
    a = simulate([HOST], insts, duration=500, seed=3, block_elements=10 * 37)
    b = simulate([HOST], insts, duration=500, seed=3)
    assert np.allclose(a.used_cpu, b.used_cpu) and np.allclose(a.used_memory, b.used_memory)
    assert a.instances.oom_kills.tolist() == b.instances.oom_kills.tolist()


# -- the fast path is the dense path ---------------------------------------------------------

_specs = st.one_of(
    st.builds(lambda m, b, s: vm(1, m * GiB, boot_s=b, balloon=s), st.integers(1, 4), st.sampled_from([0, 5, 44.2]),
              st.booleans()),
    st.builds(lambda m: microvm(1, m * 256 * MiB), st.integers(1, 4)),
    st.builds(lambda r, cap, hi, mx, p: container(r, 128 * MiB, cpu_max=cap, memory_high=hi, memory_max=mx,
                                                 pids_max=p),
              st.sampled_from([0.1, 0.5, 1.0]), st.sampled_from([None, 1.0, 2.0]),
              st.sampled_from([None, 512 * MiB]), st.sampled_from([None, 768 * MiB, 2 * GiB]),
              st.sampled_from([None, 5])),
)
_loads = st.builds(
    lambda cpu, mem, prof, mprof, noise, leak, arrival, duration: Workload(
        cpu, mem * MiB, cpu_profile=prof, memory_profile=mprof, noise=noise, leak=leak * MiB, arrival=arrival,
        duration=duration, pids=3),
    st.sampled_from([0.1, 0.5, 1.0, 3.0]), st.sampled_from([64, 300, 900]),
    st.sampled_from([flat(), diurnal(period=400), step(200, 1.0, 3.0)]),
    st.sampled_from([flat(), diurnal(period=300, trough=0.3), step(300, 0.5, 1.0)]), st.sampled_from([0.0, 0.3]),
    st.sampled_from([0.0, 0.0, 5.0]), st.sampled_from([0.0, 0.0, 100.0, 350.0]),
    st.sampled_from([math.inf, math.inf, 150.0]),
)



@given(st.lists(st.builds(Instance, _specs, _loads), min_size=1, max_size=14), st.integers(1, 3),
       st.sampled_from(["first-fit", "best-fit", "worst-fit"]), st.integers(0, 3), st.booleans())
def test_the_fast_path_agrees_with_every_instance_at_every_tick(instances: list[Instance], n_hosts: int, policy: str,
                                                              seed: int, off: bool) -> None:
    hosts = [Host(cores=4, memory=4 * GiB, max_pods=None)] * n_hosts
    options = {"duration": 600.0, "dt": 2.0, "policy": policy, "seed": seed, "power_off_idle": off,
               "block_elements": 64 * len(instances)}
    fast = simulate(hosts, instances, **options)  # type: ignore[arg-type]
    dense = simulate(hosts, instances, fast=False, **options)  # type: ignore[arg-type]
    for name in ("capacity_cpu", "capacity_memory", "reserved_cpu", "reserved_memory", "used_cpu", "used_memory",
                 "in_use_memory", "idle_memory", "demand_cpu", "unmet_cpu", "active_hosts", "power_w"):
        assert np.allclose(getattr(fast, name), getattr(dense, name), rtol=1e-9, atol=1e-6), name
    for name in ("oom_kills", "host_oom_kills", "throttled_s", "unmet_cpu_s", "served_cpu_s", "fork_failures_s",
                 "peak_memory"):
        assert np.allclose(getattr(fast.instances, name), getattr(dense.instances, name), atol=1e-6), name


def test_a_host_oom_kills_a_vms_hypervisor_and_the_vm_boots_again() -> None:
    host = Host(cores=4, memory=6 * GiB, reserved_memory=0, ram_overcommit=2.5, max_pods=None)
    spec = vm(1, 6 * GiB, boot_s=5, overhead=100 * MiB, guest_os=100 * MiB)
    big = Instance(spec, Workload(0.1, GiB, leak=100 * MiB), name="big")
    small = Instance(spec, Workload(0.1, GiB), name="small")
    run = run1(big, small, host=host, duration=90, restart_backoff=10)
    s = run.traces["big"]
    kill = int(np.argmax(np.diff(s.oom_kills))) + 1
    assert run.instances.host_oom_kills.tolist() == [1, 0] and run.instances.oom_kills.tolist() == [0, 0]
    assert s.memory[kill - 1] > 4.5 * GiB  # its past stays as it was
    assert s.memory[kill] == 0 and s.memory[kill + 9] == 0  # no hypervisor during the back-off
    assert s.memory[kill + 10] == 200 * MiB  # booting again: overhead + guest OS, its touched pages gone
    assert s.cpu[kill + 10] == 0 and s.cpu[kill + 16] > 0  # runs again after 5 s of boot


def test_a_host_packed_to_its_reservations_never_runs_out() -> None:
    host = Host(cores=64, memory=256 * GiB, ram_overcommit=1.0, max_pods=None)
    spec = container(0.25, 256 * MiB)  # admission books the request and the shim
    count = density(host, spec).count
    assert count == int((256 * GiB - host.reserved_memory) // (256 * MiB + spec.overhead))
    run = simulate([host], [Instance(spec, Workload(0.05, 256 * MiB))] * count, duration=30)
    assert run.metrics().host_oom_kills == 0 and run.metrics().rejected == 0


def test_a_tick_longer_than_a_minute() -> None:
    insts = [Instance(container(), Workload(noise=0.2)) for _ in range(3)]
    a = simulate([Host()], insts, duration=1200, dt=120)
    b = simulate([Host()], insts, duration=1200, dt=120, fast=False)
    assert len(a.t) == 10 and np.allclose(a.used_cpu, b.used_cpu)


# -- found in review ---------------------------------------------------------------------------

def test_a_vm_killed_twice_in_one_block_keeps_its_past_and_the_run_ends() -> None:
    host = Host(cores=8, memory=4 * GiB, reserved_memory=0, ram_overcommit=3.0, max_pods=None)
    big = Instance(vm(1, 6 * GiB, boot_s=0), Workload(0.0, 64 * MiB, leak=20 * MiB), name="big")
    crash = Instance(microvm(1, 768 * MiB), Workload(0.5, 1500 * MiB), name="crash")  # over its RAM at every start
    run = simulate([host], [big, crash], duration=600, dt=2.5, jitter=0)  # used to loop forever
    assert run.instances.host_oom_kills.sum() >= 1 and run.instances.oom_kills[1] >= 1


def test_a_trace_does_not_change_with_what_comes_later() -> None:
    v = Instance(vm(1, 2 * GiB, boot_s=0, guest_os=256 * MiB, overhead=100 * MiB), Workload(0.1, GiB, leak=100 * MiB),
                 name="v")
    short = simulate([HOST], [v], duration=8, trace=["v"], jitter=0).traces["v"]
    long = simulate([HOST], [v], duration=20, trace=["v"], jitter=0).traces["v"]
    assert np.array_equal(short.memory, long.memory[:8])
    assert short.memory[5] == 100 * MiB + 256 * MiB + GiB + 5 * 100 * MiB  # overhead + guest OS + high-water mark


def test_traces_cover_every_tick_and_refuse_what_they_cannot_key() -> None:
    late = Instance(container(), Workload(arrival=50, duration=20), name="late")
    never = Instance(container(), Workload(arrival=100), name="never")
    for elements in (1 << 21, 10):
        run = simulate([HOST], [late, never], duration=60, trace=["late", "never"], block_elements=elements)
        assert len(run.traces["late"].t) == len(run.traces["never"].t) == 60
        assert run.traces["never"].memory.max() == 0
    for refs in ("late", [0, "late", 0.5]):
        with pytest.raises(InvalidSpecError):
            simulate([HOST], [late], duration=10, trace=refs)  # type: ignore[arg-type]
    with pytest.raises(InvalidSpecError, match="more than one traced instance is called late"):
        simulate([HOST], [late, late], duration=10, trace=True)


def test_idle_waste_is_counted_instance_by_instance() -> None:
    over = Instance(container(0.1, 1 * GiB, overhead=0, start_s=0), Workload(0, 3 * GiB))  # above its request
    idle = Instance(container(0.1, 3 * GiB, overhead=0, start_s=0), Workload(0, 1 * GiB))  # 2 GiB idle
    both = simulate([HOST], [over, idle], duration=3600, dt=60, jitter=0).metrics().idle_waste_gib_h
    alone = simulate([HOST], [idle], duration=3600, dt=60, jitter=0).metrics().idle_waste_gib_h
    assert both == pytest.approx(alone) == pytest.approx(2.0, rel=0.02)


def test_what_arrives_after_the_end_is_not_counted() -> None:
    run = simulate([HOST], [Instance(container()), Instance(container(), Workload(arrival=500))], duration=60)
    m = run.metrics()
    assert (m.instances, m.admitted, m.rejected) == (2, 1, 0)


def test_a_long_life_resets_the_back_off() -> None:
    spec = container(0.1, 64 * MiB, memory_max=100 * MiB, start_s=0)
    slow = Instance(spec, Workload(0.1, 0, leak=0.15 * MiB), name="slow")  # passes 100 MiB after ~667 s
    run = simulate([HOST], [slow], duration=2400, dt=1, restart_backoff=10, jitter=0, trace=True)
    kills = run.traces["slow"].t[np.nonzero(np.diff(run.traces["slow"].oom_kills))[0] + 1]
    assert len(kills) >= 2 and np.all(np.diff(kills) < 667 + 10 + 2)  # every back-off is the first one, 10 s


@pytest.mark.parametrize("make", [
    lambda: Host(cores=True),
    lambda: Host(power_max_w=float("nan")),
    lambda: Host(max_pods=2.5),  # type: ignore[arg-type]
    lambda: ContainerSpec(weight=True),
    lambda: step("x"),  # type: ignore[arg-type]
    lambda: step(float("nan")),
    lambda: step(10, 1, float("inf")),
    lambda: diurnal(period=float("inf")),
    lambda: Instance(container(), name=5),  # type: ignore[arg-type]
    lambda: Workload(duration="5"),  # type: ignore[arg-type]
])
def test_more_bad_specs_are_refused(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidSpecError):
        make()


@pytest.mark.parametrize("options", [{"duration": 10.5}, {"seed": -1}, {"seed": None}, {"block_elements": 2.5}])
def test_more_bad_run_arguments(options: dict[str, object]) -> None:
    with pytest.raises(InvalidSpecError):
        simulate([HOST], [Instance(container())], **{"duration": 10, **options})  # type: ignore[arg-type]
    assert len(simulate([HOST], [Instance(container())], duration=np.int64(10), dt=np.float32(0.5)).t) == 20


def _random_fleet(seed: int) -> tuple[list[Host], list[Instance], dict[str, object]]:
    """Bigger and stranger fleets than the strategy above: overcommitted RAM, page sharing,
    weights, recorded profiles, leaks into limits, late arrivals, many small blocks."""
    rng = np.random.default_rng(seed)
    profiles = [flat(), flat(0.5), diurnal(period=float(rng.choice([300, 900])), trough=0.2),
                step(float(rng.choice([100, 400])), 0.5, 2.0), trace(rng.random(20) * 2, dt=37.0)]
    instances = []
    for i in range(int(rng.integers(1, 40))):
        kind = rng.integers(0, 3)
        if kind == 0:
            spec: VMSpec | ContainerSpec = vm(int(rng.integers(1, 5)), int(rng.integers(1, 9)) * GiB,
                                              boot_s=float(rng.choice([0, 3, 44.2])), balloon=bool(rng.random() < .3),
                                              page_sharing=float(rng.choice([0, 0, 0.5, 0.9])))
        elif kind == 1:
            spec = microvm(int(rng.integers(1, 3)), int(rng.integers(1, 5)) * 256 * MiB,
                           page_sharing=float(rng.choice([0, 0.65])))
        else:
            request = int(rng.choice([0, 64, 256, 1024])) * MiB
            high = None if rng.random() < .5 else request + int(rng.choice([128, 512])) * MiB
            top = None if rng.random() < .5 else (high or request) + int(rng.choice([1, 256, 1024])) * MiB
            spec = container(float(rng.choice([0, 0.1, 0.5, 1.0])), request, weight=float(rng.choice([1, 100, 10000])),
                             cpu_max=None if rng.random() < .5 else float(rng.choice([1.0, 3.0])),
                             memory_high=high, memory_max=top, pids_max=None if rng.random() < .7 else 3)
        load = Workload(float(rng.choice([0, 0.1, 0.5, 2, 6])), int(rng.choice([0, 64, 300, 900, 3000])) * MiB,
                        cpu_profile=profiles[rng.integers(0, 5)], memory_profile=profiles[rng.integers(0, 5)],
                        noise=float(rng.choice([0, 0.3])), leak=float(rng.choice([0, 0, 1, 20])) * MiB,
                        arrival=float(rng.choice([0, 0, 13.3, 250])), duration=float(rng.choice([math.inf, 77, 600])),
                        pids=int(rng.integers(0, 6)))
        instances.append(Instance(spec, load))
    hosts = [Host(cores=float(rng.choice([2, 8, 64])), memory=int(rng.choice([4, 16, 64])) * GiB,
                  ram_overcommit=float(rng.choice([1, 1.5, 3])), max_pods=None) for _ in range(int(rng.integers(1, 5)))]
    dt = float(rng.choice([1.0, 2.5, 61.0]))
    options = {"duration": dt * int(rng.choice([200, 400])), "dt": dt, "seed": seed,
               "policy": str(rng.choice(["first-fit", "best-fit", "worst-fit"])),
               "power_off_idle": bool(rng.random() < .7), "block_elements": int(rng.integers(1, 40)) * len(instances)}
    return hosts, instances, options


@pytest.mark.timeout(300)
@given(st.integers(0, 2**31))
def test_the_fast_path_agrees_on_random_fleets(seed: int) -> None:
    hosts, instances, options = _random_fleet(seed)
    fast = simulate(hosts, instances, **options)  # type: ignore[arg-type]
    dense = simulate(hosts, instances, fast=False, **options)  # type: ignore[arg-type]
    for name in ("used_cpu", "used_memory", "in_use_memory", "idle_memory", "unmet_cpu", "power_w", "active_hosts"):
        assert np.allclose(getattr(fast, name), getattr(dense, name), rtol=1e-9, atol=1e-3), name
    for name in ("oom_kills", "host_oom_kills", "throttled_s", "unmet_cpu_s", "peak_memory"):
        assert np.allclose(getattr(fast.instances, name), getattr(dense.instances, name), atol=1e-3), name

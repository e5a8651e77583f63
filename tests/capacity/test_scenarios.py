"""The six teaching scenarios reproduce the reference's expected outcomes (vm-vs-container.md)."""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable
from typing import Any

import pytest

from sim.capacity import GiB, Host, MiB, container, vm
from sim.capacity.defaults import value
from sim.capacity.scenarios import (
    ALL,
    ScenarioResult,
    consolidation_power,
    flash_crowd,
    idle_waste_day,
    noisy_neighbour,
    overcommit_sweep,
    same_service,
)
from sim.errors import InvalidSpecError

_CACHE: dict[str, ScenarioResult] = {}


def default(name: str) -> ScenarioResult:
    """Each scenario with its defaults, run once per test session."""
    if name not in _CACHE:
        _CACHE[name] = ALL[name]()
    return _CACHE[name]


def test_all_lists_the_six_and_is_read_only() -> None:
    assert list(ALL) == ["same_service", "flash_crowd", "noisy_neighbour", "overcommit_sweep", "idle_waste_day",
                         "consolidation_power"]
    with pytest.raises(TypeError):
        ALL["x"] = same_service  # type: ignore[index]


@pytest.mark.parametrize("name", list(ALL))
def test_result_is_frozen_and_complete(name: str) -> None:
    r = default(name)
    assert r.name == name and r.claim and r.runs and r.outcome
    assert any("\u4e00" <= ch <= "\u9fff" for ch in r.title) and any(ch.isascii() and ch.isalpha() for ch in r.title)
    assert all(isinstance(v, float) for v in r.outcome.values())
    assert r.parameters["seed"] == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.outcome["x"] = 1.0  # type: ignore[index]


def test_same_service_vms_hit_memory_containers_several_times_denser() -> None:
    r = default("same_service")
    o, t = r.outcome, r.table
    assert t["limited_by"][t["kind"].index("vm")] == "memory"
    assert o["container_count"] >= 3 * o["vm_count"]
    assert o["vm_count"] < o["microvm_count"] < o["container_count"]
    assert o["container_count_max_pods"] == value("max_pods")  # kubelet's default would cap them
    # A VM reserves what it was given; the host holds far less; a container holds what it reserved.
    assert o["vm_held_gib"] < 0.25 * o["vm_reserved_gib"]
    assert o["container_held_gib"] > 0.9 * o["container_reserved_gib"]
    for kind in ("vm", "microvm", "container"):
        assert o[f"{kind}_host_oom_kills"] == 0 and o[f"{kind}_unmet_fraction"] < 0.01


def test_flash_crowd_vm_window_is_its_boot_time_others_none() -> None:
    o = default("flash_crowd").outcome
    boot = value("vm_boot_s")
    assert o["vm_initial_ready_s"] < o["at"]  # the window is the new VMs' boot, not the first ones'
    assert 0.7 * boot <= o["vm_window_s"] <= 1.5 * boot
    assert o["container_window_s"] < 1.0 and o["microvm_window_s"] < 1.0
    assert o["vm_unmet_core_s"] > 50 * max(o["container_unmet_core_s"], o["microvm_unmet_core_s"])


def test_noisy_neighbour_four_cases() -> None:
    o = default("noisy_neighbour").outcome
    # weights: uses idle CPU, yields to a fair share when the neighbour wants it
    assert o["weights_hog_cpu_alone"] > 3.5
    assert o["weights_hog_cpu_contended"] == pytest.approx(2.0, abs=0.05)
    assert o["weights_neighbour_cpu_contended"] == pytest.approx(2.0, abs=0.05)
    # cpu.max: held to its quota although cores sit idle, and throttled
    assert o["quota_hog_cpu"] == pytest.approx(1.0, abs=0.01)
    assert o["quota_idle_cores"] > 2.5 and o["quota_throttled_s"] > 0
    # memory.high slows it first, memory.max kills it, it restarts, the neighbours are untouched
    assert o["limits_slowed_at_s"] < o["limits_first_kill_s"] < math.inf
    assert o["limits_oom_kills"] >= 1 and o["limits_restarted"] == 1.0 and o["limits_neighbour_kills"] == 0
    # no memory.max: the host OOM killer takes the neighbour with the largest usage - request
    assert o["host_oom_first_victim_is_neighbour"] == 1.0 and o["host_oom_neighbour_kills"] >= 1
    r = default("noisy_neighbour")
    assert set(r.runs["limits"].traces) == {"leaker", "neighbour 1", "neighbour 2"}


def test_overcommit_sweep_ram_cliff_long_before_cpu() -> None:
    r = default("overcommit_sweep")
    o, t = r.outcome, r.table
    assert o["ram_cliff_ratio"] < o["cpu_break_ratio"] < math.inf
    assert o["cpu_break_ratio"] >= 4 * o["ram_cliff_ratio"]
    kills = t["ram_host_oom_kills"]
    i = t["ram_ratio"].index(o["ram_cliff_ratio"])
    assert i > 0 and kills[i - 1] == 0 and kills[i] > 0  # a cliff: 0, then kills
    assert sum(t["cpu_host_oom_kills"]) == 0  # CPU squeezes, memory does not
    unmet = t["cpu_unmet_fraction"]
    assert all(b >= a - 0.01 for a, b in zip(unmet, unmet[1:]))  # gradual
    for sweep in ("ram", "cpu"):
        hosts, energy = t[f"{sweep}_hosts"], t[f"{sweep}_energy_kwh"]
        assert hosts[-1] < hosts[0] and energy[-1] < energy[0]
        assert all(b <= a + 1e-9 for a, b in zip(hosts, hosts[1:]))
    assert t["cpu_cpu_utilisation"][-1] > t["cpu_cpu_utilisation"][0]
    assert t["ram_memory_utilisation"][t["ram_ratio"].index(o["ram_cliff_ratio"]) - 1] > t["ram_memory_utilisation"][0]


def test_idle_waste_vms_waste_most_containers_recover_it() -> None:
    o = default("idle_waste_day").outcome
    assert o["vm_waste_fraction"] > 0.5
    assert o["container_waste_gib_h"] < 0.5 * o["vm_waste_gib_h"]
    assert o["recovered_fraction"] > 0.5
    assert o["container_oom_kills"] == 0 and o["vm_rejected"] == o["container_rejected"] == 0


def test_consolidation_switching_off_beats_raising_utilisation() -> None:
    o = default("consolidation_power").outcome
    assert o["idle_peak_ratio"] == pytest.approx(value("power_idle_w") / value("power_max_w"))
    assert 0.7 < o["idle_peak_ratio"] < 0.76
    assert o["packed_off_kwh"] < 0.5 * o["spread_kwh"]
    assert o["saving_off"] > 0.5 and abs(o["saving_on"]) < 0.02
    assert o["packed_off_hosts"] < o["spread_hosts"]
    assert o["efficiency_off"] > o["efficiency_raised"] > 1


# -- determinism ---------------------------------------------------------------------------------

FAST: dict[str, dict[str, Any]] = {
    "same_service": {"duration": 60.0},
    "flash_crowd": {"duration": 120.0},
    "noisy_neighbour": {"duration": 120.0},
    "overcommit_sweep": {"ram_ratios": (1.0, 1.5), "cpu_ratios": (1.0, 8.0), "duration": 7200.0},
    "idle_waste_day": {"services": 5},
    "consolidation_power": {"duration": 7200.0, "hosts": 8, "instances": 8},
}


@pytest.mark.parametrize("name", list(ALL))
def test_same_seed_same_outcome(name: str) -> None:
    fn = ALL[name]
    assert fn(seed=3, **FAST[name]).outcome == fn(seed=3, **FAST[name]).outcome


def test_a_different_seed_may_differ() -> None:
    a, b = flash_crowd(seed=1), flash_crowd(seed=2)
    assert a.outcome["vm_initial_ready_s"] != b.outcome["vm_initial_ready_s"]  # boot jitter is drawn
    assert a.outcome["container_window_s"] < 1 and b.outcome["container_window_s"] < 1


# -- overrides move outcomes the expected way ----------------------------------------------------

def test_overrides_move_the_outcome() -> None:
    capped = same_service(host=Host(cores=64, memory=256 * GiB, ram_overcommit=1.0), duration=30.0)
    assert capped.outcome["container_count"] == value("max_pods")
    assert capped.table["limited_by"][2] == "max_pods"

    ec2 = flash_crowd(vm_spec=vm(1, 2 * GiB, boot_s=value("vm_boot_ec2_s")), duration=200.0)
    assert ec2.outcome["vm_window_s"] > default("flash_crowd").outcome["vm_window_s"] + 30

    ballooned = idle_waste_day(balloon=True)
    assert ballooned.outcome["vm_held_waste_gib_h"] < 0.5 * default("idle_waste_day").outcome["vm_held_waste_gib_h"]
    at_peak = idle_waste_day(request_fraction=0.8)
    assert at_peak.outcome["container_waste_gib_h"] > default("idle_waste_day").outcome["container_waste_gib_h"]

    light = overcommit_sweep(memory_peak=0.3, cpu_ratios=(1.0, 2.0))
    assert light.outcome["ram_cliff_ratio"] > default("overcommit_sweep").outcome["ram_cliff_ratio"]

    no_leak = noisy_neighbour(memory_max=4 * GiB, duration=120.0)
    assert no_leak.outcome["limits_oom_kills"] == 0

    flat_power = consolidation_power(host=Host(cores=32, memory=128 * GiB, cpu_overcommit=1.0, ram_overcommit=1.0,
                                               power_idle_w=10.0, power_max_w=117.0), duration=7200.0)
    assert flat_power.outcome["saving_off"] < default("consolidation_power").outcome["saving_off"]


# -- bad parameters fail before anything is simulated --------------------------------------------

BAD: list[tuple[Callable[..., ScenarioResult], dict[str, Any]]] = [
    (same_service, {"host": "big"}),
    (same_service, {"memory": -1}),
    (same_service, {"vm_spec": container()}),
    (same_service, {"memory": 8 * GiB}),  # does not fit in the VM
    (same_service, {"dt": 0}),
    (flash_crowd, {"replicas": 0}),
    (flash_crowd, {"at": 500.0}),
    (flash_crowd, {"threshold": 2.0}),
    (noisy_neighbour, {"quota": 0}),
    (noisy_neighbour, {"memory_high": 2 * GiB, "memory_max": 1 * GiB}),
    (noisy_neighbour, {"greedy_memory": 15 * GiB}),
    (overcommit_sweep, {"ram_ratios": (2.0, 1.0)}),
    (overcommit_sweep, {"cpu_ratios": (1.0,)}),
    (overcommit_sweep, {"memory_peak": 1.5}),
    (overcommit_sweep, {"dt": float("nan")}),
    (idle_waste_day, {"trough": 0.9}),
    (idle_waste_day, {"request_fraction": 2.0}),
    (idle_waste_day, {"balloon": "yes"}),
    (consolidation_power, {"instances": 1000}),
    (consolidation_power, {"raise_factor": 0.5}),
]


@pytest.mark.parametrize(("fn", "kwargs"), BAD, ids=[f"{fn.__name__}-{next(iter(kw))}" for fn, kw in BAD])
def test_bad_parameters_raise_before_simulating(fn: Callable[..., ScenarioResult], kwargs: dict[str, Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*args: object, **kw: object) -> None:
        raise AssertionError("simulated before checking its parameters")

    # Each scenario calls the ``simulate`` of the module it is defined in (sim.capacity._scenarios_*).
    monkeypatch.setattr(sys.modules[fn.__module__], "simulate", must_not_run)
    with pytest.raises(InvalidSpecError):
        fn(**kwargs)


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        same_service(nonsense=1)  # type: ignore[call-arg]


def test_mib_sizes_are_whole_bytes() -> None:
    assert default("same_service").parameters["memory"] == 256 * MiB

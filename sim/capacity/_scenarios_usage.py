"""使用情况 usage: how a fleet follows its demand over time (scenarios 2 and 6 of
:mod:`sim.capacity.scenarios`).
"""

from __future__ import annotations

import math

import numpy as np

from sim.capacity._scenario import (
    ScenarioResult,
    check_any_spec,
    check_count,
    check_host,
    check_number,
    check_spec,
    check_timing,
    guest_room,
    require,
)
from sim.capacity._simulate import simulate
from sim.capacity.defaults import GiB, MiB
from sim.capacity.profiles import diurnal
from sim.capacity.run import Run
from sim.capacity.specs import (
    KIND_ORDER,
    ContainerSpec,
    Host,
    Instance,
    Spec,
    VMSpec,
    Workload,
    container,
    microvm,
    vm,
)

__all__ = ["flash_crowd", "consolidation_power"]


# -- 2. flash crowd ------------------------------------------------------------------------------

def flash_crowd(*, seed: int = 0, replicas: int = 8, at: float = 60.0, host: Host | None = None,
                vm_spec: VMSpec | None = None, microvm_spec: VMSpec | None = None,
                container_spec: ContainerSpec | None = None, memory: int = 256 * MiB, threshold: float = 0.01,
                duration: float = 180.0, dt: float = 0.25) -> ScenarioResult:
    """A service of ``replicas`` busy replicas (1 core each) whose demand doubles at ``at`` s.

    The initial replicas arrive at t=0 (a VM boots in ~44 s, before ``at``); at ``at`` as many
    new ones arrive and their demand counts from that moment (a load balancer sends them the new
    traffic; until they run, it is unmet).  Each kind runs alone on ``host`` (default ``Host()``).
    Replicas: ``vm(1, 2 GiB)`` (boot ``vm_boot_s``), ``microvm(1, 512 MiB)``,
    ``container(1, 512 MiB, cpu_max=1)``.  ``dt`` resolves sub-second starts.

    ``outcome`` per kind: ``{kind}_window_s`` seconds after ``at`` during which the unmet demand
    exceeds ``threshold`` of the demand; ``{kind}_unmet_core_s`` core-seconds unmet after ``at``;
    ``{kind}_start_s`` the spec's published start time; ``{kind}_initial_ready_s`` when the last
    initial replica was running (must be before ``at`` for the window to be the new ones')."""
    replicas = check_count("replicas", replicas)
    duration, dt = check_timing(duration, dt)
    at = check_number("at", at, high=duration - dt)
    host = check_host("host", host if host is not None else Host())
    check_count("memory", memory)
    threshold = check_number("threshold", threshold, high=1.0)
    specs: dict[str, Spec] = {
        "vm": check_spec("vm_spec", vm_spec if vm_spec is not None else vm(1, 2 * GiB), VMSpec, "vm"),
        "microvm": check_spec("microvm_spec", microvm_spec if microvm_spec is not None else microvm(1, 512 * MiB), VMSpec,
                         "microvm"),
        "container": check_spec("container_spec", container_spec if container_spec is not None else
                           container(1.0, 512 * MiB, cpu_max=1.0), ContainerSpec, "container"),
    }
    for kind, spec in specs.items():
        require(memory <= guest_room(spec), f"the replica's {memory} bytes do not fit in the {kind} spec")
    outcome: dict[str, float] = {"at": at}
    runs: dict[str, Run] = {}
    for kind in KIND_ORDER:
        first = [Instance(specs[kind], Workload(cpu=1.0, memory=memory), name=f"{kind} {i}") for i in range(replicas)]
        extra = [Instance(specs[kind], Workload(cpu=1.0, memory=memory, arrival=at), name=f"{kind} +{i}")
                 for i in range(replicas)]
        run = simulate([host], first + extra, duration=duration, dt=dt, seed=seed)
        runs[kind] = run
        after = run.t >= at - 1e-9
        short = run.unmet_cpu[after] > threshold * np.maximum(run.demand_cpu[after], 1e-12)
        outcome[f"{kind}_window_s"] = float(short.sum() * dt)
        outcome[f"{kind}_unmet_core_s"] = float(run.unmet_cpu[after].sum() * dt)
        outcome[f"{kind}_start_s"] = specs[kind].start_s
        outcome[f"{kind}_initial_ready_s"] = float(np.nanmax(run.instances.start_latency[:replicas]))
    return ScenarioResult(
        name="flash_crowd",
        title=f"使用情况 usage: 突发流量 flash crowd (demand doubles at t={at:g} s)",
        claim="VMs show an unmet-demand window about their boot time; containers and microVMs almost none.",
        outcome=outcome, runs=runs,
        parameters={"seed": seed, "replicas": replicas, "at": at, "host": host, "memory": memory,
                    "threshold": threshold, "duration": duration, "dt": dt,
                    **{f"{k}_spec": s for k, s in specs.items()}},
    )


# -- 6. consolidation and power ------------------------------------------------------------------

_POWER_CASES = (("spread, all on", "spread", "worst-fit", False, False),
                ("packed, all on", "packed_on", "first-fit", False, False),
                ("packed, idle off", "packed_off", "first-fit", True, False),
                ("best-fit, idle off", "best_fit_off", "best-fit", True, False),
                ("more work, all on", "raised_on", "worst-fit", False, True))


def consolidation_power(*, seed: int = 0, hosts: int = 20, host: Host | None = None, instances: int = 40,
                        spec: Spec | None = None, cpu_use: float = 1.5, raise_factor: float = 2.0,
                        memory: int = 4 * GiB, duration: float = 86_400.0, dt: float = 60.0) -> ScenarioResult:
    """A light load (``instances`` x ``spec``, default ``vm(4, 8 GiB)`` using ``cpu_use`` cores on
    average at a day's peak, a cosine down to a quarter) on ``hosts`` x ``host`` (default 32
    cores, 128 GiB, no overcommit, so packing never starves anyone; power idle/max from
    ``power_idle_w``/``power_max_w``), five ways:

    - ``spread``: worst-fit, every host on (the load spread thin);
    - ``packed_on``: first-fit, every host on -- utilisation raised on the hosts that carry the
      load, the empty ones idling;
    - ``packed_off`` and ``best_fit_off``: first- / best-fit, the empty hosts switched off;
    - ``raised_on``: spread with every host on, each instance doing ``raise_factor`` times the
      work -- utilisation raised on hosts that stay on.

    ``outcome`` per case key: ``{key}_kwh`` energy, ``{key}_hosts`` mean hosts on,
    ``{key}_cpu_utilisation``, ``{key}_wh_per_core_h`` energy per core-hour of work served;
    ``idle_peak_ratio`` (idle / full power of ``host``); ``saving_off`` and ``saving_on``: the
    energy saved relative to ``spread`` by switching off vs by packing with all hosts on;
    ``efficiency_off`` and ``efficiency_raised``: how many times less energy per core-hour than
    ``spread`` switching off and raising utilisation give."""
    hosts = check_count("hosts", hosts)
    host = check_host("host", host if host is not None else
                 Host(cores=32, memory=128 * GiB, cpu_overcommit=1.0, ram_overcommit=1.0))
    instances = check_count("instances", instances)
    spec = check_any_spec("spec", spec if spec is not None else vm(4, 8 * GiB))
    cpu_use = check_number("cpu_use", cpu_use)
    raise_factor = check_number("raise_factor", raise_factor, low=1.0, strict=False)
    check_count("memory", memory)
    duration, dt = check_timing(duration, dt)
    require(memory <= guest_room(spec), "memory does not fit in the spec")
    require(instances * spec.cpu_request <= hosts * host.admissible_cpu + 1e-9
             and instances * spec.reserved_memory <= hosts * host.admissible_memory + 1e-9,
             "the pool of hosts cannot admit every instance")
    day = diurnal(1.0, 0.25)
    runs: dict[str, Run] = {}
    o: dict[str, float] = {}
    for label, key, policy, off, raised in _POWER_CASES:
        work = Workload(cpu=cpu_use * (raise_factor if raised else 1.0), memory=memory, cpu_profile=day)
        run = simulate([host] * hosts, [Instance(spec, work)] * instances, duration=duration, dt=dt, seed=seed,
                       policy=policy, power_off_idle=off)
        runs[label] = run
        m = run.metrics()
        served_core_h = float(run.used_cpu.sum() * dt / 3600.0)
        o[f"{key}_kwh"], o[f"{key}_hosts"], o[f"{key}_cpu_utilisation"] = m.energy_kwh, m.mean_active_hosts, m.cpu_utilisation
        o[f"{key}_wh_per_core_h"] = 1000.0 * m.energy_kwh / served_core_h if served_core_h else math.inf
    o["idle_peak_ratio"] = host.power_idle_w / host.power_max_w if host.power_max_w else 1.0
    o["saving_off"] = 1.0 - o["packed_off_kwh"] / o["spread_kwh"]
    o["saving_on"] = 1.0 - o["packed_on_kwh"] / o["spread_kwh"]
    o["efficiency_off"] = o["spread_wh_per_core_h"] / o["packed_off_wh_per_core_h"]
    o["efficiency_raised"] = o["spread_wh_per_core_h"] / o["raised_on_wh_per_core_h"]
    return ScenarioResult(
        name="consolidation_power",
        title="使用情况 usage: 整合与能耗 consolidation and power",
        claim="Idle power is ~73% of peak, so switching hosts off beats raising utilisation on hosts that stay on.",
        outcome=o, runs=runs,
        parameters={"seed": seed, "hosts": hosts, "host": host, "instances": instances, "spec": spec,
                    "cpu_use": cpu_use, "raise_factor": raise_factor, "memory": memory, "duration": duration,
                    "dt": dt},
        table={"case": tuple(c[0] for c in _POWER_CASES), "key": tuple(c[1] for c in _POWER_CASES),
               "energy_kwh": tuple(o[f"{c[1]}_kwh"] for c in _POWER_CASES),
               "hosts": tuple(o[f"{c[1]}_hosts"] for c in _POWER_CASES),
               "wh_per_core_h": tuple(o[f"{c[1]}_wh_per_core_h"] for c in _POWER_CASES)},
    )

"""资源 resources: what one host or a pool admits and holds (scenarios 1, 4 and 5 of
:mod:`sim.capacity.scenarios`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from sim.capacity._scenario import (
    ScenarioResult,
    check_count,
    check_host,
    check_number,
    check_spec,
    check_timing,
    gib,
    guest_room,
    require,
)
from sim.capacity._simulate import simulate
from sim.capacity.defaults import GiB, MiB, value
from sim.capacity.placement import density
from sim.capacity.profiles import diurnal, trace
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

__all__ = ["same_service", "overcommit_sweep", "idle_waste_day"]


# -- 1. same service, three packages ------------------------------------------------------------

def same_service(*, seed: int = 0, host: Host | None = None, cpu_use: float = 0.05, memory: int = 256 * MiB,
                 vm_spec: VMSpec | None = None, microvm_spec: VMSpec | None = None,
                 container_spec: ContainerSpec | None = None, max_pods: int = int(value("max_pods")),
                 duration: float = 300.0, dt: float = 1.0) -> ScenarioResult:
    """One service (``memory`` working set, ``cpu_use`` cores on average) packaged as VMs, microVMs
    and containers; how many copies one ``host`` admits and what it holds once packed.

    Defaults: ``Host(cores=64, memory=256 GiB, ram_overcommit=1.0, max_pods=None)`` -- no memory
    overcommit, so each kind is admitted on memory the host really has (overcommit is scenario
    4's subject); CPU at Nova's 16x, because a vCPU is not a core; ``max_pods=None`` because
    kubelet's default ``--max-pods`` (``max_pods``, 110) would cap the containers long before
    anything else -- ``outcome["container_count_max_pods"]`` reports that capped number too.
    ``vm(2, 4 GiB)``, ``microvm(1, 512 MiB)``, ``container(0.25, memory)``: admission books a
    container's request and its shim (``reserved_memory``), as a VM's RAM and its hypervisor,
    so a host packed to its reservations holds no more than it has.  The service
    requests 0.25 cores but uses ``cpu_use`` on average, as a mostly idle service does, so the
    packed hosts are limited by admission, not by CPU contention.

    ``outcome``: ``{kind}_count`` copies admitted (``table["limited_by"]`` says what ran out),
    ``container_per_vm`` density ratio, and after ``duration`` s packed: ``{kind}_reserved_gib``,
    ``{kind}_held_gib`` (what the host holds), ``{kind}_in_use_gib`` (what the service uses),
    ``{kind}_unmet_fraction`` (of CPU demand, once every copy runs), ``{kind}_host_oom_kills``."""
    host = check_host("host", host if host is not None else
                 Host(cores=64, memory=256 * GiB, ram_overcommit=1.0, max_pods=None))
    check_number("cpu_use", cpu_use, strict=False)
    check_count("memory", memory)
    check_count("max_pods", max_pods)
    duration, dt = check_timing(duration, dt)
    specs: dict[str, Spec] = {
        "vm": check_spec("vm_spec", vm_spec if vm_spec is not None else vm(2, 4 * GiB), VMSpec, "vm"),
        "microvm": check_spec("microvm_spec", microvm_spec if microvm_spec is not None else microvm(1, 512 * MiB), VMSpec,
                         "microvm"),
        "container": check_spec("container_spec", container_spec if container_spec is not None else
                           container(0.25, memory), ContainerSpec, "container"),
    }
    for kind, spec in specs.items():
        require(memory <= guest_room(spec), f"the service's {memory} bytes do not fit in the {kind} spec")
    work = Workload(cpu=cpu_use, memory=memory)
    packed = {kind: density(host, spec) for kind, spec in specs.items()}
    capped = density(replace(host, max_pods=max_pods), specs["container"])

    outcome: dict[str, float] = {}
    runs: dict[str, Run] = {}
    for kind in KIND_ORDER:
        d = packed[kind]
        run = simulate([host], [Instance(specs[kind], work)] * d.count, duration=duration, dt=dt, seed=seed)
        runs[kind] = run
        m = run.metrics()
        outcome[f"{kind}_count"] = d.count
        outcome[f"{kind}_reserved_gib"] = gib(run.reserved_memory[-1])
        outcome[f"{kind}_held_gib"] = gib(run.used_memory[-1])
        outcome[f"{kind}_in_use_gib"] = gib(run.in_use_memory[-1])
        # Once every copy runs: a VM's 44 s boot is unmet demand too, but that is scenario 2's subject.
        running = run.t >= np.nanmax(run.instances.start_latency) + dt
        demand = float(run.demand_cpu[running].sum())
        outcome[f"{kind}_unmet_fraction"] = float(run.unmet_cpu[running].sum()) / demand if demand else 0.0
        outcome[f"{kind}_host_oom_kills"] = m.host_oom_kills
    outcome["container_per_vm"] = packed["container"].count / max(1, packed["vm"].count)
    outcome["container_count_max_pods"] = capped.count
    return ScenarioResult(
        name="same_service",
        title="资源 resources: 同一服务打包成虚拟机、微虚拟机、容器 one service as VMs, microVMs, containers",
        claim="VMs hit memory first; containers reach several times their density; microVMs fall in between.",
        outcome=outcome, runs=runs,
        parameters={"seed": seed, "host": host, "cpu_use": cpu_use, "memory": memory, "max_pods": max_pods,
                    "duration": duration, "dt": dt, **{f"{k}_spec": s for k, s in specs.items()}},
        table={"kind": KIND_ORDER, "count": tuple(packed[k].count for k in KIND_ORDER),
               "limited_by": tuple(packed[k].limited_by for k in KIND_ORDER),
               "cpu_reserved": tuple(packed[k].cpu_reserved for k in KIND_ORDER),
               "memory_reserved": tuple(packed[k].memory_reserved for k in KIND_ORDER)},
    )



# -- 4. overcommit sweep -------------------------------------------------------------------------

_SWEEP_COLUMNS = ("hosts", "energy_kwh", "cpu_utilisation", "memory_utilisation", "unmet_fraction",
                  "host_oom_kills", "rejected")


def _sweep_row(run: Run) -> tuple[float, ...]:
    m = run.metrics()
    return (m.mean_active_hosts, m.energy_kwh, m.cpu_utilisation, m.memory_utilisation, m.unmet_fraction,
            float(m.host_oom_kills), float(m.rejected))


def overcommit_sweep(*, seed: int = 0, hosts: int = 24, host: Host | None = None, vms: int = 96,
                     memory_vm: VMSpec | None = None, cpu_vm: VMSpec | None = None,
                     ram_ratios: Sequence[float] = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0),
                     cpu_ratios: Sequence[float] = (1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0),
                     fixed_cpu_ratio: float = value("cpu_overcommit"), fixed_ram_ratio: float = 1.0,
                     memory_peak: float = 0.7, cpu_peak: float = 0.125, noise: float = 0.2, sla: float = 0.01,
                     duration: float = 21_600.0, dt: float = 60.0) -> ScenarioResult:
    """``vms`` VMs placed first-fit on a pool of ``hosts`` copies of ``host`` (default 32 cores,
    128 GiB), the RAM overcommit ratio swept over ``ram_ratios`` (CPU at ``fixed_cpu_ratio``,
    Nova's 16) and, separately, the CPU ratio over ``cpu_ratios`` (RAM at ``fixed_ram_ratio``).

    Every VM's memory grows over the day toward ``memory_peak`` of its RAM (a guest keeps what it
    touched: its high-water mark only rises); its CPU follows a day's cosine peaking at
    ``cpu_peak`` of its vCPUs, with ``noise``.  Each sweep uses a VM shape that makes the swept
    resource the one admission runs out of: ``memory_vm`` = ``vm(2, 8 GiB)`` for RAM,
    ``cpu_vm`` = ``vm(8, 1 GiB)`` for CPU (with a single shape one of the sweeps would only
    measure the other resource).

    ``table``: per ratio (``ram_ratio``/``cpu_ratio``) the columns ``ram_hosts``,
    ``ram_energy_kwh``, ``ram_cpu_utilisation``, ``ram_memory_utilisation``,
    ``ram_unmet_fraction``, ``ram_host_oom_kills``, ``ram_rejected`` and the same with ``cpu_``.
    ``outcome``: ``ram_cliff_ratio`` the first RAM ratio with a host OOM kill, ``cpu_break_ratio``
    the first CPU ratio whose unmet CPU exceeds ``sla`` of demand (``inf``: none), their hosts and
    energy at 1.0 and at the largest ratio, and ``cpu_host_oom_kills`` (total over the CPU sweep)."""
    hosts = check_count("hosts", hosts)
    host = check_host("host", host if host is not None else Host(cores=32, memory=128 * GiB))
    vms = check_count("vms", vms)
    ram_spec = check_spec("memory_vm", memory_vm if memory_vm is not None else vm(2, 8 * GiB), VMSpec, "vm")
    cpu_spec = check_spec("cpu_vm", cpu_vm if cpu_vm is not None else vm(8, 1 * GiB), VMSpec, "vm")
    ram = tuple(check_number("ram_ratios[]", r) for r in ram_ratios)
    cpu = tuple(check_number("cpu_ratios[]", r) for r in cpu_ratios)
    require(len(ram) >= 2 and len(cpu) >= 2, "each sweep needs at least two ratios")
    require(list(ram) == sorted(set(ram)) and list(cpu) == sorted(set(cpu)), "ratios must be increasing")
    fixed_cpu_ratio = check_number("fixed_cpu_ratio", fixed_cpu_ratio)
    fixed_ram_ratio = check_number("fixed_ram_ratio", fixed_ram_ratio)
    memory_peak = check_number("memory_peak", memory_peak, high=1.0)
    cpu_peak = check_number("cpu_peak", cpu_peak, high=1.0)
    noise = check_number("noise", noise, strict=False)
    sla = check_number("sla", sla, high=1.0)
    duration, dt = check_timing(duration, dt)
    for name, spec in (("memory_vm", ram_spec), ("cpu_vm", cpu_spec)):
        require(memory_peak * spec.memory <= guest_room(spec), f"memory_peak overflows {name}'s guest RAM")
    ramp = trace(np.linspace(0.2, 1.0, 97), dt=duration / 96)  # the high-water mark climbs all day
    day = diurnal(1.0, 0.25, period=duration, peak_at=duration / 2)

    def fleet(spec: VMSpec) -> list[Instance]:
        work = Workload(cpu=cpu_peak * spec.vcpus, memory=int(memory_peak * spec.memory), cpu_profile=day,
                        memory_profile=ramp, noise=noise)
        return [Instance(spec, work)] * vms

    runs: dict[str, Run] = {}
    columns: dict[str, list[Any]] = {"ram_ratio": list(ram), "cpu_ratio": list(cpu)}
    for sweep, ratios, spec in (("ram", ram, ram_spec), ("cpu", cpu, cpu_spec)):
        for r in ratios:
            h = replace(host, ram_overcommit=r, cpu_overcommit=fixed_cpu_ratio) if sweep == "ram" else \
                replace(host, cpu_overcommit=r, ram_overcommit=fixed_ram_ratio)
            run = simulate([h] * hosts, fleet(spec), duration=duration, dt=dt, seed=seed, policy="first-fit")
            runs[f"{sweep} x{r:g}"] = run
            for col, v in zip(_SWEEP_COLUMNS, _sweep_row(run)):
                columns.setdefault(f"{sweep}_{col}", []).append(v)

    def first(ratios: tuple[float, ...], hit: list[bool]) -> float:
        return next((r for r, h in zip(ratios, hit) if h), math.inf)

    o: dict[str, float] = {
        "ram_cliff_ratio": first(ram, [k > 0 for k in columns["ram_host_oom_kills"]]),
        "cpu_break_ratio": first(cpu, [u > sla for u in columns["cpu_unmet_fraction"]]),
        "cpu_host_oom_kills": float(sum(columns["cpu_host_oom_kills"])),
    }
    for sweep in ("ram", "cpu"):
        for end, i in (("first", 0), ("last", -1)):
            o[f"{sweep}_hosts_{end}"] = columns[f"{sweep}_hosts"][i]
            o[f"{sweep}_energy_kwh_{end}"] = columns[f"{sweep}_energy_kwh"][i]
            o[f"{sweep}_unmet_fraction_{end}"] = columns[f"{sweep}_unmet_fraction"][i]
    return ScenarioResult(
        name="overcommit_sweep",
        title="资源 resources: 超分比例 overcommit sweep (RAM vs CPU)",
        claim=("Utilisation rises, hosts and energy fall, then the SLA breaks suddenly; the RAM cliff comes long "
               "before the CPU one (CPU squeezes, memory does not)."),
        outcome=o, runs=runs,
        parameters={"seed": seed, "hosts": hosts, "host": host, "vms": vms, "memory_vm": ram_spec, "cpu_vm": cpu_spec,
                    "ram_ratios": ram, "cpu_ratios": cpu, "fixed_cpu_ratio": fixed_cpu_ratio,
                    "fixed_ram_ratio": fixed_ram_ratio, "memory_peak": memory_peak, "cpu_peak": cpu_peak,
                    "noise": noise, "sla": sla, "duration": duration, "dt": dt},
        table={k: tuple(v) for k, v in columns.items()},
    )


# -- 5. a day of idle waste ----------------------------------------------------------------------

def idle_waste_day(*, seed: int = 0, services: int = 40, vm_spec: VMSpec | None = None, peak: float = 0.8,
                   trough: float = 0.1, request_fraction: float | None = None, balloon: bool = False,
                   host: Host | None = None, hosts: int = 2, duration: float = 86_400.0,
                   dt: float = 60.0) -> ScenarioResult:
    """``services`` services over a day whose memory and CPU follow a cosine from ``trough`` to
    ``peak`` of what a VM (``vm_spec``, default ``vm(2, 4 GiB)``) is given.

    VMs are sized for peak (the VM itself); containers request the day's mean (or
    ``request_fraction`` of the VM's memory and vCPUs) and are limited at peak
    (``memory.max``, ``cpu.max``).  ``balloon`` gives the VMs a balloon (they hold what is in use,
    though admission still reserves all of it).  Each kind runs alone on ``hosts`` x ``host``
    (default 96 cores, 256 GiB: the peak fits in one host uncontended).

    ``outcome`` per kind: ``{kind}_waste_gib_h`` the integral of reserved minus in-use memory
    (:meth:`Run.metrics`' idle waste), ``{kind}_waste_fraction`` of the reserved GiB·h,
    ``{kind}_held_waste_gib_h`` held minus in use (what the host could have used otherwise);
    ``recovered_fraction`` = 1 - container waste / VM waste; ``container_oom_kills``."""
    services = check_count("services", services)
    given = check_spec("vm_spec", vm_spec if vm_spec is not None else vm(2, 4 * GiB), VMSpec, "vm")
    peak = check_number("peak", peak, high=1.0)
    trough = check_number("trough", trough, strict=False, high=peak)
    require(isinstance(balloon, bool), "balloon must be True or False")
    host = check_host("host", host if host is not None else Host(cores=96, memory=256 * GiB))
    hosts = check_count("hosts", hosts)
    duration, dt = check_timing(duration, dt)
    require(peak * given.memory <= guest_room(given), "the peak does not fit in the VM's guest RAM")
    mean = (peak + trough) / 2
    fraction = mean if request_fraction is None else check_number("request_fraction", request_fraction, high=peak)
    shape = diurnal(1.0, trough / peak)
    work = Workload(cpu=peak * given.vcpus, memory=int(peak * given.memory), cpu_profile=shape,
                    memory_profile=shape)
    box = container(fraction * given.vcpus, int(fraction * given.memory), cpu_max=peak * given.vcpus,
                    memory_max=int(math.ceil(peak * given.memory)))
    specs: dict[str, Spec] = {"vm": replace(given, balloon=balloon), "container": box}
    runs = {kind: simulate([host] * hosts, [Instance(spec, work)] * services, duration=duration, dt=dt, seed=seed)
            for kind, spec in specs.items()}
    o: dict[str, float] = {}
    hours = dt / 3600.0
    for kind, run in runs.items():
        m = run.metrics()
        reserved = float(run.reserved_memory.sum() * hours / GiB)
        o[f"{kind}_waste_gib_h"] = m.idle_waste_gib_h
        o[f"{kind}_waste_fraction"] = m.idle_waste_gib_h / reserved if reserved else 0.0
        o[f"{kind}_held_waste_gib_h"] = float(np.clip(run.used_memory - run.in_use_memory, 0, None).sum()
                                              * hours / GiB)
        o[f"{kind}_rejected"] = m.rejected
    o["recovered_fraction"] = 1.0 - o["container_waste_gib_h"] / o["vm_waste_gib_h"] if o["vm_waste_gib_h"] else 0.0
    o["container_oom_kills"] = runs["container"].metrics().oom_kills
    return ScenarioResult(
        name="idle_waste_day",
        title=f"资源 resources: 一天的闲置浪费 a day of idle waste (peak {peak:.0%}, trough {trough:.0%})",
        claim="VMs sized for peak waste most of their reserved memory; containers with requests at the mean "
              "recover most of it.",
        outcome=o, runs=runs,
        parameters={"seed": seed, "services": services, "vm_spec": given, "peak": peak, "trough": trough,
                    "request_fraction": fraction, "balloon": balloon, "host": host, "hosts": hosts,
                    "duration": duration, "dt": dt, "container_spec": box},
    )

"""The chapter's six teaching scenarios (``docs/vm-vs-container.md``, the reference's expected outcomes).

Each function builds hosts and instances, runs :func:`~sim.capacity.simulate` and returns a
:class:`ScenarioResult`: the claim it illustrates, the numbers that show it (``outcome``), the
runs behind them and every parameter it used.  All are deterministic for their ``seed``; every
parameter is a keyword with a default from :data:`~sim.capacity.defaults.DEFAULTS` where one
exists, and every parameter is checked (:class:`~sim.errors.InvalidSpecError`) before anything
is simulated.  Each runs in well under a second or two, so tests and notebooks can call them.

=====================  =====================================================================
``same_service``       one service as VMs, microVMs, containers on one host: density, memory
``flash_crowd``        demand doubles at t=60 s: unmet-demand window ~ start time
``noisy_neighbour``    weights, ``cpu.max``, ``memory.high``/``memory.max``, host OOM killer
``overcommit_sweep``   RAM and CPU overcommit ratios: the RAM cliff comes long before the CPU one
``idle_waste_day``     a day at 80% peak / 10% trough: VMs sized for peak vs containers at mean
``consolidation_power`` switching idle hosts off vs raising utilisation on hosts that stay on
=====================  =====================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np

from sim.capacity._engine import simulate
from sim.capacity.defaults import GiB, MiB, value
from sim.capacity.placement import density
from sim.capacity.profiles import diurnal, step, trace
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
from sim.errors import InvalidSpecError

__all__ = ["ScenarioResult", "same_service", "flash_crowd", "noisy_neighbour", "overcommit_sweep",
           "idle_waste_day", "consolidation_power", "ALL"]


def _ro(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class ScenarioResult:
    """What one scenario showed.

    ``name`` is the function's name (what :func:`sim.capacity.plots.figure` dispatches on);
    ``title`` Chinese + English; ``claim`` the reference's expected outcome in one sentence;
    ``outcome`` the numbers that check it (floats; ``inf`` where something never happened);
    ``runs`` the simulations behind it, by label; ``parameters`` every input, defaults filled in;
    ``table`` the columns a figure or a reader's table needs (name -> tuple, equal lengths within
    one group of columns).  All mappings are read-only."""

    name: str
    title: str
    claim: str
    outcome: Mapping[str, float]
    runs: Mapping[str, Run]
    parameters: Mapping[str, object]
    table: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", _ro({k: float(v) for k, v in self.outcome.items()}))
        object.__setattr__(self, "runs", _ro(self.runs))
        object.__setattr__(self, "parameters", _ro(self.parameters))
        object.__setattr__(self, "table", _ro({k: tuple(v) for k, v in self.table.items()}))


# -- checks: every one runs before any simulation ------------------------------------------------

def _require(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidSpecError(message)


def _number(name: str, v: object, *, low: float = 0.0, strict: bool = True, high: float = math.inf) -> float:
    if (not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)
            or not (v > low if strict else v >= low) or v > high):
        raise InvalidSpecError(f"{name} must be a finite number {'>' if strict else '>='} {low}"
                               f"{'' if high == math.inf else f' and <= {high}'}, not {v!r}")
    return float(v)


def _count(name: str, v: object, *, low: int = 1) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise InvalidSpecError(f"{name} must be a whole number >= {low}, not {v!r}")
    return v


def _host(name: str, v: object) -> Host:
    if not isinstance(v, Host):
        raise InvalidSpecError(f"{name} must be a Host, not {type(v).__name__}")
    return v


S = TypeVar("S", VMSpec, ContainerSpec)


def _spec(name: str, v: object, cls: type[S], kind: str) -> S:
    if not isinstance(v, cls) or v.kind != kind:
        raise InvalidSpecError(f"{name} must be a {kind} spec ({cls.__name__}), not {v!r}")
    return v


def _any_spec(name: str, v: object) -> Spec:
    if not isinstance(v, (VMSpec, ContainerSpec)):
        raise InvalidSpecError(f"{name} must be a VMSpec or ContainerSpec, not {type(v).__name__}")
    return v


def _timing(duration: object, dt: object) -> tuple[float, float]:
    d, step_ = _number("duration", duration), _number("dt", dt)
    _require(step_ <= d, f"dt ({step_}) must not exceed duration ({d})")
    return d, step_


def _gib(x: float) -> float:
    return x / GiB


def _guest_room(spec: Spec) -> float:
    """Memory a workload can use inside the instance before its own OOM kill."""
    if isinstance(spec, VMSpec):
        return float(spec.memory - spec.guest_os)
    return float(spec.memory_max) if spec.memory_max is not None else math.inf


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
    host = _host("host", host if host is not None else
                 Host(cores=64, memory=256 * GiB, ram_overcommit=1.0, max_pods=None))
    _number("cpu_use", cpu_use, strict=False)
    _count("memory", memory)
    _count("max_pods", max_pods)
    duration, dt = _timing(duration, dt)
    specs: dict[str, Spec] = {
        "vm": _spec("vm_spec", vm_spec if vm_spec is not None else vm(2, 4 * GiB), VMSpec, "vm"),
        "microvm": _spec("microvm_spec", microvm_spec if microvm_spec is not None else microvm(1, 512 * MiB), VMSpec,
                         "microvm"),
        "container": _spec("container_spec", container_spec if container_spec is not None else
                           container(0.25, memory), ContainerSpec, "container"),
    }
    for kind, spec in specs.items():
        _require(memory <= _guest_room(spec), f"the service's {memory} bytes do not fit in the {kind} spec")
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
        outcome[f"{kind}_reserved_gib"] = _gib(run.reserved_memory[-1])
        outcome[f"{kind}_held_gib"] = _gib(run.used_memory[-1])
        outcome[f"{kind}_in_use_gib"] = _gib(run.in_use_memory[-1])
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
    replicas = _count("replicas", replicas)
    duration, dt = _timing(duration, dt)
    at = _number("at", at, high=duration - dt)
    host = _host("host", host if host is not None else Host())
    _count("memory", memory)
    threshold = _number("threshold", threshold, high=1.0)
    specs: dict[str, Spec] = {
        "vm": _spec("vm_spec", vm_spec if vm_spec is not None else vm(1, 2 * GiB), VMSpec, "vm"),
        "microvm": _spec("microvm_spec", microvm_spec if microvm_spec is not None else microvm(1, 512 * MiB), VMSpec,
                         "microvm"),
        "container": _spec("container_spec", container_spec if container_spec is not None else
                           container(1.0, 512 * MiB, cpu_max=1.0), ContainerSpec, "container"),
    }
    for kind, spec in specs.items():
        _require(memory <= _guest_room(spec), f"the replica's {memory} bytes do not fit in the {kind} spec")
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


# -- 3. noisy neighbour --------------------------------------------------------------------------

def _mean_between(series_t: np.ndarray, values: np.ndarray, lo: float, hi: float) -> float:
    window = (series_t >= lo) & (series_t < hi)
    return float(values[window].mean()) if window.any() else 0.0


def noisy_neighbour(*, seed: int = 0, host: Host | None = None, busy_at: float = 60.0, quota: float = 1.0,
                    leak: float = 20 * MiB, memory_high: int = 1 * GiB, memory_max: int = 3 * GiB // 2,
                    host_leak: float = 64 * MiB, greedy_memory: int = 6 * GiB, leaker_request: int = 4 * GiB,
                    duration: float = 240.0, dt: float = 0.5) -> ScenarioResult:
    """Containers on one small ``host`` (default 4 cores, 16 GiB), four cases, each its own run:

    - ``weights``: a CPU hog (wants every core) and a neighbour idle until ``busy_at`` s, then
      wanting 2 cores; equal ``cpu.weight``.  The hog uses the idle CPU, then yields to a fair share.
    - ``quota``: the same hog with ``cpu.max`` = ``quota`` cores on an otherwise idle host: held
      to its quota, and throttled (the kernel's ``throttled_time``) although cores sit idle.
    - ``limits``: a service leaking ``leak`` bytes/s with ``memory_high`` and ``memory_max``, next
      to two steady neighbours: slowed at memory.high, OOM-killed at memory.max, restarted after
      the back-off (``restart_backoff_s``); the neighbours are never touched.
    - ``host_oom``: no memory.max anywhere: a leaker (request ``leaker_request``, leaking
      ``host_leak`` bytes/s), a neighbour with request 0 using ``greedy_memory`` and a steady one.
      When the host runs out, the kernel kills the largest usage minus request: the neighbour.

    ``outcome``: ``weights_hog_cpu_alone``/``_contended``, ``weights_neighbour_cpu_contended``,
    ``weights_neighbour_unmet_core_s``; ``quota_hog_cpu``, ``quota_idle_cores``,
    ``quota_throttled_s``; ``limits_slowed_at_s`` (first stall at memory.high),
    ``limits_first_kill_s``, ``limits_oom_kills``, ``limits_restarted`` (1 if it ran again),
    ``limits_neighbour_kills``; ``host_oom_first_kill_s``, ``host_oom_neighbour_kills``,
    ``host_oom_leaker_kills``, ``host_oom_first_victim_is_neighbour`` (1.0 or 0.0).  Every run
    keeps each instance's :class:`~sim.capacity.UsageSeries` in ``run.traces``."""
    host = _host("host", host if host is not None else Host(cores=4, memory=16 * GiB))
    duration, dt = _timing(duration, dt)
    busy_at = _number("busy_at", busy_at, high=duration - dt)
    quota = _number("quota", quota, high=host.cores)
    _number("leak", leak)
    _number("host_leak", host_leak)
    _count("memory_high", memory_high)
    _count("memory_max", memory_max)
    _count("greedy_memory", greedy_memory)
    _count("leaker_request", leaker_request, low=0)
    _require(256 * MiB <= memory_high <= memory_max, "need 256 MiB <= memory_high <= memory_max")
    room = host.memory - host.reserved_memory
    _require(greedy_memory + 3 * GiB < room, "greedy_memory leaves no room for the leaker on this host")

    hog_work = Workload(cpu=float(host.cores), memory=128 * MiB)
    cases: dict[str, list[Instance]] = {
        "weights": [Instance(container(0.5, 256 * MiB), hog_work, name="hog"),
                    Instance(container(0.5, 256 * MiB),
                             Workload(cpu=2.0, memory=128 * MiB, cpu_profile=step(busy_at, 0.05, 1.0)),
                             name="neighbour")],
        "quota": [Instance(container(min(0.5, quota), 256 * MiB, cpu_max=quota), hog_work, name="hog"),
                  Instance(container(0.5, 256 * MiB), Workload(cpu=0.1, memory=128 * MiB), name="neighbour")],
        "limits": [Instance(container(0.25, 256 * MiB, memory_high=memory_high, memory_max=memory_max),
                            Workload(cpu=0.2, memory=256 * MiB, leak=leak), name="leaker")] +
                  [Instance(container(0.5, 1 * GiB), Workload(cpu=0.5, memory=768 * MiB), name=f"neighbour {i}")
                   for i in (1, 2)],
        "host_oom": [Instance(container(0.5, leaker_request), Workload(cpu=0.2, memory=1 * GiB, leak=host_leak),
                              name="leaker"),
                     Instance(container(0.25, 0), Workload(cpu=0.2, memory=greedy_memory), name="greedy neighbour"),
                     Instance(container(0.25, 2 * GiB), Workload(cpu=0.2, memory=2 * GiB), name="steady neighbour")],
    }
    runs = {case: simulate([host], fleet, duration=duration, dt=dt, seed=seed, trace=True)
            for case, fleet in cases.items()}

    o: dict[str, float] = {}
    hog, nb = runs["weights"].traces["hog"], runs["weights"].traces["neighbour"]
    settle = 2.0  # skip the start and the tick where the neighbour's demand steps
    o["weights_hog_cpu_alone"] = _mean_between(hog.t, hog.cpu, settle, busy_at)
    o["weights_hog_cpu_contended"] = _mean_between(hog.t, hog.cpu, busy_at + settle, duration)
    o["weights_neighbour_cpu_contended"] = _mean_between(nb.t, nb.cpu, busy_at + settle, duration)
    o["weights_neighbour_unmet_core_s"] = float(runs["weights"].instances.unmet_cpu_s[1])

    q = runs["quota"]
    qhog = q.traces["hog"]
    o["quota_hog_cpu"] = _mean_between(qhog.t, qhog.cpu, settle, duration)
    o["quota_idle_cores"] = float(host.cores - q.used_cpu[q.t >= settle].mean())
    o["quota_throttled_s"] = float(q.instances.throttled_s[0])

    lim = runs["limits"]
    leaker = lim.traces["leaker"]
    stalled = np.nonzero(np.diff(leaker.throttled, prepend=0.0) > 0)[0]
    killed = np.nonzero(leaker.oom_kills > 0)[0]
    o["limits_slowed_at_s"] = float(leaker.t[stalled[0]]) if len(stalled) else math.inf
    o["limits_first_kill_s"] = float(leaker.t[killed[0]]) if len(killed) else math.inf
    o["limits_oom_kills"] = float(lim.instances.oom_kills[0])
    o["limits_restarted"] = float(len(killed) > 0 and bool(np.any(leaker.memory[killed[0]:] > 0)))
    o["limits_neighbour_kills"] = float(lim.instances.oom_kills[1:].sum() + lim.instances.host_oom_kills.sum())

    ho = runs["host_oom"]
    first = {name: (float(s.t[np.argmax(s.oom_kills > 0)]) if np.any(s.oom_kills > 0) else math.inf)
             for name, s in ho.traces.items()}
    victim = min(first, key=lambda k: first[k])
    o["host_oom_first_kill_s"] = first[victim]
    o["host_oom_neighbour_kills"] = float(ho.instances.host_oom_kills[1])
    o["host_oom_leaker_kills"] = float(ho.instances.host_oom_kills[0])
    o["host_oom_first_victim_is_neighbour"] = float(math.isfinite(first[victim]) and victim != "leaker")
    return ScenarioResult(
        name="noisy_neighbour",
        title="架构 architecture: 吵闹的邻居 noisy neighbour (cpu.weight, cpu.max, memory.high/max, host OOM)",
        claim=("Weights let a CPU hog use idle CPU yet yield; cpu.max throttles it even on an idle host; a leak "
               "slows at memory.high and is OOM-killed at memory.max with neighbours safe; without memory.max "
               "the host OOM killer may kill a neighbour."),
        outcome=o, runs=runs,
        parameters={"seed": seed, "host": host, "busy_at": busy_at, "quota": quota, "leak": leak,
                    "memory_high": memory_high, "memory_max": memory_max, "host_leak": host_leak,
                    "greedy_memory": greedy_memory, "leaker_request": leaker_request,
                    "duration": duration, "dt": dt},
        table={"case": tuple(cases), "first_host_oom_victim": (victim if math.isfinite(first[victim]) else "",)},
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
    hosts = _count("hosts", hosts)
    host = _host("host", host if host is not None else Host(cores=32, memory=128 * GiB))
    vms = _count("vms", vms)
    ram_spec = _spec("memory_vm", memory_vm if memory_vm is not None else vm(2, 8 * GiB), VMSpec, "vm")
    cpu_spec = _spec("cpu_vm", cpu_vm if cpu_vm is not None else vm(8, 1 * GiB), VMSpec, "vm")
    ram = tuple(_number("ram_ratios[]", r) for r in ram_ratios)
    cpu = tuple(_number("cpu_ratios[]", r) for r in cpu_ratios)
    _require(len(ram) >= 2 and len(cpu) >= 2, "each sweep needs at least two ratios")
    _require(list(ram) == sorted(set(ram)) and list(cpu) == sorted(set(cpu)), "ratios must be increasing")
    fixed_cpu_ratio = _number("fixed_cpu_ratio", fixed_cpu_ratio)
    fixed_ram_ratio = _number("fixed_ram_ratio", fixed_ram_ratio)
    memory_peak = _number("memory_peak", memory_peak, high=1.0)
    cpu_peak = _number("cpu_peak", cpu_peak, high=1.0)
    noise = _number("noise", noise, strict=False)
    sla = _number("sla", sla, high=1.0)
    duration, dt = _timing(duration, dt)
    for name, spec in (("memory_vm", ram_spec), ("cpu_vm", cpu_spec)):
        _require(memory_peak * spec.memory <= _guest_room(spec), f"memory_peak overflows {name}'s guest RAM")
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
    services = _count("services", services)
    given = _spec("vm_spec", vm_spec if vm_spec is not None else vm(2, 4 * GiB), VMSpec, "vm")
    peak = _number("peak", peak, high=1.0)
    trough = _number("trough", trough, strict=False, high=peak)
    _require(isinstance(balloon, bool), "balloon must be True or False")
    host = _host("host", host if host is not None else Host(cores=96, memory=256 * GiB))
    hosts = _count("hosts", hosts)
    duration, dt = _timing(duration, dt)
    _require(peak * given.memory <= _guest_room(given), "the peak does not fit in the VM's guest RAM")
    mean = (peak + trough) / 2
    fraction = mean if request_fraction is None else _number("request_fraction", request_fraction, high=peak)
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
    hosts = _count("hosts", hosts)
    host = _host("host", host if host is not None else
                 Host(cores=32, memory=128 * GiB, cpu_overcommit=1.0, ram_overcommit=1.0))
    instances = _count("instances", instances)
    spec = _any_spec("spec", spec if spec is not None else vm(4, 8 * GiB))
    cpu_use = _number("cpu_use", cpu_use)
    raise_factor = _number("raise_factor", raise_factor, low=1.0, strict=False)
    _count("memory", memory)
    duration, dt = _timing(duration, dt)
    _require(memory <= _guest_room(spec), "memory does not fit in the spec")
    _require(instances * spec.cpu_request <= hosts * host.admissible_cpu + 1e-9
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


#: Every scenario by name (read-only): ``{name: fn(**overrides) -> ScenarioResult}``.
ALL: Mapping[str, Callable[..., ScenarioResult]] = MappingProxyType({
    fn.__name__: fn for fn in (same_service, flash_crowd, noisy_neighbour, overcommit_sweep, idle_waste_day,
                               consolidation_power)
})

"""What a simulation returns: time series of the whole fleet, per-instance totals, metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sim.capacity.defaults import GiB
from sim.capacity.series import FloatArray, UsageSeries, readonly
from sim.capacity.specs import Host

__all__ = ["Run", "InstanceTotals", "Metrics"]


@dataclass(frozen=True)
class InstanceTotals:
    """One entry per instance, in the order they were given.

    ``arrival`` seconds (as the workload says); ``host`` -1 means rejected (nowhere had room); ``start_latency`` seconds from arrival to
    running (NaN when rejected); ``oom_kills`` by its own limit (``memory.max`` / the guest's
    RAM), ``host_oom_kills`` by the host running out; ``throttled_s`` seconds it stood still
    because of ``cpu.max`` (a quota q for a demand d stalls it 1 - q/d of the time, as the
    kernel's ``throttled_time`` counts) or ``memory.high``; ``unmet_cpu_s`` core-seconds it wanted and did not get;
    ``fork_failures_s`` seconds during which it wanted more tasks than ``pids.max``;
    ``peak_memory`` the most host memory it held."""

    name: tuple[str, ...]
    kind: tuple[str, ...]
    arrival: FloatArray
    host: npt.NDArray[np.int64]
    start_latency: FloatArray
    oom_kills: npt.NDArray[np.int64]
    host_oom_kills: npt.NDArray[np.int64]
    throttled_s: FloatArray
    unmet_cpu_s: FloatArray
    served_cpu_s: FloatArray
    fork_failures_s: FloatArray
    peak_memory: FloatArray

    def __post_init__(self) -> None:
        for name in ("host", "oom_kills", "host_oom_kills"):
            object.__setattr__(self, name, readonly(getattr(self, name), np.int64))
        for name in ("arrival", "start_latency", "throttled_s", "unmet_cpu_s", "served_cpu_s", "fork_failures_s",
                     "peak_memory"):
            object.__setattr__(self, name, readonly(getattr(self, name)))

    def __len__(self) -> int:
        return len(self.name)


@dataclass(frozen=True)
class Metrics:
    """The numbers a run is judged by (see :meth:`Run.metrics`)."""

    instances: int
    admitted: int
    rejected: int
    start_latency_p50_s: float
    start_latency_p99_s: float
    idle_waste_gib_h: float
    unmet_cpu_core_h: float
    unmet_fraction: float
    throttled_s: float
    oom_kills: int
    host_oom_kills: int
    mean_active_hosts: float
    energy_kwh: float
    cpu_utilisation: float
    memory_utilisation: float


@dataclass(frozen=True)
class Run:
    """Fleet-wide series, one value per tick of ``dt`` seconds starting at ``t``.

    CPU in cores, memory in bytes, power in watts.  ``capacity_*`` counts the hosts that are on;
    ``reserved_*`` what admission booked; ``used_cpu`` what ran; ``used_memory`` what hosts
    hold for the instances (hypervisor and shim overheads, guest OS, a VM's high-water mark);
    ``in_use_memory`` what the workloads themselves use right now; ``idle_memory`` what
    instances reserved and do not use, summed instance by instance (each at least 0: one's
    overuse does not cancel another's idle memory); ``demand_cpu`` what the
    workloads wanted (including instances still starting, restarting or rejected) and
    ``unmet_cpu`` the part of it that did not run."""

    t: FloatArray
    dt: float
    hosts: tuple[Host, ...]
    policy: str
    seed: int
    capacity_cpu: FloatArray
    capacity_memory: FloatArray
    reserved_cpu: FloatArray
    reserved_memory: FloatArray
    used_cpu: FloatArray
    used_memory: FloatArray
    in_use_memory: FloatArray
    idle_memory: FloatArray
    demand_cpu: FloatArray
    unmet_cpu: FloatArray
    active_hosts: FloatArray
    power_w: FloatArray
    instances: InstanceTotals
    traces: Mapping[str, UsageSeries] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("t", "capacity_cpu", "capacity_memory", "reserved_cpu", "reserved_memory", "used_cpu",
                     "used_memory", "in_use_memory", "idle_memory", "demand_cpu", "unmet_cpu", "active_hosts", "power_w"):
            object.__setattr__(self, name, readonly(getattr(self, name)))
        object.__setattr__(self, "traces", dict(self.traces))

    @property
    def duration(self) -> float:
        return len(self.t) * self.dt

    def metrics(self) -> Metrics:
        """Start latencies (median, 99th percentile) of admitted instances; idle waste = the
        integral of each instance's reserved minus in-use memory, never below 0 (GiB·h); unmet
        CPU (core·h, and as a fraction of demand); totals of throttling and OOM kills; mean hosts
        on; energy (kWh); mean CPU and memory utilisation of the hosts that are on (used /
        capacity).  Only instances that arrive before the run ends count as admitted or rejected."""
        it = self.instances
        arrived = it.arrival < self.duration
        admitted = (it.host >= 0) & arrived
        lat = it.start_latency[admitted]
        hours = self.dt / 3600.0
        demand = float(self.demand_cpu.sum())
        on_cpu, on_mem = self.capacity_cpu > 0, self.capacity_memory > 0
        return Metrics(
            instances=len(it), admitted=int(admitted.sum()), rejected=int((arrived & (it.host < 0)).sum()),
            start_latency_p50_s=float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            start_latency_p99_s=float(np.percentile(lat, 99)) if len(lat) else float("nan"),
            idle_waste_gib_h=float(self.idle_memory.sum() * hours / GiB),
            unmet_cpu_core_h=float(self.unmet_cpu.sum() * hours),
            unmet_fraction=float(self.unmet_cpu.sum() / demand) if demand else 0.0,
            throttled_s=float(it.throttled_s.sum()),
            oom_kills=int(it.oom_kills.sum()), host_oom_kills=int(it.host_oom_kills.sum()),
            mean_active_hosts=float(self.active_hosts.mean()) if len(self.t) else 0.0,
            energy_kwh=float(self.power_w.sum() * self.dt / 3.6e6),
            cpu_utilisation=float(np.mean(self.used_cpu[on_cpu] / self.capacity_cpu[on_cpu])) if on_cpu.any() else 0.0,
            memory_utilisation=float(np.mean(self.used_memory[on_mem] / self.capacity_memory[on_mem]))
            if on_mem.any() else 0.0,
        )

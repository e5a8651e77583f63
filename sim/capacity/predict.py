"""The model's prediction of what the chapter then measures on this machine.

:func:`predict_hog` runs one :class:`~sim.capacity.hogs.Hog` in one container with ``docker run``'s
limits on a host the size of this machine and returns the same :class:`UsageSeries` that
``realrt.measure.measure_hog`` reads from the container's cgroup, so one plot overlays them.
:func:`predict_start` gives the model's :class:`StartMeasurement` for a VM, microVM or container
from the published defaults, next to which ``realrt.vm`` puts the measured starts.
"""

from __future__ import annotations

import os

import numpy as np

from sim.capacity._simulate import simulate
from sim.capacity.defaults import value
from sim.capacity.hogs import Hog
from sim.capacity.profiles import trace
from sim.capacity.series import KINDS, StartMeasurement, UsageSeries
from sim.capacity.specs import ContainerSpec, Host, Instance, Workload
from sim.containers.limits import Limits, host_cpus
from sim.errors import InvalidSpecError

__all__ = ["predict_hog", "predict_start", "this_host"]


def this_host() -> Host:
    """A :class:`Host` with this machine's CPUs and memory (no overcommit, nothing reserved)."""
    cores = host_cpus()  # what --cpus is checked against: the CPUs this process may run on
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return Host(cores=cores, memory=memory, cpu_overcommit=1.0, ram_overcommit=1.0, reserved_memory=0, max_pods=None)


def predict_hog(hog: Hog, limits: Limits | None = None, *, dt: float = 0.05, host: Host | None = None,
                duration: float | None = None) -> UsageSeries:
    """The hog's CPU, memory and tasks over time under ``limits``, as the model sees them.

    The container starts at 0 (its start latency is not part of the series, as the measured
    series starts at ``start()``), is charged only what its processes use (the cgroup does not
    see a shim), and is not restarted after an OOM kill (``docker run`` without ``--restart``).
    ``duration`` defaults to the hog's own plus one second."""
    if not isinstance(hog, Hog):
        raise InvalidSpecError(f"predict_hog needs a Hog, not {type(hog).__name__}")
    if not dt > 0:
        raise InvalidSpecError(f"dt must be > 0, not {dt}")
    span = hog.duration_s + 1.0 if duration is None else duration
    t = np.arange(0.0, span, dt)
    cpu, memory, tasks = hog.demand(t)
    spec = ContainerSpec.from_limits(limits or Limits(), cpu_request=0.0, memory_request=0, start_s=0.0, overhead=0)
    peak_cpu, peak_mem = max(float(cpu.max()), 1e-9), max(float(memory.max()), 1.0)
    load = Workload(cpu=peak_cpu, memory=int(peak_mem), cpu_profile=trace(cpu / peak_cpu, dt),
                    memory_profile=trace(memory / int(peak_mem), dt), pids=int(tasks.max()))
    never = 10.0 * span  # no restart inside the window
    run = simulate([host or this_host()], [Instance(spec, load, name=hog.label)], duration=span, dt=dt,
                   trace=[0], jitter=0.0, restart_backoff=never, restart_backoff_max=never)
    series = run.traces[hog.label]
    # Tasks follow the hog's own count (capped at pids.max), not the workload's constant peak.
    pids = np.minimum(np.where(series.memory > 0, tasks[:len(series.t)], 0.0), spec.pids_max or np.inf)
    return UsageSeries(label=f"model: {hog.label}", source="model", t=series.t, cpu=series.cpu,
                       memory=series.memory, throttled=series.throttled, pids=pids,
                       oom_kills=series.oom_kills, limits=series.limits)


def predict_start(kind: str, *, memory: int, guest_os: int | None = None) -> StartMeasurement:
    """The model's start of a ``kind`` ("vm", "microvm", "container") given ``memory`` bytes.

    Start time is the published median (:data:`DEFAULTS`); host memory held just after start is
    the hypervisor's overhead plus the guest OS for a VM (the workload has touched nothing yet;
    ``guest_os`` defaults to the spec's default, at most half of ``memory``),
    and nothing but the shim for a container.  ``reserved_bytes`` is what admission books."""
    if kind not in KINDS:
        raise InvalidSpecError(f"kind must be one of {KINDS}, not {kind!r}")
    if not (isinstance(memory, int) and memory > 0):
        raise InvalidSpecError(f"memory must be a whole number of bytes > 0, not {memory!r}")
    if kind == "container":
        return StartMeasurement(kind=kind, label="model: container", source="model",
                                start_s=value("container_start_s"), memory_bytes=int(value("container_overhead")),
                                reserved_bytes=memory, details={"source": "DEFAULTS container_start_s, container_overhead"})
    boot, overhead = (("vm_boot_s", "vm_overhead") if kind == "vm" else ("microvm_boot_s", "microvm_overhead"))
    # A guest smaller than the usual guest OS gets half its RAM for it (a busybox guest, say).
    guest = guest_os if guest_os is not None else min(int(value(f"{kind}_guest_os")), memory // 2)
    if not 0 <= guest < memory:
        raise InvalidSpecError("guest_os must be >= 0 and smaller than the VM's memory")
    return StartMeasurement(kind=kind, label=f"model: {kind}", source="model", start_s=value(boot),
                            memory_bytes=int(value(overhead)) + guest, reserved_bytes=memory + int(value(overhead)),
                            details={"source": f"DEFAULTS {boot}, {overhead}", "guest_os": guest})

"""架构 architecture: how the kernel's controls isolate neighbours on one host (scenario 3 of
:mod:`sim.capacity.scenarios`).
"""

from __future__ import annotations

import math

import numpy as np

from sim.capacity._scenario import (
    ScenarioResult,
    check_count,
    check_host,
    check_number,
    check_timing,
    require,
)
from sim.capacity._simulate import simulate
from sim.capacity.defaults import GiB, MiB
from sim.capacity.profiles import step
from sim.capacity.specs import (
    Host,
    Instance,
    Workload,
    container,
)

__all__ = ["noisy_neighbour"]


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
    host = check_host("host", host if host is not None else Host(cores=4, memory=16 * GiB))
    duration, dt = check_timing(duration, dt)
    busy_at = check_number("busy_at", busy_at, high=duration - dt)
    quota = check_number("quota", quota, high=host.cores)
    check_number("leak", leak)
    check_number("host_leak", host_leak)
    check_count("memory_high", memory_high)
    check_count("memory_max", memory_max)
    check_count("greedy_memory", greedy_memory)
    check_count("leaker_request", leaker_request, low=0)
    require(256 * MiB <= memory_high <= memory_max, "need 256 MiB <= memory_high <= memory_max")
    room = host.memory - host.reserved_memory
    require(greedy_memory + 3 * GiB < room, "greedy_memory leaves no room for the leaker on this host")

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

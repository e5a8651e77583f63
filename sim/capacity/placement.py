"""Where instances go: first-fit, best-fit and worst-fit on reservations, and start latencies.

Placement is decided when an instance arrives, against what is *reserved* on each host (a VM's
vCPUs and memory, a container's requests), never against what is used at that moment -- the way
OpenStack's scheduler and Kubernetes' admission work; a VM's hypervisor and a container's shim
are booked too, as ``reserved_memory``).  A host admits up to ``cores *
cpu_overcommit`` CPU and ``(memory - reserved_memory) * ram_overcommit`` memory, and at most
``max_pods`` containers.  What fits nowhere is rejected (its demand is unmet for its whole life).

- **first-fit**: the lowest-numbered host that fits (packs the first hosts, leaves the last off);
- **best-fit**: the host left fullest after placing it (fullest = its scarcer resource's share);
- **worst-fit**: the host left emptiest (spreads load, keeps every host on).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim.capacity.defaults import value
from sim.capacity.specs import ContainerSpec, Host, Instance, Spec, Workload
from sim.errors import InvalidSpecError

__all__ = ["POLICIES", "Placement", "place", "policy_name", "Density", "density"]

POLICIES = ("first-fit", "best-fit", "worst-fit")
_EPS = 1e-9


@dataclass(frozen=True)
class Placement:
    """Per instance: ``host`` index (-1: rejected), ``latency`` seconds from arrival until it
    runs (launch queue + start/boot time; NaN when rejected) and ``queued`` (the queue part)."""

    host: npt.NDArray[np.int64]
    latency: npt.NDArray[np.float64]
    queued: npt.NDArray[np.float64]

    @property
    def rejected(self) -> int:
        return int(np.sum(self.host < 0))


def policy_name(policy: str) -> str:
    """``policy`` as :data:`POLICIES` spells it ("First_Fit" and "first fit" are "first-fit");
    :class:`InvalidSpecError` for anything else."""
    name = "-".join(policy.lower().replace("_", " ").replace("-", " ").split()) if isinstance(policy, str) else None
    if name not in POLICIES:
        raise InvalidSpecError(f"unknown placement policy {policy!r}; choose one of {', '.join(POLICIES)}")
    return name


def place(hosts: Sequence[Host], instances: Sequence[Instance], *, policy: str = "first-fit",
          seed: int = 0, jitter: float = value("start_jitter")) -> Placement:
    """Place ``instances`` in arrival order (departures first when both happen at one moment).

    Start latency is the spec's start/boot time times a lognormal factor (median 1, spread
    ``jitter``, drawn from ``seed``), after waiting in the host's launch queue when the spec has a
    ``launch_rate`` (starts per core per second)."""
    policy = policy_name(policy)
    if not hosts:
        raise InvalidSpecError("a simulation needs at least one host")
    if not 0 <= jitter < 5:
        raise InvalidSpecError(f"jitter is a lognormal sigma in [0, 5), not {jitter}")
    n = len(instances)
    cap_cpu = np.array([h.admissible_cpu for h in hosts])
    cap_mem = np.array([h.admissible_memory for h in hosts])
    max_pods = np.array([h.max_pods if h.max_pods is not None else np.iinfo(np.int64).max for h in hosts])
    cores = np.array([float(h.cores) for h in hosts])
    used_cpu, used_mem = np.zeros(len(hosts)), np.zeros(len(hosts))
    pods = np.zeros(len(hosts), dtype=np.int64)
    next_slot = np.zeros(len(hosts))
    host = np.full(n, -1, dtype=np.int64)
    queued = np.full(n, np.nan)
    factor = np.exp(jitter * np.random.default_rng([seed, 0]).standard_normal(n)) if n else np.zeros(0)

    events: list[tuple[float, int, int]] = []  # (time, 0 departure / 1 arrival, instance)
    for i, inst in enumerate(instances):
        events.append((inst.workload.arrival, 1, i))
        if math.isfinite(inst.workload.duration):
            events.append((inst.workload.arrival + inst.workload.duration, 0, i))
    heapq.heapify(events)
    while events:
        when, kind, i = heapq.heappop(events)
        spec = instances[i].spec
        is_pod = isinstance(spec, ContainerSpec)
        if kind == 0:
            h = host[i]
            if h >= 0:
                used_cpu[h] -= spec.cpu_request
                used_mem[h] -= spec.reserved_memory
                pods[h] -= is_pod
            continue
        after_cpu, after_mem = used_cpu + spec.cpu_request, used_mem + spec.reserved_memory
        fits = (after_cpu <= cap_cpu + _EPS) & (after_mem <= cap_mem + _EPS) & (pods + is_pod <= max_pods)
        if not fits.any():
            continue
        if policy == "first-fit":
            h = int(np.argmax(fits))
        else:
            fullness = np.maximum(after_cpu / cap_cpu, after_mem / cap_mem)
            fullness = np.where(fits, fullness, -np.inf if policy == "best-fit" else np.inf)
            h = int(np.argmax(fullness) if policy == "best-fit" else np.argmin(fullness))
        host[i] = h
        used_cpu[h], used_mem[h] = after_cpu[h], after_mem[h]
        pods[h] += is_pod
        rate = spec.launch_rate
        if rate is None:
            queued[i] = 0.0
        else:
            begin = max(when, next_slot[h])
            next_slot[h] = begin + 1.0 / (rate * cores[h])
            queued[i] = begin - when
    start = np.array([inst.spec.start_s for inst in instances], dtype=np.float64)
    latency = np.where(host >= 0, queued + start * factor, np.nan)
    return Placement(host=host, latency=latency, queued=queued)


@dataclass(frozen=True)
class Density:
    """How many copies of one instance a host admits, and what runs out first
    ("cpu", "memory" or "max_pods")."""

    count: int
    limited_by: str
    cpu_reserved: float
    memory_reserved: float


def density(host: Host, spec: Spec, workload: Workload | None = None) -> Density:
    """Copies of ``spec`` one ``host`` admits on reservations (density at saturation).

    ``workload`` is not needed for admission; it is accepted so a caller can pass an instance's
    parts as they are."""
    del workload
    by = {"cpu": host.admissible_cpu / spec.cpu_request if spec.cpu_request else math.inf,
          "memory": host.admissible_memory / spec.reserved_memory if spec.reserved_memory else math.inf}
    if isinstance(spec, ContainerSpec) and host.max_pods is not None:
        by["max_pods"] = float(host.max_pods)
    limited_by = min(by, key=lambda k: by[k])
    count = by[limited_by]
    if not math.isfinite(count):
        raise InvalidSpecError("an instance that reserves nothing fits without bound; give it a request")
    count = int(math.floor(count + _EPS))
    return Density(count, limited_by, count * spec.cpu_request, count * spec.reserved_memory)

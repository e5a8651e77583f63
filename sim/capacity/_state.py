"""What a simulation is made of, below both its halves (:mod:`._engine`, :mod:`._memory`).

:class:`Fleet` holds the per-instance constants, :class:`State` what carries from one block of
ticks to the next, and :class:`SimulationView` the face of a running simulation that the memory side
of a block (:class:`._memory.Block`) reads and calls back into (to record OOM kills).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from sim.capacity._sharing import F
from sim.capacity.specs import Host, Instance, VMSpec

__all__ = ["Fleet", "SimulationView", "State"]


@dataclass
class State:
    """What carries from one block to the next, per instance (sorted order)."""

    down_until: F  # runs its workload from then on (after a start, boot or back-off)
    up_since: F  # the current life began (a leak grows from here)
    alive_from: F  # a VM's hypervisor process exists from then on (it holds memory while booting)
    restarts: npt.NDArray[np.int64]
    hwm: F


class Fleet:
    """Per-instance constants, sorted by host (rejected instances last)."""

    def __init__(self, hosts: Sequence[Host], instances: Sequence[Instance], host_of: npt.NDArray[np.int64],
                 latency: F, queued: F, slowdown: float) -> None:
        n_hosts = len(hosts)
        key = np.where(host_of >= 0, host_of, n_hosts)
        self.order = np.argsort(key, kind="stable")
        self.host = key[self.order]
        self.n_placed = int(np.sum(host_of >= 0))
        inst = [instances[i] for i in self.order]
        specs = [i.spec for i in inst]
        loads = [i.workload for i in inst]

        def arr(values: Sequence[float]) -> F:
            return np.array(values, dtype=np.float64)

        self.is_vm = np.array([isinstance(s, VMSpec) for s in specs], dtype=bool)
        inf = math.inf
        self.cap = arr([s.vcpus if isinstance(s, VMSpec) else (s.cpu_max or inf) for s in specs])
        self.cap = np.minimum(self.cap, arr([hosts[h].cores if h < n_hosts else inf for h in self.host]))
        self.weight = arr([100.0 * s.vcpus if isinstance(s, VMSpec) else s.weight for s in specs])
        self.limit = arr([s.memory - s.guest_os if isinstance(s, VMSpec) else (s.memory_max or inf) for s in specs])
        self.high = arr([inf if isinstance(s, VMSpec) else (s.memory_high or inf) for s in specs])
        self.cpu_max = arr([inf if isinstance(s, VMSpec) else (s.cpu_max or inf) for s in specs])
        self.pids_max = arr([inf if isinstance(s, VMSpec) or s.pids_max is None else s.pids_max for s in specs])
        self.overhead = arr([s.overhead for s in specs])
        self.guest_os = arr([s.guest_os if isinstance(s, VMSpec) else 0 for s in specs])
        self.balloon = np.array([isinstance(s, VMSpec) and s.balloon for s in specs], dtype=bool)
        self.share = arr([s.page_sharing if isinstance(s, VMSpec) else 0.0 for s in specs])
        self.req_cpu = arr([s.cpu_request for s in specs])
        self.req_mem = arr([s.reserved_memory for s in specs])
        self.cpu_mean = arr([w.cpu for w in loads])
        self.mem_mean = arr([w.memory for w in loads])
        self.noise = arr([w.noise for w in loads])
        self.leak = arr([w.leak for w in loads])
        self.pids = arr([w.pids for w in loads])
        self.arrival = arr([w.arrival for w in loads])
        self.depart = self.arrival + arr([w.duration for w in loads])
        lat = latency[self.order]
        self.ready = np.where(np.isnan(lat), inf, self.arrival + lat)
        self.restart_s = np.where(np.isnan(lat), 0.0, lat - queued[self.order])  # a restart does not queue
        self.slowdown = slowdown
        # Equal profiles are evaluated once per block: a frozen profile is its own key.
        index: dict[object, int] = {}
        self.cpu_prof = np.array([index.setdefault(w.cpu_profile, len(index)) for w in loads], dtype=np.int64)
        self.mem_prof = np.array([index.setdefault(w.memory_profile, len(index)) for w in loads], dtype=np.int64)
        self.profiles = list(index)


class SimulationView(Protocol):
    """A running simulation as one block's memory side sees it."""

    @property
    def fleet(self) -> Fleet: ...

    @property
    def state(self) -> State: ...

    @property
    def hosts(self) -> Sequence[Host]: ...

    @property
    def memory(self) -> F:
        """Each host's RAM."""
        ...

    @property
    def host_reserved(self) -> F:
        """What each host keeps for itself."""
        ...

    def kill(self, row: int, when: float, *, host: bool) -> bool:
        """Record an OOM kill of ``row`` at ``when``; True when it resets a VM's memory."""
        ...

    def unkill_after(self, row: int, when: float) -> None:
        """Forget this block's kills of ``row`` later than ``when``."""
        ...

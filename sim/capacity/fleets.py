"""The day-scale fleets that ``bench/capacity_bench.py`` times and the golden tests pin.

:func:`day_fleet` builds ``n_hosts`` hosts of 64 cores / 256 GiB with 100 instances per host,
each serving a diurnal load with per-minute noise (the headline: 100 hosts, 10,000 instances):

* ``calm``: containers only, admitted on requests without CPU overcommit;
* ``mixed`` (admitted with 1.5x CPU overcommit): 20% VMs, 10% microVMs and 70% containers, of
  which 5% leak into ``memory.max`` and are OOM-killed and restarted all day;
* ``overcommitted``: the mixed fleet admitted with Nova's default 16x CPU overcommit, so the
  hosts are CPU-contended at the daily peak.

:func:`day_run` simulates one of them as the bench does (``dt=1``, best-fit, run seed 1).
"""

from __future__ import annotations

import numpy as np

from sim.capacity._check import number, whole
from sim.capacity._simulate import simulate
from sim.capacity.defaults import GiB, MiB
from sim.capacity.profiles import diurnal
from sim.capacity.run import Run
from sim.capacity.specs import ContainerSpec, Host, Instance, VMSpec, Workload, container, microvm, vm
from sim.errors import InvalidSpecError

__all__ = ["KINDS", "day_fleet", "day_run"]

#: The fleets :func:`day_fleet` builds, in the order the bench prints them.
KINDS = ("calm", "mixed", "overcommitted")


def day_fleet(n_hosts: int, kind: str = "mixed", seed: int = 0) -> tuple[list[Host], list[Instance]]:
    """``n_hosts`` equal hosts and ``100 * n_hosts`` instances of fleet ``kind`` (one of
    :data:`KINDS`), drawn from ``numpy.random.default_rng(seed)``: the same arguments always give
    the same fleet.  Raises :class:`~sim.errors.InvalidSpecError` for an unknown ``kind``, a
    ``n_hosts`` below 1 or a negative ``seed``."""
    n_hosts = whole("n_hosts", n_hosts)
    whole("seed", seed, low=0)
    if kind not in KINDS:
        raise InvalidSpecError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    rng = np.random.default_rng(seed)
    cpu_overcommit = {"calm": 1.0, "mixed": 1.5}.get(kind, 16.0)
    hosts = [Host(cores=64, memory=256 * GiB, cpu_overcommit=cpu_overcommit)] * n_hosts
    day = diurnal(1.0, 0.125)
    instances = []
    spec: VMSpec | ContainerSpec
    for i in range(100 * n_hosts):
        u = 1.0 if kind == "calm" else rng.random()
        cpu = float(rng.uniform(0.1, 0.6))
        mem = int(rng.uniform(128, 768)) * MiB
        if u < 0.2:
            spec = vm(2, 2 * GiB)
            load = Workload(cpu, mem, cpu_profile=day, memory_profile=day, noise=0.1)
        elif u < 0.3:
            spec = microvm(1, 1 * GiB)
            load = Workload(cpu, mem, cpu_profile=day, noise=0.1)
        elif u < 0.335:
            spec = container(0.25, 256 * MiB, memory_max=1 * GiB)
            load = Workload(cpu, 256 * MiB, cpu_profile=day, noise=0.1, leak=float(rng.uniform(0.1, 1.0)) * MiB)
        else:
            spec = container(0.25, mem, cpu_max=1.0)
            load = Workload(cpu, mem, cpu_profile=day, noise=0.1)
        instances.append(Instance(spec, load, name=f"i{i}"))
    return hosts, instances


def day_run(n_hosts: int, kind: str = "mixed", *, duration: float = 86_400.0, fleet_seed: int = 0,
            fast: bool = True) -> Run:
    """:func:`day_fleet` simulated for ``duration`` seconds at ``dt=1`` with best-fit placement
    and run seed 1, as the bench times it (``fast=False``: the dense reference)."""
    hosts, instances = day_fleet(n_hosts, kind, fleet_seed)
    return simulate(hosts, instances, duration=number("duration", duration), dt=1.0, policy="best-fit", seed=1,
                    fast=fast)

"""How fast the resource model runs a day, and how that grows with the fleet.

    .venv/bin/python bench/capacity_bench.py [--quick] [--json out.json]

Three fleets of ``hosts`` hosts (64 cores / 256 GiB) with 100 instances per host, each serving a
diurnal load with per-minute noise, one day at 1 s resolution (86,400 ticks; the headline is 100
hosts and 10,000 instances, 864 M instance-ticks):

* ``calm``: containers only, admitted on requests without CPU overcommit: what most hosts do
  most of the day; nothing crosses a limit, so the model computes it from per-host sums;
* ``mixed`` (admitted with 1.5x CPU overcommit): 20% VMs (their high-water marks rise through the morning), 10% microVMs, 70%
  containers of which 5% leak into ``memory.max`` and are OOM-killed and restarted all day:
  those rows, and every row of a host when it is contended, are computed tick by tick;
* ``overcommitted``: the mixed fleet admitted with Nova's default 16x CPU overcommit: hosts are
  CPU-contended at the daily peak, so CPU is water-filled per host and tick (100 hosts only).

The peer is the model itself computed the slow way: ``simulate(..., fast=False)`` evaluates every
instance at every tick (the reference the fast path is property-tested against); it runs on the
first hour of the two smallest mixed fleets, and the report prints fast / dense on the same hour
and whether both gave the same run.  Growth is ``log(t2/t1) / log(n2/n1)`` between consecutive
sizes (1.0 = linear in the fleet).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.capacity import (
    GiB,
    Host,
    Instance,
    MiB,
    Run,
    Workload,
    container,
    diurnal,
    microvm,
    simulate,
    vm,
)


def fleet(n_hosts: int, kind: str = "mixed", seed: int = 0) -> tuple[list[Host], list[Instance]]:
    rng = np.random.default_rng(seed)
    cpu_overcommit = {"calm": 1.0, "mixed": 1.5}.get(kind, 16.0)
    hosts = [Host(cores=64, memory=256 * GiB, cpu_overcommit=cpu_overcommit)] * n_hosts
    day = diurnal(1.0, 0.125)
    instances = []
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


def timed(n_hosts: int, duration: float, *, kind: str = "mixed", fast: bool = True) -> tuple[float, Run]:
    hosts, instances = fleet(n_hosts, kind)
    started = time.perf_counter()
    run = simulate(hosts, instances, duration=duration, dt=1.0, policy="best-fit", seed=1, fast=fast)
    return time.perf_counter() - started, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes 2, 4, 8 hosts and one hour")
    parser.add_argument("--json", metavar="FILE", help="write every number as JSON to FILE")
    args = parser.parse_args(argv)
    sizes = [2, 4, 8] if args.quick else [10, 25, 50, 100, 200]
    day = 3600.0 if args.quick else 86_400.0
    rows = []
    print(f"one {'hour' if args.quick else 'day'} at 1 s resolution, 100 instances per host")
    print(f"{'fleet':>13} {'hosts':>6} {'instances':>9} {'seconds':>8} {'M inst-ticks/s':>15} {'growth':>7} "
          f"{'OOM kills':>9} {'unmet %':>8}")
    for kind in ("calm", "mixed", "overcommitted"):
        previous = None
        for n in (sizes if kind != "overcommitted" else sizes[-2:-1] if not args.quick else sizes[-1:]):
            seconds, run = timed(n, day, kind=kind)
            work = 100 * n * day
            growth = math.log(seconds / previous[1]) / math.log(n / previous[0]) if previous else float("nan")
            previous = (n, seconds)
            m = run.metrics()
            rows.append({"fleet": kind, "hosts": n, "instances": 100 * n, "seconds": seconds,
                         "instance_ticks_per_s": work / seconds, "growth_exponent": growth,
                         "oom_kills": m.oom_kills, "unmet_fraction": m.unmet_fraction})
            print(f"{kind:>13} {n:>6} {100 * n:>9} {seconds:>8.2f} {work / seconds / 1e6:>15.1f} {growth:>7.2f} "
                  f"{m.oom_kills:>9} {100 * m.unmet_fraction:>8.2f}", flush=True)
    print("\nthe peer: every instance at every tick (fast=False), mixed fleet, first hour")
    print(f"{'hosts':>6} {'fast s':>8} {'dense s':>8} {'ratio':>7} {'same run':>9}")
    peers = []
    for n in sizes[:2]:
        fast_s, a = timed(n, 3600.0)
        dense_s, b = timed(n, 3600.0, fast=False)
        same = all(np.allclose(getattr(a, k), getattr(b, k), rtol=1e-9, atol=1e-6)
                   for k in ("used_cpu", "used_memory", "unmet_cpu", "power_w"))
        peers.append({"hosts": n, "fast_s": fast_s, "dense_s": dense_s, "ratio": fast_s / dense_s, "same": same})
        print(f"{n:>6} {fast_s:>8.2f} {dense_s:>8.2f} {fast_s / dense_s:>7.2f} {str(same):>9}", flush=True)
    for r in rows:
        if r["hosts"] == 100:
            print(f"100 hosts, 10,000 instances, a day at 1 s, {r['fleet']}: {r['seconds']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"sizes": rows, "peer": peers}, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)

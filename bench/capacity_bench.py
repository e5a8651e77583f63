"""How fast the resource model runs each scenario and a day, and how that grows with the fleet.

    .venv/bin/python bench/capacity_bench.py [--quick] [--scenarios] [--repeat N] [--json out.json]

First a table per scenario (the chapter's six teaching scenarios with their defaults, then the
three day-scale fleets below at 100 hosts): wall time (``perf_counter``, best of ``--repeat``),
CPU time of this process, the events simulated and events per second.  An *event* is one
instance at one tick (the unit the tick engine steps: 10,000 instances for a day at 1 s are 864 M
events); OOM kills are counted beside.  Run it pinned to one core (``taskset -c 0``) to compare
with the figures in ``bench/README.md``.  ``--scenarios`` stops after this table.

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

from rich.console import Console
from rich.table import Table

from sim.capacity import Run, simulate
from sim.capacity.fleets import KINDS, day_fleet
from sim.capacity.scenarios import ALL, ScenarioResult

fleet = day_fleet  # the fleets moved to sim.capacity.fleets (the golden tests use them too)


def events(runs: list[Run]) -> int:
    """Instance-ticks: every instance of every run at every tick of it."""
    return sum(len(run.instances) * len(run.t) for run in runs)


def scenario_rows(quick: bool, repeat: int) -> list[dict[str, object]]:
    """Time every scenario: the six teaching ones, then the day fleets (100 hosts; 8 and an
    hour with ``quick``).  Wall and CPU time are each the best of ``repeat`` runs."""
    n_hosts, duration = (8, 3600.0) if quick else (100, 86_400.0)
    jobs: list[tuple[str, object]] = [(name, fn) for name, fn in ALL.items()]
    jobs += [(f"{kind}, {n_hosts} hosts, {'an hour' if quick else 'a day'}", kind) for kind in KINDS]
    rows = []
    for label, job in jobs:
        wall = cpu = float("inf")
        for _ in range(repeat):
            if isinstance(job, str):
                hosts, instances = day_fleet(n_hosts, job)  # built outside the timed region
                w0, c0 = time.perf_counter(), time.process_time()
                runs = [simulate(hosts, instances, duration=duration, dt=1.0, policy="best-fit", seed=1)]
            else:
                w0, c0 = time.perf_counter(), time.process_time()
                result: ScenarioResult = job()  # type: ignore[operator]
                runs = list(result.runs.values())
            wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
        n = events(runs)
        kills = sum(int(r.instances.oom_kills.sum() + r.instances.host_oom_kills.sum()) for r in runs)
        rows.append({"scenario": label, "runs": len(runs), "wall_s": wall, "cpu_s": cpu, "events": n,
                     "events_per_s": n / wall, "oom_kills": kills})
    return rows


def print_scenarios(rows: list[dict[str, object]], console: Console) -> None:
    table = Table(title="per scenario: wall time (best of --repeat), events = instance-ticks")
    for name, justify in (("scenario", "left"), ("runs", "right"), ("wall s", "right"), ("CPU s", "right"),
                          ("events", "right"), ("M events/s", "right"), ("OOM kills", "right")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(str(r["scenario"]), str(r["runs"]), f"{r['wall_s']:.2f}", f"{r['cpu_s']:.2f}",
                      f"{r['events']:,}", f"{float(r['events_per_s']) / 1e6:.1f}", f"{r['oom_kills']:,}")
    console.print(table)


def timed(n_hosts: int, duration: float, *, kind: str = "mixed", fast: bool = True) -> tuple[float, Run]:
    hosts, instances = fleet(n_hosts, kind)
    started = time.perf_counter()
    run = simulate(hosts, instances, duration=duration, dt=1.0, policy="best-fit", seed=1, fast=fast)
    return time.perf_counter() - started, run


def jit_warmup() -> float:
    """Seconds the first calls of the compiled CPU-sharing loops take in this process: the
    compile the first time on a machine (a few seconds), loading the cached code after."""
    from sim.capacity._fill import fill_groups, fill_hosts, host_totals

    started = time.perf_counter()
    fill_groups(np.ones(2), np.ones(2), np.zeros(2, dtype=np.int64), np.ones(1))
    fill_hosts(np.ones((2, 2)), np.zeros(2, dtype=np.int64), np.ones(2), np.ones((1, 2), dtype=bool), np.ones(1))
    host_totals(np.ones((2, 2)), np.zeros(2, dtype=np.int64), np.zeros((1, 2)))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes 2, 4, 8 hosts and one hour")
    parser.add_argument("--json", metavar="FILE", help="write every number as JSON to FILE")
    parser.add_argument("--scenarios", action="store_true", help="only the per-scenario table")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each scenario, the best is kept (default 1)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    console = Console(width=None if sys.stdout.isatty() else 120)
    jit_s = jit_warmup()
    print(f"CPU sharing loops (numba): compiled, or loaded from the cache, in {jit_s:.2f} s (outside the timings)")
    per_scenario = scenario_rows(args.quick, args.repeat)
    print_scenarios(per_scenario, console)
    if args.scenarios:
        if args.json:
            Path(args.json).write_text(json.dumps({"jit_s": jit_s, "scenarios": per_scenario}, indent=2))
        return 0
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
        Path(args.json).write_text(json.dumps({"jit_s": jit_s, "scenarios": per_scenario, "sizes": rows, "peer": peers},
                                               indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)

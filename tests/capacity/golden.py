"""The golden record of the capacity model: every result field of every scenario and seed the
tests, the notebook and the bench use, written down exactly so that a faster engine can be proved
to give bit-identical results.

    .venv/bin/python -m tests.capacity.golden            # compare with the record, print differences
    .venv/bin/python -m tests.capacity.golden --write    # (re)write tests/capacity/capacity_golden.json

A result is walked field by field (:func:`encode`): a float is kept as a JSON number (Python
writes its ``repr`` and reads the same bits back) and compared by ``repr`` (so ``-0.0``, ``nan``
and the last bit count), an array of at most :data:`INLINE` values as the list of its
values' ``repr``, a longer one as its dtype, shape and the sha256 of its bytes (the first 96 bits) (little-endian,
C order), plus the ``repr`` of its first and last values to make a difference readable.  Two
results are bit-identical exactly when their encodings are equal.

:data:`CASES` names each case; those in :data:`SLOW` are recomputed only with
``LAYERLAB_PROFILE=deep`` (``test_capacity_golden.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sim.capacity import (
    GiB,
    Host,
    Instance,
    MiB,
    Workload,
    container,
    diurnal,
    flat,
    microvm,
    simulate,
    step,
    trace,
    vm,
)
from sim.capacity.fleets import KINDS, day_run
from sim.capacity.scenarios import ALL
from sim.capacity.specs import ContainerSpec, VMSpec

RECORD = Path(__file__).with_name("capacity_golden.json")

#: Arrays up to this many values are recorded value by value.
INLINE = 16


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]  # 96 bits: no accidental match, a smaller record


def _array(a: np.ndarray) -> Any:
    if a.dtype == object:
        return [encode(x) for x in a.tolist()]
    if a.size <= INLINE:
        return {"dtype": a.dtype.str, "shape": list(a.shape), "values": [encode(x) for x in a.reshape(-1).tolist()]}
    canonical = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    flat = canonical.reshape(-1)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": _digest(canonical.tobytes()),
            "first": encode(flat[0].item()), "last": encode(flat[-1].item())}


def encode(x: object) -> Any:
    """``x`` as JSON that changes whenever any bit of any value in it changes."""
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x)  # json writes repr(x) and reads it back to the same bits (nan and inf too)
    if isinstance(x, np.ndarray):
        return _array(x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {"type": type(x).__name__, **{f.name: encode(getattr(x, f.name)) for f in dataclasses.fields(x)}}
    if isinstance(x, Mapping):
        return {"mapping": [[encode(k), encode(v)] for k, v in x.items()]}
    if isinstance(x, (tuple, list)):
        if len(x) > INLINE:
            text = json.dumps([encode(v) for v in x], sort_keys=True)
            return {"sequence": len(x), "sha256": _digest(text.encode()), "first": encode(x[0])}
        return [encode(v) for v in x]
    raise TypeError(f"the golden record cannot encode {type(x).__name__}")


# The cases are frozen copies of what the tests use (test_scenarios.FAST, test_plots.SMALL and
# test_capacity_model._random_fleet), so that editing a test never moves the record.
SCENARIO_OVERRIDES: dict[str, dict[str, Any]] = {
    "same_service": {"duration": 60.0},
    "flash_crowd": {"duration": 120.0},
    "noisy_neighbour": {"duration": 120.0},
    "overcommit_sweep": {"ram_ratios": (1.0, 1.5), "cpu_ratios": (1.0, 8.0), "duration": 7200.0},
    "idle_waste_day": {"services": 5},
    "consolidation_power": {"duration": 7200.0, "hosts": 8, "instances": 8},
}
PLOT_OVERRIDES: dict[str, dict[str, Any]] = {
    "same_service": {"duration": 60.0},
    "flash_crowd": {"duration": 120.0},
    "noisy_neighbour": {},
    "overcommit_sweep": {"ram_ratios": (1.0, 1.5, 2.0), "cpu_ratios": (1.0, 8.0, 16.0), "duration": 7200.0},
    "idle_waste_day": {"services": 5},
    "consolidation_power": {"duration": 7200.0},
}


def _random_fleet(seed: int) -> tuple[list[Host], list[Instance], dict[str, Any]]:
    """Overcommitted RAM, page sharing, weights, recorded profiles, leaks into limits, late
    arrivals, many small blocks (test_capacity_model's fleets as they were when recorded)."""
    rng = np.random.default_rng(seed)
    profiles = [flat(), flat(0.5), diurnal(period=float(rng.choice([300, 900])), trough=0.2),
                step(float(rng.choice([100, 400])), 0.5, 2.0), trace(rng.random(20) * 2, dt=37.0)]
    instances = []
    for _ in range(int(rng.integers(1, 40))):
        kind = rng.integers(0, 3)
        if kind == 0:
            spec: VMSpec | ContainerSpec = vm(int(rng.integers(1, 5)), int(rng.integers(1, 9)) * GiB,
                                              boot_s=float(rng.choice([0, 3, 44.2])), balloon=bool(rng.random() < .3),
                                              page_sharing=float(rng.choice([0, 0, 0.5, 0.9])))
        elif kind == 1:
            spec = microvm(int(rng.integers(1, 3)), int(rng.integers(1, 5)) * 256 * MiB,
                           page_sharing=float(rng.choice([0, 0.65])))
        else:
            request = int(rng.choice([0, 64, 256, 1024])) * MiB
            high = None if rng.random() < .5 else request + int(rng.choice([128, 512])) * MiB
            top = None if rng.random() < .5 else (high or request) + int(rng.choice([1, 256, 1024])) * MiB
            spec = container(float(rng.choice([0, 0.1, 0.5, 1.0])), request, weight=float(rng.choice([1, 100, 10000])),
                             cpu_max=None if rng.random() < .5 else float(rng.choice([1.0, 3.0])),
                             memory_high=high, memory_max=top, pids_max=None if rng.random() < .7 else 3)
        load = Workload(float(rng.choice([0, 0.1, 0.5, 2, 6])), int(rng.choice([0, 64, 300, 900, 3000])) * MiB,
                        cpu_profile=profiles[rng.integers(0, 5)], memory_profile=profiles[rng.integers(0, 5)],
                        noise=float(rng.choice([0, 0.3])), leak=float(rng.choice([0, 0, 1, 20])) * MiB,
                        arrival=float(rng.choice([0, 0, 13.3, 250])), duration=float(rng.choice([math.inf, 77, 600])),
                        pids=int(rng.integers(0, 6)))
        instances.append(Instance(spec, load))
    hosts = [Host(cores=float(rng.choice([2, 8, 64])), memory=int(rng.choice([4, 16, 64])) * GiB,
                  ram_overcommit=float(rng.choice([1, 1.5, 3])), max_pods=None) for _ in range(int(rng.integers(1, 5)))]
    dt = float(rng.choice([1.0, 2.5, 61.0]))
    options = {"duration": dt * int(rng.choice([200, 400])), "dt": dt, "seed": seed,
               "policy": str(rng.choice(["first-fit", "best-fit", "worst-fit"])),
               "power_off_idle": bool(rng.random() < .7), "block_elements": int(rng.integers(1, 40)) * len(instances)}
    return hosts, instances, options


def _scenario(name: str, **overrides: Any) -> Callable[[], object]:
    return lambda: ALL[name](**overrides)


def _random(seed: int, fast: bool) -> Callable[[], object]:
    def run() -> object:
        hosts, instances, options = _random_fleet(seed)
        return simulate(hosts, instances, fast=fast, **options)
    return run


def _day(n_hosts: int, kind: str, duration: float = 86_400.0, fast: bool = True) -> Callable[[], object]:
    return lambda: day_run(n_hosts, kind, duration=duration, fast=fast)


def _cases() -> dict[str, Callable[[], object]]:
    cases: dict[str, Callable[[], object]] = {}
    for name in ALL:
        cases[f"scenario/{name}/default"] = _scenario(name)  # what the notebook and most tests run
        cases[f"scenario/{name}/seed3"] = _scenario(name, seed=3, **SCENARIO_OVERRIDES[name])
        if PLOT_OVERRIDES[name] not in ({}, SCENARIO_OVERRIDES[name]):
            cases[f"scenario/{name}/plots"] = _scenario(name, **PLOT_OVERRIDES[name])
    for seed in (1, 2):
        cases[f"scenario/flash_crowd/seed{seed}"] = _scenario("flash_crowd", seed=seed)
    for seed in range(24):
        for fast in (True, False):
            cases[f"random/{seed}/{'fast' if fast else 'dense'}"] = _random(seed, fast)
    for kind in KINDS:
        cases[f"day/{kind}/8-hosts/hour"] = _day(8, kind, 3600.0)  # bench --quick
        cases[f"day/{kind}/10-hosts/day"] = _day(10, kind)
    cases["day/mixed/4-hosts/hour/dense"] = _day(4, "mixed", 3600.0, fast=False)  # the bench's peer
    for kind in KINDS:
        cases[f"day/{kind}/100-hosts/day"] = _day(100, kind)  # the headline
    return cases


#: Every case by name: a function that computes it.
CASES: Mapping[str, Callable[[], object]] = _cases()
#: The cases a default test run leaves to ``LAYERLAB_PROFILE=deep``: the overcommitted 100-host
#: day (about 15 s of CPU; its 10-host day, run by default, takes the same paths).
SLOW = frozenset({"day/overcommitted/100-hosts/day"})


def record() -> dict[str, Any]:
    """The stored golden record: case name -> encoding."""
    data: dict[str, Any] = json.loads(RECORD.read_text())
    return data


def differences(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Paths at which two encodings differ, with both sides (at most a few per branch)."""
    if type(expected) is not type(actual):
        return [f"{where}: {expected!r} != {actual!r}"]
    if isinstance(expected, dict):
        out = [f"{where}: keys {sorted(expected)} != {sorted(actual)}"] if expected.keys() != actual.keys() else []
        for k in expected.keys() & actual.keys():
            out += differences(expected[k], actual[k], f"{where}.{k}")
        return out
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(expected)} items != {len(actual)}"]
        return [d for i, (a, b) in enumerate(zip(expected, actual)) for d in differences(a, b, f"{where}[{i}]")]
    if isinstance(expected, float):  # by repr: -0.0 is not 0.0, and nan is nan
        return [] if repr(expected) == repr(actual) else [f"{where}: {expected!r} != {actual!r}"]
    return [] if expected == actual else [f"{where}: {expected!r} != {actual!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the record from today's code")
    parser.add_argument("--only", metavar="PREFIX", default="", help="only the cases whose name starts so")
    args = parser.parse_args(argv)
    names = [n for n in CASES if n.startswith(args.only)]
    if args.write:
        old = record() if RECORD.exists() and args.only else {}
        new = {**old, **{name: encode(CASES[name]()) for name in names}}
        lines = [f"{json.dumps(n)}: {json.dumps(new[n], sort_keys=True, separators=(',', ':'))}" for n in CASES if n in new]
        RECORD.write_text("{\n" + ",\n".join(lines) + "\n}\n")  # one case a line
        print(f"wrote {len(names)} cases to {RECORD}")
        return 0
    stored, failed = record(), 0
    for name in names:
        found = differences(stored.get(name), encode(CASES[name]()))
        failed += bool(found)
        print(f"{'DIFFERS' if found else 'same   '} {name}" + "".join(f"\n    {d}" for d in found[:10]), flush=True)
    print(f"{len(names) - failed} of {len(names)} cases bit-identical")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

""":func:`simulate`: every argument checked, the arrivals placed, then the tick engine run.

The engine itself (:mod:`._engine`) trusts what it is given; everything a caller can get wrong
is refused here, as :class:`~sim.errors.InvalidSpecError`, before anything is computed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim.capacity._check import number, whole
from sim.capacity._engine import Simulation
from sim.capacity.defaults import value
from sim.capacity.placement import place, policy_name
from sim.capacity.run import Run
from sim.capacity.specs import Host, Instance
from sim.errors import InvalidSpecError

__all__ = ["simulate"]

_MAX_TICKS = 10_000_000


def _refs(trace: bool | Sequence[int | str], instances: Sequence[Instance]) -> list[int]:
    """The instances to trace, each once; their labels (name, else "kind index") must differ."""
    if isinstance(trace, (str, bytes)) or not (isinstance(trace, (bool, Sequence))):
        raise InvalidSpecError(f"trace is True, False or a list of instance indices and names, not {trace!r}")
    if trace is True:
        if len(instances) > 200:
            raise InvalidSpecError("trace=True records every instance; name at most 200 (trace=[0, 5, 'web'])")
        return _unique_labels(list(range(len(instances))), instances)
    if trace is False:
        return []
    names: dict[str, int] = {}
    for i, inst in enumerate(instances):
        if inst.name:
            names.setdefault(inst.name, i)
    out: list[int] = []
    for ref in trace:
        if isinstance(ref, str):
            if ref not in names:
                raise InvalidSpecError(f"no instance named {ref!r} to trace")
            out.append(names[ref])
        elif isinstance(ref, (int, np.integer)) and 0 <= ref < len(instances):
            out.append(int(ref))
        else:
            raise InvalidSpecError(f"trace refers to instance {ref!r}, but there are {len(instances)}")
    return _unique_labels(list(dict.fromkeys(out)), instances)


def _label(instances: Sequence[Instance], i: int) -> str:
    return instances[i].name or f"{instances[i].kind} {i}"


def _unique_labels(refs: list[int], instances: Sequence[Instance]) -> list[int]:
    labels = [_label(instances, i) for i in refs]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise InvalidSpecError(f"traces are keyed by name: more than one traced instance is called {', '.join(twice)}")
    return refs


def simulate(hosts: Sequence[Host], instances: Sequence[Instance], *, duration: float, dt: float = 1.0,
             policy: str = "first-fit", seed: int = 0, power_off_idle: bool = True,
             trace: bool | Sequence[int | str] = False, jitter: float = value("start_jitter"),
             restart_backoff: float = value("restart_backoff_s"),
             restart_backoff_max: float = value("restart_backoff_max_s"),
             memory_high_slowdown: float = value("memory_high_slowdown"),
             block_elements: int = 1 << 21, fast: bool = True) -> Run:
    """Run ``instances`` on ``hosts`` for ``duration`` seconds in ticks of ``dt``.

    Deterministic for a given ``seed`` (start jitter and workload noise are its only random
    draws).  ``policy`` places arrivals (see :mod:`sim.capacity.placement`); with
    ``power_off_idle`` a host with nothing placed on it draws no power and offers no capacity.
    ``trace`` names instances (indices or names) whose :class:`UsageSeries` the run keeps.
    Every argument is checked before anything is computed (:class:`InvalidSpecError`).

    ``fast`` (the default) computes hosts on which nothing is contended, crosses a limit or
    changes state in a block from per-host sums of shared profiles; ``fast=False`` computes
    every instance at every tick.  Both give the same run (the tests compare them)."""
    hosts, instances = tuple(hosts), tuple(instances)
    duration, dt = number("duration", duration), number("dt", dt)
    ticks = round(duration / dt)
    if abs(ticks * dt - duration) > 1e-9 * max(1.0, duration) or ticks < 1:
        raise InvalidSpecError(f"duration ({duration:g} s) must be a whole number of ticks of dt ({dt:g} s)")
    if ticks > _MAX_TICKS:
        raise InvalidSpecError(f"{ticks} ticks is more than {_MAX_TICKS}; use a larger dt")
    for h in hosts:
        if not isinstance(h, Host):
            raise InvalidSpecError(f"hosts must be Host values, not {type(h).__name__}")
    for inst in instances:
        if not isinstance(inst, Instance):
            raise InvalidSpecError(f"instances must be Instance values, not {type(inst).__name__}")
    number("memory_high_slowdown", memory_high_slowdown, high=1.0)
    if not number("restart_backoff", restart_backoff, strict=False) <= number("restart_backoff_max",
                                                                            restart_backoff_max, strict=False):
        raise InvalidSpecError("restart back-off must satisfy 0 <= restart_backoff <= restart_backoff_max")
    whole("seed", seed, low=0)
    whole("block_elements", block_elements)
    traced = _refs(trace, instances)
    policy = policy_name(policy)
    placement = place(hosts, instances, policy=policy, seed=seed, jitter=jitter)
    return Simulation(hosts, instances, placement.host, placement.latency, placement.queued, ticks, float(dt),
                       policy, seed, power_off_idle, traced, restart_backoff, restart_backoff_max,
                       memory_high_slowdown, block_elements, fast).run()

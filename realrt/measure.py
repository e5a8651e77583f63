"""Measured usage (实测用量): a container's cgroup counters over time, in the model's own type.

:func:`measure_hog` runs one of :mod:`sim.capacity.hogs`' misbehaving scripts in a busybox
container with ``docker run``'s limits and returns what the kernel charged it, sample by sample,
as a :class:`~sim.capacity.series.UsageSeries` with ``source="measured"``: the same fields, units
and meaning as the model's prediction for that hog, so one plot can overlay the two.

The steps, each usable alone:

1. :func:`sample_run` starts a created container detached and reads
   :meth:`EngineCore.usage <sim.containers.core.EngineCore.usage>` every ``interval`` seconds until
   its process exits (or ``duration`` runs out, then it is killed), ending with the reading taken
   just before its cgroup was removed;
2. :func:`usages_to_series` (pure) turns those cumulative readings into rates at each sample;
3. :func:`limits_of` (pure) names the limits in force the way :class:`UsageSeries` draws them.

realrt makes a cgroup only for a container with limits (Docker makes one for every container),
so :func:`measure_hog` without any limit asks for an unlimited ``pids.max``: the counters exist,
nothing is limited.  Rootless on cgroup v1 there is no cgroup to read: the engine's
:class:`~sim.errors.BackendUnavailableError` comes out before anything is created.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from realrt.containers.cgroups import Usage
from sim.capacity.hogs import Hog
from sim.capacity.series import UsageSeries
from sim.containers.core import EngineCore
from sim.containers.limits import Limits, Number, parse_limits, shares_to_weight
from sim.errors import BackendUnavailableError, InvalidLimitError

__all__ = ["MeasuredRun", "Readings", "measure_hog", "sample_run", "usages_to_series", "limits_of",
           "DEFAULT_INTERVAL"]

#: Seconds between two readings: fine enough to see a 100 ms CFS period's throttling add up,
#: coarse enough that reading ~6 cgroup files costs the host next to nothing.
DEFAULT_INTERVAL = 0.05
#: How long a hog may outlive its own ``duration_s`` before :func:`measure_hog` kills it.
_OVERRUN_S = 10.0


@dataclass(frozen=True)
class Readings:
    """What :func:`sample_run` read: ``start`` is ``time.monotonic()`` just before the container
    was started (its cgroup is made, empty, in that call: every counter is 0 there); ``usages``
    the readings in time order, the last one taken just before the cgroup was removed;
    ``exit_code`` the process's (137 when killed, by the OOM killer or at ``duration``)."""

    start: float
    usages: tuple[Usage, ...]
    exit_code: int


@dataclass(frozen=True)
class MeasuredRun:
    """One hog run for real: the series (``source="measured"``, labelled with the hog's label),
    the exit code, and ``logs``: what it wrote, stdout then stderr (``docker logs``)."""

    hog: Hog
    series: UsageSeries
    exit_code: int
    logs: bytes


def _positive(value: object, what: str) -> float:
    """A finite number > 0, or :class:`InvalidLimitError` (before anything is created)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidLimitError(f"{what} must be a positive number of seconds, not {value!r}")
    return float(value)


def limits_of(limits: Limits | None) -> dict[str, float]:
    """``limits`` as :attr:`UsageSeries.limits` names them: ``memory.max`` (bytes), ``cpu.max``
    (cores), ``pids.max`` (tasks), ``cpu.shares`` and its cgroup v2 ``cpu.weight`` (runc's
    conversion).  What is not set, or set to unlimited (``pids.max`` "max"), is left out."""
    out: dict[str, float] = {}
    if limits is None:
        return out
    if limits.memory is not None:
        out["memory.max"] = float(limits.memory)
    if limits.cpus is not None:
        out["cpu.max"] = limits.cpus
    if limits.pids_limit is not None and limits.pids_limit > 0:
        out["pids.max"] = float(limits.pids_limit)
    if limits.cpu_shares is not None:
        out["cpu.shares"] = float(limits.cpu_shares)
        out["cpu.weight"] = float(shares_to_weight(limits.cpu_shares))
    return out


def _column(usages: Sequence[Usage], name: str) -> np.ndarray:
    # A counter this host does not have is NaN ("not measured"), never a made-up 0.
    return np.array([np.nan if getattr(u, name) is None else float(getattr(u, name)) for u in usages],
                    dtype=np.float64)


def usages_to_series(usages: Sequence[Usage], *, start: float, label: str,
                     limits: Mapping[str, float] | None = None) -> UsageSeries:
    """The readings as a measured :class:`UsageSeries`, one sample per reading.

    ``start`` is the monotonic time at which every cumulative counter was 0 (a fresh cgroup);
    ``t[i] = usages[i].time - start``.  ``cpu[i]`` is the CPU time used between the previous
    reading (``start`` for the first) and this one, divided by the wall time between them;
    a counter that reads lower than before (it never does in the kernel; a torn read might)
    counts as no use rather than negative use.  ``memory`` is ``memory_bytes``; ``throttled``,
    ``pids`` and ``oom_kills`` are taken as read.  A counter missing on this host (``None``) is
    NaN.  Raises :class:`ValueError` unless every reading is later than ``start`` and than the
    one before it."""
    times = np.array([u.time for u in usages], dtype=np.float64) - start
    if len(times) and (times[0] <= 0 or np.any(np.diff(times) <= 0)):
        raise ValueError("readings must be later than start and strictly increasing in time")
    used = _column(usages, "cpu_seconds")
    elapsed = np.diff(times, prepend=0.0)
    cpu = np.maximum(np.diff(used, prepend=0.0), 0.0) / elapsed  # NaN stays NaN through maximum
    return UsageSeries(label=label, source="measured", t=times, cpu=cpu, memory=_column(usages, "memory_bytes"),
                       throttled=_column(usages, "throttled_seconds"), pids=_column(usages, "pids"),
                       oom_kills=_column(usages, "oom_kills"), limits=dict(limits or {}))


def sample_run(engine: EngineCore, ref: str, *, interval: float = DEFAULT_INTERVAL,
               duration: float | None = None) -> Readings:
    """Start the created container ``ref`` detached and read its cgroup every ``interval``
    seconds until its process exits; with ``duration``, it is killed (``docker stop -t 0``)
    that many seconds after the start if still running.  The last reading is the one taken
    just before its cgroup was removed.  Readings are paced from the start (a slow read does
    not shift the later ones); a container without a cgroup gives no readings.
    :class:`InvalidLimitError` for a bad ``interval``/``duration``, before it is started."""
    interval = _positive(interval, "interval")
    limit = None if duration is None else _positive(duration, "duration")
    usages: list[Usage] = []

    def keep(reading: Usage | None) -> None:
        # After the exit every call returns the same final reading: keep it once.
        if reading is not None and (not usages or reading.time > usages[-1].time):
            usages.append(reading)

    start = time.monotonic()
    engine.start(ref, detach=True)
    deadline = None if limit is None else start + limit
    tick = 1
    while True:
        keep(engine.usage(ref))
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            engine.stop(ref, grace=0)
            break
        while start + tick * interval <= now:
            tick += 1  # skip the ticks a slow read missed rather than read in a burst
        until = start + tick * interval if deadline is None else min(start + tick * interval, deadline)
        try:
            engine.wait(ref, timeout=max(until - now, 0.0))  # the pidfd wakes us at once when it exits
            break
        except TimeoutError:
            continue
    code = engine.wait(ref)
    keep(engine.usage(ref))  # reaped: the reading taken just before the cgroup was removed
    return Readings(start, tuple(usages), code)


def measure_hog(engine: EngineCore, hog: Hog, *, memory: int | str | None = None, cpus: Number | None = None,
                cpu_shares: int | str | None = None, pids_limit: int | str | None = None,
                interval: float = DEFAULT_INTERVAL, duration: float | None = None) -> MeasuredRun:
    """Run ``hog.script()`` in a busybox container with ``docker run``'s resource flags and
    measure it (see :func:`sample_run`); the container is removed afterwards, whatever happens.

    ``duration`` (default: the hog's ``duration_s`` plus 10 s) bounds the run: a hog still
    running then is killed.  Before anything is created: :class:`InvalidLimitError` for a bad
    limit, ``interval`` or ``duration`` (:class:`TypeError` for a ``hog`` that is not a
    :class:`Hog`); then :class:`BackendUnavailableError` for an engine that is not the real one,
    or a cgroup this host cannot make (rootless on cgroup v1, with or without a limit)."""
    if not isinstance(hog, Hog):
        raise TypeError(f"hog must be a sim.capacity.hogs.Hog, not {type(hog).__name__}")
    _positive(interval, "interval")
    bound = hog.duration_s + _OVERRUN_S if duration is None else _positive(duration, "duration")
    # By its name, not its class: realrt.engine imports this module (RealEngine.measure_hog).
    if not isinstance(engine, EngineCore) or engine.name != "real":
        raise BackendUnavailableError("the model has no cgroup to read: measure on sim.connect('real')")
    if all(v is None for v in (memory, cpus, cpu_shares, pids_limit)):
        pids_limit = 0  # "unlimited" (pids.max max): no limit, but a cgroup whose counters we read
    limits = parse_limits(memory, cpus, cpu_shares, pids_limit)
    info = engine.create("busybox", ["sh", "-c", hog.script()], memory=memory, cpus=cpus,
                         cpu_shares=cpu_shares, pids_limit=pids_limit)
    try:
        readings = sample_run(engine, info.id, interval=interval, duration=bound)
        logs = engine.logs(info.id)
    finally:
        engine.remove(info.id, force=True)
    series = usages_to_series(readings.usages, start=readings.start, label=hog.label, limits=limits_of(limits))
    return MeasuredRun(hog, series, readings.exit_code, logs)

"""How a workload's demand changes over the day: multipliers of its mean, as functions of time.

A profile maps an array of times (seconds) to an array of non-negative multipliers.  The model
evaluates each distinct profile once per block of time and scales it per instance, which is what
keeps a day of 10,000 instances at 1 s resolution cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.capacity._check import number
from sim.capacity.series import FloatArray
from sim.errors import InvalidSpecError

__all__ = ["Profile", "Flat", "Diurnal", "Step", "Trace", "flat", "diurnal", "step", "trace"]


class Profile:
    """Base class: ``profile(t)`` gives the multiplier at each time in ``t``."""

    def __call__(self, t: FloatArray) -> FloatArray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def peak(self) -> float:
        """The largest multiplier it ever gives (what sizing "for peak" multiplies by)."""
        raise NotImplementedError  # pragma: no cover


@dataclass(frozen=True)
class Flat(Profile):
    """Always ``level``."""

    level: float = 1.0

    def __post_init__(self) -> None:
        number("flat level", self.level, strict=False)

    def __call__(self, t: FloatArray) -> FloatArray:
        return np.full(np.shape(t), self.level, dtype=np.float64)

    @property
    def peak(self) -> float:
        return self.level


@dataclass(frozen=True)
class Diurnal(Profile):
    """A day's cosine: ``peak`` at ``peak_at`` seconds, ``trough`` half a ``period`` later.

    Multipliers are relative to the workload's mean *at peak*: with ``peak=1.0, trough=0.125``
    a service sized at 80% of a VM at peak runs at 10% at night."""

    peak_level: float = 1.0
    trough: float = 0.125
    period: float = 86_400.0
    peak_at: float = 14 * 3600.0

    def __post_init__(self) -> None:
        number("diurnal period", self.period)
        number("diurnal peak_at", self.peak_at, low=-math.inf, strict=False)
        if not 0 <= number("diurnal trough", self.trough, strict=False) <= number("diurnal peak", self.peak_level,
                                                                                strict=False):
            raise InvalidSpecError("a diurnal profile needs 0 <= trough <= peak")

    def __call__(self, t: FloatArray) -> FloatArray:
        phase = np.cos(2 * np.pi * (np.asarray(t, dtype=np.float64) - self.peak_at) / self.period)
        mid, half = (self.peak_level + self.trough) / 2, (self.peak_level - self.trough) / 2
        return mid + half * phase

    @property
    def peak(self) -> float:
        return self.peak_level

    @property
    def mean(self) -> float:
        return (self.peak_level + self.trough) / 2


@dataclass(frozen=True)
class Step(Profile):
    """``before`` until ``at`` seconds, then ``after`` (a flash crowd: ``Step(60, 1, 2)``)."""

    at: float
    before: float = 1.0
    after: float = 2.0

    def __post_init__(self) -> None:
        number("step at", self.at, strict=False)
        number("step before", self.before, strict=False)
        number("step after", self.after, strict=False)

    def __call__(self, t: FloatArray) -> FloatArray:
        return np.where(np.asarray(t) < self.at, self.before, self.after).astype(np.float64)

    @property
    def peak(self) -> float:
        return max(self.before, self.after)


@dataclass(frozen=True, eq=False)
class Trace(Profile):
    """Recorded multipliers, one every ``dt`` seconds from 0 (held after the last one)."""

    values: tuple[float, ...]
    dt: float = 1.0
    _array: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        array = np.asarray(self.values, dtype=np.float64)
        number("trace dt", self.dt)
        if array.ndim != 1 or not len(array) or not np.all(np.isfinite(array)) or np.any(array < 0):
            raise InvalidSpecError("a trace needs at least one finite multiplier >= 0")
        array.flags.writeable = False
        object.__setattr__(self, "_array", array)

    def __call__(self, t: FloatArray) -> FloatArray:
        # k * dt / dt can land a hair below k: the epsilon keeps sample k at time k * dt.
        i = np.clip(np.floor(np.asarray(t, dtype=np.float64) / self.dt + 1e-9).astype(np.int64), 0, len(self._array) - 1)
        return self._array[i]

    @property
    def peak(self) -> float:
        return float(self._array.max())


def flat(level: float = 1.0) -> Flat:
    return Flat(level)


def diurnal(peak: float = 1.0, trough: float = 0.125, *, period: float = 86_400.0,
            peak_at: float = 14 * 3600.0) -> Diurnal:
    return Diurnal(peak, trough, period, peak_at)


def step(at: float, before: float = 1.0, after: float = 2.0) -> Step:
    return Step(at, before, after)


def trace(values: object, dt: float = 1.0) -> Trace:
    return Trace(tuple(float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)), dt)

"""How a workload's demand changes over the day: multipliers of its mean, as functions of time.

A profile maps an array of times (seconds) to an array of non-negative multipliers.  The model
evaluates each distinct profile once per block of time and scales it per instance, which is what
keeps a day of 10,000 instances at 1 s resolution cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidSpecError
from .series import FloatArray

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
        if not (math.isfinite(self.level) and self.level >= 0):
            raise InvalidSpecError(f"a flat profile needs a finite level >= 0, not {self.level}")

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
        if not (0 <= self.trough <= self.peak_level) or not self.period > 0:
            raise InvalidSpecError("a diurnal profile needs 0 <= trough <= peak and a positive period")

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
        if min(self.before, self.after) < 0:
            raise InvalidSpecError("a step profile's levels cannot be negative")

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
        if array.ndim != 1 or not len(array) or not np.all(np.isfinite(array)) or np.any(array < 0) or not self.dt > 0:
            raise InvalidSpecError("a trace needs at least one finite multiplier >= 0 and dt > 0")
        array.flags.writeable = False
        object.__setattr__(self, "_array", array)

    def __call__(self, t: FloatArray) -> FloatArray:
        i = np.clip((np.asarray(t, dtype=np.float64) / self.dt).astype(np.int64), 0, len(self._array) - 1)
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

"""What every teaching scenario shares: the result type and the parameter checks.

Every check runs before anything is simulated and raises :class:`~sim.errors.InvalidSpecError`
naming the parameter; the public place of :class:`ScenarioResult` is :mod:`sim.capacity.scenarios`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from sim.capacity.defaults import GiB
from sim.capacity.run import Run
from sim.capacity.specs import ContainerSpec, Host, Spec, VMSpec
from sim.errors import InvalidSpecError

__all__ = ["ScenarioResult", "check_any_spec", "check_count", "check_host", "check_number", "check_spec",
           "check_timing", "gib", "guest_room", "require"]


def _ro(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class ScenarioResult:
    """What one scenario showed.

    ``name`` is the function's name (what :func:`sim.capacity.plots.figure` dispatches on);
    ``title`` Chinese + English; ``claim`` the reference's expected outcome in one sentence;
    ``outcome`` the numbers that check it (floats; ``inf`` where something never happened);
    ``runs`` the simulations behind it, by label; ``parameters`` every input, defaults filled in;
    ``table`` the columns a figure or a reader's table needs (name -> tuple, equal lengths within
    one group of columns).  All mappings are read-only."""

    name: str
    title: str
    claim: str
    outcome: Mapping[str, float]
    runs: Mapping[str, Run]
    parameters: Mapping[str, object]
    table: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", _ro({k: float(v) for k, v in self.outcome.items()}))
        object.__setattr__(self, "runs", _ro(self.runs))
        object.__setattr__(self, "parameters", _ro(self.parameters))
        object.__setattr__(self, "table", _ro({k: tuple(v) for k, v in self.table.items()}))


# -- checks: every one runs before any simulation ------------------------------------------------

def require(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidSpecError(message)


def check_number(name: str, v: object, *, low: float = 0.0, strict: bool = True, high: float = math.inf) -> float:
    if (not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)
            or not (v > low if strict else v >= low) or v > high):
        raise InvalidSpecError(f"{name} must be a finite number {'>' if strict else '>='} {low}"
                               f"{'' if high == math.inf else f' and <= {high}'}, not {v!r}")
    return float(v)


def check_count(name: str, v: object, *, low: int = 1) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise InvalidSpecError(f"{name} must be a whole number >= {low}, not {v!r}")
    return v


def check_host(name: str, v: object) -> Host:
    if not isinstance(v, Host):
        raise InvalidSpecError(f"{name} must be a Host, not {type(v).__name__}")
    return v


S = TypeVar("S", VMSpec, ContainerSpec)


def check_spec(name: str, v: object, cls: type[S], kind: str) -> S:
    if not isinstance(v, cls) or v.kind != kind:
        raise InvalidSpecError(f"{name} must be a {kind} spec ({cls.__name__}), not {v!r}")
    return v


def check_any_spec(name: str, v: object) -> Spec:
    if not isinstance(v, (VMSpec, ContainerSpec)):
        raise InvalidSpecError(f"{name} must be a VMSpec or ContainerSpec, not {type(v).__name__}")
    return v


def check_timing(duration: object, dt: object) -> tuple[float, float]:
    d, step_ = check_number("duration", duration), check_number("dt", dt)
    require(step_ <= d, f"dt ({step_}) must not exceed duration ({d})")
    return d, step_


def gib(x: float) -> float:
    return x / GiB


def guest_room(spec: Spec) -> float:
    """Memory a workload can use inside the instance before its own OOM kill."""
    if isinstance(spec, VMSpec):
        return float(spec.memory - spec.guest_os)
    return float(spec.memory_max) if spec.memory_max is not None else math.inf

"""The argument checks every part of the model shares: a typed error naming the value, before
anything runs.  ``bool`` is refused where a number is asked for (``True`` is not one core), and
so are NaN and the infinities unless a bound says otherwise."""

from __future__ import annotations

import math
import numbers

from sim.errors import InvalidSpecError

__all__ = ["number", "whole", "require"]


def require(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidSpecError(message)


def number(name: str, v: object, *, low: float = 0.0, strict: bool = True, high: float = math.inf,
           infinite: bool = False) -> float:
    """``v`` as a float: a real number (numpy's too), not a bool, finite unless ``infinite``,
    above ``low`` (or equal when not ``strict``) and at most ``high``."""
    ok = not isinstance(v, bool) and isinstance(v, numbers.Real) and not math.isnan(float(v))
    if ok:
        x = float(v)  # type: ignore[arg-type]
        ok = (infinite or math.isfinite(x)) and (x > low if strict else x >= low) and x <= high
    if not ok:
        raise InvalidSpecError(f"{name} must be a {'' if infinite else 'finite '}number {'>' if strict else '>='} {low:g}"
                               f"{'' if high == math.inf else f' and <= {high:g}'}, not {v!r}")
    return float(v)  # type: ignore[arg-type]


def whole(name: str, v: object, *, low: int = 1) -> int:
    """``v`` as an int: a whole number (numpy's too), not a bool, at least ``low``."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or int(v) < low:
        raise InvalidSpecError(f"{name} must be a whole number >= {low}, not {v!r}")
    return int(v)

"""The CPU demand of rows over a block, compiled (see :mod:`._fill`): one pass, no temporaries.

Row i at tick t wants ``((mean[i] * table[profile[i], t]) * coef[i, minute[t]]) * on[i, t]``,
the products the engine wrote in numpy (``on`` a boolean, as 1.0 or 0.0), in that order, so
each value is the same double."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from sim.capacity._fill import _compiled
from sim.errors import InvalidSpecError

__all__ = ["cpu_demand"]

F = npt.NDArray[np.floating[Any]]


def _demand_py(mean: F, profile: npt.NDArray[np.int64], table: F, coef: F, minute: npt.NDArray[np.int64],
               on: npt.NDArray[np.bool_], out: F) -> None:
    rows, ticks = out.shape
    for i in range(rows):
        for t in range(ticks):
            out[i, t] = ((mean[i] * table[profile[i], t]) * coef[i, minute[t]]) * (1.0 if on[i, t] else 0.0)


_demand = _compiled(_demand_py)


def cpu_demand(mean: F, profile: npt.NDArray[np.int64], table: F, coef: F, minute: npt.NDArray[np.int64],
               on: npt.NDArray[np.bool_]) -> F:
    """Rows x ticks: ``mean`` and ``profile`` (a row of ``table``, profiles x ticks) per row,
    ``coef`` (rows x minutes) the noise of each row and minute, ``minute`` the minute of each
    tick, ``on`` (rows x ticks, or rows x 1 to broadcast) whether it wants anything.  Raises
    :class:`~sim.errors.InvalidSpecError` for shapes that do not fit or an index out of range."""
    rows, ticks = len(mean), table.shape[1]
    if len(profile) != rows or coef.shape[0] != rows or len(minute) != ticks or on.shape[0] != rows:
        raise InvalidSpecError("cpu_demand: mean, profile, coef and on need one entry per row, minute one per tick")
    if rows and not (int(profile.min()) >= 0 and int(profile.max()) < len(table)):
        raise InvalidSpecError("cpu_demand: a profile outside the table")
    if ticks and not (int(minute.min()) >= 0 and int(minute.max()) < coef.shape[1]):
        raise InvalidSpecError("cpu_demand: a minute outside coef")
    out = np.empty((rows, ticks))
    _demand(np.ascontiguousarray(mean, dtype=np.float64), np.ascontiguousarray(profile, dtype=np.int64),
            np.ascontiguousarray(table, dtype=np.float64), np.ascontiguousarray(coef, dtype=np.float64),
            np.ascontiguousarray(minute, dtype=np.int64), np.broadcast_to(on, (rows, ticks)), out)
    return out

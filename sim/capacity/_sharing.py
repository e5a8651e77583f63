"""How the engine adds up and shares, vectorised: per-host sums and maxima of rows sorted by
host, and max-min fair CPU shares by weight (water-filling) over many groups at once."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from sim.capacity._fill import bin_columns, fill_groups

__all__ = ["F", "B", "host_sum", "host_columns", "host_max", "water_fill"]

F = npt.NDArray[np.floating[Any]]
B = npt.NDArray[np.bool_]


def host_sum(x: F, bounds: npt.NDArray[np.int64]) -> F:
    """Sum of rows ``bounds[h]:bounds[h+1]`` for every host h (rows sorted by host)."""
    out = np.zeros((len(bounds) - 1, x.shape[1]), dtype=np.float64)
    nonempty = np.nonzero(bounds[1:] > bounds[:-1])[0]
    if len(nonempty) and x.shape[0]:
        out[nonempty] = np.add.reduceat(x, bounds[:-1][nonempty], axis=0)
    return out


def host_columns(host: npt.NDArray[np.int64], x: F, n_hosts: int) -> F:
    """Per host and column, the sum of the rows of ``x`` on that host (``host`` per row, any
    order), each bin added up in row order from 0 as ``np.bincount`` does (one bincount per
    column gives the same bits): shape (n_hosts, columns)."""
    return bin_columns(host, x, n_hosts)


def host_max(x: F, bounds: npt.NDArray[np.int64]) -> F:
    out = np.zeros((len(bounds) - 1, x.shape[1]))
    nonempty = np.nonzero(bounds[1:] > bounds[:-1])[0]
    if len(nonempty) and x.shape[0]:
        out[nonempty] = np.maximum.reduceat(x, bounds[:-1][nonempty], axis=0)
    return out


def water_fill(want: F, weight: F, group: npt.NDArray[np.int64], capacity: F) -> F:
    """Max-min fair shares by weight: each element gets ``min(want, level * weight)`` with the
    level of its group (``group`` per element, in ``range(len(capacity))``) chosen so the group's
    shares add up to its capacity, computed round by round as :mod:`._fill` states it (each
    group's elements in element order).  Raises :class:`~sim.errors.InvalidSpecError` for arrays of unequal
    lengths or a group outside ``range(len(capacity))``."""
    return fill_groups(want, weight, group, capacity)

"""How the engine adds up and shares, vectorised: per-host sums and maxima of rows sorted by
host, and max-min fair CPU shares by weight (water-filling) over many groups at once."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["F", "B", "host_sum", "host_max", "water_fill"]

F = npt.NDArray[np.floating[Any]]
B = npt.NDArray[np.bool_]


def host_sum(x: F, bounds: npt.NDArray[np.int64]) -> F:
    """Sum of rows ``bounds[h]:bounds[h+1]`` for every host h (rows sorted by host)."""
    out = np.zeros((len(bounds) - 1, x.shape[1]), dtype=np.float64)
    nonempty = np.nonzero(bounds[1:] > bounds[:-1])[0]
    if len(nonempty) and x.shape[0]:
        out[nonempty] = np.add.reduceat(x, bounds[:-1][nonempty], axis=0)
    return out


def host_max(x: F, bounds: npt.NDArray[np.int64]) -> F:
    out = np.zeros((len(bounds) - 1, x.shape[1]))
    nonempty = np.nonzero(bounds[1:] > bounds[:-1])[0]
    if len(nonempty) and x.shape[0]:
        out[nonempty] = np.maximum.reduceat(x, bounds[:-1][nonempty], axis=0)
    return out


def water_fill(want: F, weight: F, group: npt.NDArray[np.int64], capacity: F) -> F:
    """Max-min fair shares by weight: each element gets ``min(want, level * weight)`` with the
    level of its group chosen so the group's shares add up to its capacity.

    Each round gives everyone whose want is below its group's current level what it wants and
    shares the rest again among the others; the rounds work on the shrinking set of those left."""
    alloc = np.zeros_like(want)
    remaining = capacity.astype(np.float64).copy()
    groups = len(capacity)
    left = np.arange(len(want))
    g, w, d = group, weight, want
    while len(left):
        level = remaining / np.maximum(np.bincount(g, w, minlength=groups), 1e-300)
        fair = level[g] * w
        satisfied = d <= fair
        if not satisfied.any():
            alloc[left] = fair
            break
        alloc[left[satisfied]] = d[satisfied]
        remaining -= np.bincount(g[satisfied], d[satisfied], minlength=groups)
        keep = ~satisfied
        left, g, w, d = left[keep], g[keep], w[keep], d[keep]
    return alloc

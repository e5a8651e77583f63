"""How the engine adds up and shares, vectorised: per-host sums and maxima of rows sorted by
host, and max-min fair CPU shares by weight (water-filling) over many groups at once."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["F", "B", "host_sum", "host_columns", "host_max", "water_fill", "water_fill_rounds"]

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
    order), each bin added up in row order as ``np.bincount`` does: shape (n_hosts, columns)."""
    columns = x.shape[1]
    pairs = (host[:, None] * columns + np.arange(columns)).reshape(-1)
    out: F = np.bincount(pairs, x.reshape(-1), minlength=n_hosts * columns).astype(np.float64)
    return out.reshape(n_hosts, columns)


def host_max(x: F, bounds: npt.NDArray[np.int64]) -> F:
    out = np.zeros((len(bounds) - 1, x.shape[1]))
    nonempty = np.nonzero(bounds[1:] > bounds[:-1])[0]
    if len(nonempty) and x.shape[0]:
        out[nonempty] = np.maximum.reduceat(x, bounds[:-1][nonempty], axis=0)
    return out


def water_fill(want: F, weight: F, group: npt.NDArray[np.int64], capacity: F, *, whole: bool | None = None) -> F:
    """Max-min fair shares by weight: each element gets ``min(want, level * weight)`` with the
    level of its group chosen so the group's shares add up to its capacity.

    Bit for bit the result of :func:`water_fill_rounds` (the definition), doing the same float
    operations in the same order.  Round after round, a group's level is its remaining capacity
    over the weights of its elements left; whoever wants at most level times weight gets its want;
    the wants so met are added up per group in element order, from 0, and taken off the remaining
    capacity; when a round meets no want in any group, each element left gets level times weight.
    Groups never mix, so each may stop on its own.  What is cheaper here:

    - a group whose round meets no want keeps its level to the end (neither its capacity nor its
      weights change again): its elements leave the rounds and take that level times their weight;
    - with whole-number weights (cgroup weights are) whose total is below 2**53, the weights left
      are kept by subtracting those met, which is exact and so the definition's sum whatever the
      order; and, from the first round on, an element far above its share (a want above ``next level +
      2 * (next level - this level)`` times its weight, where the next level is the one the next
      round will compute) is set aside: it only lends its weight to the
      level.  At the end each group checks that no later level reached the bound it set elements
      aside under (then none of them could have been met, and each gets the final level times its
      weight, as the definition gives it); a group where one could have is computed again by the
      definition;
    - the rounds after the first work on index arrays of the elements left, not boolean masks.

    ``whole`` says whether the weights are whole numbers above 0 with a total below 2**53 (None:
    find out); a caller that knows it for all the weights it could pass saves that pass."""
    n, groups = len(want), len(capacity)
    w_all = np.asarray(weight)
    if whole is None:
        whole = bool(np.all(w_all == np.floor(w_all)) and np.all(w_all > 0) and w_all.sum() < 2.0 ** 53)
    if not n or not whole:
        return water_fill_rounds(want, weight, group, capacity)
    alloc = np.zeros_like(want)
    remaining = capacity.astype(np.float64).copy()
    total = np.bincount(group, w_all, minlength=groups)
    aside: list[tuple[int, npt.NDArray[np.int64], F]] = []  # (round, elements set aside, their bound)
    levels: list[F] = []  # every round's level
    # idx: the elements still in the rounds; None in the first round, when that is all of them.
    idx: npt.NDArray[np.int64] | None = None
    g, w, d = group, w_all, want
    while len(g):
        level = remaining / np.maximum(total, 1e-300)
        levels.append(level)
        fair = level.take(g) * w
        met = np.flatnonzero(d <= fair)
        if not len(met):
            alloc[slice(None) if idx is None else idx] = fair
            break
        g_met, d_met = g.take(met), d.take(met)
        alloc[met if idx is None else idx.take(met)] = d_met
        remaining -= np.bincount(g_met, d_met, minlength=groups)
        total -= np.bincount(g_met, w.take(met), minlength=groups)
        left = np.ones(len(g), dtype=bool)
        left[met] = False
        moved = np.zeros(groups, dtype=bool)
        moved[g_met] = True
        upcoming = remaining / np.maximum(total, 1e-300)  # the next round's level, as it will be computed
        # A group none of whose wants was met keeps its level for good: all its elements are set
        # aside (bound -inf to set aside, +inf to check: no later level can differ).
        bound = np.where(moved, upcoming + 2.0 * (upcoming - level), -np.inf)
        far = left & (d > bound.take(g) * w)
        if far.any():
            out = np.flatnonzero(far)
            aside.append((len(levels), out if idx is None else idx.take(out), np.where(moved, bound, np.inf)))
            left[out] = False
        keep = np.flatnonzero(left)
        idx, g, w, d = keep if idx is None else idx.take(keep), g.take(keep), w.take(keep), d.take(keep)
    if aside:
        # A group's level once nothing changes any more: the one the definition would compute
        # next, with the elements set aside still in it (their weights were never taken off).
        final = remaining / np.maximum(total, 1e-300)
        # later[r]: the highest level of the rounds after the r-th (the final one included).
        later = np.maximum.accumulate(np.stack([*levels, final])[::-1], axis=0)[::-1]
        wrong = np.zeros(groups, dtype=bool)
        for r, elements, bound in aside:
            of = group.take(elements)
            mine = np.zeros(groups, dtype=bool)
            mine[of] = True
            wrong |= mine & (later[r] > bound)
            alloc[elements] = final.take(of) * w_all.take(elements)
        if wrong.any():
            redo = np.flatnonzero(wrong.take(group))
            alloc[redo] = water_fill_rounds(want.take(redo), w_all.take(redo),
                                            np.searchsorted(np.flatnonzero(wrong), group.take(redo)),
                                            capacity[wrong])
    return alloc


def water_fill_rounds(want: F, weight: F, group: npt.NDArray[np.int64], capacity: F) -> F:
    """The definition of :func:`water_fill`, round by round over every element left.

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

"""The CPU sharing's loops, compiled with numba: max-min fair shares by weight (water-filling)
and the per-host sums that find where a host is contended.

:func:`_rounds` is the water-filling of one group; :func:`fill_groups` runs it over groups
given element by element, :func:`fill_hosts` over the contended (host, tick) pairs of a rows x
ticks matrix, after a first round it does once per host (all of a host's rows are in each of its
groups, so the first level and each row's threshold are the same at every tick).  The loops do
the float operations of the round-by-round definition (``rounds`` in
``tests/capacity/test_capacity_sharing.py``, in numpy), in its order:

    round after round, level = remaining / max(sum of the weights left, 1e-300);
    each element left with want <= level * weight gets its want; the wants so met are added up
    from 0 in element order (as ``np.bincount`` adds) and that sum is taken off remaining; when
    a round meets no want, each element left gets level * weight.

:func:`host_totals` adds the wants per host and tick as ``np.add.reduceat`` does (first row,
plus numpy's pairwise sum of the others).  Nothing is reassociated, fused or vectorised (no
``fastmath``), so every result is the same IEEE double as numpy's; the tests compare bytes.
``cache=True`` keeps the machine code in ``__pycache__``: the compile (about 3 s) is paid once
per machine and numba version, later processes load it (about 0.1 s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from sim.errors import InvalidSpecError

try:
    from numba import njit
except ImportError as error:  # pragma: no cover - numba is a declared dependency
    raise ImportError("sim.capacity needs numba (a dependency of layerlab: pip install numba) for the CPU "
                      "water-filling") from error

__all__ = ["bin_columns", "fill_groups", "fill_hosts", "host_totals"]

def _compiled(py_func: Callable[..., Any]) -> Any:
    """``py_func`` compiled by numba (strict IEEE: no ``fastmath``), its machine code cached on
    disk where numba finds a writable place (beside this file, else the user's cache folder);
    with neither (a read-only install run by a user without a home), compiled in each process."""
    try:
        return njit(cache=True)(py_func)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(py_func)


F = npt.NDArray[np.floating[Any]]
I64 = npt.NDArray[np.int64]


def _rounds_py(share: F, weight: F, left: I64, n_left: int, remaining: float, met_at: I64, whole: bool,
               total: float) -> None:
    """The rounds of one group's water-filling from the state earlier rounds left it in: the
    elements ``left[:n_left]`` (indices into ``share`` and ``weight``, in element order) are not
    met yet and ``remaining`` is what is left of the capacity.  ``share`` holds the wants on
    entry and each element's share on return (a met want is its own share); ``left`` and
    ``met_at`` (scratch, as long as ``left``) are overwritten.

    ``whole``: the weights are whole numbers whose total (of the whole group) is below 2**53,
    and ``total`` is the sum of those left.  Then every sum of them is exact whatever its order,
    so the weights left are kept by taking off those met (the definition's sum, bit for bit);
    otherwise they are added up again, in element order, every round."""
    while n_left > 0:
        if not whole:
            total = 0.0
            for j in range(n_left):
                total += weight[left[j]]
        # np.maximum(total, 1e-300): a NaN total stays NaN.
        level = remaining / (total if (total >= 1e-300 or total != total) else 1e-300)
        # Branch-free (each comparison is a coin toss): the met and the others listed apart,
        # in element order; then only the met wants are added up (a shorter chain of adds).
        kept = 0
        n_met = 0
        for j in range(n_left):
            i = left[j]
            ok = share[i] <= level * weight[i]
            left[kept] = i
            met_at[n_met] = i
            kept += 0 if ok else 1
            n_met += 1 if ok else 0
        if n_met == 0:  # no want met: everyone left gets its share of this level
            for j in range(n_left):
                i = left[j]
                share[i] = level * weight[i]
            return
        met = 0.0
        met_weight = 0.0
        for q in range(n_met):
            met += share[met_at[q]]
            met_weight += weight[met_at[q]]
        remaining = remaining - met
        total = total - met_weight
        n_left = kept


_rounds = _compiled(_rounds_py)


def _whole_py(weight: F) -> bool:
    """Whether every weight is a whole number >= 1 and their total is below 2**53 (so every
    partial sum of them is exact)."""
    total = 0.0
    for x in weight:
        if not (x >= 1.0 and x == np.floor(x)):
            return False
        total += x
    return total < 2.0 ** 53


_whole = _compiled(_whole_py)


def _fill_groups_py(want: F, weight: F, group: I64, capacity: F, out: F) -> None:
    """:func:`fill_groups` into ``out``: each group's elements gathered in element order, filled
    from the first round by :func:`_rounds` and scattered back."""
    groups = len(capacity)
    start, members = _members(group, groups)
    biggest = 0
    for g in range(groups):
        biggest = max(biggest, start[g + 1] - start[g])
    d, w = np.empty(biggest), np.empty(biggest)
    left, met_at = np.empty(biggest, dtype=np.int64), np.empty(biggest, dtype=np.int64)
    whole = _whole(weight)
    for g in range(groups):
        m = start[g + 1] - start[g]
        for k in range(m):
            e = members[start[g] + k]
            d[k], w[k] = want[e], weight[e]
        total = 0.0
        for k in range(m):
            left[k] = k
            total += w[k]
        _rounds(d, w, left, m, capacity[g], met_at, whole, total)
        for k in range(m):
            out[members[start[g] + k]] = d[k]


_fill_groups = _compiled(_fill_groups_py)


def _fill_hosts_py(served: F, host: I64, weight: F, contended: npt.NDArray[np.bool_], usable: F) -> None:
    """:func:`fill_hosts`: per host, its first round once, then per contended tick the wants
    that round does not meet through :func:`_rounds`."""
    rows, ticks = served.shape
    hosts = contended.shape[0]
    start, members = _members(host, hosts)
    biggest = 0
    for h in range(hosts):
        biggest = max(biggest, start[h + 1] - start[h])
    d, w, threshold = np.empty(biggest), np.empty(biggest), np.empty(biggest)
    left, rest = np.empty(biggest, dtype=np.int64), np.empty(biggest, dtype=np.int64)
    met_at = np.empty(biggest, dtype=np.int64)
    whole = _whole(weight)
    for h in range(hosts):
        m = start[h + 1] - start[h]
        if m == 0:
            continue
        # The first round is the same at every tick of the host: all its rows are in every
        # group, so the level and each row's threshold (level times weight) are computed once.
        total = 0.0
        for k in range(m):
            w[k] = weight[members[start[h] + k]]
            total += w[k]
        level = usable[h] / (total if (total >= 1e-300 or total != total) else 1e-300)
        for k in range(m):
            threshold[k] = level * w[k]
        for t in range(ticks):
            if not contended[h, t]:
                continue
            # Round one: a met want keeps its value (``served`` holds it already).
            n_left = 0
            n_met = 0
            for k in range(m):  # branch-free, as in _rounds
                v = served[members[start[h] + k], t]
                ok = v <= threshold[k]
                d[k] = v
                left[n_left] = k
                met_at[n_met] = k
                n_left += 0 if ok else 1
                n_met += 1 if ok else 0
            if n_left == 0:
                continue
            if n_met == 0:  # no want met: everyone gets its share of this level
                for k in range(m):
                    served[members[start[h] + k], t] = threshold[k]
                continue
            met = 0.0
            met_weight = 0.0
            for q in range(n_met):
                met += d[met_at[q]]
                met_weight += w[met_at[q]]
            for j in range(n_left):
                rest[j] = left[j]  # the later rounds overwrite ``left``
            _rounds(d, w, left, n_left, usable[h] - met, met_at, whole, total - met_weight)
            for j in range(n_left):
                k = rest[j]
                served[members[start[h] + k], t] = d[k]


_fill_hosts = _compiled(_fill_hosts_py)


def _block_sum_py(a: F, lo: int, n: int) -> float:
    """``a[lo:lo + n]`` (``n <= 128``) added up as numpy's ``pairwise_sum`` adds a block."""
    if n < 8:
        res = -0.0  # as numpy: a sum of -0.0 alone stays -0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = float(a[lo]), float(a[lo + 1]), float(a[lo + 2]), float(a[lo + 3])
    r4, r5, r6, r7 = float(a[lo + 4]), float(a[lo + 5]), float(a[lo + 6]), float(a[lo + 7])
    i = 8
    while i < n - n % 8:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


_block_sum = _compiled(_block_sum_py)


def _pairwise_py(a: F, lo: int, n: int) -> float:
    """``a[lo:lo + n]`` added up as numpy adds a float array (``pairwise_sum`` of its ``umath``
    loops): blocks of at most 128 with eight accumulators; a longer run is cut in two (the
    first part a multiple of 8) and the two sums added.  That recursion runs on an explicit
    stack (numba's cache and recursive functions do not mix well)."""
    if n <= 128:
        return float(_block_sum(a, lo, n))
    depth = 64  # each level at least halves the run
    f_lo, f_n = np.empty(depth, dtype=np.int64), np.empty(depth, dtype=np.int64)
    f_stage, f_left = np.zeros(depth, dtype=np.int64), np.empty(depth)
    sp = 0
    f_lo[0], f_n[0] = lo, n
    ret = 0.0
    while sp >= 0:
        k = f_n[sp]
        half = k // 2
        half -= half % 8
        if f_stage[sp] == 0:
            if k <= 128:
                ret = _block_sum(a, f_lo[sp], k)
                sp -= 1
                continue
            f_stage[sp] = 1  # first the left part
            sp += 1
            f_lo[sp], f_n[sp], f_stage[sp] = f_lo[sp - 1], half, 0
        elif f_stage[sp] == 1:
            f_left[sp], f_stage[sp] = ret, 2  # then the right part
            sp += 1
            f_lo[sp], f_n[sp], f_stage[sp] = f_lo[sp - 1] + half, k - half, 0
        else:
            ret = f_left[sp] + ret
            sp -= 1
    return ret


_pairwise = _compiled(_pairwise_py)


def _host_totals_py(wants: F, host: I64, base: F, totals: F) -> None:
    """:func:`host_totals` into ``totals``."""
    rows, ticks = wants.shape
    hosts = base.shape[0]
    start, members = _members(host, hosts)
    column = np.empty(max(1, rows))
    for h in range(hosts):
        m = start[h + 1] - start[h]
        for t in range(ticks):
            if m == 0:
                totals[h, t] = 0.0 + base[h, t]
                continue
            # np.add.reduceat along the rows: the first row, plus the pairwise sum of the others.
            for k in range(1, m):
                column[k - 1] = wants[members[start[h] + k], t]
            first = wants[members[start[h]], t]
            totals[h, t] = (first + _pairwise(column, 0, m - 1) if m > 1 else first) + base[h, t]


_host_totals = _compiled(_host_totals_py)


def _members_py(host: I64, hosts: int) -> tuple[I64, I64]:
    """The rows of each host in row order: ``members[start[h]:start[h + 1]]`` (a stable counting sort)."""
    start = np.zeros(hosts + 1, dtype=np.int64)
    for r in range(len(host)):
        start[host[r] + 1] += 1
    for h in range(hosts):
        start[h + 1] += start[h]
    at = start[:-1].copy()
    members = np.empty(len(host), dtype=np.int64)
    for r in range(len(host)):
        members[at[host[r]]] = r
        at[host[r]] += 1
    return start, members


_members = _compiled(_members_py)


def _bin_columns_py(key: I64, x: F, out: F) -> None:
    """:func:`bin_columns` into ``out`` (zeros on entry)."""
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[key[r], c] += x[r, c]


_bin_columns = _compiled(_bin_columns_py)


def bin_columns(key: I64, x: F, bins: int) -> F:
    """Per bin and column, the sum of the rows of ``x`` whose ``key`` is that bin (in
    ``range(bins)``), each added in row order from 0, as ``np.bincount`` adds: shape
    (bins, columns).  Raises :class:`~sim.errors.InvalidSpecError` for a key out of range."""
    _check("bin_columns", len(x), key, bins)
    out = np.zeros((bins, x.shape[1]))
    _bin_columns(np.ascontiguousarray(key, dtype=np.int64), np.ascontiguousarray(x, dtype=np.float64), out)
    return out


def _check(what: str, rows: int, host: I64, groups: int, *per_row: npt.NDArray[np.generic]) -> None:
    """The compiled loops index without bounds checks: a bad index is refused here."""
    if len(host) != rows or any(len(x) != rows for x in per_row):
        raise InvalidSpecError(f"{what}: one value per row is needed ({rows} rows)")
    if rows and not (int(np.min(host)) >= 0 and int(np.max(host)) < groups):
        raise InvalidSpecError(f"{what}: an index outside range({groups})")


def host_totals(wants: F, host: I64, base: F) -> F:
    """Per host and tick, the wants (rows x ticks) of the rows on that host (``host`` per row,
    in ``range(len(base))``) plus ``base`` (hosts x ticks), bit for bit
    ``host_sum(wants[order], bounds) + base`` of :mod:`._sharing` with the rows stably sorted by
    host (``np.add.reduceat``: each host's first row plus the pairwise sum of its others).
    Raises :class:`~sim.errors.InvalidSpecError` for mismatched shapes or a host out of range."""
    _check("host_totals", len(wants), host, len(base))
    if wants.ndim != 2 or base.ndim != 2 or wants.shape[1] != base.shape[1]:
        raise InvalidSpecError(f"host_totals: wants {wants.shape} and base {base.shape} need the same ticks")
    totals = np.empty(base.shape)
    _host_totals(np.ascontiguousarray(wants, dtype=np.float64), np.ascontiguousarray(host, dtype=np.int64),
                 np.ascontiguousarray(base, dtype=np.float64), totals)
    return totals


def fill_groups(want: F, weight: F, group: I64, capacity: F) -> F:
    """Each element's share: ``want``, ``weight`` and ``group`` (in ``range(len(capacity))``)
    per element, ``capacity`` per group; a group's elements are filled in element order.
    Raises :class:`~sim.errors.InvalidSpecError` for unequal lengths or a group out of range."""
    _check("water_fill", len(want), group, len(capacity), weight)
    out = np.zeros(len(want))
    _fill_groups(np.ascontiguousarray(want, dtype=np.float64), np.ascontiguousarray(weight, dtype=np.float64),
                 np.ascontiguousarray(group, dtype=np.int64), np.ascontiguousarray(capacity, dtype=np.float64), out)
    return out


def fill_hosts(served: F, host: I64, weight: F, contended: npt.NDArray[np.bool_], usable: F) -> None:
    """Water-fill, in place, every contended (host, tick) of ``served`` (rows x ticks, C-ordered
    float64, holding the wants): the group of host h at tick t is every row whose ``host`` is h,
    in row order, sharing ``usable[h]``; the other entries keep their wants.  Raises
    :class:`~sim.errors.InvalidSpecError` for another array, mismatched shapes or a host
    outside ``range(len(usable))``."""
    if not (served.dtype == np.float64 and served.flags.c_contiguous and served.ndim == 2):
        raise InvalidSpecError("fill_hosts fills a C-ordered float64 rows x ticks array in place")
    _check("fill_hosts", len(served), host, len(usable), weight)
    if contended.shape != (len(usable), served.shape[1]):
        raise InvalidSpecError(f"fill_hosts: contended is {contended.shape}, not {(len(usable), served.shape[1])}")
    _fill_hosts(served, np.ascontiguousarray(host, dtype=np.int64), np.ascontiguousarray(weight, dtype=np.float64),
                np.ascontiguousarray(contended, dtype=np.bool_), np.ascontiguousarray(usable, dtype=np.float64))

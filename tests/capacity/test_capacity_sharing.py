"""The compiled sums and water-filling of the CPU sharing (sim.capacity._fill, used through
sim.capacity._sharing and the engine) give the numpy definition's bits exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.capacity._demand import cpu_demand
from sim.capacity._fill import fill_hosts, host_totals
from sim.capacity._sharing import host_columns, host_sum, water_fill
from sim.errors import InvalidSpecError


def rounds(want: np.ndarray, weight: np.ndarray, group: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """The definition, in numpy (the water-filling the engine did before it was compiled):
    each round gives everyone whose want is at most its group's level times its weight what it
    wants, takes the wants so met (added up per group by ``np.bincount``) off the capacity and
    shares the rest again among the others; a round that meets no want gives each element left
    the level times its weight."""
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


def _wants(rng: np.random.Generator, shape: str, size: int | tuple[int, int]) -> np.ndarray:
    if shape == "uniform":
        return rng.random(size) * rng.choice([0.1, 1.0, 5.0])
    if shape == "ties":
        return rng.choice([0.0, 0.25, 0.5, 1.0, 1.0 / 3.0], size)
    if shape == "rounded":
        return np.round(rng.random(size), 2)
    if shape == "special":  # -0.0, inf and nan wants
        return rng.choice([-0.0, 0.0, 0.5, 1e-300, np.inf, np.nan, 2.0], size)
    return np.where(rng.random(size) < 0.2, 0.0, rng.exponential(1.0, size))


_SHAPES = st.sampled_from(["uniform", "ties", "rounded", "heavy", "special"])
_WEIGHTS = st.sampled_from([[100.0], [100.0, 200.0], [1.0, 100.0, 10_000.0, 300.0], [1.5, 2.25, 0.1], [1e-320, 3.0]])


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Many groups of wants: ties, zeros, wants just above and below a share, whole and
    fractional weights, -0.0/inf/nan wants."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, groups = draw(st.integers(0, 400)), draw(st.integers(1, 30))
    want = _wants(rng, draw(_SHAPES), n)
    weight = rng.choice(draw(_WEIGHTS), n)
    group = rng.integers(0, groups, n)
    capacity = rng.random(groups) * draw(st.sampled_from([0.5, 10.0, 60.0]))
    return want, weight, group, capacity


@settings(max_examples=300, deadline=None)
@given(problems())
def test_water_fill_is_the_definition_bit_for_bit(problem: tuple[np.ndarray, ...]) -> None:
    want, weight, group, capacity = problem
    assert water_fill(want, weight, group, capacity).tobytes() == rounds(want, weight, group, capacity).tobytes()


def test_a_climbing_group_is_filled_to_the_end() -> None:
    """1,000 elements of weight 1 share 1 core (first share 0.001): 10 want nothing, 980 want
    0.001005 (met in round 2, which lifts the level to about 0.0015) and 10 want 0.0012, met in
    round 3: every want is met in the end; a second group beside it is filled on its own."""
    climbing = np.concatenate([np.zeros(10), np.full(980, 0.001005), np.full(10, 0.0012)])
    calm = np.linspace(0.001, 0.01, 50)
    want = np.concatenate([climbing, calm])
    weight = np.ones(len(want))
    group = np.repeat([0, 1], [len(climbing), len(calm)])
    capacity = np.array([1.0, 0.2])
    got = water_fill(want, weight, group, capacity)
    assert got.tobytes() == rounds(want, weight, group, capacity).tobytes()
    assert np.array_equal(got[:1000], climbing)


def test_water_fill_rejects_mismatched_input() -> None:
    with pytest.raises(InvalidSpecError):
        water_fill(np.ones(3), np.ones(2), np.zeros(3, dtype=np.int64), np.ones(1))
    with pytest.raises(InvalidSpecError):
        water_fill(np.ones(2), np.ones(2), np.array([0, 1]), np.ones(1))


@st.composite
def fleets(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """A rows x ticks matrix of wants on a few hosts (rows in any host order), its weights,
    which (host, tick) pairs are contended and each host's usable CPU."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    hosts, rows, ticks = draw(st.integers(1, 6)), draw(st.integers(0, 300)), draw(st.integers(1, 12))
    host = rng.integers(0, hosts, rows)
    wants = _wants(rng, draw(_SHAPES), (rows, ticks))
    weight = rng.choice(draw(_WEIGHTS), rows)
    contended = rng.random((hosts, ticks)) < draw(st.sampled_from([0.0, 0.5, 1.0]))
    usable = rng.random(hosts) * draw(st.sampled_from([0.5, 10.0, 60.0]))
    return wants, host, weight, contended, usable


@settings(max_examples=200, deadline=None)
@given(fleets())
def test_fill_hosts_is_the_definition_per_host_and_tick(fleet: tuple[np.ndarray, ...]) -> None:
    """Each contended (host, tick) is a group of all the host's rows, in row order; the rest
    keep their wants."""
    wants, host, weight, contended, usable = fleet
    hosts, ticks = contended.shape
    expected = wants.copy()
    where = np.nonzero(contended[host])  # (row, tick) elements, row by row
    group_of = np.full(contended.shape, -1)
    group_of[contended] = np.arange(int(contended.sum()))
    group = group_of[host[where[0]], where[1]]
    capacity = np.broadcast_to(usable[:, None], contended.shape)[contended]
    expected[where] = rounds(wants[where], weight[where[0]], group, capacity)
    got = wants.copy()
    fill_hosts(got, host, weight, contended, usable)
    assert got.tobytes() == expected.tobytes()


def test_fill_hosts_fills_in_place_only() -> None:
    with pytest.raises(InvalidSpecError):
        fill_hosts(np.ones((2, 3)).T, np.zeros(3, dtype=np.int64), np.ones(3), np.ones((1, 2), dtype=bool), np.ones(1))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 1200), st.integers(1, 9), st.integers(1, 20))
def test_host_totals_are_reduceat_over_rows_sorted_by_host(seed: int, rows: int, hosts: int, ticks: int) -> None:
    """Bit for bit what the engine computed with numpy: the wants sorted (stably) by host,
    ``np.add.reduceat`` per host (runs up to 1,200 rows: numpy's pairwise blocks of 128 and
    their halving), plus the aggregated rows' sums."""
    rng = np.random.default_rng(seed)
    host = rng.integers(0, hosts, rows)
    wants = rng.random((rows, ticks)) * 10.0 ** rng.integers(-8, 8, (rows, ticks))
    wants[rng.random((rows, ticks)) < 0.1] = -0.0
    base = rng.random((hosts, ticks)) * (rng.random((hosts, ticks)) < 0.5)
    order = np.argsort(host, kind="stable")
    bounds = np.searchsorted(host[order], np.arange(hosts + 1))
    assert host_totals(wants, host, base).tobytes() == (host_sum(wants[order], bounds) + base).tobytes()


@given(st.integers(0, 2**32 - 1), st.integers(0, 60), st.integers(1, 9), st.integers(1, 40))
def test_host_columns_is_one_bincount_per_column(seed: int, rows: int, hosts: int, columns: int) -> None:
    rng = np.random.default_rng(seed)
    host = rng.integers(0, hosts, rows)
    x = rng.random((rows, columns)) * 10.0 ** rng.integers(-6, 6, (rows, columns))
    per_column = np.stack([np.bincount(host, x[:, c], minlength=hosts) for c in range(columns)], axis=1)
    assert host_columns(host, x, hosts).tobytes() == per_column.tobytes()


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 50), st.integers(1, 130), st.booleans())
def test_cpu_demand_is_the_numpy_products(seed: int, rows: int, ticks: int, per_row: bool) -> None:
    """((mean * profile) * noise) * on, as the engine wrote it in numpy (on as 1.0 or 0.0,
    per tick or per row)."""
    rng = np.random.default_rng(seed)
    table = rng.random((3, ticks)) * 10.0 ** rng.integers(-3, 3, (3, ticks))
    mean, profile = rng.random(rows) * 5, rng.integers(0, 3, rows)
    minute = np.arange(ticks) // 60
    coef = np.maximum(0.0, 1.0 + 0.1 * rng.standard_normal((rows, int(minute[-1]) + 1)))
    on = rng.random((rows, 1) if per_row else (rows, ticks)) < 0.7
    expected = mean[:, None] * table[profile] * coef[:, minute] * on
    assert cpu_demand(mean, profile, table, coef, minute, on).tobytes() == expected.tobytes()

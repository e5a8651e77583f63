"""The tick engine behind :func:`sim.capacity.simulate`: numpy over (instances x ticks) blocks.

Time is cut into blocks of ticks; within a block every rule is an array operation over all the
instances present.  Only what depends on the past is carried from block to block: when each
instance may run again (``down_until``), when its current life began (``up_since``, the origin
of a leak), how often it was killed (the back-off doubles) and a VM's high-water mark.  OOM kills
are found as the first tick that crosses a limit; the killed rows alone are recomputed from that
tick on, until no row and no host crosses anything.  CPU is shared on each host at each tick by
water-filling (max-min fairness by weight, capped per instance), computed only where a host is
contended, by the compiled loops of :mod:`._fill` (which also add up each host's wants to find
where it is).  Instances are kept sorted by host so other host totals are segment sums
(:mod:`._sharing`).

Instances that change nothing in a block (the "plain" ones) are not computed tick by tick: their
hosts' totals come from per-host sums of shared profiles (the aggregated path); the rest go
through :class:`._memory.Block` and the CPU sharing (the dense path).  A host where the two
would interact (an overflow, contention) is redone dense.  ``fast=False`` makes everything dense.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim.capacity._demand import cpu_demand
from sim.capacity._fill import fill_hosts, host_totals
from sim.capacity._memory import Block, Conflict
from sim.capacity._sharing import B, F, host_columns, host_sum
from sim.capacity._state import Fleet, State
from sim.capacity.defaults import value
from sim.capacity.run import InstanceTotals, Run
from sim.capacity.series import UsageSeries
from sim.capacity.specs import Host, Instance

__all__ = ["Simulation"]

#: What a block's attempt may change and a conflict puts back: the carried state, the number of
#: kills recorded so far and the OOM counters.
_Saved = tuple[F, F, F, npt.NDArray[np.int64], F, int, npt.NDArray[np.int64], npt.NDArray[np.int64]]


@dataclass(frozen=True)
class _Dense:
    block: Block | None
    cpu_d: F
    served: F
    extra_served: F  # CPU of the aggregated rows that joined the sharing


class Simulation:
    """One run: the fleet, its carried state and the series and totals it fills, block by block."""

    def __init__(self, hosts: tuple[Host, ...], instances: tuple[Instance, ...], host_of: npt.NDArray[np.int64],
                 latency: F, queued: F, ticks: int, dt: float, policy: str, seed: int, power_off_idle: bool,
                 traced: list[int], backoff: float, backoff_max: float, slowdown: float, block_elements: int,
                 fast: bool) -> None:
        self.hosts, self.instances, self.ticks, self.dt = hosts, instances, ticks, dt
        self.policy, self.seed, self.power_off_idle, self.fast = policy, seed, power_off_idle, fast
        self.backoff, self.backoff_max = backoff, backoff_max
        self.fleet = f = Fleet(hosts, instances, host_of, latency, queued, slowdown)
        self.latency = latency
        n = len(instances)
        self.state = State(f.ready.copy(), f.ready.copy(), f.arrival.copy(), np.zeros(n, dtype=np.int64), np.zeros(n))
        self.cores = np.array([float(h.cores) for h in hosts])
        self.usable = self.cores * (1.0 - value("virtualisation_cpu_overhead"))  # what guests can share
        self.memory = np.array([float(h.memory) for h in hosts])
        self.host_reserved = np.array([float(h.reserved_memory) for h in hosts])
        self.idle_w = np.array([h.power_idle_w for h in hosts])
        self.max_w = np.array([h.power_max_w for h in hosts])
        self.block = max(1, min(ticks, block_elements // max(1, n)))
        position = np.empty(n, dtype=np.int64)
        position[f.order] = np.arange(n)
        self.traced = {i: int(position[i]) for i in traced}  # original index -> sorted row
        self.trace_rows: dict[int, list[F]] = {i: [] for i in traced}
        self._minute_draws: dict[int, F] = {}  # the last block's last minute of noise draws
        self.kills: list[tuple[int, float]] = []  # (sorted row, time) of every OOM kill
        self.undo: list[tuple[int, float, bool, tuple[float, float, float, int]]] = []  # this block's kills
        self.totals = {k: np.zeros(n) for k in ("throttled", "unmet", "served", "fork", "peak")}
        self.oom = np.zeros(n, dtype=np.int64)
        self.host_oom = np.zeros(n, dtype=np.int64)
        self.series = {k: np.zeros(ticks) for k in ("capacity_cpu", "capacity_memory", "reserved_cpu",
                                                    "reserved_memory", "used_cpu", "used_memory", "in_use_memory",
                                                    "idle_memory",
                                                    "demand_cpu", "unmet_cpu", "active_hosts", "power_w")}

    # -- one block ---------------------------------------------------------------------------

    def run(self) -> Run:
        for k0 in range(0, self.ticks, self.block):
            self._block(k0, min(self.ticks, k0 + self.block))
        return self._result()

    def _noise(self, rows: npt.NDArray[np.int64], first: int, minutes: int) -> F:
        """Per row and minute, the factor its CPU demand is multiplied by (1 without noise).

        Minute m's draws come from ``(seed, m)`` alone, so results do not depend on blocks."""
        f = self.fleet
        coef = np.ones((len(rows), minutes))
        noisy = f.noise[rows] > 0
        if noisy.any():
            original = f.order[rows[noisy]]
            # A minute that straddles two blocks is drawn once (the draws are the same anyway).
            draws: dict[int, F] = {}
            for m in range(first, first + minutes):
                known = self._minute_draws.get(m)
                draws[m] = np.random.default_rng([self.seed, 1, m]).standard_normal(len(f.order)) \
                    if known is None else known
            self._minute_draws = {first + minutes - 1: draws[first + minutes - 1]}
            z = np.stack([draws[m][original] for m in range(first, first + minutes)], axis=1)
            coef[noisy] = np.maximum(0.0, 1.0 + f.noise[rows[noisy], None] * z)
        return coef

    def _block(self, k0: int, k1: int) -> None:
        """One block: plain rows from per-host sums, the others tick by tick.

        A host on which the dense rows and the plain rows' sums together overflow memory or
        contend for CPU is a conflict: the block is redone with every row of that host dense
        (the state the attempt changed is restored first)."""
        f, dt = self.fleet, self.dt
        tt = (k0 + np.arange(k1 - k0)) * dt
        n_hosts = len(self.hosts)
        active = np.zeros((n_hosts, len(tt)), dtype=bool)
        host_served = np.zeros((n_hosts, len(tt)))
        rows = np.nonzero((f.arrival < tt[-1] + dt) & (f.depart > tt[0]))[0]
        committed = False  # whether the dense path wrote this block's trace columns
        if len(rows):
            table = np.stack([p(tt) for p in f.profiles])  # type: ignore[operator]
            minute = np.floor(tt / 60.0).astype(np.int64)
            first = int(minute[0])
            m_idx = minute - first
            coef = self._noise(rows, first, int(m_idx[-1]) + 1)
            plain = self._plain(rows, tt, table, coef, m_idx) if self.fast else np.zeros(len(rows), dtype=bool)
            full = np.zeros(n_hosts + 1, dtype=bool)  # hosts whose rows all go tick by tick
            shared_cpu = np.zeros(n_hosts + 1, dtype=bool)  # hosts whose plain rows join the CPU sharing
            while True:
                agg = plain & ~full[f.host[rows]]
                by_tick = agg & shared_cpu[f.host[rows]]  # memory from sums, CPU tick by tick
                base_served: F = np.zeros((n_hosts, len(tt)))
                base_held: F = np.zeros((n_hosts, len(tt)))
                base_hosts = np.zeros(n_hosts, dtype=bool)
                if agg.any():
                    agg_series = self._host_series(rows[agg], tt, table, coef[agg], m_idx)
                    base_held = agg_series[2][:n_hosts]
                    summed = agg & ~by_tick
                    if summed.any() and not by_tick.any():  # the same rows: the same sums
                        base_served = agg_series[1][:n_hosts]
                    elif summed.any():
                        base_served = self._host_series(rows[summed], tt, table, coef[summed], m_idx,
                                                        served_only=True)[1][:n_hosts]
                    base_hosts[f.host[rows[agg]][f.host[rows[agg]] < n_hosts]] = True
                    over_memory = (base_held > (self.memory - self.host_reserved)[:, None] + 1e-6).any(axis=1)
                    over_cpu = (base_served > self.usable[:, None] + 1e-12).any(axis=1)
                    if over_memory.any() or over_cpu.any():
                        full[:n_hosts] |= over_memory
                        shared_cpu[:n_hosts] |= over_cpu
                        continue
                extra = rows[by_tick]
                # ((mean * profile) * noise) * up
                extra_want = cpu_demand(f.cpu_mean[extra], f.cpu_prof[extra], table, coef[by_tick], m_idx,
                                        (self.state.down_until[extra] <= tt[0])[:, None])
                saved = self._snapshot()
                try:
                    dense = self._dense(rows[~agg], tt, table, coef[~agg], m_idx, base_served, base_held, base_hosts,
                                        extra, extra_want)
                except Conflict as conflict:
                    self._restore(saved)
                    (full if conflict.memory else shared_cpu)[conflict.hosts] = True
                    continue
                break
            if (~agg).any():
                self._commit_dense(dense, active, host_served)
                committed = True
            if agg.any():
                self._aggregate(rows[agg], tt, table, coef[agg], m_idx, active, host_served,
                                by_tick=by_tick[agg], served_by_tick=dense.extra_served, series=agg_series)
        if not committed:  # a traced instance is never aggregated: none is present in this block
            for original in self.traced:
                self.trace_rows[original].append(np.stack([tt] + [np.zeros_like(tt)] * 4))
        if not self.power_off_idle:
            active[:] = True
        s = self.series
        s["active_hosts"][k0:k1] = active.sum(axis=0)
        s["capacity_cpu"][k0:k1] = self.cores @ active
        s["capacity_memory"][k0:k1] = self.memory @ active
        util = np.minimum(1.0, host_served / self.cores[:, None])
        s["power_w"][k0:k1] = (active * (self.idle_w[:, None] + (self.max_w - self.idle_w)[:, None] * util)).sum(axis=0)

    def _snapshot(self) -> _Saved:
        st = self.state
        self.undo = []
        return (st.down_until.copy(), st.up_since.copy(), st.alive_from.copy(), st.restarts.copy(), st.hwm.copy(),
                len(self.kills), self.oom.copy(), self.host_oom.copy())

    def _restore(self, saved: _Saved) -> None:
        st = self.state
        st.down_until, st.up_since, st.alive_from, st.restarts, st.hwm, n_kills, self.oom, self.host_oom = saved
        del self.kills[n_kills:]
        self.undo = []

    # -- the aggregated path: hosts where nothing crosses a limit ------------------------------

    def _plain(self, rows: npt.NDArray[np.int64], tt: F, table: F, coef: F, m_idx: npt.NDArray[np.int64]) -> B:
        """Rows whose block is a product of constants and shared profiles: present and up (or
        down) for the whole block, no leak, no limit or cap reachable, no shared pages, not
        traced, and a VM's high-water mark already above anything it will use."""
        f, st = self.fleet, self.state
        end = tt[-1] + self.dt
        up = st.down_until[rows] <= tt[0]
        steady = (f.arrival[rows] <= tt[0]) & (f.depart[rows] >= end) & (up | (st.down_until[rows] >= end))
        steady &= st.alive_from[rows] <= tt[0]
        peak = table.max(axis=1)
        # The largest CPU demand: per minute, the profile's peak in that minute times the noise.
        minute_peak = np.zeros((len(table), coef.shape[1]))
        for m in np.unique(m_idx):  # with dt > 60 s some minutes have no tick
            minute_peak[:, m] = table[:, m_idx == m].max(axis=1)
        cpu_peak = f.cpu_mean[rows] * (coef * minute_peak[f.cpu_prof[rows]]).max(axis=1)
        mem_peak = f.mem_mean[rows] * peak[f.mem_prof[rows]]
        quiet = ~up | ((f.leak[rows] == 0) & (cpu_peak <= f.cap[rows] + 1e-12)
                       & (cpu_peak <= f.cpu_max[rows]) & (mem_peak <= np.minimum(f.limit[rows], f.high[rows])))
        # A VM's high-water mark is plain too when it stays put, or when the profile starts the
        # block at or above it: then it is the profile's running maximum times the mean.
        rising = st.hwm[rows] <= f.mem_mean[rows] * table[f.mem_prof[rows], 0]
        vm_ok = ~f.is_vm[rows] | ((f.share[rows] == 0) & (f.balloon[rows] | ~up | (mem_peak <= st.hwm[rows]) | rising))
        traced = np.isin(rows, np.fromiter(self.traced.values(), dtype=np.int64, count=len(self.traced)))
        plain: B = steady & quiet & vm_ok & ~traced
        return plain

    def _coefficients(self, rows: npt.NDArray[np.int64], table: F) -> tuple[B, F, F, F, F]:
        """For plain rows: up, and resident = c0 + c1 * profile + r1 * its running maximum
        (a VM whose high-water mark rises with its profile), in use = u1 * profile."""
        f, st = self.fleet, self.state
        up = st.down_until[rows] <= self.block_start
        vm = f.is_vm[rows]
        keeps = vm & ~f.balloon[rows]  # keeps its high-water mark
        rising = keeps & up & (st.hwm[rows] <= f.mem_mean[rows] * table[f.mem_prof[rows], 0])
        hwm = np.where(keeps & ~rising, st.hwm[rows], 0.0)
        placed = f.host[rows] < len(self.hosts)  # a rejected instance holds nothing
        c0 = np.where(placed, f.overhead[rows] + np.where(vm, f.guest_os[rows] + hwm, 0.0), 0.0)
        u1 = np.where(up, f.mem_mean[rows], 0.0)
        c1 = np.where(keeps, 0.0, u1)
        r1 = np.where(rising & placed, f.mem_mean[rows], 0.0)
        return up, c0, c1, r1, u1

    def _host_profile_sums(self, rows: npt.NDArray[np.int64], weights: F, profile: npt.NDArray[np.int64]) -> F:
        """Sum of ``weights`` (rows x M, or rows) per (host, profile): shape (hosts + 1, profiles[, M])."""
        f = self.fleet
        n_prof = len(f.profiles)
        key = f.host[rows] * n_prof + profile
        size = (len(self.hosts) + 1) * n_prof
        if weights.ndim == 1:
            sums: F = np.bincount(key, weights, minlength=size).astype(np.float64)
            return sums.reshape(len(self.hosts) + 1, n_prof)
        # Each bin's values added in row order, as one bincount per column did.
        return host_columns(key, weights, size).reshape(len(self.hosts) + 1, n_prof, weights.shape[1])

    def _host_series(self, rows: npt.NDArray[np.int64], tt: F, table: F, coef: F,
                     m_idx: npt.NDArray[np.int64], *, served_only: bool = False) -> tuple[F, F, F, F, B]:
        """Per host (+1 for "rejected") and tick: CPU demand, CPU served, memory held, in use
        (with ``served_only``, the others are empty arrays)."""
        f = self.fleet
        self.block_start = tt[0]
        up, c0, c1, r1, u1 = self._coefficients(rows, table)
        scaled = f.cpu_mean[rows, None] * coef
        served_k = self._host_profile_sums(rows, scaled * up[:, None], f.cpu_prof[rows])
        served = np.einsum("hpt,pt->ht", served_k[:, :, m_idx], table)
        if served_only:
            empty = np.zeros((0, 0))
            return empty, served, empty, empty, up
        demand_k = self._host_profile_sums(rows, scaled, f.cpu_prof[rows])
        demand = np.einsum("hpt,pt->ht", demand_k[:, :, m_idx], table)
        held = np.bincount(f.host[rows], c0, minlength=len(self.hosts) + 1)[:, None] + \
            self._host_profile_sums(rows, c1, f.mem_prof[rows]) @ table
        if r1.any():
            held += self._host_profile_sums(rows, r1, f.mem_prof[rows]) @ np.maximum.accumulate(table, axis=1)
        in_use = self._host_profile_sums(rows, u1, f.mem_prof[rows]) @ table
        return demand, served, held, in_use, up

    def _aggregate(self, rows: npt.NDArray[np.int64], tt: F, table: F, coef: F, m_idx: npt.NDArray[np.int64],
                   active: B, host_served: F, *, by_tick: B, served_by_tick: F,
                   series: tuple[F, F, F, F, B]) -> None:
        """Commit the plain rows; those in ``by_tick`` got ``served_by_tick`` CPU (rows x ticks,
        from the sharing on a contended host) instead of what they wanted.  ``series`` is
        :meth:`_host_series` of these rows, as the block's attempt computed it (the dense rows'
        kills and high-water marks never touch the plain rows' state)."""
        f, dt, s, n_hosts = self.fleet, self.dt, self.series, len(self.hosts)
        k0, k1 = int(round(tt[0] / dt)), int(round(tt[0] / dt)) + len(tt)
        demand, served, held, in_use, up = series
        if by_tick.any():
            late = rows[by_tick]
            served = served - self._host_series(late, tt, table, coef[by_tick], m_idx, served_only=True)[1]
            served[:n_hosts] += host_columns(f.host[late], served_by_tick, n_hosts)
        placed = f.host[rows] < n_hosts
        s["reserved_cpu"][k0:k1] += f.req_cpu[rows[placed]].sum()
        s["reserved_memory"][k0:k1] += f.req_mem[rows[placed]].sum()
        s["demand_cpu"][k0:k1] += demand.sum(axis=0)
        s["used_cpu"][k0:k1] += served.sum(axis=0)
        s["unmet_cpu"][k0:k1] += demand.sum(axis=0) - served.sum(axis=0)
        s["used_memory"][k0:k1] += held[:n_hosts].sum(axis=0)
        s["in_use_memory"][k0:k1] += in_use[:n_hosts].sum(axis=0)
        s["idle_memory"][k0:k1] += self._idle(rows[placed], table)
        hosts = np.unique(f.host[rows[placed]])
        active[hosts] = True
        host_served[hosts] += served[hosts]
        # Per row: the profile summed over each minute of the block, times its noise.
        minute_sum = np.stack([np.bincount(m_idx, p, minlength=coef.shape[1]) for p in table])
        wanted = f.cpu_mean[rows] * (coef * minute_sum[f.cpu_prof[rows]]).sum(axis=1) * dt
        got = np.where(up, wanted, 0.0)
        if by_tick.any():
            got[by_tick] = served_by_tick.sum(axis=1) * dt
        t = self.totals
        t["served"][rows] += got
        t["unmet"][rows] += wanted - got
        t["fork"][rows] += np.where(up & (f.pids[rows] > f.pids_max[rows]), len(tt) * dt, 0.0)
        _, c0, c1, r1, _ = self._coefficients(rows, table)
        top = table.max(axis=1)[f.mem_prof[rows]]
        t["peak"][rows] = np.maximum(t["peak"][rows], c0 + (c1 + r1) * top)
        st = self.state
        st.hwm[rows] = np.where(r1 > 0, np.maximum(st.hwm[rows], r1 * top), st.hwm[rows])

    def _idle(self, rows: npt.NDArray[np.int64], table: F) -> F:
        """Per tick, the sum over plain placed ``rows`` of what each reserved and does not use
        (never below 0 for one instance: one's overuse does not cancel another's idle memory)."""
        f = self.fleet
        _, _, _, _, u1 = self._coefficients(rows, table)
        prof, req = f.mem_prof[rows], f.req_mem[rows]
        low, high = u1 * table.min(axis=1)[prof], u1 * table.max(axis=1)[prof]
        linear = req >= high  # never above its reservation: req - use, summed per profile
        crossing = ~linear & (req > low)  # only these need every tick
        idle = np.full(table.shape[1], float(req[linear].sum()))
        if linear.any():
            idle -= np.bincount(prof[linear], u1[linear], minlength=len(table)) @ table
        if crossing.any():
            idle += np.maximum(req[crossing, None] - u1[crossing, None] * table[prof[crossing]], 0.0).sum(axis=0)
        return idle

    # -- the dense path: every rule at every tick ----------------------------------------------

    def _dense(self, rows: npt.NDArray[np.int64], tt: F, table: F, coef: F, m_idx: npt.NDArray[np.int64],
               base_served: F, base_held: F, base_hosts: B, extra: npt.NDArray[np.int64], extra_want: F) -> _Dense:
        """Every rule at every tick for ``rows``; ``base_*`` are what the aggregated rows use on
        each host, and on ``base_hosts`` an overflow or contention raises :class:`Conflict`.
        ``extra`` are aggregated rows that share CPU tick by tick (wanting ``extra_want``)."""
        f = self.fleet
        if not len(rows):
            served = self._share_cpu(np.zeros(0, dtype=np.int64), np.zeros((0, len(tt))), extra, extra_want,
                                     base_served, base_hosts)
            return _Dense(None, np.zeros((0, len(tt))), np.zeros((0, len(tt))), served)
        present = (f.arrival[rows, None] <= tt) & (tt < f.depart[rows, None])
        cpu_d = cpu_demand(f.cpu_mean[rows], f.cpu_prof[rows], table, coef, m_idx, present)
        mem_base = f.mem_mean[rows, None] * table[f.mem_prof[rows]]
        b = Block(self, rows, tt, present, mem_base)
        b.resolve_memory(base_held, base_hosts)
        want = np.where(b.up, np.minimum(cpu_d, f.cap[rows, None]), 0.0)
        want = np.where(b.slowed, want * f.slowdown, want)
        placed = b.placed_rows
        shared = self._share_cpu(rows[:placed], want[:placed], extra, extra_want, base_served, base_hosts)
        served = np.concatenate([shared[:placed], want[placed:]])  # rejected rows want nothing
        return _Dense(b, cpu_d, served, shared[placed:])

    def _commit_dense(self, d: _Dense, active: B, host_served: F) -> None:
        f, dt, b = self.fleet, self.dt, d.block
        assert b is not None
        rows, tt, cpu_d, served = b.rows, b.tt, d.cpu_d, d.served
        unmet = np.maximum(cpu_d - served, 0.0)
        # The share of each tick it stood still, as the kernel's throttled time counts it: a
        # quota of q cores for a demand of d runs q/d of each period; memory.high stalls it too.
        with np.errstate(divide="ignore", invalid="ignore"):
            quota = np.where(b.up & (cpu_d > f.cpu_max[rows, None]), 1.0 - f.cpu_max[rows, None] / cpu_d, 0.0)
        throttled = np.maximum(quota, np.where(b.slowed, 1.0 - f.slowdown, 0.0))
        pids_d = np.where(b.up, f.pids[rows, None], 0.0)
        fork_fail = pids_d > f.pids_max[rows, None]
        t = self.totals
        t["throttled"][rows] += throttled.sum(axis=1) * dt
        t["unmet"][rows] += unmet.sum(axis=1) * dt
        t["served"][rows] += served.sum(axis=1) * dt
        t["fork"][rows] += fork_fail.sum(axis=1) * dt
        t["peak"][rows] = np.maximum(t["peak"][rows], b.resident.max(axis=1))
        for original, row in self.traced.items():
            where = np.searchsorted(rows, row)
            if where < len(rows) and rows[where] == row:
                memory = b.resident[where] if f.is_vm[row] else b.mem_use[where]
                self.trace_rows[original].append(np.stack([tt, served[where], memory, throttled[where] * dt,
                                                           np.minimum(pids_d[where], f.pids_max[row])]))
            else:
                zeros = np.zeros_like(tt)
                self.trace_rows[original].append(np.stack([tt, zeros, zeros, zeros, zeros]))
        s, placed = self.series, b.placed_rows
        k0 = int(round(tt[0] / dt))
        k1 = k0 + len(tt)
        present = b.present[:placed]
        s["reserved_cpu"][k0:k1] += f.req_cpu[rows[:placed]] @ present
        s["reserved_memory"][k0:k1] += f.req_mem[rows[:placed]] @ present
        s["used_cpu"][k0:k1] += served.sum(axis=0)
        s["used_memory"][k0:k1] += b.host_memory
        s["in_use_memory"][k0:k1] += b.mem_use.sum(axis=0)
        idle = np.maximum(f.req_mem[rows[:placed], None] - b.mem_use[:placed], 0.0)
        s["idle_memory"][k0:k1] += (present * idle).sum(axis=0)
        s["demand_cpu"][k0:k1] += cpu_d.sum(axis=0)
        s["unmet_cpu"][k0:k1] += unmet.sum(axis=0)
        if placed:
            active |= host_sum(present.astype(np.float64), b.bounds) > 0
            host_served += host_sum(served[:placed], b.bounds)

    def _share_cpu(self, rows: npt.NDArray[np.int64], want: F, extra: npt.NDArray[np.int64], extra_want: F,
                   base_served: F, base_hosts: B) -> F:
        """Water-fill each contended host and tick by weight over ``rows`` and ``extra``
        (placed rows, each sorted by host); returns their shares, ``rows`` first.  Contention on
        a host whose aggregated rows are not all in ``extra`` is a CPU :class:`Conflict`."""
        f = self.fleet
        both = np.concatenate([rows, extra])
        wants = np.concatenate([want, extra_want])  # a new array: returned as the shares where no host contends
        if not len(both):
            return wants
        host_of = f.host[both]
        host_want = host_totals(wants, host_of, base_served)  # as host_sum over the rows sorted by host
        usable = self.usable
        contended = host_want > usable[:, None] + 1e-12
        if not contended.any():
            return wants
        summed = base_hosts & (np.abs(base_served).sum(axis=1) > 0)  # aggregated rows with their CPU summed
        clash = contended.any(axis=1) & summed
        if clash.any():
            raise Conflict(np.nonzero(clash)[0], memory=False)
        # Each contended (host, tick) is one group: every row of ``both`` on that host, in the
        # order of ``both`` (the order its wants are added up in).
        fill_hosts(wants, host_of, f.weight[both], contended, usable)
        return wants

    # -- kills -------------------------------------------------------------------------------

    def kill(self, row: int, when: float, *, host: bool) -> bool:
        """Record a kill of ``row`` at ``when``; True when the kill resets a VM's memory."""
        f, st = self.fleet, self.state
        self.undo.append((row, when, host, (st.down_until[row], st.up_since[row], st.alive_from[row],
                                            st.restarts[row])))
        if when - st.up_since[row] >= value("restart_backoff_reset_s"):
            st.restarts[row] = 0  # it ran long enough: the back-off starts again from the beginning
        wait = min(self.backoff_max, self.backoff * 2.0 ** min(int(st.restarts[row]), 60))
        st.restarts[row] += 1
        reboot = host and f.is_vm[row]  # the host killed the hypervisor: the guest boots again
        if reboot:
            st.alive_from[row] = when + wait
        st.down_until[row] = when + wait + (f.restart_s[row] if (reboot or not f.is_vm[row]) else 0.0)
        st.up_since[row] = st.down_until[row]
        (self.host_oom if host else self.oom)[row] += 1
        self.kills.append((row, when))
        return bool(reboot)

    def unkill_after(self, row: int, when: float) -> None:
        """Forget this block's kills of ``row`` later than ``when`` (a host kill at ``when``
        came first: the later ones, found when the row was thought to run on, never happened)."""
        later = [entry for entry in self.undo if entry[0] == row and entry[1] > when]
        if not later:
            return
        earliest = min(later, key=lambda entry: entry[1])
        st = self.state
        st.down_until[row], st.up_since[row], st.alive_from[row], st.restarts[row] = earliest[3]
        for entry in later:
            self.undo.remove(entry)
            self.kills.remove((row, entry[1]))
            (self.host_oom if entry[2] else self.oom)[row] -= 1

    # -- the result --------------------------------------------------------------------------

    def _result(self) -> Run:
        f, n = self.fleet, len(self.instances)
        back = np.empty(n, dtype=np.int64)
        back[f.order] = np.arange(n)  # original index -> sorted row

        def orig(x: np.ndarray) -> np.ndarray:
            return x[back]

        totals = InstanceTotals(
            name=tuple(inst.name for inst in self.instances), kind=tuple(inst.kind for inst in self.instances),
            host=np.array([int(h) if h < len(self.hosts) else -1 for h in orig(f.host)], dtype=np.int64),
            arrival=np.array([inst.workload.arrival for inst in self.instances]),
            start_latency=self.latency, oom_kills=orig(self.oom), host_oom_kills=orig(self.host_oom),
            throttled_s=orig(self.totals["throttled"]), unmet_cpu_s=orig(self.totals["unmet"]),
            served_cpu_s=orig(self.totals["served"]), fork_failures_s=orig(self.totals["fork"]),
            peak_memory=orig(self.totals["peak"]),
        )
        traces = {}
        for original, parts in self.trace_rows.items():
            inst, row = self.instances[original], self.traced[original]
            t, cpu, memory, throttled, pids = np.concatenate(parts, axis=1)
            kill_times = np.sort([when for r, when in self.kills if r == row])
            label = inst.name or f"{inst.kind} {original}"
            limits = {"cpu.max": f.cpu_max[row], "memory.high": f.high[row], "memory.max": f.limit[row],
                      "pids.max": f.pids_max[row]}
            traces[label] = UsageSeries(
                label=label, source="model", t=t, cpu=cpu, memory=memory, throttled=np.cumsum(throttled), pids=pids,
                oom_kills=np.searchsorted(kill_times, t, side="right").astype(np.float64),
                limits={k: float(v) for k, v in limits.items() if math.isfinite(v)})
        return Run(t=np.arange(self.ticks) * self.dt, dt=self.dt, hosts=self.hosts, policy=self.policy,
                   seed=self.seed, instances=totals, traces=traces, **self.series)

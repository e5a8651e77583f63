"""The memory side of one block of ticks, tick by tick: who is up, what each uses and holds,
and the OOM kills (an instance's own limit first, then the host's), in time order."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sim.capacity._sharing import B, F, host_max, host_sum
from sim.capacity._state import SimulationView

__all__ = ["Block", "Conflict"]


class Conflict(Exception):
    """Hosts whose aggregated rows must be computed tick by tick after all: every rule
    (``memory``: one of them might be the one to kill) or only the CPU sharing."""

    def __init__(self, hosts: npt.NDArray[np.int64], *, memory: bool) -> None:
        super().__init__(hosts)
        self.hosts, self.memory = hosts, memory


class Block:
    """The memory side of one block: who is up, what they use and hold, and the OOM kills.

    Rows are the block's instances (sorted by host, placed ones first); ``resident`` is the host
    memory each holds, ``shared`` the part of a VM's pages a KSM-like merge lets it share (the
    host holds one copy of each host's largest shared part, added in :attr:`host_memory`)."""

    def __init__(self, sim: SimulationView, rows: npt.NDArray[np.int64], tt: F, present: B, mem_base: F) -> None:
        self.sim, self.rows, self.tt, self.present, self.mem_base = sim, rows, tt, present, mem_base
        f = sim.fleet
        self.placed_rows = int(np.searchsorted(rows, f.n_placed))
        self.bounds = np.searchsorted(f.host[rows[:self.placed_rows]], np.arange(len(sim.hosts) + 1))
        shape = present.shape
        self.up = np.zeros(shape, dtype=bool)
        self.slowed = np.zeros(shape, dtype=bool)
        self.mem_use, self.resident, self.shared, self.hwm = (np.zeros(shape) for _ in range(4))
        self.hwm_in = sim.state.hwm[rows].copy()
        n = len(rows)
        self.holds = present & (np.arange(n) < self.placed_rows)[:, None]  # a rejected instance holds nothing
        self._compute(np.arange(n), np.zeros(n, dtype=np.int64), reset=np.zeros(n, dtype=bool))

    def _compute(self, local: npt.NDArray[np.int64], start: npt.NDArray[np.int64], *, reset: B) -> None:
        """(Re)compute rows ``local`` from column ``start`` (one per row) on; earlier columns stay."""
        f, st = self.sim.fleet, self.sim.state
        rows, tt = self.rows[local], self.tt
        whole = not start.any()  # the first pass: nothing earlier to keep, no merging needed

        def put(target: np.ndarray, value: np.ndarray, at: npt.NDArray[np.int64] = local,
                mask: np.ndarray | None = None) -> None:
            target[at] = value if mask is None else np.where(mask, value, target[at])

        mask = None if whole else np.arange(len(tt))[None, :] >= start[:, None]
        holds = self.holds[local]
        up = self.present[local] & (tt[None, :] >= st.down_until[rows, None])
        demand = np.where(up, self.mem_base[local], 0.0)
        leak = f.leak[rows]
        if leak.any():
            age = np.maximum(tt[None, :] - st.up_since[rows, None], 0.0)
            demand += np.where(up, leak[:, None] * age, 0.0)
        put(self.up, up, mask=mask)
        high = f.high[rows]
        if np.isfinite(high).any():
            excess = np.maximum(demand - high[:, None], 0.0)  # above memory.high, growth is slowed
            put(self.slowed, excess > 0, mask=mask)
            demand -= (1.0 - f.slowdown) * excess
        put(self.mem_use, demand, mask=mask)
        use = self.mem_use[local]
        put(self.resident, np.where(holds, f.overhead[rows, None] + use, 0.0), mask=mask)  # a container holds what it uses
        vm = f.is_vm[rows]
        if vm.any():
            # A guest keeps what it touched (the high-water mark since it booted) unless ballooned.
            at, vrows, vstart = local[vm], rows[vm], start[vm]
            vmask = None if mask is None else mask[vm]
            vuse = use[vm]
            carry = np.where(vstart > 0, self.hwm[at, np.maximum(vstart - 1, 0)], self.hwm_in[at])
            carry = np.where(reset[vm], 0.0, carry)
            touched = vuse if vmask is None else np.where(vmask, vuse, 0.0)
            put(self.hwm, np.maximum(np.maximum.accumulate(touched, axis=1), carry[:, None]), at, vmask)
            guest = f.guest_os[vrows, None] + np.where(f.balloon[vrows, None], vuse, self.hwm[at])
            share = f.share[vrows, None]
            alive = holds[vm] & (tt[None, :] >= st.alive_from[vrows, None])
            # Earlier columns keep theirs: a host kill moves alive_from, not the past.
            put(self.resident, np.where(alive, f.overhead[vrows, None] + guest * (1.0 - share), 0.0), at, vmask)
            if share.any():
                put(self.shared, np.where(alive, guest * share, 0.0), at, vmask)

    @property
    def host_memory(self) -> F:
        """Per tick, what all hosts hold for the block's instances."""
        total: F = self.resident.sum(axis=0)
        if self.placed_rows and self.shared.any():
            total = total + host_max(self.shared[:self.placed_rows], self.bounds).sum(axis=0)
        return total

    def resolve_memory(self, base_held: F, base_hosts: B) -> None:
        """Kill at each limit crossing, then at each host overflow, until nothing crosses.

        A host overflows when what it holds (plus its own reserved memory) passes its RAM; the
        kernel then kills, at the first such tick, the instance furthest above what it reserved
        (Linux's badness with Kubernetes' oom_score_adj comes to the same: usage - request)."""
        sim, f = self.sim, self.sim.fleet
        self._own_limits(np.nonzero(np.isfinite(f.limit[self.rows]))[0])
        placed = self.placed_rows
        room = (sim.memory - sim.host_reserved)[:, None]
        stuck = np.zeros(len(sim.hosts), dtype=bool)
        while placed:
            total = host_sum(self.resident[:placed], self.bounds) + host_max(self.shared[:placed], self.bounds)
            over = (total + base_held > room + 1e-6) & ~stuck[:, None]
            if not over.any():
                break
            clash = over.any(axis=1) & base_hosts
            if clash.any():
                raise Conflict(np.nonzero(clash)[0], memory=True)  # an aggregated row might be the one to kill
            victims, cols = [], []
            for h in np.nonzero(over.any(axis=1))[0]:
                col = int(np.argmax(over[h]))
                lo, hi = self.bounds[h], self.bounds[h + 1]
                held = self.resident[lo:hi, col]
                # Only a kill that frees memory counts: a VM's hypervisor, a container's processes.
                frees = np.where(f.is_vm[self.rows[lo:hi]], held > 0, self.mem_use[lo:hi, col] > 0)
                if not frees.any():
                    stuck[h] = True  # what is left are shims and boot footprints: nothing to kill
                    continue
                score = np.where(frees, held - f.req_mem[self.rows[lo:hi]], -np.inf)
                victims.append(lo + int(np.argmax(score)))
                cols.append(col)
            if not victims:
                break
            local, start = np.array(victims, dtype=np.int64), np.array(cols, dtype=np.int64)
            rebooted = []
            for v, c in zip(local, start):
                sim.unkill_after(int(self.rows[v]), float(self.tt[c]))
                rebooted.append(sim.kill(int(self.rows[v]), float(self.tt[c]), host=True))
            self._compute(local, start, reset=np.array(rebooted, dtype=bool))
            self._own_limits(local)
        sim.state.hwm[self.rows] = self.hwm[:, -1]

    def _own_limits(self, local: npt.NDArray[np.int64]) -> None:
        """OOM-kill rows ``local`` where their memory passes their own limit (``memory.max``, or
        the guest's RAM for a VM: the guest kernel kills the workload, the VM stays up)."""
        f = self.sim.fleet
        while len(local):
            over = self.mem_use[local] > f.limit[self.rows[local], None]
            crossed = over.any(axis=1)
            if not crossed.any():
                return
            local = local[crossed]
            start = np.argmax(over[crossed], axis=1)
            for v, c in zip(local, start):
                self.sim.kill(int(self.rows[v]), float(self.tt[c]), host=False)
            self._compute(local, start, reset=np.zeros(len(local), dtype=bool))

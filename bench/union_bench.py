#!/usr/bin/env python3
"""Model vs kernel: what a union lookup, a listing, a mount and a copy-up cost.

Run with ``./dev bench`` (or ``.venv/bin/python bench/union_bench.py``);
``--help`` lists the options and ``bench/README.md`` explains the numbers.

Every measurement runs the model (:class:`sim.layers.unionfs.UnionFS`) and the
kernel (a real overlay mount from :mod:`realrt`) in the same process, on the
same layers, interleaved round by round so that noise from the machine
falls on both sides alike.  This is a report, not a test: it prints
PASS/FAIL for its targets and always exits 0 (130 when interrupted).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import json
import os
import platform
import random
import signal
import stat as _stat
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # runs from a checkout without the editable install too
    sys.path.insert(0, str(_REPO))

import sim  # noqa: E402
from sim.errors import BackendUnavailableError  # noqa: E402

pc = time.perf_counter_ns

NDIRS = 16  # leaf directories every layer writes into: each one is merged across the whole stack
FILE_DATA = b"layerlab benchmark file\n"  # one shared bytes object: memory numbers count entries, not content
STAT_CATEGORIES = ("bottom", "middle", "top", "whiteout", "miss")
LISTDIR_CATEGORIES = ("small", "large")
SIDE_LABEL = {"model": "model fs.stat", "kernel": "kernel os.stat", "twin": "kernel fs.stat (twin)"}
SIDE_LABEL_LS = {"model": "model fs.listdir", "kernel": "kernel os.listdir", "twin": "kernel fs.listdir (twin)"}
GROWTH_LIMIT = 1.5  # "does not grow linearly": at most this factor from the smallest to the largest stack
MY_MOUNTS: list[str] = []  # every mount point this run made, checked at the end


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- statistics and formatting ----------------------------------------------------------


def summary(samples: Sequence[int]) -> dict[str, Any]:
    """median and p90 (nearest rank) of nanosecond samples."""
    if not samples:
        return {"n": 0, "median": None, "p90": None, "min": None}
    s = sorted(samples)
    n = len(s)
    mid = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) // 2
    return {"n": n, "median": mid, "p90": s[min(n - 1, -(-9 * n // 10) - 1)], "min": s[0]}


def fmt_ns(ns: float | None) -> str:
    if ns is None:
        return "-"
    if ns < 10_000:
        return f"{ns:,.0f} ns"
    if ns < 10_000_000:
        return f"{ns / 1e3:,.1f} us"
    if ns < 10_000_000_000:
        return f"{ns / 1e6:,.1f} ms"
    return f"{ns / 1e9:,.2f} s"


def fmt_pair(s: dict[str, Any] | None) -> str:
    if not s or not s["n"]:
        return "-"
    return f"{fmt_ns(s['median'])} / {fmt_ns(s['p90'])}"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: indent + "  ".join(  # noqa: E731
        str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
    )
    return "\n".join([line(headers), indent + "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Timed loops run without the cyclic collector, as timeit does."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def timed_calls(fn: Callable[[str], Any], args: Sequence[str], out: list[int]) -> None:
    """Time ``fn(arg)`` once per argument; an ``OSError`` (the misses) is part of the call."""
    for a in args:
        t0 = pc()
        try:
            fn(a)
        except OSError:
            pass
        out.append(pc() - t0)


def timer_overhead() -> int:
    samples = []
    for _ in range(20_000):
        t0 = pc()
        samples.append(pc() - t0)
    return summary(samples)["median"]


# -- the stacks -----------------------------------------------------------------------


@dataclass
class Stack:
    n_layers: int
    counts: list[int]  # files per layer, bottom first
    layers: list[sim.Layer] = field(default_factory=list)
    build_ns: int = 0
    targets: dict[str, list[str]] = field(default_factory=dict)  # union paths, per stat category
    dirs: dict[str, list[str]] = field(default_factory=dict)  # per listdir category

    @property
    def files(self) -> int:
        return sum(self.counts)

    @property
    def entries(self) -> int:
        return sum(len(layer) for layer in self.layers)


def file_path(layer: int, j: int) -> str:
    return f"srv/d{j % NDIRS:02d}/L{layer:03d}_{j:05d}"


def deleted_count(counts: Sequence[int]) -> int:
    return min(16, counts[0] // 4)


def layer_counts(n_layers: int, files: int, per_layer: bool) -> list[int]:
    if per_layer:
        return [files] * n_layers
    base, extra = divmod(files, n_layers)
    return [base + (1 if i < extra else 0) for i in range(n_layers)]


def build_layers(n_layers: int, counts: Sequence[int]) -> list[sim.Layer]:
    """Layer i holds ``counts[i]`` files spread over ``srv/d00 .. srv/d15``; the top layer
    also whites out the last few files of the bottom layer."""
    layers = []
    deleted = deleted_count(counts)
    for i in range(n_layers):
        layer = sim.Layer()
        for j in range(counts[i]):
            layer.add_file(file_path(i, j), FILE_DATA)
        if i == n_layers - 1 and n_layers > 1:  # one layer has nothing below it to white out
            for j in range(counts[0] - deleted, counts[0]):
                layer.add_whiteout(file_path(0, j))
        layers.append(layer.freeze())
    return layers


def make_stack(n_layers: int, files: int, per_layer: bool, targets_per_category: int, seed: int) -> Stack:
    counts = layer_counts(n_layers, files, per_layer)
    st = Stack(n_layers, counts)
    t0 = pc()
    st.layers = build_layers(n_layers, counts)
    st.build_ns = pc() - t0
    rnd = random.Random(seed * 1000 + n_layers)
    deleted = deleted_count(counts)
    k = targets_per_category

    def pick(layer: int, limit: int) -> list[str]:
        js = rnd.sample(range(limit), min(k, limit))
        return ["/" + file_path(layer, j) for j in js]

    st.targets = {
        "bottom": pick(0, counts[0] - deleted),
        "middle": pick(n_layers // 2, counts[n_layers // 2]),
        "top": pick(n_layers - 1, counts[-1]),
        "whiteout": ["/" + file_path(0, j) for j in range(counts[0] - deleted, counts[0])] if n_layers > 1 else [],
        "miss": [f"/srv/d{j % NDIRS:02d}/absent_{j:05d}" for j in range(k)],
    }
    st.dirs = {"small": ["/srv"], "large": [f"/srv/d{d:02d}" for d in range(NDIRS)]}
    return st


# -- the kernel side ---------------------------------------------------------------------


def real_engine(args: argparse.Namespace, max_layers: int) -> tuple[Any, str | None, str]:
    """The real engine, or None and why not."""
    if args.no_kernel:
        return None, None, "--no-kernel"
    if os.geteuid() != 0:  # rootless mounts live in a helper's namespace: os.stat(mountpoint) cannot reach them
        return None, None, "needs root (the direct os.stat path needs the mount in this mount namespace)"
    try:
        from realrt.engine import RealEngine
    except ImportError as exc:
        return None, None, f"realrt unavailable: {exc}"
    # realrt mounts with fsconfig "lowerdir+", so no state-dir length limits the layer count.
    note = None
    state_dir = args.state_dir
    try:
        return RealEngine(state_dir=state_dir), note, ""
    except BackendUnavailableError as exc:
        return None, note, str(exc)


@contextlib.contextmanager
def mount_phases() -> Iterator[dict[str, int]]:
    """Split a KernelUnionFS construction into writing the layer folders and the mount call.

    Wraps ``realrt.layers.overlay._prepare`` / ``_mount`` for the duration (nothing is edited on disk).
    """
    phases: dict[str, int] = {}
    try:
        import realrt.layers.overlay as ov
    except ImportError:
        yield phases
        return
    originals = {name: getattr(ov, name, None) for name in ("_prepare", "_mount")}
    if None in originals.values():
        yield phases
        return

    def wrap(name: str, key: str) -> Callable[..., Any]:
        original = originals[name]
        assert original is not None

        def timed(*a: Any, **k: Any) -> Any:
            t0 = pc()
            try:
                return original(*a, **k)
            finally:
                phases[key] = phases.get(key, 0) + pc() - t0

        return timed

    ov._prepare = wrap("_prepare", "write")  # type: ignore[attr-defined]
    ov._mount = wrap("_mount", "mount")  # type: ignore[attr-defined]
    try:
        yield phases
    finally:
        ov._prepare = originals["_prepare"]  # type: ignore[attr-defined]
        ov._mount = originals["_mount"]  # type: ignore[attr-defined]


def drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("2\n")  # dentries and inodes: the lookups start from disk metadata
        return True
    except OSError:
        return False


def leftover_mounts() -> list[str]:
    """This run's mount points that are still mounted (other processes may share the state dir)."""
    mine = {os.path.realpath(m) for m in MY_MOUNTS}
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
        return [line.split()[4] for line in fh if line.split()[4] in mine]


# -- one stack ----------------------------------------------------------------------------


def consistency(mfs: Any, kfs: Any, st: Stack) -> list[str]:
    """The model and the kernel must agree on what the benchmark looks at."""
    problems = []
    mnt = kfs.mountpoint
    for cat, paths in st.targets.items():
        for p in paths:
            got = []
            for fn in (mfs.stat, lambda q: os.stat(mnt + q)):
                try:
                    s = fn(p)
                    got.append((_stat.S_IFMT(s.st_mode), s.st_size))
                except OSError as exc:
                    got.append(errno.errorcode.get(exc.errno or 0, "?"))
            expect = "ENOENT" if cat in ("miss", "whiteout") else (_stat.S_IFREG, len(FILE_DATA))
            if got[0] != got[1] or got[0] != expect:
                problems.append(f"stat {p}: model {got[0]}, kernel {got[1]}, expected {expect}")
    for paths in st.dirs.values():
        for d in paths:
            a, b = sorted(mfs.listdir(d)), sorted(os.listdir(mnt + d))
            if a != b:
                problems.append(f"listdir {d}: model {len(a)} names, kernel {len(b)} names")
    return problems


@dataclass
class Live:
    """One stack with its model and (maybe) its kernel mount, both alive."""

    st: Stack
    res: dict[str, Any]
    mfs: Any
    kfs: Any = None

    def fn(self, side: str, what: str) -> Callable[[str], Any]:
        if side == "model":
            return self.mfs.stat if what == "stat" else self.mfs.listdir
        if side == "twin":
            return self.kfs.stat if what == "stat" else self.kfs.listdir
        mnt = self.kfs.mountpoint
        if what == "stat":
            return lambda p: os.stat(mnt + p)
        return lambda p: os.listdir(mnt + p)


def cold_pass(live: Live, sides: Sequence[str]) -> None:
    """One call per name.  The kernel-direct and the twin calls share one mount (one dentry
    cache), so they get disjoint halves of the names; the model (no cache) gets all of them."""
    cold_split = {"model": slice(None), "kernel": slice(0, None, 2), "twin": slice(1, None, 2)}
    with no_gc():
        for what, groups, cats in (("stat", live.st.targets, STAT_CATEGORIES), ("listdir", live.st.dirs, ("large",))):
            for cat in cats:
                for side in sides:
                    samples: list[int] = []
                    timed_calls(live.fn(side, what), groups[cat][cold_split[side]], samples)
                    live.res[what]["cold"].setdefault(cat, {})[side] = summary(samples)


def bench_stacks(stacks: Sequence[Stack], sim_engine: Any, real: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Construct and mount every stack, take its cold pass, then measure all of them warm together.

    The warm rounds interleave stacks, categories and sides (the side order rotating from round
    to round), so a burst of load on the machine falls on every column alike and the growth
    with the number of layers is not confused with a busy moment.
    """
    sides = ["model"] + (["kernel", "twin"] if real is not None else [])
    lives: list[Live] = []
    with contextlib.ExitStack() as mounts:
        for st in stacks:
            log(f"{st.n_layers} layers: constructing the model and mounting the kernel ...")
            res: dict[str, Any] = {
                "layers": st.n_layers, "files": st.files, "layer_entries": st.entries,
                "files_per_layer": [min(st.counts), max(st.counts)], "build_layers_ns": st.build_ns,
                "targets": {c: len(v) for c, v in st.targets.items()},
                "stat": {"cold": {}, "warm": {}}, "listdir": {"cold": {}, "warm": {}},
            }
            t0 = pc()
            mfs = sim_engine.union(st.layers)
            res["model_construct_ns"] = pc() - t0
            mounts.enter_context(mfs)
            lower = getattr(mfs, "_lower", None)
            res["merged_nodes"] = len(lower.nodes) if lower is not None and hasattr(lower, "nodes") else None
            live = Live(st, res, mfs)
            lives.append(live)
            # Cold: the first look at each name, the model right after its construction and the
            # kernel right after its mount (and a sync, so writeback does not run beside it).
            cold_pass(live, ["model"])
            if real is not None:
                with mount_phases() as phases:
                    t0 = pc()
                    live.kfs = mounts.enter_context(real.union(st.layers))
                    res["kernel_mount_ns"] = pc() - t0
                MY_MOUNTS.append(live.kfs.mountpoint)
                res["kernel_write_ns"] = phases.get("write")
                res["kernel_mount_call_ns"] = phases.get("mount")
                os.sync()
                if args.drop_caches:
                    res["dropped_caches"] = drop_caches()
                cold_pass(live, ["kernel", "twin"])
            if live.kfs is not None:
                res["consistency_problems"] = consistency(mfs, live.kfs, st)

        log("warm passes (every stack, category and side interleaved) ...")
        acc: dict[tuple[int, str, str, str], list[int]] = {}
        work: list[tuple[int, str, str, list[str], int]] = []  # (stack, what, category, names, rounds)
        stat_rounds = max(3, -(-args.samples // args.targets))
        for i, live in enumerate(lives):
            for cat in STAT_CATEGORIES:
                names = live.st.targets[cat]
                names = names * -(-args.targets // len(names))  # few whiteouts: repeat them to match
                work.append((i, "stat", cat, names, stat_rounds))
            for cat in LISTDIR_CATEGORIES:
                dirs = live.st.dirs[cat]
                size = len(live.mfs.listdir(dirs[0]))
                live.res.setdefault("listdir_names", {})[cat] = size
                want = max(50, min(args.listdir_samples, 2_000_000 // max(1, size)))
                work.append((i, "listdir", cat, dirs, max(2, -(-want // len(dirs)))))
        with no_gc():
            for r in range(max(w[4] for w in work)):
                order = sides[r % len(sides):] + sides[:r % len(sides)]
                for i, what, cat, names, rounds in work:
                    if r < rounds:
                        for side in order:
                            timed_calls(lives[i].fn(side, what), names, acc.setdefault((i, what, cat, side), []))
        for (i, what, cat, side), samples in acc.items():
            lives[i].res[what]["warm"].setdefault(cat, {})[side] = summary(samples)

        if args.profile:
            lives[-1].res["profile"] = profile_model(lives[-1].mfs, lives[-1].st)

        for live in lives:
            if live.kfs is not None:
                t0 = pc()
                live.kfs.unmount()  # idempotent: the ExitStack calls it again
                live.res["kernel_unmount_ns"] = pc() - t0
    return [live.res for live in lives]


def profile_model(mfs: Any, st: Stack) -> str:
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    paths = [p for cat in STAT_CATEGORIES for p in st.targets[cat]]
    prof.enable()
    for _ in range(200):
        for p in paths:
            try:
                mfs.stat(p)
            except OSError:
                pass
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(14)
    return out.getvalue()


def measure_memory(n_layers: int, counts: Sequence[int], sim_engine: Any) -> dict[str, Any]:
    """tracemalloc deltas: building the layers, then building the union's merged lower view."""
    gc.collect()
    tracemalloc.start()
    try:
        m0 = tracemalloc.get_traced_memory()[0]
        layers = build_layers(n_layers, counts)
        m1 = tracemalloc.get_traced_memory()[0]
        fs = sim_engine.union(layers)
        m2 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    entries = sum(len(layer) for layer in layers)
    lower = getattr(fs, "_lower", None)
    nodes = len(lower.nodes) if lower is not None and hasattr(lower, "nodes") else None
    fs.unmount()
    return {
        "layer_entries": entries, "layers_bytes": m1 - m0, "bytes_per_layer_entry": (m1 - m0) / entries,
        "merged_nodes": nodes, "view_bytes": m2 - m1,
        "bytes_per_merged_node": (m2 - m1) / nodes if nodes else None,
    }


# -- copy-up -----------------------------------------------------------------------------


def bench_copyup(sim_engine: Any, real: Any, args: argparse.Namespace) -> dict[str, Any]:
    size = args.copyup_mb * 1024 * 1024
    reps = args.copyup_reps
    data = (bytes(range(256)) * (size // 256 + 1))[:size]  # not zeros: nothing may be skipped as a hole
    layer = sim.Layer()
    for r in range(reps):
        layer.add_file(f"big/file{r}", data)  # the model shares one bytes object between them
    layer.freeze()
    paths = [f"/big/file{r}" for r in range(reps)]
    res: dict[str, Any] = {"size_bytes": size, "reps": reps}
    acc: dict[str, dict[str, list[int]]] = {s: {"open_close": [], "write1": []} for s in ("model", "kernel")}

    def model_ops(p: str) -> tuple[int, int]:
        t0 = pc()
        fd = mfs.open(p, os.O_RDWR)
        mfs.close(fd)
        t1 = pc()
        fd = mfs.open(p, os.O_RDWR)
        mfs.write(fd, b"!")
        mfs.close(fd)
        return t1 - t0, pc() - t1

    def kernel_ops(p: str) -> tuple[int, int]:
        full = kfs.mountpoint + p
        t0 = pc()
        fd = os.open(full, os.O_RDWR)
        os.close(fd)
        t1 = pc()
        fd = os.open(full, os.O_RDWR)
        os.write(fd, b"!")
        os.close(fd)
        return t1 - t0, pc() - t1

    with contextlib.ExitStack() as mounts:
        mfs = mounts.enter_context(sim_engine.union([layer]))
        kfs = None
        if real is not None:
            log(f"  writing {reps} x {args.copyup_mb} MB into a layer folder and mounting ...")
            kfs = mounts.enter_context(real.union([layer]))
            MY_MOUNTS.append(kfs.mountpoint)
            t0 = pc()
            os.sync()  # flush the layer folder first, so copy-up's fsync does not pay for it
            res["sync_before_ns"] = pc() - t0
        for p in paths:
            for side, ops in (("model", model_ops), ("kernel", kernel_ops)):
                if side == "kernel" and kfs is None:
                    continue
                with no_gc():
                    a, b = ops(p)
                acc[side]["open_close"].append(a)
                acc[side]["write1"].append(b)
        checks = []
        for p in paths:
            ms = mfs.stat(p).st_size
            ks = os.stat(kfs.mountpoint + p).st_size if kfs is not None else ms
            if ms != size or ks != size:
                checks.append(f"{p}: model {ms} bytes, kernel {ks} bytes, expected {size}")
        res["consistency_problems"] = checks
    for side, got in acc.items():
        if got["open_close"]:
            got["both"] = [a + b for a, b in zip(got["open_close"], got["write1"])]
            res[side] = {k: summary(v) for k, v in got.items()}
            res[side]["samples"] = got
    return res


# -- the report ---------------------------------------------------------------------------


def growth(per_layers: dict[int, float | None]) -> tuple[float | None, float | None]:
    """(largest/smallest stack, least-squares ns per extra layer)."""
    pts = sorted((n, v) for n, v in per_layers.items() if v is not None)
    if len(pts) < 2:
        return None, None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return ys[-1] / ys[0], slope


def evaluate(results: dict[str, Any]) -> dict[str, Any]:
    stacks = results["stacks"]
    have_kernel = results["kernel"]["available"]
    targets: dict[str, Any] = {}

    # 1. model warm stat no slower than kernel os.stat through Python (medians, every category and stack)
    if have_kernel:
        worst = None
        for s in stacks:
            for cat in STAT_CATEGORIES:
                w = s["stat"]["warm"][cat]
                r = ratio(w["model"]["median"], w["kernel"]["median"])
                if r is not None and (worst is None or r > worst[0]):
                    worst = (r, s["layers"], cat)
        ok = worst is not None and worst[0] <= 1.0
        targets["warm_stat_vs_kernel"] = {
            "target": "model warm stat no slower than kernel os.stat through Python",
            "criterion": "model median <= kernel os.stat median for every stack and category",
            "pass": ok, "worst_ratio": worst[0] if worst else None,
            "worst_at": {"layers": worst[1], "category": worst[2]} if worst else None,
        }
    else:
        targets["warm_stat_vs_kernel"] = {
            "target": "model warm stat no slower than kernel os.stat through Python",
            "pass": None, "why": "no kernel numbers: " + results["kernel"]["why"],
        }

    # 2. model stat cost does not grow linearly with layers
    per_cat = {}
    for cat in STAT_CATEGORIES:
        per = {s["layers"]: s["stat"]["warm"][cat]["model"]["median"] for s in stacks}
        g, slope = growth(per)
        per_cat[cat] = {"growth": g, "ns_per_layer": slope}
    growths = [v["growth"] for v in per_cat.values() if v["growth"] is not None]
    ns = sorted(s["layers"] for s in stacks)
    targets["stat_flat_in_layers"] = {
        "target": "model stat cost does not grow linearly with layers",
        "criterion": (f"model warm median at {ns[-1]} layers <= {GROWTH_LIMIT}x the one at {ns[0]} layers "
                      f"in every category (linear growth would be {ns[-1] / ns[0]:.0f}x)") if len(ns) > 1 else "",
        "pass": (max(growths) <= GROWTH_LIMIT) if growths else None,
        "worst_growth": max(growths) if growths else None,
        "per_category": per_cat,
        **({} if growths else {"why": "needs at least two layer counts (--layers)"}),
    }
    return targets


def verdict(t: dict[str, Any]) -> str:
    return "N/A " if t["pass"] is None else ("PASS" if t["pass"] else "FAIL")


def render(results: dict[str, Any]) -> str:
    out: list[str] = []
    add = out.append
    cfg, env, kern = results["config"], results["environment"], results["kernel"]
    stacks = results["stacks"]
    sides = ["model"] + (["kernel", "twin"] if kern["available"] else [])
    add("layerlab union benchmark: model (sim.UnionFS) vs kernel overlayfs")
    add(f"  python {env['python']}, kernel {env['kernel']}, {env['cpus']} cpus, timer overhead {env['timer_overhead_ns']} ns/call, "
        f"load average {env['loadavg_start'][0]:.2f} at start, {env['loadavg_end'][0]:.2f} at end")
    spread = "per layer" if cfg["files_per_layer"] else "in total"
    add(f"  layers {cfg['layers']}, {cfg['files']:,} files {spread} in {NDIRS} directories merged across every layer; "
        f"{cfg['targets']} targets per category")
    add("  kernel: " + (f"overlay mounts under {kern['state_dir']}" if kern["available"] else "NOT MEASURED (" + kern["why"] + ")"))
    if kern.get("note"):
        add("  note: " + kern["note"])
    add("  times are per call: median / p90; ratios are model / kernel os.stat (medians); 'twin' is realrt's "
        "confined fs.stat (openat2+fstat)")

    for what, cats, labels in (("stat", STAT_CATEGORIES, SIDE_LABEL), ("listdir", LISTDIR_CATEGORIES, SIDE_LABEL_LS)):
        for temp in ("warm", "cold"):
            rows = []
            for s in stacks:
                for cat in cats:
                    cell = s[what][temp].get(cat)
                    if cell is None:
                        continue
                    label = cat
                    if what == "listdir":
                        label = f"{cat} ({s['listdir_names'][cat]:,} names)"
                    n = cell["model"]["n"]
                    row = [str(s["layers"]), label, str(n)] + [fmt_pair(cell.get(side)) for side in sides]
                    if kern["available"]:
                        row.append(fmt_ratio(ratio(cell["model"]["median"], cell["kernel"]["median"])))
                    rows.append(row)
            if not rows:
                continue
            title = {"warm": "warm (after a first pass)", "cold": "cold (first look after construction / mount)"}[temp]
            add("")
            add(f"{what} {title}")
            headers = ["layers", "target", "n"] + [labels[s] for s in sides] + (["model/kernel"] if kern["available"] else [])
            add(table(headers, rows))
    add("  targets: bottom/middle/top = a file that lives in that layer; whiteout = a bottom file the top layer")
    add("  deletes; miss = a name no layer has (ENOENT). cold: model and kernel get the same names, the twin a")
    add("  disjoint half (it shares the kernel's dentry cache). listdir cold only for the large directories.")

    add("")
    add("does the cost grow with the number of layers? (medians per layer count)")
    rows = []
    for cat in STAT_CATEGORIES:
        for side, temp in (("model", "warm"), ("model", "cold")) + ((("kernel", "warm"), ("kernel", "cold")) if kern["available"] else ()):
            per = {s["layers"]: s["stat"][temp][cat][side]["median"] for s in stacks}
            g, slope = growth(per)
            rows.append([cat, f"{side} {temp}"] + [fmt_ns(per[s["layers"]]) for s in stacks]
                        + [fmt_ratio(g), "-" if slope is None else f"{slope:+,.1f} ns"])
    add(table(["stat", "side"] + [f"{s['layers']} layers" for s in stacks] + ["largest/smallest", "per layer"], rows))

    add("")
    add("construction")
    rows = []
    for s in stacks:
        row = [str(s["layers"]), f"{s['layer_entries']:,}", fmt_ns(s["build_layers_ns"]), fmt_ns(s["model_construct_ns"]),
               f"{s['model_construct_ns'] / s['layer_entries']:,.0f} ns"]
        if kern["available"]:
            row += [fmt_ns(s.get("kernel_mount_ns")), fmt_ns(s.get("kernel_write_ns")), fmt_ns(s.get("kernel_mount_call_ns")),
                    fmt_ns(s.get("kernel_unmount_ns")), fmt_ratio(ratio(s["model_construct_ns"], s.get("kernel_mount_ns")))]
        rows.append(row)
    headers = ["layers", "layer entries", "build layers", "model view", "view/entry"]
    if kern["available"]:
        headers += ["kernel union()", "to_directory", "mount(2)", "unmount+rm", "model/kernel"]
    add(table(headers, rows))
    add("  model view = UnionFS(layers) (the merged lower view); kernel union() = every layer's to_directory")
    add("  writes + the mount call (+ journal records); build layers = Layer.add_file/freeze, shared by both")

    cu = results.get("copyup")
    if cu:
        add("")
        mb = cu["size_bytes"] / 2**20
        add(f"copy-up of a {mb:,.0f} MB lower file ({cu['reps']} files, one each; median / p90)")
        rows = []
        for side in ("model", "kernel"):
            if side in cu:
                c = cu[side]
                rows.append([side, fmt_pair(c["open_close"]), fmt_pair(c["write1"]), fmt_pair(c["both"]),
                             f"{mb / (c['both']['median'] / 1e9):,.0f} MB/s"])
        if "kernel" in cu:
            rows.append(["model/kernel"] + [fmt_ratio(ratio(cu["model"][k]["median"], cu["kernel"][k]["median"]))
                                            for k in ("open_close", "write1", "both")] + [""])
        add(table(["side", "open(O_RDWR)+close", "then open+write 1 B+close", "both", "MB/s (both)"], rows))
        add("  the kernel copies the data (and fsyncs it) at open; the model shares the immutable bytes at open")
        add("  and copies them into a bytearray at the first write")

    mem = [s for s in stacks if s.get("memory")]
    if mem:
        add("")
        add("model memory (tracemalloc; file content is one shared object and not counted)")
        rows = [[str(s["layers"]), f"{s['memory']['layer_entries']:,}", f"{s['memory']['layers_bytes'] / 2**20:,.1f} MiB",
                 f"{s['memory']['bytes_per_layer_entry']:,.0f} B", f"{(s['memory']['merged_nodes'] or 0):,}",
                 f"{s['memory']['view_bytes'] / 2**20:,.1f} MiB",
                 "-" if s["memory"]["bytes_per_merged_node"] is None else f"{s['memory']['bytes_per_merged_node']:,.0f} B"]
                for s in mem]
        add(table(["layers", "layer entries", "layers", "per entry", "merged nodes", "merged view", "per node"], rows))

    problems = [f"{s['layers']} layers: {p}" for s in stacks for p in s.get("consistency_problems", [])]
    problems += (cu or {}).get("consistency_problems", [])
    add("")
    agreement = "OK" if not problems else f"{len(problems)} DIFFERENCES"
    add("model/kernel agreement on the benchmarked names: " + (agreement if kern["available"] else "not checked (no kernel)"))
    for p in problems[:20]:
        add("  " + p)

    for s in stacks:
        if s.get("profile"):
            add("")
            add(f"profile of model stat, {s['layers']} layers (cProfile, sorted by own time)")
            add(s["profile"].rstrip())

    add("")
    add("targets")
    for t in results["targets"].values():
        line = f"  {verdict(t)}  {t['target']}"
        if t.get("worst_ratio") is not None:
            at = t["worst_at"]
            line += f"  (worst: {t['worst_ratio']:.2f}x kernel, {at['category']} at {at['layers']} layers)"
        if t.get("worst_growth") is not None:
            line += f"  (worst: {t['worst_growth']:.2f}x from {stacks[0]['layers']} to {stacks[-1]['layers']} layers)"
        add(line)
        if t.get("criterion"):
            add(f"        criterion: {t['criterion']}")
        if t.get("why"):
            add(f"        {t['why']}")
    add("  (a report, not a test: the exit status is 0 either way)")
    return "\n".join(out)


# -- --stat-ratio: warm stat, model / kernel, by depth -------------------------------------

STAT_RATIO_TARGET = 0.5  # issue 15: a warm model stat at most half the kernel's


def stat_ratio(args: argparse.Namespace) -> dict[str, Any]:
    """Warm ``stat`` only, model against kernel ``os.stat``, for each stack of ``args.layers``
    (default 1, 8, 64 layers of 1,000 files each), every stack alive at once and every round
    interleaving stacks, categories and both sides.  The ratio per stack is the model's median
    over all its samples divided by the kernel's (the categories weigh alike)."""
    real, _, why = real_engine(args, max(args.layers))
    sim_engine = sim.connect("sim")
    out: dict[str, Any] = {"layers": args.layers, "files_per_layer": args.files, "kernel": real is not None, "why": why,
                           "stacks": []}
    with contextlib.ExitStack() as mounts:
        lives = []
        for n in args.layers:
            log(f"{n} layers: building {args.files:,} files per layer, the model and the mount ...")
            st = make_stack(n, args.files, True, args.targets, args.seed)
            mfs = mounts.enter_context(sim_engine.union(st.layers))
            kfs = None
            if real is not None:
                kfs = mounts.enter_context(real.union(st.layers))
                MY_MOUNTS.append(kfs.mountpoint)
            cats = [c for c in STAT_CATEGORIES if st.targets[c]]
            lives.append((st, Live(st, {}, mfs, kfs), cats))
        sides = ["model"] + (["kernel"] if real is not None else [])
        acc: dict[tuple[int, str, str], list[int]] = {}
        rounds = max(3, -(-args.samples // args.targets))
        with no_gc():
            for r in range(rounds + 1):  # round 0 warms every name up and is not kept
                order = sides[r % len(sides):] + sides[:r % len(sides)]
                for i, (st, live, cats) in enumerate(lives):
                    for cat in cats:
                        names = st.targets[cat] * -(-args.targets // len(st.targets[cat]))
                        for side in order:
                            samples = acc.setdefault((i, cat, side), []) if r else []
                            timed_calls(live.fn(side, "stat"), names, samples)
        for i, (st, live, cats) in enumerate(lives):
            row: dict[str, Any] = {"layers": st.n_layers, "categories": {}}
            every: dict[str, list[int]] = {side: [] for side in sides}
            for cat in cats:
                row["categories"][cat] = {side: summary(acc[(i, cat, side)]) for side in sides}
                for side in sides:
                    every[side] += acc[(i, cat, side)]
            row["all"] = {side: summary(every[side]) for side in sides}
            if real is not None:
                row["ratio"] = ratio(row["all"]["model"]["median"], row["all"]["kernel"]["median"])
                row["worst_category_ratio"] = max(
                    ratio(c["model"]["median"], c["kernel"]["median"]) or 0.0 for c in row["categories"].values())
                row["consistency_problems"] = consistency(live.mfs, live.kfs, st)
            out["stacks"].append(row)
    out["pass"] = (all(r["ratio"] <= STAT_RATIO_TARGET for r in out["stacks"]) if real is not None else None)
    out["leftover_mounts"] = leftover_mounts()
    return out


def render_stat_ratio(res: dict[str, Any]) -> str:
    lines = ["warm stat through the union: model (sim.UnionFS) / kernel overlayfs os.stat, same run, interleaved",
             f"  {res['files_per_layer']:,} files per layer; median / p90 per call"]
    if not res["kernel"]:
        lines.append(f"  kernel: NOT MEASURED ({res['why']})")
    rows = []
    for r in res["stacks"]:
        cells = [str(r["layers"]), fmt_pair(r["all"]["model"])]
        if res["kernel"]:
            cells += [fmt_pair(r["all"]["kernel"]), fmt_ratio(r["ratio"]), fmt_ratio(r["worst_category_ratio"]),
                      "OK" if not r["consistency_problems"] else f"{len(r['consistency_problems'])} DIFFERENCES"]
        rows.append(cells)
    headers = ["layers", "model fs.stat"] + (["kernel os.stat", "model/kernel", "worst category", "agreement"]
                                             if res["kernel"] else [])
    lines.append(table(headers, rows))
    lines.append(f"  categories: {', '.join(STAT_CATEGORIES)} (no whiteout with one layer); target: model/kernel "
                 f"<= {STAT_RATIO_TARGET}x at every depth: " + ("N/A" if res["pass"] is None else "PASS" if res["pass"] else "FAIL"))
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--stat-ratio", action="store_true",
                   help="only warm stat, model/kernel ratio per depth (default layers 1,8,64 of 1,000 files each)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: layers 4,16, 2,000 files, 10 MB copy-up, fewer samples")
    p.add_argument("--layers", help="comma-separated layer counts (default 16,64,128; --quick 4,16)")
    p.add_argument("--files", type=int, help="files in total (default 10,000; --quick 2,000)")
    p.add_argument("--files-per-layer", action="store_true", help="--files is per layer, not in total (heavy: 10,000 x 128 layers)")
    p.add_argument("--targets", type=int, default=64, help="distinct names looked up per category")
    p.add_argument("--samples", type=int, help="warm stat samples per category and side (default 20,000; --quick 3,000)")
    p.add_argument("--listdir-samples", type=int, default=2000, help="warm listdir samples at most (fewer for huge directories)")
    p.add_argument("--copyup-mb", type=int, help="size of the copied-up file (default 100; --quick 10)")
    p.add_argument("--copyup-reps", type=int, help="copy-ups measured, one file each (default 5; --quick 3)")
    p.add_argument("--no-copyup", action="store_true", help="skip the copy-up measurement")
    p.add_argument("--no-memory", action="store_true", help="skip the tracemalloc measurement")
    p.add_argument("--no-kernel", action="store_true", help="model only")
    p.add_argument("--drop-caches", action="store_true",
                   help="after each mount, sync and drop the host's dentry/inode caches (global!) so the kernel's cold pass starts from disk")
    p.add_argument("--state-dir", help="realrt state dir (default: realrt's, or /run/l when that is too long for 128 lowerdirs)")
    p.add_argument("--profile", action="store_true", help="print a cProfile of the model's warm stat on the largest stack")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write the results as JSON to FILE; without FILE print JSON instead of the table")
    a = p.parse_args(argv)
    q = a.quick
    if a.stat_ratio:
        a.layers = [int(x) for x in (a.layers or "1,8,64").split(",")]
        a.files = a.files or 1_000
        a.samples = a.samples or (3_000 if q else 20_000)
        if min(a.layers) < 1 or a.files < NDIRS:
            p.error(f"--stat-ratio needs at least 1 layer and {NDIRS} files per layer")
        return a
    a.layers = [int(x) for x in (a.layers or ("4,16" if q else "16,64,128")).split(",")]
    a.files = a.files or (2_000 if q else 10_000)
    a.samples = a.samples or (3_000 if q else 20_000)
    a.copyup_mb = a.copyup_mb or (10 if q else 100)
    a.copyup_reps = a.copyup_reps or (3 if q else 5)
    if q:
        a.listdir_samples = min(a.listdir_samples, 300)
    if min(a.layers) < 2:
        p.error("every stack needs at least 2 layers")
    if min(layer_counts(max(a.layers), a.files, a.files_per_layer)) < NDIRS:
        p.error(f"every layer needs at least {NDIRS} files (one per shared directory): raise --files or lower --layers")
    return a


def run(args: argparse.Namespace) -> dict[str, Any]:
    sim_engine = sim.connect("sim")
    real, note, why = real_engine(args, max(args.layers))
    results: dict[str, Any] = {
        "config": {"layers": args.layers, "files": args.files, "files_per_layer": args.files_per_layer,
                   "targets": args.targets, "samples": args.samples, "listdir_samples": args.listdir_samples,
                   "copyup_mb": args.copyup_mb, "copyup_reps": args.copyup_reps, "quick": args.quick,
                   "drop_caches": args.drop_caches, "seed": args.seed},
        "environment": {"python": platform.python_version(), "kernel": platform.release(), "cpus": os.cpu_count(),
                        "timer_overhead_ns": timer_overhead(), "loadavg_start": os.getloadavg()},
        "kernel": {"available": real is not None, "why": why, "note": note,
                   "state_dir": str(real.state_dir) if real is not None else None},
        "stacks": [],
    }
    stacks = []
    for n in sorted(args.layers):
        log(f"{n} layers: building {args.files:,} files{' per layer' if args.files_per_layer else ''} ...")
        stacks.append(make_stack(n, args.files, args.files_per_layer, args.targets, args.seed))
    results["stacks"] = bench_stacks(stacks, sim_engine, real, args)
    del stacks
    if not args.no_memory:
        for res in results["stacks"]:
            log(f"{res['layers']} layers: memory (tracemalloc) ...")
            n = res["layers"]
            res["memory"] = measure_memory(n, layer_counts(n, args.files, args.files_per_layer), sim_engine)
    if not args.no_copyup:
        log(f"copy-up of {args.copyup_mb} MB ...")
        results["copyup"] = bench_copyup(sim_engine, real, args)
    results["targets"] = evaluate(results)
    results["environment"]["loadavg_end"] = os.getloadavg()
    results["leftover_mounts"] = leftover_mounts()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (a background job)
    signal.signal(signal.SIGTERM, terminate)  # unwind the context managers, which unmount
    signal.signal(signal.SIGHUP, terminate)
    try:
        results, show = (stat_ratio(args), render_stat_ratio) if args.stat_ratio else (run(args), render)
    except KeyboardInterrupt:
        log("interrupted: every mount made so far has been released by its context manager")
        return 130
    if results["leftover_mounts"]:
        log(f"WARNING: mounts left behind: {results['leftover_mounts']}")
    if args.json == "-":
        json.dump(results, sys.stdout, indent=1, default=str)
        print()
    else:
        print(show(results))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")
            log(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

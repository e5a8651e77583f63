"""Engine benchmarks: a 10-step build cold and cached, and 100 containers from one image.

    sudo .venv/bin/python bench/engine_bench.py [--reps 5] [--containers 100] [--only build|containers] [--json]

Both parts run on both engines, ``sim.connect("sim")`` (the model) and ``sim.connect("real")``
(kernel overlayfs, namespaces), each on a fresh state folder in the same run.  There is no
Docker on this machine, so the peer of each backend is the other one.

**build**: ``bench/build10/Buildfile`` has 10 steps (FROM busybox; 5 layer steps: 2 COPY, 3 RUN;
4 metadata steps: 2 ENV, 2 WORKDIR).  Per repetition and backend: a fresh state folder, the
busybox base image imported (timed apart), then ``build(no_cache=True)`` (cold) and the same
build again (cached: every layer step must say CACHED and give the same ImageID).  The backends
alternate within each repetition.  With ``SOURCE_DATE_EPOCH`` set, the two backends must give
the same DiffIDs; the report says whether they did.

**containers**: N containers (default 100) from the busybox image: ``create`` each (a new
empty writable layer over the shared image layer), ``start`` each running
``echo $HOSTNAME > /tmp/id``, then the disk used beyond the image: ``df().container_bytes`` (the
sum of the container layers) and, on the real backend, ``du`` of the state folder's ``mounts/``
(the upper and work folders the kernel really holds) next to ``du`` of ``layers/`` (the image's
layer, on disk once).  Then every container is removed: the bytes ``remove`` returned, ``df``
and ``du`` after, and the mounts left in ``/proc/self/mountinfo`` (must be none).

Exit status 0 whatever the result, 130 if interrupted; every mount and state folder is released
on Ctrl-C, SIGTERM and SIGHUP too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_bench import (
    engine_in,
    environment,
    install_signal_handlers,
    log,
    mounts_under,
    sweep_stale,
)

CONTEXT = Path(__file__).resolve().parent / "build10"
SDE = "1700000000"
COMMAND = "echo $HOSTNAME > /tmp/id"


# -- build ------------------------------------------------------------------------------------


def bench_build(backends: list[str], reps: int, parent: str | None) -> dict[str, Any]:
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = SDE
    times: dict[str, dict[str, list[float]]] = {b: {"base": [], "cold": [], "cached": []} for b in backends}
    images: dict[str, Any] = {}
    problems: list[str] = []
    steps: dict[str, list[tuple[int, str, bool, bool]]] = {}
    try:
        for rep in range(reps):
            order = backends[rep % len(backends):] + backends[:rep % len(backends)]
            for backend in order:
                log(f"build: {backend}, repetition {rep + 1}/{reps}")
                with engine_in(backend, parent) as eng:
                    t0 = time.perf_counter()
                    eng.base_image()
                    t1 = time.perf_counter()
                    cold = eng.build(CONTEXT, tag="bench10", no_cache=True)
                    t2 = time.perf_counter()
                    cached = eng.build(CONTEXT, tag="bench10")
                    t3 = time.perf_counter()
                times[backend]["base"].append(t1 - t0)
                times[backend]["cold"].append(t2 - t1)
                times[backend]["cached"].append(t3 - t2)
                layer_steps = [s for s in cold.steps if s.layer is not None]
                if any(s.cached for s in cold.steps):
                    problems.append(f"{backend}: a no_cache build reported CACHED steps")
                if not all(c.cached for c in cached.steps if c.layer is not None):
                    problems.append(f"{backend}: the second build did not hit the cache for every layer step")
                if cached.image.id != cold.image.id:
                    problems.append(f"{backend}: the cached build gave another ImageID")
                if len(cold.steps) != 10 or len(layer_steps) != 5:
                    problems.append(f"{backend}: expected 10 steps with 5 layers, got {len(cold.steps)}/{len(layer_steps)}")
                images[backend] = cold.image
                steps[backend] = [(s.number, s.instruction, s.layer is not None, c.cached)
                                  for s, c in zip(cold.steps, cached.steps)]
    finally:
        if previous is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous
    report: dict[str, Any] = {"reps": reps, "buildfile": str(CONTEXT / "Buildfile"), "source_date_epoch": SDE,
                              "problems": problems, "steps": steps}
    for backend, t in times.items():
        med = {k: statistics.median(v) * 1000 for k, v in t.items()}
        report[backend] = {
            "base_import_ms": med["base"], "cold_ms": med["cold"], "cached_ms": med["cached"],
            "cold_min_ms": min(t["cold"]) * 1000, "cached_min_ms": min(t["cached"]) * 1000,
            "ratio_cached_cold": med["cached"] / med["cold"],
            "samples_ms": {k: [round(x * 1000, 2) for x in v] for k, v in t.items()},
            "image_id": images[backend].id, "diff_ids": list(images[backend].diff_ids), "size": images[backend].size,
        }
    if "sim" in report and "real" in report:
        report["ratio_sim_real_cold"] = report["sim"]["cold_ms"] / report["real"]["cold_ms"]
        report["ratio_sim_real_cached"] = report["sim"]["cached_ms"] / report["real"]["cached_ms"]
        report["same_diff_ids"] = report["sim"]["diff_ids"] == report["real"]["diff_ids"]
        report["same_image_id"] = report["sim"]["image_id"] == report["real"]["image_id"]
    return report


def render_build(r: dict[str, Any]) -> str:
    lines = [f"build of {r['buildfile']} (10 steps: FROM, 2 COPY, 3 RUN, 2 ENV, 2 WORKDIR), "
             f"median of {r['reps']} fresh state folders; SOURCE_DATE_EPOCH={r['source_date_epoch']}",
             "  no docker here: the peer of each backend is the other backend",
             f"  {'backend':<8} {'base import':>12} {'cold':>10} {'cached':>10} {'cached/cold':>12}  image"]
    for backend in ("sim", "real"):
        if backend in r:
            b = r[backend]
            lines.append(f"  {backend:<8} {b['base_import_ms']:9.1f} ms {b['cold_ms']:7.1f} ms {b['cached_ms']:7.1f} ms "
                         f"{b['ratio_cached_cold']:12.2f}  {b['image_id'][:19]} ({b['size']:,} bytes)")
    if "ratio_sim_real_cold" in r:
        lines.append(f"  sim/real: cold {r['ratio_sim_real_cold']:.2f}, cached {r['ratio_sim_real_cached']:.2f}; "
                     f"same DiffIDs in both backends: {'yes' if r['same_diff_ids'] else 'NO'}, "
                     f"same ImageID: {'yes' if r['same_image_id'] else 'NO'}")
    any_steps: list[tuple[int, str, bool, bool]] = next(iter(r["steps"].values()), [])
    marks = " ".join(f"{n}:{'C' if cached else ('L' if layer else '-')}" for n, _, layer, cached in any_steps)
    lines.append(f"  second build, per step (C = CACHED layer step, - = metadata step): {marks}")
    for p in r["problems"]:
        lines.append(f"  PROBLEM: {p}")
    return "\n".join(lines)


# -- containers -------------------------------------------------------------------------------


def du(path: Path) -> dict[str, int]:
    """``du -sx`` in bytes: allocated blocks and apparent size (0 if the folder is absent)."""
    if not path.exists():
        return {"allocated": 0, "apparent": 0}
    out = {}
    for key, extra in (("allocated", []), ("apparent", ["--apparent-size"])):
        done = subprocess.run(["du", "-sx", "-B1", *extra, str(path)], capture_output=True, text=True, check=True)
        out[key] = int(done.stdout.split()[0])
    return out


def overlay_mounts(folder: Path) -> int:
    return len(mounts_under(folder))


def bench_containers(backend: str, count: int, parent: str | None) -> dict[str, Any]:
    log(f"containers: {backend}, {count} of them")
    r: dict[str, Any] = {"count": count, "command": COMMAND}
    with engine_in(backend, parent) as eng:
        state = Path(eng.state_dir)
        real = backend == "real"
        eng.base_image()
        image = eng.inspect_image("busybox")
        r["image_size"] = image.size
        r["image_layers"] = len(image.diff_ids)
        df0 = eng.df()
        if real:
            r["du_before"] = {"layers": du(state / "layers"), "images": du(state / "images"), "mounts": du(state / "mounts")}
        names = [f"bench-{i:03d}" for i in range(count)]
        ids = {}
        t0 = time.perf_counter()
        for name in names:
            ids[name] = eng.create("busybox", COMMAND, name=name).id
        t1 = time.perf_counter()
        if real:
            r["mounts_after_create"] = overlay_mounts(state / "mounts")
            r["du_after_create"] = {"mounts": du(state / "mounts")}
        codes = [eng.start(name).exit_code for name in names]
        t2 = time.perf_counter()
        r["create_ms_each"] = (t1 - t0) * 1000 / count
        r["start_ms_each"] = (t2 - t1) * 1000 / count
        r["exit_codes_nonzero"] = sum(1 for c in codes if c != 0)
        df1 = eng.df()
        infos = eng.containers()
        r["containers"] = df1.containers
        r["container_bytes"] = df1.container_bytes
        r["per_container_bytes"] = df1.container_bytes / count
        r["upper_sizes"] = sorted({i.upper_size for i in infos})
        r["image_bytes_in_df"] = df1.shared_bytes + df1.unique_bytes
        r["image_bytes_in_df_before"] = df0.shared_bytes + df0.unique_bytes
        r["layers_in_df"] = df1.layers
        r["diff_first"] = [f"{c.kind.value} {c.path}" for c in eng.diff(names[0])]
        if real:
            r["mounts_running"] = overlay_mounts(state / "mounts")
            r["du_after_start"] = {"layers": du(state / "layers"), "images": du(state / "images"),
                                   "mounts": du(state / "mounts")}
        # What each container wrote, read back through the engine (outside the timed part).
        wrong = []
        for name in names:
            got = eng.exec(name, ["cat", "/tmp/id"]).stdout
            want = (ids[name][:12] + "\n").encode()
            if got != want:
                wrong.append((name, got.decode(errors="replace"), want.decode()))
        r["id_files_wrong"] = len(wrong)
        r["id_file_example"] = wrong[0] if wrong else (names[0], (ids[names[0]][:12] + "\n"), "as expected")
        t3 = time.perf_counter()
        freed = sum(eng.remove(name) for name in names)
        t4 = time.perf_counter()
        r["remove_ms_each"] = (t4 - t3) * 1000 / count
        r["freed_bytes"] = freed
        df2 = eng.df()
        r["after_remove"] = {"containers": df2.containers, "container_bytes": df2.container_bytes,
                             "listed": len(eng.containers()), "image_bytes": df2.shared_bytes + df2.unique_bytes}
        if real:
            r["after_remove"]["mounts"] = overlay_mounts(state)
            r["after_remove"]["du_mounts"] = du(state / "mounts")
            r["after_remove"]["du_layers"] = du(state / "layers")
        r["state_dir"] = str(state)
    r["after_close"] = {"mounts_under_state": len(mounts_under(r["state_dir"])),
                        "state_dir_exists": os.path.exists(r["state_dir"])}
    return r


def render_containers(results: dict[str, dict[str, Any]]) -> str:
    first = next(iter(results.values()))
    n = first["count"]
    lines = [f"{n} containers from one image (busybox), each `create` + `start` running `{first['command']}`"]
    for backend, r in results.items():
        lines.append(f"  [{backend}] image: {r['image_size']:,} bytes in {r['image_layers']} layer "
                     f"(df: {r['image_bytes_in_df']:,} bytes, {r['layers_in_df']} layer, with {r['containers']} containers "
                     f"on it; {r['image_bytes_in_df_before']:,} before they were made)")
        lines.append(f"    create {r['create_ms_each']:.2f} ms each, start {r['start_ms_each']:.2f} ms each, "
                     f"remove {r['remove_ms_each']:.2f} ms each; {r['exit_codes_nonzero']} non-zero exit codes")
        lines.append(f"    container layers (df container_bytes): {r['container_bytes']:,} bytes in all, "
                     f"{r['per_container_bytes']:.1f} per container (upper sizes seen: {r['upper_sizes']}); "
                     f"diff of one: {', '.join(r['diff_first'])}")
        lines.append(f"    copying the image per container would take {n} x {r['image_size']:,} = "
                     f"{n * r['image_size']:,} bytes; copy-on-write: {r['image_size']:,} + {r['container_bytes']:,}")
        if "du_after_start" in r:
            before, during = r["du_before"], r["du_after_start"]
            m = during["mounts"]
            lines.append(f"    on disk (du -sx): mounts/ {m['allocated']:,} bytes allocated, {m['apparent']:,} apparent "
                         f"= {m['allocated'] / n:,.0f} / {m['apparent'] / n:,.0f} per container (upper + work folders, "
                         f"inodes of dirs included); {r['mounts_running']} overlay mounts")
            lines.append(f"      image on disk: layers/ {during['layers']['allocated']:,} bytes allocated "
                         f"(written at the first mount; {before['layers']['allocated']:,} before), images/ (blobs) "
                         f"{during['images']['allocated']:,}; after create, before start: mounts/ "
                         f"{r['du_after_create']['mounts']['allocated']:,}")
        wrong = r["id_files_wrong"]
        ex = r["id_file_example"]
        if wrong:
            lines.append(f"    /tmp/id: {wrong} of {n} differ from the hostname, e.g. {ex[0]} wrote {ex[1]!r}, "
                         f"expected {ex[2]!r}")
        else:
            lines.append(f"    /tmp/id: all {n} hold their container's hostname (e.g. {ex[1]!r})")
        a = r["after_remove"]
        extra = ""
        if "mounts" in a:
            extra = (f", du mounts/ {a['du_mounts']['allocated']:,} bytes, layers/ still {a['du_layers']['allocated']:,}, "
                     f"mounts under the state folder: {a['mounts']}")
        lines.append(f"    rm all: {r['freed_bytes']:,} bytes freed (the sum remove() returned); after: "
                     f"{a['containers']} containers, {a['container_bytes']} container bytes, image {a['image_bytes']:,}"
                     f"{extra}")
        c = r["after_close"]
        lines.append(f"    after close: {c['mounts_under_state']} mounts in /proc/self/mountinfo under the state folder, "
                     f"state folder {'STILL THERE' if c['state_dir_exists'] else 'deleted'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="build repetitions per backend (default 5)")
    parser.add_argument("--containers", type=int, default=100, help="containers from one image (default 100)")
    parser.add_argument("--only", choices=("build", "containers"), help="run one part")
    parser.add_argument("--no-real", action="store_true", help="the model only (no root, no overlayfs)")
    parser.add_argument("--state-dir", default=None, help="parent folder for the temporary state folders")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    backends = ["sim", "real"]
    if args.no_real or os.geteuid() != 0:
        if not args.no_real:
            log("not root: the real backend is skipped (run with sudo to compare); the model only")
        backends = ["sim"]
    install_signal_handlers()
    sweep_stale(args.state_dir)
    report: dict[str, Any] = {"environment": environment(), "backends": backends}
    try:
        if args.only in (None, "build"):
            report["build"] = bench_build(backends, args.reps, args.state_dir)
        if args.only in (None, "containers"):
            report["containers"] = {b: bench_containers(b, args.containers, args.state_dir) for b in backends}
    except KeyboardInterrupt:
        log("interrupted: every mount and state folder made so far has been released")
        return 130
    report["environment"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    env = report["environment"]
    print(f"layerlab engine bench: kernel {env['kernel']}, {env['cpus']} CPUs, load {env['loadavg']} -> "
          f"{env['loadavg_end']}")
    if "build" in report:
        print(render_build(report["build"]))
    if "containers" in report:
        print(render_containers(report["containers"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Container start latency: layerlab's runtime against ``runc run``, the same rootfs, in one run.

    sudo .venv/bin/python bench/run_bench.py [-n 50] [--json]

Three figures, each the median of N runs of ``/bin/true`` (busybox):

* ``start+wait``: :func:`realrt.runtime.start` then ``wait()`` on an overlay mounted once;
* ``run``: what ``docker run --rm`` does, from the Python API: an overlay over the busybox
  layer, start, wait, unmount and delete the writable layer; twice: with the layer already on
  disk (a layer store, as Docker has: only the upper and work folders are new), and with
  ``KernelUnionFS``, which writes the layer's 270 files anew for every mount;
* ``runc run``: the ``runc`` binary on an OCI bundle (``runc spec``, args ``/bin/true``,
  no terminal) whose rootfs is the same busybox tree, as a plain directory (no overlay);
  runc also sets up cgroups and seccomp, which layerlab does not (yet).

The ratio printed is layerlab / runc (the issue's target: at most 0.5).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402
from realrt import runtime  # noqa: E402
from sim.base import busybox_layer  # noqa: E402


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_layerlab(n: int) -> dict[str, float]:
    engine = sim.connect("real")
    journal = engine.journal  # type: ignore[attr-defined]
    layer = busybox_layer()
    spec = runtime.ContainerSpec(("/bin/true",))
    start_wait, full = [], []
    with engine.union([layer]) as union:
        for _ in range(3):  # warm-up
            runtime.run(union.mountpoint, spec, journal=journal)  # type: ignore[attr-defined]
        for _ in range(n):
            t0 = time.perf_counter()
            process = runtime.start(union.mountpoint,  # type: ignore[attr-defined]
                                      spec, journal=journal)
            code = process.wait()
            start_wait.append(time.perf_counter() - t0)
            assert code == 0, process.logs()
    for _ in range(n):
        t0 = time.perf_counter()
        with engine.union([layer]) as union:
            code = runtime.run(union.mountpoint, spec, journal=journal).exit_code  # type: ignore[attr-defined]
        full.append(time.perf_counter() - t0)
        assert code == 0
    return {"start_wait_ms": _median_ms(start_wait), "run_with_overlay_ms": _median_ms(full),
            "run_prepared_lower_ms": _median_ms(_bench_prepared_lower(n, layer, spec, journal)),
            "start_wait_min_ms": min(start_wait) * 1000}


def _bench_prepared_lower(n: int, layer: sim.Layer, spec: runtime.ContainerSpec, journal: object) -> list[float]:
    """What an engine with a layer store does per container: the image's layer is on disk once;
    each run makes an empty upper and work folder, mounts, runs, unmounts and deletes them."""
    from realrt import _syscalls
    from realrt.overlay import overlay_settings

    samples = []
    with tempfile.TemporaryDirectory(prefix="layerlab-bench-", dir="/run" if os.path.isdir("/run") else None) as tmp:
        lower = Path(tmp) / "lower"
        layer.to_directory(lower)
        options = sim.UnionOptions()
        for i in range(n):
            t0 = time.perf_counter()
            base = Path(tmp) / str(i)
            tree = journal.record("tree", str(base))  # type: ignore[attr-defined]
            for name in ("u", "w", "m"):
                (base / name).mkdir(parents=True)
            mount = journal.record("mount", str(base / "m"))  # type: ignore[attr-defined]
            _syscalls.fsmount_overlay(str(base / "m"), overlay_settings([str(lower)], str(base / "u"),
                                                                         str(base / "w"), options, userxattr=False))
            code = runtime.run(str(base / "m"), spec, journal=journal).exit_code  # type: ignore[arg-type]
            journal.release(mount)  # type: ignore[attr-defined]
            journal.release(tree)  # type: ignore[attr-defined]
            samples.append(time.perf_counter() - t0)
            assert code == 0
    return samples


def bench_runc(n: int) -> dict[str, float] | None:
    runc = shutil.which("runc")
    if runc is None:
        return None
    with tempfile.TemporaryDirectory(prefix="layerlab-runc-") as tmp:
        bundle = Path(tmp)
        busybox_layer().to_directory(bundle / "rootfs")
        subprocess.run([runc, "spec"], cwd=bundle, check=True)
        config = json.loads((bundle / "config.json").read_text())
        config["process"]["args"] = ["/bin/true"]
        config["process"]["terminal"] = False
        (bundle / "config.json").write_text(json.dumps(config))
        samples = []
        for i in range(n + 3):
            name = f"layerlab-bench-{os.getpid()}-{i}"
            t0 = time.perf_counter()
            done = subprocess.run([runc, "run", "--bundle", str(bundle), name], stdin=subprocess.DEVNULL,
                                  capture_output=True)
            elapsed = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(f"runc run failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
            if i >= 3:
                samples.append(elapsed)
        version = subprocess.run([runc, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {"runc_run_ms": _median_ms(samples), "runc_min_ms": min(samples) * 1000, "runc_version": version}  # type: ignore[dict-item]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=50, help="runs per figure (default 50)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("run as root: the bench compares root-mode containers with runc")
    ours = bench_layerlab(args.n)
    theirs = bench_runc(args.n)
    report: dict[str, object] = {"n": args.n, **ours}
    if theirs:
        report.update(theirs)
        report["ratio_start_wait"] = ours["start_wait_ms"] / theirs["runc_run_ms"]
        report["ratio_run_with_overlay"] = ours["run_with_overlay_ms"] / theirs["runc_run_ms"]
        report["ratio_run_prepared_lower"] = ours["run_prepared_lower_ms"] / theirs["runc_run_ms"]
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"/bin/true, median of {args.n}:")
    print(f"  layerlab start+wait (overlay mounted once)   {ours['start_wait_ms']:7.2f} ms")
    print(f"  layerlab run, KernelUnionFS (writes the layer, mounts .. unmounts, deletes)"
          f"  {ours['run_with_overlay_ms']:7.2f} ms")
    print(f"  layerlab run, layer on disk once (new upper, mount .. unmount)"
          f"  {ours['run_prepared_lower_ms']:7.2f} ms")
    if theirs:
        print(f"  runc run (plain rootfs dir, {theirs['runc_version']})  {theirs['runc_run_ms']:7.2f} ms")
        print(f"  ratio layerlab/runc: start+wait {report['ratio_start_wait']:.2f}, "
              f"run with a prepared lower {report['ratio_run_prepared_lower']:.2f}, "
              f"run with KernelUnionFS {report['ratio_run_with_overlay']:.2f} (target <= 0.5)")
    else:
        print("  runc is not installed (apt-get install runc): no comparison")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

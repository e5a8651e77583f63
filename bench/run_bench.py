"""Container start latency: layerlab's engine against ``runc run``, the same rootfs, in one run.

    sudo .venv/bin/python bench/run_bench.py [-n 50] [--json]

Every figure is one run of ``/bin/true`` (busybox), timed N times; the report gives the median
and the 90th percentile.  The variants are measured *interleaved*: each round runs every variant
once, in an order that rotates from round to round, so load from other processes hits them alike.

* ``engine.run`` (the headline): ``eng.run("busybox", ["/bin/true"], remove=True)`` on
  ``sim.connect("real")``: what ``docker run --rm`` does, from the Python API: a new empty
  writable layer over the image's layer (already in the state folder's layer store, as in
  Docker's), the overlay mount, namespaces, exec, wait, unmount and deletion of the writable layer;
* ``runc run``: the ``runc`` binary on an OCI bundle (``runc spec``, args ``/bin/true``,
  no terminal) whose rootfs is the same busybox tree, as a plain directory (no overlay at all);
  runc also sets up cgroups and seccomp, which layerlab does not (yet).

Two breakdowns of layerlab's figure, for reading it (not compared with the target):

* ``union()+run``: ``eng.union([layer])`` (mount from the layer store), ``runtime.run``, unmount:
  the engine's run without its bookkeeping (container record, workdir check, reading the upper
  layer's size at removal);
* ``start+wait``: ``runtime.start`` then ``wait()`` on an overlay mounted once: namespaces + exec only.

And the model's engine, ``sim.connect("sim").run(...)``, for reference: the pure-Python shell
"runs" ``/bin/true``; it has no peer.

The ratio printed is layerlab ``engine.run`` / ``runc run`` (the issue's target: at most 0.5).
Exit status 0 whatever the result, 130 if interrupted; every mount and state folder is released
on Ctrl-C, SIGTERM and SIGHUP too.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim
from sim.images.base import busybox_layer

TARGET_RATIO = 0.5
STATE_PREFIX = "layerlab-bench-"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- shared by engine_bench.py ----------------------------------------------------------------


def stats_ms(samples: list[float]) -> dict[str, float]:
    """Median, p90 and min of samples in seconds, as milliseconds."""
    ordered = sorted(samples)
    p90 = statistics.quantiles(ordered, n=10, method="inclusive")[8] if len(ordered) > 1 else ordered[0]
    return {"median_ms": statistics.median(ordered) * 1000, "p90_ms": p90 * 1000, "min_ms": ordered[0] * 1000,
            "n": len(ordered)}


def mounts_under(folder: str | os.PathLike[str]) -> list[str]:
    """Mount points in /proc/self/mountinfo at or below ``folder``."""
    root = os.path.realpath(folder)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
        points = [line.split()[4] for line in fh]
    return [p for p in points if p == root or p.startswith(root + "/")]


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP while cleaning up: a second Ctrl-C waits until nothing is left mounted."""
    sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def release_state(engine: Any, state: Path) -> list[str]:
    """Undo everything an engine made under ``state`` and delete the folder.

    ``engine.close()`` unmounts its containers; then every journal record still
    there (a union or a process caught half-way by an interrupt) is released,
    processes first, then mounts, then folders; any mount still found under the
    folder is detached.  Returns the mount points that needed that last resort.
    """
    with signals_blocked():
        if engine is not None:
            try:
                engine.close()
            except Exception as exc:
                log(f"cleanup: engine.close() failed: {exc!r}")
        gc.collect()  # runs the finalizers of unions no container holds (they unmount themselves)
        journal_dir = state / "journal"
        if journal_dir.is_dir():
            from realrt.journal import Journal

            journal = Journal(state)
            order = {"process": 0, "mount": 1, "tree": 2}
            for rec in sorted(journal.records(), key=lambda r: order.get(r.kind, 3)):
                try:
                    journal.release(rec)
                except OSError as exc:
                    log(f"cleanup: releasing {rec.kind} {rec.path or rec.pid} failed: {exc}")
        forced = mounts_under(state)
        for point in sorted(forced, key=len, reverse=True):
            from realrt import _syscalls

            try:
                _syscalls.umount2(point, _syscalls.MNT_DETACH)
            except OSError as exc:
                log(f"cleanup: cannot detach {point}: {exc}")
        shutil.rmtree(state, ignore_errors=True)
    return forced


OWNER_FILE = "bench-owner"


def fresh_folder(kind: str, parent: str | None) -> Path:
    """A new temporary folder named for this bench, with the owner's pid in it (see :func:`sweep_stale`)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{STATE_PREFIX}{kind}-", dir=parent))
    (folder / OWNER_FILE).write_text(str(os.getpid()))
    return folder


def sweep_stale(parent: str | None) -> list[str]:
    """Release the folders (and their mounts) of bench runs that were killed (SIGKILL cannot be caught)."""
    swept = []
    for folder in sorted(Path(parent or tempfile.gettempdir()).glob(STATE_PREFIX + "*")):
        try:
            owner = int((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or being created right now
        try:
            os.kill(owner, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        release_state(None, folder)
        swept.append(str(folder))
    runc = shutil.which("runc")
    if runc:  # runc containers of a killed run_bench (runc run normally deletes its own)
        listed = subprocess.run([runc, "list", "-q"], capture_output=True, text=True).stdout.split()
        for name in listed:
            pid = name[len(STATE_PREFIX):].split("-")[0] if name.startswith(STATE_PREFIX) else ""
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                subprocess.run([runc, "delete", "--force", name], capture_output=True)
                swept.append(f"runc:{name}")
    if swept:
        log(f"swept {len(swept)} thing(s) a killed bench run left: {', '.join(swept)}")
    return swept


@contextlib.contextmanager
def engine_in(backend: str, parent: str | None, *, state: bool = True) -> Iterator[Any]:
    """``sim.connect(backend)`` on a fresh state folder, released (unmounted, deleted) on any exit."""
    folder = fresh_folder(backend, parent) if state else None
    engine: Any = None
    try:
        engine = sim.connect(backend, state_dir=folder) if folder else sim.connect(backend)
        yield engine
    finally:
        if folder is not None:
            forced = release_state(engine, folder)
            if forced:
                log(f"cleanup: had to detach {len(forced)} mount(s) under {folder}")
        elif engine is not None:
            engine.close()


def install_signal_handlers() -> None:
    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (a background job)
    signal.signal(signal.SIGTERM, terminate)  # unwind the context managers, which unmount
    signal.signal(signal.SIGHUP, terminate)


def environment() -> dict[str, object]:
    return {"kernel": platform.release(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def timed(fn: Callable[[], object]) -> float:
    """One call with the garbage collector off, as timeit does."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        if enabled:
            gc.enable()


# -- the runc peer ----------------------------------------------------------------------------


class Runc:
    """``runc run`` on a prepared bundle of the busybox tree; deletes any container of ours it left."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary = binary
        self.bundle = folder / "bundle"
        self.prefix = f"{STATE_PREFIX}{os.getpid()}-"
        self.count = 0
        self.bundle.mkdir()
        busybox_layer().to_directory(self.bundle / "rootfs")
        subprocess.run([binary, "spec"], cwd=self.bundle, check=True)
        config = json.loads((self.bundle / "config.json").read_text())
        config["process"]["args"] = ["/bin/true"]
        config["process"]["terminal"] = False
        (self.bundle / "config.json").write_text(json.dumps(config))
        self.version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.splitlines()[0]

    def run(self) -> None:
        self.count += 1
        done = subprocess.run([self.binary, "run", "--bundle", str(self.bundle), f"{self.prefix}{self.count}"],
                              stdin=subprocess.DEVNULL, capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"runc run failed ({done.returncode}): {done.stderr.decode(errors='replace')}")

    def cleanup(self) -> None:
        with signals_blocked():
            listed = subprocess.run([self.binary, "list", "-q"], capture_output=True, text=True)
            for name in listed.stdout.split():
                if name.startswith(self.prefix):
                    subprocess.run([self.binary, "delete", "--force", name], capture_output=True)


# -- the benchmark -----------------------------------------------------------------------------


def bench(n: int, warmup: int, parent: str | None) -> dict[str, Any]:
    from realrt.containers import runtime

    runc_binary = shutil.which("runc")
    layer = busybox_layer()
    spec = runtime.ContainerSpec(("/bin/true",))
    samples: dict[str, list[float]] = {}
    report: dict[str, Any] = {"n": n, "warmup": warmup, "environment": environment()}
    with contextlib.ExitStack() as stack:
        real = stack.enter_context(engine_in("real", parent))
        model = stack.enter_context(engine_in("sim", parent, state=False))
        journal = real.journal
        mounted = stack.enter_context(real.union([layer]))  # for start+wait: mounted once

        def engine_run() -> None:
            result = real.run("busybox", ["/bin/true"], remove=True)
            assert result.exit_code == 0, result

        def union_run() -> None:
            with real.union([layer]) as union:
                code = runtime.run_on(union, spec, journal=journal).exit_code
            assert code == 0

        def start_wait() -> None:
            process = runtime.start_on(mounted, spec, journal=journal)
            code = process.wait()
            process.close()
            assert code == 0, process.stderr

        def model_run() -> None:
            result = model.run("busybox", ["/bin/true"], remove=True)
            assert result.exit_code == 0, result

        variants: dict[str, Callable[[], None]] = {
            "engine.run": engine_run, "union()+run": union_run, "start+wait": start_wait, "sim engine.run": model_run,
        }
        if runc_binary:
            folder = fresh_folder("runc", parent)
            stack.callback(shutil.rmtree, folder, ignore_errors=True)
            runc = Runc(runc_binary, folder)
            stack.callback(runc.cleanup)
            variants["runc run"] = runc.run
            report["runc_version"] = runc.version
        names = list(variants)
        for _ in range(warmup):  # the first engine.run also imports the busybox image into the store
            for name in names:
                variants[name]()
        for i in range(n):
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                samples.setdefault(name, []).append(timed(variants[name]))
        report["mounts_left_before_cleanup"] = len(mounts_under(real.state_dir)) - 1  # minus the start+wait mount
        report["state_dir"] = str(real.state_dir)
    report["figures"] = {name: stats_ms(s) for name, s in samples.items()}
    report["samples_ms"] = {name: [round(x * 1000, 3) for x in s] for name, s in samples.items()}
    report["mounts_left"] = mounts_under(report["state_dir"])
    report["state_dir_left"] = os.path.exists(report["state_dir"])
    if "runc run" in samples:
        ours, theirs = report["figures"]["engine.run"], report["figures"]["runc run"]
        report["ratio_median"] = ours["median_ms"] / theirs["median_ms"]
        report["ratio_p90"] = ours["p90_ms"] / theirs["p90_ms"]
        report["target"] = f"layerlab engine.run median <= {TARGET_RATIO} x runc run median"
        report["target_pass"] = report["ratio_median"] <= TARGET_RATIO
        report["ratios_breakdown"] = {name: report["figures"][name]["median_ms"] / theirs["median_ms"]
                                      for name in ("union()+run", "start+wait")}
    return report


def render(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [f"/bin/true from busybox, N={report['n']} each (+{report['warmup']} warm-up), interleaved rounds; "
             f"kernel {env['kernel']}, {env['cpus']} CPUs, load {env['loadavg']}, {report.get('runc_version', 'no runc')}",
             f"  {'variant':<46} {'median':>9} {'p90':>9} {'min':>9}"]
    labels = {
        "runc run": "runc run (plain rootfs dir, no overlay)",
        "engine.run": "layerlab engine.run(remove=True) [real]",
        "union()+run": "  breakdown: union() + runtime.run + unmount",
        "start+wait": "  breakdown: runtime start+wait (mounted once)",
        "sim engine.run": "model engine.run(remove=True) [sim, no peer]",
    }
    for name in ("runc run", "engine.run", "union()+run", "start+wait", "sim engine.run"):
        if name in report["figures"]:
            f = report["figures"][name]
            lines.append(f"  {labels[name]:<46} {f['median_ms']:6.2f} ms {f['p90_ms']:6.2f} ms {f['min_ms']:6.2f} ms")
    if "ratio_median" in report:
        verdict = "PASS" if report["target_pass"] else "FAIL"
        lines.append(f"  ratio layerlab/runc: median {report['ratio_median']:.2f}, p90 {report['ratio_p90']:.2f}  "
                     f"(target <= {TARGET_RATIO}: {verdict})")
        b = report["ratios_breakdown"]
        lines.append(f"  breakdown ratios to runc (median): union()+run {b['union()+run']:.2f}, "
                     f"start+wait {b['start+wait']:.2f}")
    else:
        lines.append("  runc is not installed (apt-get install runc): no comparison, no verdict")
    left = report["mounts_left"]
    lines.append(f"  cleanup: {len(left)} mount(s) left under the state folder"
                 f"{', folder still there' if report['state_dir_left'] else ', folder deleted'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=50, help="timed runs per variant (default 50)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    parser.add_argument("--state-dir", default=None, help="parent folder for the temporary state folders")
    parser.add_argument("--json", action="store_true", help="print one JSON object (with every sample)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("run as root: the bench compares root-mode containers with runc")
    install_signal_handlers()
    sweep_stale(args.state_dir)
    try:
        report = bench(args.n, args.warmup, args.state_dir)
    except KeyboardInterrupt:
        log("interrupted: every mount and state folder made so far has been released")
        return 130
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

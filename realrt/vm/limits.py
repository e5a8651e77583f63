"""资源限制 on both cgroup versions: the limits suite measured here and in a cgroup v2 guest.

:func:`measure_limits` runs, on this machine's kernel, the programs of :mod:`sim.capacity.hogs`
under ``docker run``'s flags (``realrt.measure.measure_hog``) next to the model's prediction of
each (``sim.capacity.predict.predict_hog``), and checks what the real backend's cgroup code does
(:func:`_checks`: the files it writes, ``cgroup.procs``, ``docker exec`` joining the group, the
folder removed after the exit, a folder with a live process swept).  It returns a
:class:`LimitsReport`.

Most users' hosts run cgroup v2; this project's machines run v1 (v2 is mounted with no
controllers).  :func:`measure_limits_in_guest` therefore boots a QEMU guest on the host's own
root (:func:`realrt.vm._share.run_in_guest`: this checkout and this Python, read-only over
virtio-9p), in which only cgroup v2 is mounted, runs ``python -m realrt.vm.limits`` there
(:func:`measure_limits` again) and returns the guest's report, with the accelerator that ran it.
Under TCG the guest's CPU is emulated: times are wall-clock (memory fills more slowly), CPU
limits are compared as ratios of the wall time, which emulation does not change.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import BackendUnavailableError

__all__ = ["LimitRow", "LimitsReport", "measure_limits", "measure_limits_in_guest", "CASES", "main"]

MiB = 1 << 20
_REPORT = "limits-report.json"
#: As realrt.measure: how long a hog may outlive its own duration before it is killed (times
#: ``time_scale``: an emulated guest runs the same programs ~30x slower).
_OVERRUN_S = 10.0
#: ``time_scale`` of a TCG guest (KVM and the host: 1).
TCG_TIME_SCALE = 10.0


@dataclass(frozen=True)
class LimitRow:
    """One program under one flag: ``quantity`` (what is compared, in ``unit``) as the model
    predicts it and as the kernel measured it; ``exit_code`` of the container; ``extra``: the
    other numbers of the run (peak memory, OOM kills, throttled seconds, samples...)."""

    case: str
    flag: str
    program: str
    quantity: str
    unit: str
    model: float
    measured: float
    exit_code: int
    extra: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LimitsReport:
    """What :func:`measure_limits` found on one kernel: ``cgroup_version`` (1 or 2),
    ``mount``: the cgroup2 mount's options there (v2), ``where`` ("host" or "guest"), the
    ``accelerator`` of a guest ("kvm"/"tcg", None on the host), ``rows`` (see :data:`CASES`),
    ``checks``: name -> passed, ``notes``: name -> what was seen; ``elapsed_s`` of the
    measurement itself (and, for a guest, ``boot_s`` and ``wall_s`` of QEMU)."""

    cgroup_version: int
    kernel: str
    where: str
    accelerator: str | None
    rows: tuple[LimitRow, ...]
    checks: Mapping[str, bool]
    notes: Mapping[str, str]
    elapsed_s: float
    mount: str = ""
    boot_s: float | None = None
    wall_s: float | None = None

    def row(self, case: str) -> LimitRow:
        return next(r for r in self.rows if r.case == case)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> LimitsReport:
        data = json.loads(text)
        data["rows"] = tuple(LimitRow(**row) for row in data["rows"])
        return cls(**data)


#: The cases: name -> (hog factory arguments, docker run flags, the flag as typed).  Small on
#: purpose (a TCG guest runs them too); the same programs as tests/capacity/test_measure.py.
CASES: Mapping[str, tuple[str, Mapping[str, Any], Mapping[str, Any], str]] = {
    "memory": ("memory_hog", {"total_mib": 64, "step_mib": 2, "step_s": 0.1, "duration_s": 3.0},
               {"memory": "16m"}, "--memory 16m"),
    "memory-fits": ("memory_hog", {"total_mib": 4, "step_mib": 2, "step_s": 0.1, "duration_s": 1.0},
                    {"memory": "256m"}, "--memory 256m"),
    "cpus": ("cpu_hog", {"duration_s": 2.0}, {"cpus": "0.5"}, "--cpus 0.5"),
    "pids": ("fork_bomb", {"tasks": 30, "duration_s": 1.5}, {"pids_limit": "10"}, "--pids-limit 10"),
}


def _row(case: str, engine: Any, time_scale: float) -> LimitRow:
    import numpy as np

    from realrt.measure import measure_hog
    from sim.capacity import hogs
    from sim.capacity.predict import predict_hog
    from sim.containers.limits import parse_limits

    factory, arguments, flags, typed = CASES[case]
    hog = getattr(hogs, factory)(**arguments)
    model = predict_hog(hog, parse_limits(**flags))
    run = measure_hog(engine, hog, duration=(hog.duration_s + _OVERRUN_S) * time_scale, **flags)
    s = run.series
    extra = {"samples": float(len(s)), "last_sample_s": float(s.t[-1]) if len(s) else 0.0,
             "peak_memory_mib": s.peak_memory / MiB, "model_peak_memory_mib": model.peak_memory / MiB,
             "oom_kills": float(s.oom_kills[-1]) if len(s) else 0.0, "model_oom_kills": float(model.oom_kills[-1]),
             "throttled_s": float(s.throttled[-1]) if len(s) else 0.0, "model_throttled_s": float(model.throttled[-1]),
             "peak_pids": float(np.nanmax(s.pids)) if len(s) else 0.0, "model_peak_pids": float(model.pids.max()),
             "cpu_seconds": s.cpu_seconds, "wall_s": float(s.t[-1] - s.t[0]) if len(s) > 1 else 0.0}
    killed = model.t[model.oom_kills > 0]
    extra["model_killed_s"] = float(killed[0]) if len(killed) else -1.0
    if case in ("memory", "memory-fits"):
        # Peak memory, not the time of the kill: how fast the hog grows is CPU speed (an emulated
        # guest takes ~30x longer), where it is stopped is the limit's business.
        return LimitRow(case, typed, hog.label, "peak memory", "MiB", extra["model_peak_memory_mib"],
                        extra["peak_memory_mib"], run.exit_code, extra)
    if case == "cpus":
        return LimitRow(case, typed, hog.label, "CPU used / wall time", "cores",
                        model.at(hog.duration_s / 2)["cpu"],
                        extra["cpu_seconds"] / extra["wall_s"] if extra["wall_s"] else 0.0, run.exit_code, extra)
    return LimitRow(case, typed, hog.label, "peak tasks", "tasks", extra["model_peak_pids"], extra["peak_pids"],
                    run.exit_code, extra)


def _checks(engine: Any) -> tuple[dict[str, bool], dict[str, str]]:
    """The real backend's cgroup code against the kernel, on whichever version it runs."""
    from realrt._cgroupfs import PARENT, remove_dir
    from realrt.containers import runtime as rt
    from sim.containers.limits import cgroup_v1_files, cgroup_v2_files, parse_limits
    from sim.images.base import busybox_layer

    checks: dict[str, bool] = {}
    notes: dict[str, str] = {}
    limits = parse_limits(memory="512m", cpus="1.5", cpu_shares=512, pids_limit=100)
    with engine.union([busybox_layer()]) as union:
        spec = rt.ContainerSpec(("sleep", "30"), limits=limits)
        with rt.start_on(union, spec, journal=engine.journal, cgroup_name="files-check") as process:
            group = process.cgroup
            assert group is not None
            if group.version == 1:
                expected = {os.path.join(group.dirs[c], f): v
                            for (c, f), v in cgroup_v1_files(limits, swap=group.hierarchy.swap).items()}
            else:
                expected = {os.path.join(group.dirs[""], f): v
                            for f, v in cgroup_v2_files(limits, swap=group.hierarchy.swap).items()}
            found = {p: Path(p).read_text().strip() for p in expected}
            checks["limit files hold the translation"] = found == expected
            notes["limit files"] = ", ".join(f"{os.path.basename(p)}={v}" for p, v in found.items())
            notes["swap accounted"] = str(group.hierarchy.swap)
            checks["pid in cgroup.procs"] = all(
                str(process.pid) in Path(p, "cgroup.procs").read_text().split() for p in group.paths)
            joined = rt.exec(process, ["cat", "/proc/self/cgroup"]).stdout.decode()
            notes["exec's /proc/self/cgroup"] = joined.strip().replace("\n", " | ")
            checks["exec joins the container's cgroup"] = any(
                line.endswith(f":/{PARENT}/files-check") for line in joined.splitlines())
            paths = group.paths
            process.stop(grace=0)
        checks["cgroup removed after the exit"] = not any(os.path.exists(p) for p in paths)
        checks["layerlab parent removed"] = not any(os.path.exists(os.path.dirname(p)) for p in paths)
        # A live container's folder removed as a sweep does (v2: cgroup.kill; v1: pidfd kills).
        spec = rt.ContainerSpec(("sh", "-c", "sleep 100 & sleep 100 & wait"), limits=parse_limits(pids_limit=20))
        with rt.start_on(union, spec, journal=engine.journal, cgroup_name="sweep-check") as process:
            group = process.cgroup
            assert group is not None
            deadline = time.monotonic() + 30
            while len(group.pids()) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            started = time.monotonic()
            removed = all(remove_dir(p, timeout=10.0) for p in group.paths)
            notes["sweep of a live cgroup"] = f"{time.monotonic() - started:.3f} s"
            checks["a live cgroup is swept (its processes killed)"] = removed and process.wait(30) == 137
    return checks, notes


def measure_limits(*, state_dir: str | os.PathLike[str] | None = None, cases: Sequence[str] = tuple(CASES),
                   where: str = "host", time_scale: float = 1.0,
                   progress: Callable[[str], None] | None = None) -> LimitsReport:
    """Measure :data:`CASES` and the checks on this machine's kernel, as root (a real engine in a
    temporary folder below ``state_dir``, removed afterwards).  A hog still running
    ``(duration + 10 s) x time_scale`` after its start is killed (its row then shows exit 137
    without an OOM kill).  ``progress`` is called with a line after each step (the guest prints
    them on its console, so a run that times out shows how far it got).
    :class:`BackendUnavailableError` when no cgroup hierarchy with the controllers is mounted or
    the real backend cannot run here."""
    import tempfile

    import sim
    from realrt._cgroupfs import cgroup_mounts
    from realrt.containers import cgroups

    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise ValueError(f"unknown cases {unknown}; known: {list(CASES)}")
    hierarchy = cgroups.detect()
    if hierarchy is None:
        raise BackendUnavailableError("no cgroup hierarchy with the memory, cpu or pids controller is mounted")
    mount = next((",".join(sorted(opts)) for point, kind, opts in cgroup_mounts()
                  if kind == "cgroup2" and hierarchy.version == 2 and point == hierarchy.roots.get("")), "")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="layerlab-limits-", dir=state_dir) as tmp:
        engine: Any = sim.connect("real", rootless=False, state_dir=tmp)
        say = progress or (lambda line: None)
        try:
            engine.base_image("busybox:latest")
            say(f"engine ready after {time.monotonic() - started:.1f} s")
            rows_: list[LimitRow] = []
            for case in cases:
                rows_.append(_row(case, engine, time_scale))
                say(f"{case} measured after {time.monotonic() - started:.1f} s")
            rows = tuple(rows_)
            checks, notes = _checks(engine)
            say(f"checks done after {time.monotonic() - started:.1f} s")
        finally:
            engine.close()
    return LimitsReport(cgroup_version=hierarchy.version, kernel=platform.release(), where=where, accelerator=None,
                        rows=rows, checks=checks, notes=notes, elapsed_s=time.monotonic() - started, mount=mount)


def measure_limits_in_guest(*, cases: Sequence[str] = tuple(CASES), memory_mib: int = 1024, smp: int = 2,
                            accel: str = "auto", timeout: float = 240.0, **options: Any) -> LimitsReport:
    """:func:`measure_limits` in a guest with cgroup v2 only (see the module's docstring); the
    report carries the guest's ``accelerator``, ``boot_s`` and ``wall_s``.  ``options`` go to
    :func:`realrt.vm._share.run_in_guest` (``state_dir``, ``kvm_deadline``, ``kernel`` ...).
    :class:`BackendUnavailableError` with the guest's console when the guest's run fails."""
    from realrt.vm._share import GUEST_OUT, GUEST_SCRATCH, run_in_guest

    root = str(Path(__file__).resolve().parents[2])
    # One scale whatever accelerator boots it (the script is written before): it only bounds a run.
    argv = [sys.executable, "-m", "realrt.vm.limits", "--where", "guest", "--state", GUEST_SCRATCH,
            f"--time-scale={TCG_TIME_SCALE:g}",
            "--out", f"{GUEST_OUT}/{_REPORT}", *(f"--case={c}" for c in cases)]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": GUEST_SCRATCH, "TMPDIR": GUEST_SCRATCH,
           "LC_ALL": "C.UTF-8", "PYTHONPATH": root, "PYTHONDONTWRITEBYTECODE": "1"}
    run = run_in_guest(argv, memory_mib=memory_mib, smp=smp, accel=accel, timeout=timeout, env=env, cwd=root,
                       **options)
    raw = run.files.get(_REPORT)
    if run.exit_code != 0 or raw is None:
        raise BackendUnavailableError(f"the limits run in the guest ({run.accelerator}) failed with exit "
                                      f"{run.exit_code}; its console ended with:\n{run.console[-3000:]}")
    report = LimitsReport.from_json(raw)
    notes = {**report.notes, "guest": f"{smp} vCPUs, {memory_mib} MiB, QEMU {' '.join(run.qemu_argv[1:9])}"}
    if run.kvm_failure:
        notes["KVM given up"] = run.kvm_failure
    return LimitsReport(**{**asdict(report), "rows": report.rows, "accelerator": run.accelerator,
                           "boot_s": run.boot_s, "wall_s": run.wall_s, "notes": notes})


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m realrt.vm.limits [--where host|guest] [--state DIR] [--out FILE] [--case NAME]...
    [--time-scale X]``:
    :func:`measure_limits` here, the report as JSON on stdout or in ``FILE``."""
    parser = argparse.ArgumentParser(prog="python -m realrt.vm.limits")
    parser.add_argument("--where", default="host", choices=("host", "guest"))
    parser.add_argument("--state", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--case", action="append", choices=tuple(CASES))
    parser.add_argument("--time-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    report = measure_limits(state_dir=args.state, cases=args.case or tuple(CASES), where=args.where,
                            time_scale=args.time_scale,
                            progress=lambda line: print(f"layerlab-limits: {line}", file=sys.stderr, flush=True))
    if args.out:
        tmp = f"{args.out}.tmp"
        Path(tmp).write_text(report.to_json())
        os.replace(tmp, args.out)
    else:
        print(report.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())

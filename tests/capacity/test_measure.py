"""实测用量 (measured usage): realrt.measure turns a container's cgroup counters into the model's
UsageSeries.  The conversion is checked on made-up readings (no root); the kernel tests run the
three hogs of sim.capacity.hogs under --memory, --cpus and --pids-limit and look at the series:
the OOM kill at the limit, the CPU held at the quota, the tasks capped, and nothing left behind.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sim
from realrt.containers import cgroups
from realrt.containers.cgroups import Usage
from realrt.journal import Journal
from realrt.measure import MeasuredRun, limits_of, measure_hog, usages_to_series
from sim.capacity.hogs import MiB, cpu_hog, fork_bomb, memory_hog
from sim.capacity.series import UsageSeries
from sim.containers.limits import parse_limits
from sim.errors import BackendUnavailableError, InvalidLimitError
from tests.backends import require_real
from tests.capacity.test_vm import _gone, _wait_for
from tests.realcheck import leftovers, mounts_below, under_subreaper

# -- the conversion, on readings made up by hand ------------------------------------------------------


def _reading(time: float, cpu: float | None, **counters: Any) -> Usage:
    return Usage(time=time, cpu_seconds=cpu, **counters)


def test_cpu_is_the_rate_over_each_interval_and_the_rest_is_as_read() -> None:
    readings = [
        _reading(100.1, 0.05, memory_bytes=1 * MiB, throttled_seconds=0.0, pids=1, oom_kills=0),
        _reading(100.3, 0.15, memory_bytes=3 * MiB, throttled_seconds=0.1, pids=4, oom_kills=0),
        _reading(100.4, 0.15, memory_bytes=2 * MiB, throttled_seconds=0.1, pids=0, oom_kills=1),
    ]
    series = usages_to_series(readings, start=100.0, label="x", limits={"memory.max": 16 * MiB})
    assert isinstance(series, UsageSeries) and series.source == "measured" and series.label == "x"
    np.testing.assert_allclose(series.t, [0.1, 0.3, 0.4])
    np.testing.assert_allclose(series.cpu, [0.5, 0.5, 0.0])  # the first interval starts at `start`, from 0
    np.testing.assert_array_equal(series.memory, [MiB, 3 * MiB, 2 * MiB])
    np.testing.assert_array_equal(series.throttled, [0.0, 0.1, 0.1])
    np.testing.assert_array_equal(series.pids, [1, 4, 0])
    np.testing.assert_array_equal(series.oom_kills, [0, 0, 1])
    assert series.limits == {"memory.max": 16 * MiB}
    assert series.cpu_seconds == pytest.approx(0.1)  # the integral gives the counter back (after the first)


def test_missing_counters_are_nan_and_a_counter_never_goes_backwards() -> None:
    readings = [_reading(1.5, 0.2), _reading(2.0, 0.1, pids=2), _reading(2.5, None)]
    series = usages_to_series(readings, start=1.0, label="x")
    assert series.cpu[0] == pytest.approx(0.4) and series.cpu[1] == 0.0 and math.isnan(series.cpu[2])
    assert all(math.isnan(v) for v in series.memory) and math.isnan(series.pids[0]) and series.pids[1] == 2
    assert series.limits == {}


def test_readings_must_follow_the_start_and_each_other() -> None:
    assert len(usages_to_series([], start=5.0, label="empty")) == 0
    with pytest.raises(ValueError, match="strictly increasing"):
        usages_to_series([_reading(1.0, 0.0)], start=1.0, label="x")
    with pytest.raises(ValueError, match="strictly increasing"):
        usages_to_series([_reading(2.0, 0.0), _reading(2.0, 0.1)], start=1.0, label="x")


def test_limits_are_named_as_the_series_draws_them() -> None:
    limits = parse_limits(memory="16m", cpus="0.5", cpu_shares=512, pids_limit=10, cpus_available=2)
    assert limits_of(limits) == {"memory.max": 16 * MiB, "cpu.max": 0.5, "pids.max": 10, "cpu.shares": 512,
                                 "cpu.weight": 20}
    assert limits_of(parse_limits(pids_limit=0)) == {} and limits_of(None) == {}  # unlimited: nothing to draw


@pytest.mark.parametrize("bad", [{"interval": 0}, {"interval": -0.05}, {"interval": float("nan")},
                                 {"interval": float("inf")}, {"interval": True}, {"interval": "fast"},
                                 {"duration": 0}, {"duration": float("inf")}, {"duration": float("nan")},
                                 {"duration": True}, {"duration": -float("inf")}])
def test_bad_sampling_is_refused_first(bad: dict[str, Any]) -> None:
    engine = sim.connect("sim")
    with pytest.raises(InvalidLimitError, match="must be a positive number of seconds"):
        measure_hog(engine, cpu_hog(1.0), cpus="0.5", **bad)  # type: ignore[arg-type]
    assert engine.containers() == []


def test_the_model_has_nothing_to_measure() -> None:
    engine = sim.connect("sim")
    with pytest.raises(BackendUnavailableError, match="measure on sim.connect\\('real'\\)"):
        measure_hog(engine, cpu_hog(1.0), cpus="0.5")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        measure_hog(engine, "while :; do :; done")  # type: ignore[arg-type]
    info = engine.create("busybox", ["true"], memory="16m")
    engine.start(info.id, detach=True)
    assert engine.usage(info.id) is None and engine.containers() != []  # the model keeps no counters


# -- the kernel ---------------------------------------------------------------------------------------


def _well_formed(run: MeasuredRun, interval: float = 0.05) -> UsageSeries:
    """What every measured series holds: sampled from the start at about ``interval``, counters
    that only grow, every counter present on this host, and a last reading after the exit."""
    s = run.series
    assert s.source == "measured" and s.label == run.hog.label and len(s) >= 3
    assert s.t[0] > 0 and np.all(np.diff(s.t) > 0)
    assert interval * 0.6 <= float(np.median(np.diff(s.t))) <= interval * 2
    for name in ("cpu", "memory", "throttled", "pids", "oom_kills"):
        assert np.all(np.isfinite(getattr(s, name))), name
    assert np.all(s.cpu >= 0)
    assert np.all(np.diff(s.throttled) >= 0) and np.all(np.diff(s.oom_kills) >= 0)
    assert s.pids[-1] == 0, "the last reading is taken after the exit, just before the cgroup goes"
    return s


@pytest.mark.real
@pytest.mark.root_only
class TestMeasuredHogs:
    def test_a_memory_hog_is_oom_killed_at_the_limit(self, real: Any) -> None:
        hog = memory_hog(total_mib=64, step_mib=2, step_s=0.1, duration_s=3.0)
        run = measure_hog(real, hog, memory="16m")
        s = _well_formed(run)
        assert run.exit_code == 137 and b"held" not in run.logs, run.logs
        assert s.limits == {"memory.max": 16 * MiB}
        assert s.oom_kills[0] == 0 and s.oom_kills[-1] >= 1
        assert 4 * MiB < s.peak_memory <= 16 * MiB  # it grew towards the limit and never past it
        assert s.t[-1] < hog.duration_s  # killed long before it would have ended
        print(f"OOM: --memory 16m, {hog.label}: killed after {s.t[-1] * 1000:.0f} ms, peak sampled "
              f"{s.peak_memory / MiB:.1f} MiB, oom_kills {s.oom_kills[-1]:.0f}, {len(s)} samples")

    def test_a_cpu_hog_is_held_at_the_quota(self, real: Any) -> None:
        hog = cpu_hog(duration_s=2.0)
        run = measure_hog(real, hog, cpus="0.5")
        s = _well_formed(run)
        assert run.exit_code == 0 and s.limits == {"cpu.max": 0.5}
        ratio = s.cpu_seconds / (s.t[-1] - s.t[0])
        assert 0.25 <= ratio <= 0.6, ratio  # 0.5 cores; unthrottled the loop takes a whole one
        assert s.throttled[-1] >= 0.2 and s.throttled[-1] > s.throttled[len(s) // 2] > s.throttled[0]
        assert 1.8 <= s.t[-1] <= 4.0
        print(f"CPU: --cpus 0.5, {hog.label}: {s.cpu_seconds:.2f} CPU s over {s.t[-1]:.2f} s (ratio {ratio:.2f}), "
              f"throttled {s.throttled[-1]:.2f} s")

    def test_a_fork_bomb_stops_at_pids_max(self, real: Any) -> None:
        hog = fork_bomb(tasks=30, duration_s=1.5)
        run = measure_hog(real, hog, pids_limit=10)
        s = _well_formed(run)
        assert run.exit_code == 0 and s.limits == {"pids.max": 10}
        peak = float(s.pids.max())
        assert 5 <= peak <= 10, s.pids
        print(f"pids: --pids-limit 10, {hog.label}: peak {peak:.0f} tasks")

    def test_without_limits_it_is_measured_unlimited(self, real: Any) -> None:
        run = measure_hog(real, cpu_hog(duration_s=1.0, cores=2), cpu_shares=512)
        s = _well_formed(run)
        assert s.limits == {"cpu.shares": 512, "cpu.weight": 20} and s.throttled[-1] == 0
        assert s.cpu_seconds / (s.t[-1] - s.t[0]) > 0.6  # shares only weigh under contention: no cap
        bare = measure_hog(real, fork_bomb(tasks=12, duration_s=0.5))  # no flag: pids.max "max"
        assert _well_formed(bare).limits == {} and bare.series.pids.max() >= 12

    def test_a_run_past_its_duration_is_killed(self, real: Any) -> None:
        run = measure_hog(real, cpu_hog(duration_s=60.0), cpus="0.2", duration=0.5)
        s = _well_formed(run)
        assert run.exit_code == 137 and 0.5 <= s.t[-1] < 3.0
        assert real.containers() == []

    def test_logs_and_usage_of_a_running_container(self, real: Any) -> None:
        """docker logs / docker stats while it runs, and the last reading once it is reaped."""
        real.base_image("busybox:latest")
        info = real.create("busybox:latest", ["sh", "-c", "echo started; exec sleep 2"], memory="64m")
        try:
            real.start(info.id, detach=True)
            deadline = time.monotonic() + 10
            while b"started" not in real.logs(info.id) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert real.logs(info.id) == b"started\n"
            running = real.usage(info.id)
            assert running is not None and running.pids == 1 and running.memory_bytes > 0
            real.kill(info.id)
            assert real.wait(info.id, timeout=10) == 137
            assert real.logs(info.id) == b"started\n" and real.usage(info.id) is not None
        finally:
            real.remove(info.id, force=True)

    def test_bad_limits_create_nothing(self, real: Any) -> None:
        for bad in ({"memory": "4m"}, {"cpus": "-1"}, {"pids_limit": "1.5"}):
            with pytest.raises(InvalidLimitError):
                measure_hog(real, fork_bomb(3, 0.2), **bad)
        assert real.containers() == [] and real.images() == [] and list(real.journal.records()) == []


@pytest.mark.real
def test_rootless_on_cgroup_v1_is_refused_before_anything(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No cgroup to read (rootless on v1): the engine's own typed error, and nothing is created,
    even without a limit (measuring needs a cgroup)."""
    hierarchy = cgroups.detect(rootless=True)
    if hierarchy is not None and hierarchy.version == 2 and hierarchy.roots:
        pytest.skip("this host delegates a cgroup v2 subtree: rootless limits are allowed here")
    engine: Any = require_real(rootless=True, state_dir=str(tmp_path_factory.mktemp("rootless-measure")))
    try:
        for flags in ({"cpus": "0.5"}, {}):
            with pytest.raises(BackendUnavailableError, match="rootless containers cannot apply"):
                measure_hog(engine, cpu_hog(1.0), **flags)
        assert engine.containers() == [] and engine.images() == [] and list(engine.journal.records()) == []
    finally:
        engine.close()
    assert leftovers() == []


# -- interrupted runs: nothing is left behind ------------------------------------------------------


def _members(folders: list[str]) -> list[int]:
    """The pids in the cgroup folders (and below), read before the owner is killed."""
    pids = set()
    for folder in folders:
        for root, _dirs, files in os.walk(folder):
            for name in ("cgroup.procs", "tasks"):
                if name in files:
                    try:
                        with open(os.path.join(root, name), encoding="ascii") as fh:
                            pids.update(int(p) for p in fh.read().split())
                    except OSError:
                        pass
    return sorted(pids)


# The owner runs under a subreaper (as in test_vm's killed-owner test): every process of the run
# that the owner leaves is reaped there, and the subreaper exits only once none is left.  The
# owner says "sampling" once the container runs and its cgroup is being read.
_OWNER = under_subreaper("""
    import sim
    from realrt.measure import measure_hog
    from realrt.vm import measure_container_start
    from sim.capacity.hogs import cpu_hog, fork_bomb
    state, kind = sys.argv[1], sys.argv[2]
    engine = sim.connect("real", rootless=False, state_dir=state)
    read, calls = engine.usage, []
    def usage(ref):
        calls.append(ref)
        if len(calls) == 3 or kind == "container":
            print(os.getpid(), flush=True)
            if kind == "container":
                time.sleep(60)  # killed here, the container still sleeping
        return read(ref)
    engine.usage = usage
    if kind == "cpu":
        measure_hog(engine, cpu_hog(duration_s=60.0, cores=2), cpus="0.5", duration=60.0)
    elif kind == "fork":
        measure_hog(engine, fork_bomb(tasks=30, duration_s=60.0), pids_limit=10, duration=60.0)
    else:
        measure_container_start(engine, memory_mib=128, hold=60)
""")


@pytest.mark.real
@pytest.mark.root_only
@pytest.mark.parametrize("kind", ["cpu", "fork", "container"])
def test_a_killed_measurement_is_swept_by_the_next_engine(kind: str, tmp_path: Path) -> None:
    """The owner of a ``measure_hog`` (a CPU hog, a fork hog) or ``measure_container_start`` run is
    SIGKILLed while the container runs; a new engine on the same state folder (its start sweeps
    the journal) leaves no process of the container, no cgroup folder, no mount below the state
    folder and no journal record.  The container itself is still listed (its saved metadata;
    not running), as after any engine that was killed (docker's too), and can be removed."""
    from realrt.containers import cgroups

    require_real(rootless=False, state_dir=str(tmp_path / "probe"))
    if cgroups.detect() is None:
        pytest.skip("no cgroup hierarchy with memory/cpu/pids is mounted")
    assert leftovers() == [], f"cgroup folders are left from before: {leftovers()}"
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        *filter(None, [os.environ.get("PYTHONPATH")])])}
    reaper = subprocess.Popen([sys.executable, "-c", _OWNER, str(state), kind], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    owner, pids = 0, []
    try:
        line = reaper.stdout.readline() if reaper.stdout else ""
        assert line.strip().isdigit(), f"the owner did not start: {reaper.stderr.read() if reaper.stderr else ''}"
        owner = int(line)
        folders = leftovers()
        assert folders, "the container runs without a cgroup"
        pids = _members(folders)
        assert pids, "no process in the container's cgroup"
        if kind == "fork":
            _wait_for(lambda: len(_members(folders)) >= 5)
            pids = _members(folders)
        assert mounts_below(state) != [] and list(Journal(state).records()) != []
        os.kill(owner, signal.SIGKILL)
        _wait_for(lambda: _gone(owner))
        assert leftovers(), "the killed owner should have left its cgroup (the sweep's to remove)"
        engine: Any = sim.connect("real", rootless=False, state_dir=str(state))  # sweeps what the owner left
        try:
            assert _wait_for(lambda: all(_gone(p) for p in pids), 10), "a container process survived the sweep"
            assert leftovers() == [], f"cgroup folders are left: {leftovers()}"
            assert mounts_below(state) == []
            assert list(engine.journal.records()) == []
            for c in engine.containers(all=True):  # saved by the killed engine: listed, not running
                assert c.state != "running"
                engine.remove(c.id, force=True)
            assert engine.containers(all=True) == [] and mounts_below(state) == []
        finally:
            engine.close()
        reaper.wait(10)  # it exits once every process the owner left is reaped
    finally:
        if reaper.poll() is None:
            for pid in (owner, *pids):
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            reaper.kill()
            reaper.wait()
    assert leftovers() == [] and list(Journal(state).records()) == []


@pytest.mark.real
@pytest.mark.root_only
@pytest.mark.parametrize("point", ["wait", "usage"])
def test_an_interrupt_while_sampling_leaves_nothing(real: Any, point: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyboardInterrupt out of the sampler's wait (its sleep: the pidfd wakes it at the exit)
    or out of a reading, a few samples in: ``measure_hog`` removes the container on its way out,
    and the ``real`` fixture checks no cgroup folder, mount or journal record is left."""
    method = getattr(real, point)
    calls = []

    def interrupted(ref: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(ref)
        if len(calls) == 4:
            assert leftovers() != [], "the hog runs without a cgroup"
            raise KeyboardInterrupt
        return method(ref, *args, **kwargs)

    monkeypatch.setattr(real, point, interrupted)
    with pytest.raises(KeyboardInterrupt):
        measure_hog(real, fork_bomb(tasks=30, duration_s=60.0), pids_limit=10, duration=60.0)
    assert len(calls) >= 4
    monkeypatch.undo()
    assert real.containers(all=True) == []
    assert leftovers() == []

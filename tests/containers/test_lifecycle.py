"""Detached containers (容器的生命周期): run -d, wait, stop, kill, logs -f, --rm and restart policies.

One abstract suite, run on the model (its virtual clock: ``wait`` and ``stop`` move it, nothing waits)
and on the kernel, both with the engine holding the container itself and with a monitor process that
outlives the engine (``monitor=True``, what ``layerlab run -d`` uses).  The programs are the same on
every backend and so are the states, exit codes and logs they must show.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sim
from tests.backends import RealBackend, SimBackend, require_real


def settle(eng: Any, check: Callable[[], bool], within: float = 30.0) -> None:
    """``check`` holds now (the model: nothing happens between two calls), or soon (the kernel: the
    process runs on its own)."""
    deadline = time.monotonic() + (within if eng.name == "real" else 0)
    while not check():
        assert time.monotonic() < deadline, "never settled"
        time.sleep(0.05)


def let_time_pass(eng: Any, seconds: float) -> None:
    eng._sleep_until(eng._now() + seconds)  # the model moves its clock, the kernel sleeps


def info(eng: Any, name: str) -> Any:
    found = [c for c in eng.containers(all=True) if c.name == name]
    assert len(found) == 1, [c.name for c in eng.containers(all=True)]
    return found[0]


def kill_monitors(state_dir: Path) -> None:
    """Every monitor process of ``state_dir`` (found by its command line), killed by its pid, and
    waited for (dead, so the next engine's sweep undoes what it held)."""
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"realrt.containers" in argv and str(state_dir).encode() in argv:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(entry)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    while any(_running(p) for p in killed) and time.monotonic() < deadline:
        time.sleep(0.02)


def _running(proc: Path) -> bool:
    try:
        stat = (proc / "stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X")


class LifecycleSuite:
    monitor = False  # start detached runs through a monitor process (real backend)

    @pytest.fixture
    def eng(self, engine: Any) -> Iterator[Any]:
        yield engine
        engine.close()

    def detach(self, eng: Any, command: str, **options: Any) -> Any:
        return eng.run_detached("busybox", command, monitor=self.monitor, **options)

    def test_a_detached_run_is_running_then_exits_with_its_code(self, eng: Any) -> None:
        self.detach(eng, "echo started; sleep 2; echo done; exit 3", name="bg")
        first = info(eng, "bg")
        assert first.state == "running" and first.status.startswith("Up ") and first.exit_code is None
        settle(eng, lambda: eng.logs("bg") == b"started\n")
        assert eng.wait("bg") == 3
        assert eng.logs("bg") == b"started\ndone\n"
        last = info(eng, "bg")
        assert (last.state, last.exit_code, last.restart_count) == ("exited", 3, 0)
        assert last.status.startswith("Exited (3)") and last.status.endswith("ago")
        assert 1.9 <= last.finished_at - last.started_at < 9  # the run took its `sleep 2`
        assert eng.wait("bg") == 3  # not running: at once

    def test_stop_kills_after_the_grace_when_pid_1_ignores_sigterm(self, eng: Any) -> None:
        self.detach(eng, "echo up; sleep 30", name="s")
        settle(eng, lambda: eng.logs("s") == b"up\n")
        before = eng._now()
        assert eng.stop("s", grace=1) == 137  # PID 1 has no SIGTERM handler: SIGKILL after 1 s
        assert 0.9 <= eng._now() - before < 8
        assert (info(eng, "s").state, info(eng, "s").exit_code) == ("exited", 137)
        assert eng.stop("s") == 137  # stopping a stopped container does nothing

    def test_stop_gives_the_exit_code_of_a_run_that_ends_within_the_grace(self, eng: Any) -> None:
        self.detach(eng, "sleep 1; exit 4", name="s")
        assert eng.stop("s", grace=20) == 4  # SIGTERM ignored, the run ends on its own first

    def test_kill_sends_sigkill_by_default(self, eng: Any) -> None:
        self.detach(eng, "sleep 30", name="k")
        eng.kill("k")
        assert eng.wait("k") == 137 and info(eng, "k").state == "exited"
        with pytest.raises(sim.ContainerStateError, match="is not running"):
            eng.kill("k")

    def test_a_signal_pid_1_has_no_handler_for_is_ignored(self, eng: Any) -> None:
        self.detach(eng, "sleep 30", name="k")
        eng.kill("k", "TERM")
        eng.kill("k", signal.SIGHUP)
        let_time_pass(eng, 0.3)
        assert info(eng, "k").state == "running"
        eng.kill("k", "SIGKILL")
        assert eng.wait("k") == 137

    def test_errors_come_before_any_side_effect(self, eng: Any) -> None:
        calls: list[Callable[[], object]] = [lambda: eng.stop("nope"), lambda: eng.kill("nope"),
                                             lambda: eng.wait("nope"), lambda: eng.logs("nope")]
        for call in calls:
            with pytest.raises(sim.ContainerNotFoundError):
                call()
        for policy in ("sometimes", "on-failure:x", "on-failure:-1", "always:3", "no:1"):
            with pytest.raises(sim.InvalidSpecError, match="restart policy"):
                self.detach(eng, "true", restart=policy, name="bad")
        with pytest.raises(sim.InvalidSpecError, match="conflicting options"):
            self.detach(eng, "true", restart="always", remove=True, name="bad")
        with pytest.raises(sim.InvalidSpecError, match="detached"):
            eng.run("busybox", "true", restart="on-failure")
        assert eng.containers(all=True) == []
        eng.create("busybox", "sleep 30", name="c")
        with pytest.raises(sim.ContainerStateError, match="not been started"):
            eng.wait("c")
        with pytest.raises(sim.ContainerStateError, match="is not running"):
            eng.kill("c")
        self.detach(eng, "sleep 30", name="k")
        for bad in ("FOO", "SIGNOPE", "999", "", -3):
            with pytest.raises(sim.InvalidSpecError, match="Invalid signal"):
                eng.kill("k", bad)
        assert info(eng, "k").state == "running"
        with pytest.raises(sim.ContainerStateError, match="already running"):
            eng.start("k", detach=True, monitor=self.monitor)
        eng.kill("k")

    def test_rm_removes_the_container_and_its_anonymous_volumes_when_it_exits(self, eng: Any, tmp_path: Path) -> None:
        (tmp_path / "Buildfile").write_text("FROM busybox\nVOLUME /data\n")
        eng.build(tmp_path, tag="vol:1")
        kept = {v.name for v in eng.list_volumes()}
        eng.run_detached("vol:1", "echo bye > /data/f; sleep 2; exit 2", remove=True, name="gone",
                         monitor=self.monitor)
        assert {c.name for c in eng.containers(all=True)} == {"gone"}
        assert len({v.name for v in eng.list_volumes()} - kept) == 1
        assert eng.wait("gone") == 2
        settle(eng, lambda: eng.containers(all=True) == [])
        settle(eng, lambda: {v.name for v in eng.list_volumes()} == kept)

    def test_on_failure_n_restarts_n_times(self, eng: Any) -> None:
        self.detach(eng, "echo x; exit 1", restart="on-failure:2", name="r")
        assert [eng.wait("r") for _ in range(4)] == [1, 1, 1, 1]  # each run's end, then the last at once
        last = info(eng, "r")
        assert (last.state, last.exit_code, last.restart_count, last.restart_policy) == ("exited", 1, 2, "on-failure:2")
        assert eng.logs("r") == b"x\nx\nx\n"
        let_time_pass(eng, 1.0)
        assert info(eng, "r").restart_count == 2
        eng.start("r", detach=True, monitor=self.monitor)  # a manual start counts from 0 again
        assert [eng.wait("r") for _ in range(3)] == [1, 1, 1]
        assert info(eng, "r").restart_count == 2 and eng.logs("r") == b"x\n" * 6

    def test_on_failure_leaves_a_success_alone(self, eng: Any) -> None:
        self.detach(eng, "echo ok", restart="on-failure", name="r")
        assert eng.wait("r") == 0
        let_time_pass(eng, 0.5)
        assert (info(eng, "r").state, info(eng, "r").restart_count) == ("exited", 0)

    @pytest.mark.parametrize("policy", ["always", "unless-stopped"])
    def test_always_restarts_until_a_manual_stop(self, eng: Any, policy: str) -> None:
        self.detach(eng, "echo run; sleep 0.5", restart=policy, name="a")
        assert eng.wait("a") == 0
        assert eng.wait("a") == 0  # a second run ended too
        assert info(eng, "a").restart_count >= 1
        eng.stop("a", grace=5)
        stopped = info(eng, "a")
        assert stopped.state == "exited"
        let_time_pass(eng, 1.5)
        again = info(eng, "a")
        assert (again.state, again.restart_count) == ("exited", stopped.restart_count)  # a stop is final
        assert eng.logs("a") == b"run\n" * (stopped.restart_count + 1)

    def test_logs_follow_until_the_run_ends(self, eng: Any) -> None:
        self.detach(eng, "echo a; sleep 1; echo b >&2; exit 5", name="f")
        assert b"".join(eng.follow_logs("f")) == b"a\nb\n"
        assert (info(eng, "f").state, info(eng, "f").exit_code) == ("exited", 5)

    def test_start_again_runs_the_command_again_in_the_same_container(self, eng: Any) -> None:
        self.detach(eng, "echo x >> /count; cat /count | wc -l", name="again")
        assert eng.wait("again") == 0
        eng.start("again", detach=True, monitor=self.monitor)
        assert eng.wait("again") == 0
        assert eng.logs("again") == b"1\n2\n"  # the container layer is kept between runs

    def test_a_trap_is_the_real_backends_only(self, eng: Any) -> None:
        command = "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.1; done"
        if eng.name == "sim":
            with pytest.raises(sim.UnsupportedCommandError, match="trap"):
                self.detach(eng, command, name="t")
            assert eng.containers(all=True) == []  # nothing was left of the refused start
            return
        self.detach(eng, command, name="t")
        settle(eng, lambda: eng.logs("t") == b"ready\n")
        before = time.monotonic()
        assert eng.stop("t", grace=20) == 0  # its handler ran: no SIGKILL needed
        assert time.monotonic() - before < 10 and eng.logs("t") == b"ready\nbye\n"


class SurvivesCloseSuite(LifecycleSuite):
    """Engines over a state folder whose detached runs outlive them (the model's, a monitor's)."""

    def reopen(self, eng: Any) -> Any:
        raise NotImplementedError

    def test_a_detached_run_goes_on_after_its_engine_closes(self, eng: Any) -> None:
        self.detach(eng, "echo one; sleep 3; echo two; exit 6", name="p")  # long enough to reopen meanwhile
        settle(eng, lambda: eng.logs("p") == b"one\n")
        eng.close()
        other = self.reopen(eng)
        try:
            assert info(other, "p").state == "running"
            assert other.wait("p") == 6 and other.logs("p") == b"one\ntwo\n"
        finally:
            other.close()
        third = self.reopen(eng)
        try:
            assert (info(third, "p").state, info(third, "p").exit_code) == ("exited", 6)
        finally:
            third.close()


class TestSimLifecycle(LifecycleSuite, SimBackend):
    def test_the_virtual_clock_moves_only_when_told(self, eng: Any) -> None:
        self.detach(eng, "sleep 5; echo done", name="v")
        start = eng._now()
        time.sleep(0.05)
        assert eng._now() == start and eng.logs("v") == b""  # real time does not move it
        assert eng.wait("v") == 0 and eng._now() == start + 5 and eng.logs("v") == b"done\n"

    def test_a_process_blocked_forever_is_refused_a_wait(self, eng: Any) -> None:
        self.detach(eng, "echo up; sleep infinity", name="inf")
        assert list(eng.follow_logs("inf")) == [b"up\n"]  # nothing more can come
        with pytest.raises(sim.ContainerStateError, match="blocked forever"):
            eng.wait("inf")
        with pytest.raises(TimeoutError):
            eng.wait("inf", timeout=2)
        assert eng.stop("inf", grace=3) == 137


class TestSimFolderLifecycle(SurvivesCloseSuite, SimBackend):
    @pytest.fixture
    def engine(self, tmp_path: Path) -> Any:
        return sim.connect("sim", state_dir=str(tmp_path / "state"))

    def reopen(self, eng: Any) -> Any:
        return sim.connect("sim", state_dir=str(eng.state_dir))


@pytest.mark.real
class TestRealLifecycle(LifecycleSuite, RealBackend):
    def test_a_run_dies_with_the_engine_holding_it(self, engine: Any) -> None:
        self.detach(engine, "sleep 30", name="held")
        engine.close()
        other: Any = require_real(state_dir=str(engine.state_dir))
        try:
            gone = info(other, "held")
            assert (gone.state, gone.exit_code) == ("exited", 137) and gone.finished_at is not None
        finally:
            other.close()


@pytest.mark.real
class TestRealMonitorLifecycle(SurvivesCloseSuite, RealBackend):
    monitor = True

    @pytest.fixture
    def eng(self, engine: Any) -> Iterator[Any]:
        state_dir = engine.state_dir
        try:
            yield engine
        finally:
            engine.close()
            kill_monitors(state_dir)  # whatever a failed test left running
            real: Any = require_real(state_dir=str(state_dir))
            real.close()  # its sweep removes their containers and mounts

    def reopen(self, eng: Any) -> Any:
        return require_real(state_dir=str(eng.state_dir))

    def test_a_killed_monitor_leaves_the_container_exited_137(self, eng: Any) -> None:
        marker = "31.25"  # sleep's argument: seen in no other process
        self.detach(eng, f"sleep {marker}", name="orphan")
        cid = info(eng, "orphan").id
        owner = json.loads((eng.state_dir / "containers" / cid / "config.json").read_text())["run_state"]
        os.kill(owner["monitor"], signal.SIGKILL)
        settle(eng, lambda: info(eng, "orphan").state == "exited")
        assert info(eng, "orphan").exit_code == 137
        eng.close()
        other: Any = require_real(state_dir=str(eng.state_dir))
        try:
            assert (info(other, "orphan").state, info(other, "orphan").exit_code) == ("exited", 137)
            other.remove("orphan")
        finally:
            other.close()
        alive = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == [b"sleep", marker.encode()]]
        assert alive == []  # the sweep killed the container the monitor held


def _cmdline(proc: Path) -> list[bytes]:
    try:
        return (proc / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return []

"""Two engines on one state folder (two ``layerlab`` commands in two terminals): a container one
removes stays removed when the other, which had loaded it, closes; on the model and the kernel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import sim
from sim.interface import Engine
from tests.backends import OVER_A_STATE_FOLDER, real_at


@pytest.mark.parametrize("connect", OVER_A_STATE_FOLDER)
def test_a_container_removed_by_another_engine_is_not_saved_back(connect: Callable[[Path], Engine],
                                                                  tmp_path: Path) -> None:
    first = connect(tmp_path / "state")
    try:
        kept = first.create("busybox", "echo kept", name="kept").id
        gone = first.create("busybox", "echo gone", name="gone").id
    finally:
        first.close()
    reader = connect(tmp_path / "state")  # e.g. a `layerlab logs -f` still open
    try:
        assert {c.name for c in reader.containers()} == {"kept", "gone"}
        remover = connect(tmp_path / "state")
        try:
            remover.remove(gone)
        finally:
            remover.close()
    finally:
        reader.close()  # it had loaded "gone": closing must not write it back
    after = connect(tmp_path / "state")
    try:
        assert [c.id for c in after.containers()] == [kept]
    finally:
        after.close()


@pytest.mark.parametrize("connect", OVER_A_STATE_FOLDER)
def test_an_engine_that_only_read_a_container_never_writes_its_stale_copy_back(connect: Callable[[Path], Engine],
                                                                                 tmp_path: Path) -> None:
    first = connect(tmp_path / "state")
    try:
        box = first.create("busybox", "echo ran", name="box").id
    finally:
        first.close()
    reader = connect(tmp_path / "state")  # loaded "box" while it was created
    try:
        runner = connect(tmp_path / "state")
        try:
            assert runner.start(box) is not None  # ran to the end there: exited (0)
        finally:
            runner.close()
    finally:
        reader.close()  # its copy still says "created": it must not overwrite the exit
    after = connect(tmp_path / "state")
    try:
        (info,) = after.containers()
        assert (info.state, info.exit_code) == ("exited", 0)
        assert after.logs(box) == b"ran\n"
    finally:
        after.close()


def test_the_models_shared_clock_never_moves_back(tmp_path: Path) -> None:
    """Two model engines on one folder: a wait in one moves the shared virtual clock; a shorter
    wait in the other, which read the clock before, does not move it back."""
    from sim.containers._vclock import VirtualClock

    first, second = VirtualClock(tmp_path / "clock.json"), VirtualClock(tmp_path / "clock.json")
    start = first.now()
    first.advance_to(start + 50)
    second.advance_to(start + 1)  # behind the folder's time: nothing moves back
    assert second.now() == VirtualClock(tmp_path / "clock.json").now() == start + 50
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_status_reads_as_docker_ps_prints_it() -> None:
    from sim.containers._policy import human_duration, status_text

    assert [human_duration(s) for s in (0.5, 1, 59, 60, 61 * 60, 90 * 60, 47 * 3600, 3 * 86400, 20 * 86400)] == [
        "Less than a second", "1 second", "59 seconds", "About a minute", "About an hour", "2 hours", "47 hours",
        "3 days", "2 weeks"]
    assert status_text("running", None, 105.0, 100.0, None) == "Up 5 seconds"
    assert status_text("exited", 3, 200.0, 100.0, 198.0) == "Exited (3) 2 seconds ago"
    assert status_text("restarting", 1, 200.0, 100.0, 199.5) == "Restarting (1) Less than a second ago"
    assert status_text("created", None, 0.0, None, None) == "Created"


def test_follow_logs_and_stop_refuse_bad_input_at_once() -> None:
    from sim.errors import ContainerNotFoundError, InvalidSpecError

    engine = sim.connect("sim")
    try:
        with pytest.raises(ContainerNotFoundError):
            engine.follow_logs("nope")  # not only at the first next()
        box = engine.create("busybox", "sleep 5", name="box").id
        for grace in ("soon", float("nan")):
            with pytest.raises(InvalidSpecError, match="stop timeout"):
                engine.stop(box, grace=grace)  # type: ignore[arg-type]
    finally:
        engine.close()


def test_kill_of_a_restarting_container_cancels_the_restart() -> None:
    engine = sim.connect("sim")
    try:
        box = engine.run_detached("busybox", "exit 1", name="box", restart="always").id
        engine.wait(box)
        assert [c.state for c in engine.containers()] == ["restarting"]  # `docker ps` lists it too
        engine.kill(box)
        (info,) = engine.containers(all=True)
        assert (info.state, info.exit_code) == ("exited", 1)
    finally:
        engine.close()


@pytest.mark.real
def test_diff_and_commit_of_a_container_its_monitor_runs_are_refused(tmp_path: Path) -> None:
    from sim.errors import ContainerStateError

    engine = real_at(tmp_path / "state")
    try:
        box = engine.run_detached("busybox", "echo hi > /new; sleep 30", name="box", monitor=True).id  # type: ignore[attr-defined]
        other = real_at(tmp_path / "state")
        try:
            for call in (lambda: other.diff(box), lambda: other.commit(box, "snap:1")):
                with pytest.raises(ContainerStateError, match="run by its monitor"):
                    call()
            assert other.images() == engine.images()  # nothing was committed
        finally:
            other.close()
        engine.stop(box, grace=0)
        assert engine.wait(box) == 137
    finally:
        engine.close()

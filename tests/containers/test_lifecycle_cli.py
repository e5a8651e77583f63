"""``layerlab run -d``, ``ps -a``, ``logs [-f]``, ``wait``, ``stop``, ``kill``: every command a separate
process, as a user types them.  On the kernel the container outlives ``run -d`` in its monitor; in the
model it is kept in the state folder on the virtual clock."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends import require_real
from tests.containers.test_lifecycle import kill_monitors

Layerlab = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(params=["sim", pytest.param("real", marks=pytest.mark.real)])
def layerlab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Layerlab]:
    state = tmp_path / "state"
    if request.param == "real":
        _sweep(state)
    root = str(Path(__file__).resolve().parents[2])  # this checkout's code, installed or not
    env = {**os.environ, "LAYERLAB_STATE_DIR": str(state), "SOURCE_DATE_EPOCH": "1700000000", "PYTHONPATH": root}
    env.pop("LAYERLAB_BACKEND", None)

    def run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sim.cli", argv[0], "--backend", request.param, *argv[1:]],
                              env=env, capture_output=True, text=True, timeout=timeout)

    run.backend = request.param  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        if request.param == "real":
            kill_monitors(state)  # what a failed test left running
            _sweep(state)  # removes their containers and mounts


def _sweep(state: Path) -> None:
    """Open (its sweep undoes what dead processes left) and close a real engine over ``state``."""
    engine: Any = require_real(state_dir=str(state))
    engine.close()


def settle(layerlab: Layerlab, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + (15 if layerlab.backend == "real" else 0)  # type: ignore[attr-defined]
    while not check():
        assert time.monotonic() < deadline, "never settled"
        time.sleep(0.1)


def row(layerlab: Layerlab, name: str) -> str:
    lines = [line for line in layerlab("ps", "-a").stdout.splitlines() if line.split()[-1:] == [name]]
    assert len(lines) == 1, lines
    return lines[0]


def test_run_d_then_ps_logs_wait_from_other_processes(layerlab: Layerlab) -> None:
    done = layerlab("run", "-d", "--name", "w", "busybox", "sh", "-c", "echo hi; sleep 6; echo done >&2; exit 3")
    assert done.returncode == 0 and re.fullmatch(r"[0-9a-f]{64}\n", done.stdout), done
    assert "Up " in row(layerlab, "w")
    settle(layerlab, lambda: layerlab("logs", "w").stdout == "hi\n")
    follow = layerlab("logs", "-f", "w")
    assert (follow.returncode, follow.stdout) == (0, "hi\ndone\n")
    waited = layerlab("wait", "w")
    assert (waited.returncode, waited.stdout) == (0, "3\n")
    assert re.search(r"Exited \(3\) .* ago +0 ", row(layerlab, "w"))
    assert layerlab("rm", "w").returncode == 0 and "w" not in layerlab("ps", "-a").stdout


def test_stop_kill_and_their_errors(layerlab: Layerlab) -> None:
    assert layerlab("run", "-d", "--name", "s", "busybox", "sleep", "30").returncode == 0
    bad = layerlab("kill", "-s", "FOO", "s")
    assert bad.returncode == 1 and "InvalidSpecError: Invalid signal: FOO" in bad.stderr
    assert "   Up " in row(layerlab, "s")
    stopped = layerlab("stop", "-t", "1", "s")
    assert (stopped.returncode, stopped.stdout) == (0, "s\n")
    assert "Exited (137)" in row(layerlab, "s")
    again = layerlab("kill", "s")
    assert again.returncode == 1 and "is not running" in again.stderr
    missing = layerlab("wait", "nope")  # stop, kill and logs: the same error (test_lifecycle.py)
    assert missing.returncode == 1 and "ContainerNotFoundError: No such container: nope" in missing.stderr
    conflict = layerlab("run", "-d", "--rm", "--restart", "always", "busybox", "true")
    assert conflict.returncode == 1 and "conflicting options" in conflict.stderr
    assert len(layerlab("ps", "-a").stdout.splitlines()) == 2  # the header and "s": nothing else was made


def test_restart_on_failure_and_rm(layerlab: Layerlab) -> None:
    assert layerlab("run", "-d", "--name", "r", "--restart", "on-failure:2", "busybox", "sh", "-c",
                    "echo x; exit 1").returncode == 0
    assert [layerlab("wait", "r").stdout for _ in range(3)] == ["1\n", "1\n", "1\n"]
    assert re.search(r"Exited \(1\) .* ago +2 ", row(layerlab, "r"))
    assert layerlab("logs", "r").stdout == "x\nx\nx\n"
    cid = layerlab("run", "-d", "--rm", "busybox", "sh", "-c", "sleep 6; exit 2").stdout.strip()
    assert layerlab("wait", cid).stdout == "2\n"
    settle(layerlab, lambda: cid[:12] not in layerlab("ps", "-a").stdout)

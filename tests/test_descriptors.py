"""An engine opened and closed leaves no descriptor behind, and waits work on descriptors past
select(2)'s limit of 1024 (a long-lived notebook or test process reaches them)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sim.interface import Engine
from tests.backends import OVER_A_STATE_FOLDER, require_real


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


@pytest.mark.parametrize("connect", OVER_A_STATE_FOLDER)
def test_engines_leave_no_descriptor_open(connect: Callable[[Path], Engine], tmp_path: Path) -> None:
    def one_round(n: int) -> None:
        engine = connect(tmp_path / f"state{n}")
        try:
            context = tmp_path / f"ctx{n}"
            context.mkdir()
            (context / "Buildfile").write_text("FROM busybox\nRUN echo hi > /x\n")
            engine.build(context, tag="t:1")
            assert engine.run("t:1", ["cat", "/x"], remove=True).stdout == b"hi\n"
        finally:
            engine.close()

    one_round(0)  # whatever a first engine sets up once per process (libraries, caches)
    before = _open_fds()
    for n in range(1, 4):
        one_round(n)
    assert _open_fds() - before == set()


def test_readable_works_past_selects_limit() -> None:
    from realrt._syscalls import readable

    read_end, write_end = os.pipe()
    high = os.dup2(read_end, 2000)
    try:
        assert not readable(high, 0.01)
        os.write(write_end, b"x")
        assert readable(high, 1.0) and readable(high, None)
    finally:
        for fd in (read_end, write_end, high):
            os.close(fd)


@pytest.mark.real
def test_a_detached_run_starts_from_a_process_past_selects_limit(tmp_path: Path) -> None:
    """``run -d`` on the kernel waits for its monitor's report on a pipe: from a process whose next
    descriptor is past 1024 that wait still works (select(2) raised ValueError there)."""
    engine = require_real(state_dir=str(tmp_path / "state"))
    fillers: list[int] = []
    try:
        source = os.open("/dev/null", os.O_RDONLY)
        fillers.append(source)
        while fillers[-1] < 1100:
            fillers.append(os.dup(source))
        info = engine.run_detached("busybox", "echo up", monitor=True)
        assert engine.wait(info.id, timeout=60) == 0
        assert engine.logs(info.id) == b"up\n"
        engine.remove(info.id)
    finally:
        for fd in fillers:
            os.close(fd)
        engine.close()

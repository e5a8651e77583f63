"""Two engines on one state folder (two ``layerlab`` commands in two terminals): a container one
removes stays removed when the other, which had loaded it, closes; on the model and the kernel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import sim
from sim.interface import Engine
from tests.backends import require_real


def _sim(state: Path) -> Engine:
    return sim.connect("sim", state_dir=str(state))


def _real(state: Path) -> Engine:
    return require_real(state_dir=str(state))


@pytest.mark.parametrize("connect", [pytest.param(_sim, id="sim"),
                                     pytest.param(_real, id="real", marks=pytest.mark.real)])
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


@pytest.mark.parametrize("connect", [pytest.param(_sim, id="sim"),
                                     pytest.param(_real, id="real", marks=pytest.mark.real)])
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

"""The docker-like commands, each call a new engine: images, volumes and containers persist between them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cli import main
from tests.backends import require_real

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(params=["sim", pytest.param("real", marks=pytest.mark.real)])
def layerlab(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             capsysbinary: pytest.CaptureFixture[bytes]):  # type: ignore[no-untyped-def]
    if request.param == "real":
        require_real()
    monkeypatch.setenv("LAYERLAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([argv[0], "--backend", request.param, *argv[1:]])
        out, err = capsysbinary.readouterr()
        return code, out.decode(), err.decode()

    return run


def test_build_images_history_and_run(layerlab) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = layerlab("build", "-t", "hello:1", str(EXAMPLES / "hello"))
    assert code == 0 and "Successfully tagged hello:1" in out and "COPY hello.txt /app/" in out
    assert "CACHED" in layerlab("build", "-t", "hello:1", str(EXAMPLES / "hello"))[1]
    assert "hello" in layerlab("images")[1]
    assert "RUN /bin/sh -c" in layerlab("history", "hello:1")[1]
    code, out, _ = layerlab("run", "hello:1")
    assert (code, out) == (0, "hello world\n")
    assert layerlab("run", "hello:1", "sh", "-c", "exit 4")[0] == 4


def test_containers_live_between_commands(layerlab) -> None:  # type: ignore[no-untyped-def]
    assert layerlab("create", "--name", "web", "busybox", "sh", "-c", "echo hi > /hello; rm /bin/ls")[0] == 0
    assert layerlab("start", "web")[0] == 0
    assert "Exited (0)" in layerlab("ps", "-a")[1]
    assert layerlab("diff", "web")[1].split("\n")[:3] == ["C /bin", "D /bin/ls", "A /hello"]
    assert layerlab("exec", "web", "cat", "/hello")[1] == "hi\n"
    assert layerlab("commit", "web", "snap:1")[0] == 0
    assert "freed" in layerlab("rm", "web")[1]
    assert layerlab("run", "snap:1", "cat", "/hello")[1] == "hi\n"
    assert "web" not in layerlab("ps", "-a")[1]


def test_volumes_outlive_containers(layerlab) -> None:  # type: ignore[no-untyped-def]
    assert layerlab("run", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f")[0] == 0
    assert layerlab("run", "-v", "data:/data", "busybox", "cat", "/data/f")[1] == "kept\n"
    assert "data" in layerlab("volume", "ls")[1]


def test_errors_are_one_line_and_non_zero(layerlab) -> None:  # type: ignore[no-untyped-def]
    code, _, err = layerlab("run", "Bad:Ref")
    assert code == 1 and "invalid reference format" in err and "Traceback" not in err
    code, _, err = layerlab("rm", "nope")
    assert code == 1 and "No such container: nope" in err

"""``layerlab tour``: the key steps appear, on both backends, and bad input gives a clean error."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import sim.cli
from sim.cli import main
from sim.errors import BackendUnavailableError

from .backends import require_real

# Lines both backends print.
COMMON = [
    "第 1 章  分层存储  ·  Chapter 1: Layered storage",
    "- /tmp/src.tar.gz    whiteout 白障",
    "tmp/.wh.src.tar.gz    <- whiteout 白障 (deletes src.tar.gz)",
    "app/static/.wh..wh..opq    <- opaque marker 不透明标记",
    "/tmp/src.tar.gz still costs 8194 B in layer 1",
    "+ /etc/os-release    37 B",  # copied up by open(O_RDWR)
    "unlink('/bin/ls')  ->  /bin is now ['sh']",
    "- /bin/ls    whiteout 白障",
    "bin/.wh.ls    <- whiteout 白障 (deletes ls)",
    "# /var/log/    opaque 不透明",
    "var/log/.wh..wh..opq    <- opaque marker 不透明标记",
    "rename('/app', '/srv')  ->  OSError EXDEV (Invalid cross-device link)",
    "rename('/app', '/srv')  ->  ok; /srv is ['server.py', 'static'], '/app' exists: False",
    "~ /srv/    redirect -> app",
]

# Only the model has an event trace.
MODEL_EVENTS = [
    "copy-up: /etc/os-release from layer 0 (file)",
    "whiteout: /bin/ls from layer 0",
    "opaque: /var/log (created over a whiteout)",
    "redirect: /srv (redirect=app)",
    "whiteout: /app from layer 2 (old name of a rename)",
]


def _tour(capsys: pytest.CaptureFixture[str], backend: str) -> str:
    assert main(["tour", "--backend", backend]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def _section(out: str, number: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"--- {number} "))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("--- ")), len(lines))
    return lines[start:end]


def test_tour_sim(capsys: pytest.CaptureFixture[str]) -> None:
    out = _tour(capsys, "sim")
    for line in COMMON + MODEL_EVENTS:
        assert line in out, line
    assert "backend 'sim'" in out


@pytest.mark.real
def test_tour_real(capsys: pytest.CaptureFixture[str]) -> None:
    require_real(rootless=os.geteuid() != 0)  # what connect("real") picks
    out = _tour(capsys, "real")
    for line in COMMON:
        assert line in out, line
    assert re.search(r"/u/bin/ls is a character device 0/0 \(S_ISCHR=True\)", out)
    assert re.search(r"xattr (trusted|user)\.overlay\.opaque = b'y'", out)
    assert re.search(r"xattr (trusted|user)\.overlay\.redirect = b'app'", out)
    assert "The kernel keeps no trace" in out


@pytest.mark.real
def test_tour_model_and_kernel_agree(capsys: pytest.CaptureFixture[str]) -> None:
    """The sections that describe state (merged view, sizes, container layer, its tar) match line for line."""
    require_real(rootless=os.geteuid() != 0)
    model, kernel = _tour(capsys, "sim"), _tour(capsys, "real")
    for number in ("1.1", "1.2", "1.3", "1.4", "1.9"):
        assert _section(model, number) == _section(kernel, number), number


def test_default_backend_from_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYERLAB_BACKEND", "sim")
    assert main(["tour", "--chapter", "1"]) == 0
    assert "backend 'sim'" in capsys.readouterr().out


def test_unknown_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tour", "--backend", "nope"]) == 2
    captured = capsys.readouterr()
    assert "layerlab: error: unknown backend 'nope'; known: real, sim (from --backend)" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_unknown_backend_from_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYERLAB_BACKEND", "bogus")
    assert main(["tour"]) == 2
    assert "unknown backend 'bogus'; known: real, sim (from $LAYERLAB_BACKEND)" in capsys.readouterr().err


def test_unavailable_backend(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str) -> None:
        raise BackendUnavailableError("no overlay here")

    monkeypatch.setattr(sim.cli, "connect", refuse)
    assert main(["tour", "--backend", "real"]) == 1
    err = capsys.readouterr().err
    assert "the 'real' backend cannot run here: no overlay here" in err
    assert "--backend sim" in err


@pytest.mark.parametrize("argv", [[], ["tour", "--chapter", "99"], ["frobnicate"]])
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: layerlab" in err and "Traceback" not in err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tour", "--help"]) == 0
    assert "--backend" in capsys.readouterr().out


def test_process_exit_code() -> None:
    """As a real process (what the console script does): exit status 2, one clean line, no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "sim.cli", "tour", "--backend", "nope"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "layerlab: error: unknown backend 'nope'; known: real, sim (from --backend)"

"""``layerlab tour``: the key steps appear, on both backends, and bad input gives a clean error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import sim.cli
from sim.cli import main
from sim.errors import BackendUnavailableError
from tests.backends import require_real

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
    rootless = os.geteuid() != 0  # an unprivileged overlay cannot take redirect_dir=on: the tour says so
    for line in COMMON:
        if rootless and ("/srv" in line and "EXDEV" not in line):
            continue
        assert line in out, line
    assert re.search(r"/u/bin/ls is a character device 0/0 \(S_ISCHR=True\)", out)
    assert re.search(r"xattr (trusted|user)\.overlay\.opaque = b'y'", out)
    if rootless:
        assert "cannot use redirect_dir=on" in out
    else:
        assert re.search(r"xattr (trusted|user)\.overlay\.redirect = b'app'", out)
    assert "The kernel keeps no trace" in out


@pytest.mark.real
def test_tour_model_and_kernel_agree(capsys: pytest.CaptureFixture[str]) -> None:
    """The sections that describe state (merged view, sizes, container layer, its tar) match line for line."""
    require_real(rootless=os.geteuid() != 0)
    model, kernel = _tour(capsys, "sim"), _tour(capsys, "real")
    for number in ("1.1", "1.2", "1.3", "1.4", "1.9"):
        assert _section(model, number) == _section(kernel, number), number


# Chapters 2 (镜像) and 3 (容器): lines both backends print.
IMAGES_AND_CONTAINERS = [
    "第 2 章  镜像  ·  Chapter 2: Images",
    "#3  CACHED COPY site/ /var/www/",
    "4 layer steps, all CACHED; same ImageID: True",
    "| layer 0: layerlab base: host busybox-static",
    "layer 2: DiffID",
    "shared with site:1, stored once",
    "layer 3: DiffID",
    "only in api:1",
    "3 images, 6 layers stored",
    "equal: True",
    "a new name, the same image (True).",
    "第 3 章  容器  ·  Chapter 3: Containers, the container layer and volumes",
    "I am PID 1",
    "<- instances, a writable layer each",
    "alpha: C /app  C /app/out.txt   (15 B of files)",
    "beta: C /tmp  A /tmp/note  A /tmp/pad.txt   (4,101 B of files)",
    "gamma: C /app  D /app/hello.txt  A /app/link   (0 B of files)",
    "commit alpha hello:alpha -> 4 layers (hello:1 has 3)",
    "run hello:alpha -> 'alpha was here'",
    "rm beta -> 4,101 B freed; container layers 4,116 B -> 15 B",
    "a new container: cat /tmp/note -> exit 1",
    "docker diff writer -> ['A /data']",
    "under /data the container layer holds ['/data'] (the mount point only); the volume holds 2,053 B",
    "rm writer -> 0 B freed; the volume keeps 2,053 B",
    "cat /data/logs/note.txt -> 'kept'",
    "greeting.txt = 'from a container'; docker diff binder -> ['A /host']",
]


def _chapters(capsys: pytest.CaptureFixture[str], backend: str, *numbers: int) -> str:
    argv = ["tour", "--backend", backend]
    for number in numbers:
        argv += ["--chapter", str(number)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def test_tour_images_and_containers_sim(capsys: pytest.CaptureFixture[str]) -> None:
    out = _chapters(capsys, "sim", 2, 3)
    for line in IMAGES_AND_CONTAINERS:
        assert line in out, line
    assert "on disk:" not in out  # the model has no upper directory on the host


@pytest.mark.real
def test_tour_images_and_containers_real(capsys: pytest.CaptureFixture[str]) -> None:
    require_real(rootless=os.geteuid() != 0)
    out = _chapters(capsys, "real", 2, 3)
    for line in IMAGES_AND_CONTAINERS:
        assert line in out, line
    assert re.search(r"on disk: \S+/u holds app/, app/hello\.txt \(whiteout, char 0/0\), app/link", out)
    assert re.search(r"on disk: \S+/u exists: False", out)  # rm deleted the upper directory
    assert re.search(r"on disk: \S+/u/data holds \[\]", out)  # the volume's writes never reached it


@pytest.mark.real
def test_tour_images_and_containers_model_and_kernel_agree(capsys: pytest.CaptureFixture[str]) -> None:
    """Same IDs, sizes, diffs and bytes freed: chapters 2 and 3 match line for line but for the kernel's disk."""
    require_real(rootless=os.geteuid() != 0)

    def comparable(out: str) -> list[str]:
        return [line for line in out.splitlines()[1:] if not line.strip().startswith("on disk:")]

    assert comparable(_chapters(capsys, "sim", 2, 3)) == comparable(_chapters(capsys, "real", 2, 3))


@pytest.mark.parametrize("backend", ["sim", pytest.param("real", marks=pytest.mark.real)])
def test_tour_images_and_containers_leave_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: str
) -> None:
    """The scratch engine's folder is removed and SOURCE_DATE_EPOCH is restored."""
    if backend == "real":
        require_real(rootless=os.geteuid() != 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    _chapters(capsys, backend, 2, 3)
    assert "SOURCE_DATE_EPOCH" not in os.environ
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234567890")
    _chapters(capsys, backend, 2)
    assert os.environ["SOURCE_DATE_EPOCH"] == "1234567890"


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


def test_tour_chapter_4_sim(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tour", "--chapter", "4"]) == 0
    out = capsys.readouterr().out
    assert "第 4 章  容器和虚拟机" in out
    assert re.search(r"VMs hit memory first; containers reach \d+\.\dx their density", out)
    assert re.search(r"flash crowd at t=60 s: vm +unmet for +4\d\.\d\d s", out)
    assert "OOM-killed after 0.40 s" in out and "the sim backend measures nothing" in out


@pytest.mark.real
def test_tour_chapter_4_real_measures(capsys: pytest.CaptureFixture[str]) -> None:
    require_real(rootless=os.geteuid() != 0)
    assert main(["tour", "--backend", "real", "--chapter", "4"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"a 128 MiB QEMU VM reached init in \d+\.\d\d s \((kvm|tcg)\)", out)
    if os.geteuid() == 0:
        assert "measured: exit 137, oom_kill 1" in out
    else:
        assert "no container measurement here" in out

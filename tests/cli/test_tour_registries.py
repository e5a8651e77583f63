"""``layerlab tour --chapter 5`` (仓库 registries): the key lines on both backends, the same lines on both,
fast on the model, and nothing left behind (scratch folder removed, SOURCE_DATE_EPOCH restored)."""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

import pytest

from sim.cli import main
from tests.backends import require_real

BACKENDS = ["sim", pytest.param("real", marks=pytest.mark.real)]

# Lines both backends print (chapter 5 builds with the tour's SOURCE_DATE_EPOCH: the digests are fixed too).
KEY_LINES = [
    "第 5 章  仓库  ·  Chapter 5: Repositories and registries",
    "pull busybox -> docker.io/library/busybox:latest",
    "search (GET /v2/_catalog) on docker.io: ['library/busybox']",
    "push localhost:5000/lab/app before any login -> AuthenticationError (code UNAUTHORIZED, HTTP 401)",
    "login localhost:5000 -u student with a wrong password -> AuthenticationError (code UNAUTHORIZED, HTTP 401): "
    "unauthorized: incorrect username or password for localhost:5000",
    "login localhost:5000 -u student -> Login Succeeded",
    "the registry names the image by the same digest: True",
    "Mounted from lab/app",
    "B sent (the manifest only)",
    "3d698f6df0ea: Layer already exists",
    "tags of localhost:5000/lab/app: ['latest']",
    "version 1 again (True).",
]


def _chapter_5(capsys: pytest.CaptureFixture[str], backend: str) -> str:
    if backend == "real":
        require_real(rootless=os.geteuid() != 0)  # what connect("real") picks
    assert main(["tour", "--backend", backend, "--chapter", "5"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def _number(pattern: str, out: str) -> int:
    found = re.search(pattern, out)
    assert found is not None, pattern
    return int(found.group(1).replace(",", ""))


@pytest.mark.parametrize("backend", BACKENDS)
def test_chapter_5_key_lines(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    started = time.perf_counter()
    out = _chapter_5(capsys, backend)
    elapsed = time.perf_counter() - started
    for line in KEY_LINES:
        assert line in out, line
    # Stored once, linked twice: the second repository costs no blob bytes.
    stored = _number(r"localhost:5000 stores ([\d,]+) B", out)
    assert _number(r"the two repositories link ([\d,]+) B", out) == 2 * stored
    # latest moved: lab/app's old manifest is untagged but kept; lab/web still names it.
    registry = out[out.index("The registry:"):]
    untagged = re.search(r"lab/app +\(untagged\) +-> manifest (\w{12})", registry)
    web = re.search(r"lab/web +:latest +-> manifest (\w{12})", registry)
    assert untagged is not None and web is not None and untagged.group(1) == web.group(1)
    # The mirror: the first machine's blobs crossed the upstream link, the second's came from the cache.
    assert re.search(r"machine-a: pull busybox via localhost:5001: config \w+ 381 B from upstream, "
                     r"layer 3d698f6df0ea [\d,]+ B from upstream", out)
    assert re.search(r"machine-b: pull busybox via localhost:5001: config \w+ 381 B from cache, "
                     r"layer 3d698f6df0ea [\d,]+ B from cache", out)
    first_upstream, second_upstream = (int(n.replace(",", "")) for n in
                                       re.findall(r"docker\.io -> localhost:5001 ([\d,]+) B", out))
    served = [int(n.replace(",", "")) for n in re.findall(r"localhost:5001 -> machine-[ab] ([\d,]+) B", out)]
    assert served[0] == served[1] == first_upstream > 1_000_000  # the layer crossed each link once ...
    assert 0 < second_upstream < 1000  # ... and the second time only the tag's manifest went upstream
    if backend == "sim":
        assert elapsed < 3.0, f"chapter 5 took {elapsed:.2f} s on the model"


@pytest.mark.real
def test_chapter_5_model_and_kernel_agree(capsys: pytest.CaptureFixture[str]) -> None:
    """The registries see the same bytes whichever store pushed and pulled them: line for line equal."""
    assert _chapter_5(capsys, "sim").splitlines()[1:] == _chapter_5(capsys, "real").splitlines()[1:]


@pytest.mark.parametrize("backend", BACKENDS)
def test_chapter_5_leaves_nothing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path, backend: str) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    _chapter_5(capsys, backend)
    assert "SOURCE_DATE_EPOCH" not in os.environ
    assert list(tmp_path.iterdir()) == []  # the scratch folder, machines' state included, is gone

"""Chapter 3 and 5 checks: each typical wrong answer gets the hint naming what it misses."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import sim.exercises as ex

SCRIPT = "echo x >> /etc/passwd; rm /etc/group; mkdir /work; echo hi > /work/notes"
BUILDFILE = "FROM busybox\nCOPY app.txt /app/app.txt\nRUN mkdir -p /app/data && echo ready > /app/data/state\n"
V1, V2 = {"app.txt": "version 1\n"}, {"app.txt": "version 2\n"}


@pytest.fixture(autouse=True)
def _model_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LAYERLAB_BACKEND", "sim")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    yield


def test_diff_truth_and_hints() -> None:
    truth = {"/etc": "C", "/etc/passwd": "C", "/etc/group": "D", "/work": "A", "/work/notes": "A"}
    assert ex.container_diff(SCRIPT) == truth
    ex.check_diff(truth, SCRIPT)
    with pytest.raises(AssertionError, match=r"/etc \(C\) is missing: .*changes the directory"):
        ex.check_diff({k: v for k, v in truth.items() if k != "/etc"}, SCRIPT)
    with pytest.raises(AssertionError, match=r"/etc/passwd is C, not A: it already existed"):
        ex.check_diff({**truth, "/etc/passwd": "A"}, SCRIPT)
    with pytest.raises(AssertionError, match=r"/bin/sh is not in the diff"):
        ex.check_diff({**truth, "/bin/sh": "C"}, SCRIPT)
    with pytest.raises(AssertionError, match=r"'X' is not a kind"):
        ex.check_diff({"/etc": "X"}, SCRIPT)


TASK = ex.Handoff("mkdir -p /var/lib/app && echo 1 > /var/lib/app/count", "cat /var/lib/app/count || echo lost",
                  "/var/lib/app/count")


def test_handoff_hints() -> None:
    ex.check_handoff({"/var/lib/app": "appdata"}, TASK, "1\n")
    with pytest.raises(AssertionError, match="without a volume .* rm deleted that layer"):
        ex.check_handoff({}, TASK, "1\n")
    with pytest.raises(AssertionError, match="mounted at /srv, but the data is written to /var/lib/app/count"):
        ex.check_handoff({"/srv": "appdata"}, TASK, "1\n")
    with pytest.raises(AssertionError, match="dict of container path -> volume name"):
        ex.check_handoff(["/var/lib/app"], TASK, "1\n")  # type: ignore[arg-type]


def test_committed_hints() -> None:
    work = "mkdir -p /srv/app && echo v2 > /srv/app/version && echo photo > /srv/up/cat.jpg && rm /etc/group"
    candidates = ["/srv/app/version", "/srv/up/cat.jpg", "/etc/group", "/bin/sh"]
    mounts = {"/srv/up": "uploads"}
    assert ex.committed_paths(work, candidates, mounts) == ["/bin/sh", "/srv/app/version"]
    with pytest.raises(AssertionError, match=r"/srv/up/cat.jpg is not in the image: it was written to the volume"):
        ex.check_committed(["/bin/sh", "/srv/app/version", "/srv/up/cat.jpg"], work, candidates, mounts)
    with pytest.raises(AssertionError, match=r"/etc/group is not in the image: .*whiteout"):
        ex.check_committed(["/bin/sh", "/srv/app/version", "/etc/group"], work, candidates, mounts)
    with pytest.raises(AssertionError, match=r"/bin/sh is in the image: .*busybox's, which stay"):
        ex.check_committed(["/srv/app/version"], work, candidates, mounts)


def test_exit_hints() -> None:
    ex.check_exit(7, "1\n", "false; echo $?; exit 7")
    with pytest.raises(AssertionError, match=r"exit code is 7, not 0: a container ends when its main process"):
        ex.check_exit(0, "1\n", "false; echo $?; exit 7")
    with pytest.raises(AssertionError, match=r"prints '1\\n', not '0\\n': \$\? is the status"):
        ex.check_exit(7, "0\n", "false; echo $?; exit 7")


def test_reference_hints() -> None:
    refs = ["busybox", "localhost:5000/team/web"]
    good = {"busybox": ("docker.io", "library/busybox", "latest"),
            "localhost:5000/team/web": ("localhost:5000", "team/web", "latest")}
    ex.check_reference_parts(good, refs)
    with pytest.raises(AssertionError, match="official images on Docker Hub live under library/"):
        ex.check_reference_parts({**good, "busybox": ("docker.io", "busybox", "latest")}, refs)
    with pytest.raises(AssertionError, match="no tag means latest"):
        ex.check_reference_parts({**good, "busybox": ("docker.io", "library/busybox", "")}, refs)
    with pytest.raises(AssertionError, match="'localhost', names a registry host"):
        ex.check_reference_parts({**good, "localhost:5000/team/web": ("docker.io", "team/web", "latest")}, refs)


def test_upload_hints() -> None:
    assert ex.layer_uploads(BUILDFILE, V1, V2) == [3, 0, 1]
    with pytest.raises(AssertionError, match="push 1 uploads 3 layers, not 2: .*the base image's too"):
        ex.check_uploads([2, 0, 1], BUILDFILE, V1, V2)
    with pytest.raises(AssertionError, match="push 2 uploads 0 layers, not 3: .*cross-repository mount"):
        ex.check_uploads([3, 3, 1], BUILDFILE, V1, V2)
    with pytest.raises(AssertionError, match="push 3 uploads 1 layers, not 2: .*already exists"):
        ex.check_uploads([3, 0, 2], BUILDFILE, V1, V2)


def test_tag_and_mirror_hints() -> None:
    pulls = ["localhost:5000/lab/hello", "localhost:5000/lab/hello@v1", "localhost:5000/lab/hello:2.0"]
    truth = {pulls[0]: "v2", pulls[1]: "v1", pulls[2]: "missing"}
    ex.check_tag_targets(truth, BUILDFILE, V1, V2, pulls)
    with pytest.raises(AssertionError, match="latest is an ordinary tag that moves"):
        ex.check_tag_targets({**truth, pulls[0]: "v1"}, BUILDFILE, V1, V2, pulls)
    with pytest.raises(AssertionError, match="by digest it is still pulled"):
        ex.check_tag_targets({**truth, pulls[1]: "missing"}, BUILDFILE, V1, V2, pulls)
    assert ex.mirror_traffic() == "the manifest only"
    with pytest.raises(AssertionError, match="keeps every blob it fetched"):
        ex.check_mirror_traffic("the whole image")
    with pytest.raises(AssertionError, match="a tag can move"):
        ex.check_mirror_traffic("nothing")
    with pytest.raises(AssertionError, match="the answer is one of"):
        ex.check_mirror_traffic("some")
    assert os.environ["LAYERLAB_BACKEND"] == "sim"

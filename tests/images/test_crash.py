"""Nothing is lost or left wrong when an engine dies: kill points on both backends.

Each case runs a real engine in a child process (``python -c``, a fresh interpreter) with
``LAYERLAB_FAULT_POINT`` naming a point of the store's code (:mod:`sim.images._faults`): the
child stops itself there with SIGSTOP, the test sees the stop (``waitpid(WUNTRACED)``) and kills
it with SIGKILL.  Nothing is mocked.  Then a new engine opens the same state folder and must
find a consistent store (``fsck`` finds nothing), and the next command must work: a killed build
is resumed from the steps it finished, a killed ``save`` leaves no file under any name, a killed
``load`` or ``commit`` loads or commits again.  A last case kills a looping child at random
(seeded) moments.  The concurrency cases (two processes at once) are in ``test_crash_concurrency``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import sim
from tests.backends import require_real

ROOT = Path(__file__).resolve().parents[2]
EPOCH = "1700000000"

def child_main(backend: str, state: str, op: str, arg: dict[str, Any]) -> None:
    """The engine child: one operation on an engine over ``state`` (or a loop of them, for random kills)."""
    eng: Any = sim.connect(backend, state_dir=state)
    try:
        if op == "build":
            eng.build(arg["context"], tag=arg["tag"])
        elif op == "save":
            eng.save([arg["ref"]], arg["path"])
        elif op == "load":
            eng.load(arg["path"])
        elif op == "commit":
            eng.commit(arg["container"], arg["tag"])
        elif op == "rmi":
            eng.remove_image(arg["ref"])
        elif op == "prune":
            eng.image_prune(all=True)
            eng.store.gc()  # also when no image went: what an interrupted command left
        elif op == "pull":
            eng.pull(arg["ref"])
        elif op == "create":
            eng.create(arg["ref"], "true", name=arg["name"])
        elif op == "loop":
            rng = random.Random(arg["seed"])
            for i in range(10**6):
                what = rng.choice(["build", "save", "load", "rmi"])
                if what == "build":
                    eng.build(rng.choice(arg["contexts"]), tag=f"loop:{i % 3}", no_cache=rng.random() < 0.3)
                elif what == "save" and "loop:0" in eng.store:
                    eng.save(["loop:0"], arg["path"])
                elif what == "load" and os.path.exists(arg["path"]):
                    eng.load(arg["path"])
                elif what == "rmi" and "loop:1" in eng.store:
                    eng.remove_image("loop:1")
    finally:
        eng.close()


CHILD = "import json, sys; from tests.images.test_crash import child_main; child_main(*sys.argv[1:4], json.loads(sys.argv[4]))"


class _Forked:
    """A forked child's process, as much of :class:`subprocess.Popen` as :class:`Children` uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


@dataclass(frozen=True)
class Child:
    """A running engine child: its process and where its output goes."""

    proc: subprocess.Popen[bytes] | _Forked
    log: Path

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


class Children:
    """Every child a test starts, killed and reaped at teardown (also when the test fails)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.running: list[Child] = []

    def start(self, backend: str, state: Path, op: str, arg: dict[str, Any], point: str | None = None,
              extra_env: dict[str, str] | None = None) -> Child:
        env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH, "PYTHONPATH": str(ROOT), **(extra_env or {})}
        env.pop("LAYERLAB_FAULT_POINT", None)
        if point is not None:
            env["LAYERLAB_FAULT_POINT"] = point
        log = self.tmp / f"child-{len(self.running)}.log"
        proc: subprocess.Popen[bytes] | _Forked
        if backend == "sim" and threading.active_count() == 1:
            proc = _Forked(_fork(env, log, backend, str(state), op, arg))  # sim is imported already: fast
        else:
            with open(log, "wb") as out:
                proc = subprocess.Popen([sys.executable, "-c", CHILD, backend, str(state), op, json.dumps(arg)],
                                        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        child = Child(proc, log)
        self.running.append(child)
        return child

    @staticmethod
    def wait(child: Child, *, timeout: float = 120, stop: bool = True) -> str:
        """Wait until ``child`` stops at its fault point ("stopped") or exits ("exit N")."""
        deadline = time.monotonic() + timeout
        flags = os.WNOHANG | (os.WUNTRACED if stop else 0)
        while time.monotonic() < deadline:
            pid, status = os.waitpid(child.proc.pid, flags)
            if pid == 0:
                time.sleep(0.005)
                continue
            if os.WIFSTOPPED(status):
                return "stopped"
            child.proc.returncode = os.waitstatus_to_exitcode(status)
            return f"exit {child.proc.returncode}"
        raise AssertionError(f"the child neither stopped nor ended in {timeout} s:\n{child.output}")

    @staticmethod
    def kill(child: Child) -> None:
        """SIGKILL a stopped (or running) child and reap it."""
        os.kill(child.proc.pid, signal.SIGKILL)
        os.waitpid(child.proc.pid, 0)
        child.proc.returncode = -signal.SIGKILL

    def kill_at(self, backend: str, state: Path, op: str, arg: dict[str, Any], point: str) -> None:
        child = self.start(backend, state, op, arg, point)
        outcome = self.wait(child)
        assert outcome == "stopped", f"{op} never reached the fault point {point} ({outcome}):\n{child.output}"
        self.kill(child)

    def close(self) -> None:
        for child in self.running:
            if child.proc.returncode is None:
                try:
                    os.kill(child.proc.pid, signal.SIGKILL)
                    os.waitpid(child.proc.pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
                child.proc.returncode = -signal.SIGKILL


def _fork(env: dict[str, str], log: Path, *args: Any) -> int:
    """Run :func:`child_main` in a forked child (this process has one thread: fork is safe); its pid."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pid = os.fork()
    if pid:
        os.close(fd)
        return pid
    code = 0
    try:  # pragma: no cover - the child
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ.clear()
        os.environ.update(env)
        child_main(*args)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    kids = Children(tmp_path)
    yield kids
    kids.close()


def cases(points: list[Any], core: set[str]) -> list[Any]:
    """(backend, *point) parameters: every point on the model; on the kernel the ``core`` ones by
    default and the others under ``slow`` (a kernel case costs seconds: CI time stays bounded)."""
    out = []
    for point in points:
        values = point if isinstance(point, tuple) else (point,)
        out.append(pytest.param("sim", *values, id=f"sim-{values[0]}"))
        marks = [pytest.mark.real] + ([] if values[0] in core else [pytest.mark.slow])
        out.append(pytest.param("real", *values, id=f"real-{values[0]}", marks=marks))
    return out


@pytest.fixture(params=["sim", pytest.param("real", marks=pytest.mark.real)])
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    monkeypatch.delenv("LAYERLAB_FAULT_POINT", raising=False)
    name: str = request.param
    maps = None
    if name == "real":
        probe: Any = require_real(state_dir=str(tmp_path / "probe"))
        maps = probe.id_maps
        probe.close()
    yield name
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        assert str(tmp_path) not in fh.read(), "a killed engine left a mount that the next start did not sweep"
    if maps is not None:
        from realrt import _idmap

        for entry in tmp_path.iterdir():  # rootless, layer files of subordinate ids: removed from a namespace
            _idmap.remove_tree(entry, maps)


def engine(backend: str, state: Path) -> Any:
    return sim.connect(backend, state_dir=str(state))


def prepared(backend: str, state: Path) -> None:
    """A state folder holding the base image (so a child's first blob write is its own)."""
    eng = engine(backend, state)
    eng.base_image()
    eng.close()


def context(folder: Path, variant: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Buildfile").write_text(
        f"FROM busybox\nRUN echo one{variant} > /one\nRUN echo two{variant} > /two\nRUN echo three{variant} > /three\n"
    )
    return folder


def store_files(state: Path) -> list[str]:
    """Every name under the image store that is not a verified blob, a lock-free index or a layout file."""
    root = state / "images"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.parent.name not in ("sha256", "leases") and p.name not in ("index.json", "oci-layout"))


def consistent(eng: Any) -> None:
    """The store after a kill: every blob hashes to its name, ``fsck`` finds nothing, no stray file."""
    assert eng.store.content.verify() == []
    report = eng.fsck()
    assert report.problems == (), [p.line() for p in report.problems]
    assert all(eng.store.load_layers(r) for r in eng.store.list(all=True))


# -- a build killed between (and inside) its steps ---------------------------------------------------

#: (fault point, how many of the three RUN steps the next build finds cached)
BUILD_POINTS = [
    ("blob.write", 0),  # step 2's layer half in ingest/: never visible, the step runs again
    ("build.step-ran:3", 1),  # step 3 ran (its mount up), its layer not stored yet
    ("build.step-done:2", 1),
    ("build.step-done:3", 2),
    ("build.step-done:4", 3),  # every step done, the image not committed
    ("index.write", 3),  # index.json half written
    ("index.synced", 3),  # index.json written and synced, not yet renamed over the old one
]


@pytest.mark.parametrize(("backend", "point", "cached"),
                         cases(BUILD_POINTS, {"blob.write", "build.step-ran:3", "build.step-done:3"}), indirect=["backend"])
def test_a_build_killed_at_a_step_resumes_from_the_steps_it_finished(
        backend: str, children: Children, tmp_path: Path, point: str, cached: int) -> None:
    state, ctx = tmp_path / "state", context(tmp_path / "ctx")
    prepared(backend, state)
    children.kill_at(backend, state, "build", {"context": str(ctx), "tag": "app:1"}, point)
    eng = engine(backend, state)
    try:
        consistent(eng)
        assert "app:1" not in eng.store  # the image is committed whole, or not at all
        assert store_files(state) == []  # no half-written index, no partial blob left in ingest/
        result = eng.build(ctx, tag="app:1")
        assert [s.cached for s in result.steps if s.layer] == [True] * cached + [False] * (3 - cached)
        assert eng.run("app:1", "cat /one /two /three", remove=True).stdout == b"one\ntwo\nthree\n"
        consistent(eng)
    finally:
        eng.close()
    if backend != "sim":
        return  # the two backends build the same bytes (tests/images/test_parity.py): once is enough
    fresh = engine(backend, tmp_path / "fresh")  # the same build, never interrupted: the same image
    try:
        assert fresh.build(ctx, tag="app:1").image.id == result.image.id
    finally:
        fresh.close()


# -- save killed mid-write ---------------------------------------------------------------------------

@pytest.mark.parametrize(("backend", "point"), cases(["save.write", "save.write:1000000", "save.synced"],
                                                     {"save.write:1000000"}), indirect=["backend"])
def test_a_save_killed_mid_write_leaves_no_file(backend: str, children: Children, tmp_path: Path, point: str) -> None:
    state, out = tmp_path / "state", tmp_path / "out"
    out.mkdir()
    eng = engine(backend, state)
    eng.build(context(tmp_path / "ctx"), tag="app:1")
    eng.save(["app:1"], out / "old.tar")
    eng.close()
    before = (out / "old.tar").read_bytes()
    children.kill_at(backend, state, "save", {"ref": "app:1", "path": str(out / "app.tar")}, point)
    assert sorted(os.listdir(out)) == ["old.tar"]  # no truncated tar, no temporary file under any name
    children.kill_at(backend, state, "save", {"ref": "app:1", "path": str(out / "old.tar")}, point)
    assert sorted(os.listdir(out)) == ["old.tar"] and (out / "old.tar").read_bytes() == before  # the old one, whole
    eng = engine(backend, state)
    try:
        consistent(eng)
        eng.save(["app:1"], out / "app.tar")
        assert (out / "app.tar").read_bytes() == before  # byte-reproducible, and complete
    finally:
        eng.close()
    other = engine(backend, tmp_path / "other")
    try:
        assert [i.tags for i in other.load(out / "app.tar")] == [("app:1",)]
        assert other.run("app:1", "cat /three", remove=True).stdout == b"three\n"
    finally:
        other.close()


# -- load and commit killed midway -------------------------------------------------------------------

MIDWAY = ["blob.write", "blob.committed:1", "blob.committed:2", "index.write", "index.synced"]


@pytest.mark.parametrize(("backend", "point"), cases(MIDWAY, {"blob.committed:1"}), indirect=["backend"])
def test_a_load_killed_midway_loads_again(backend: str, children: Children, tmp_path: Path, point: str) -> None:
    source, state = tmp_path / "source", tmp_path / "state"
    eng = engine(backend, source)
    eng.build(context(tmp_path / "ctx"), tag="app:1")
    eng.save(["app:1"], tmp_path / "app.tar")
    eng.close()
    children.kill_at(backend, state, "load", {"path": str(tmp_path / "app.tar")}, point)
    eng = engine(backend, state)
    try:
        consistent(eng)
        assert eng.store.list(all=True) == []  # nothing half-loaded: the index was never replaced
        assert store_files(state) == []
        assert [i.tags for i in eng.load(tmp_path / "app.tar")] == [("app:1",)]
        assert eng.run("app:1", "cat /one", remove=True).stdout == b"one\n"
        consistent(eng)
    finally:
        eng.close()


@pytest.mark.parametrize(("backend", "point"), cases(MIDWAY, {"index.write"}), indirect=["backend"])
def test_a_commit_killed_midway_commits_again(backend: str, children: Children, tmp_path: Path, point: str) -> None:
    state = tmp_path / "state"
    eng = engine(backend, state)
    eng.run("busybox", "echo data > /f", name="work")
    eng.close()  # saved with its writable layer, for the child
    children.kill_at(backend, state, "commit", {"container": "work", "tag": "snap:1"}, point)
    eng = engine(backend, state)
    try:
        consistent(eng)
        assert "snap:1" not in eng.store and store_files(state) == []
        assert [(c.name, c.state) for c in eng.containers()] == [("work", "exited")]
        assert [str(c) for c in eng.diff("work")] == ["A /f"]  # the writable layer is intact
        eng.commit("work", "snap:1")
        assert eng.run("snap:1", "cat /f", remove=True).stdout == b"data\n"
        eng.remove("work")
        consistent(eng)
    finally:
        eng.close()


@pytest.mark.parametrize("backend", ["sim", pytest.param("real", marks=[pytest.mark.real, pytest.mark.slow])],
                         indirect=True)
def test_an_rmi_killed_between_index_and_blobs_leaves_only_garbage(backend: str, children: Children, tmp_path: Path) -> None:
    state = tmp_path / "state"
    eng = engine(backend, state)
    eng.build(context(tmp_path / "ctx"), tag="app:1")
    eng.close()
    children.kill_at(backend, state, "rmi", {"ref": "app:1"}, "gc.start")
    eng = engine(backend, state)
    try:
        consistent(eng)
        assert "app:1" not in eng.store
        assert eng.store.gc().deleted_blobs  # what the killed rmi did not get to delete
        assert eng.build(tmp_path / "ctx", tag="app:1").image.tags == ("app:1",)
        consistent(eng)
    finally:
        eng.close()


# -- killed at random moments ------------------------------------------------------------------------

def test_an_engine_killed_at_random_moments_leaves_a_consistent_store(backend: str, children: Children, tmp_path: Path) -> None:
    state = tmp_path / "state"
    prepared(backend, state)
    contexts = [str(context(tmp_path / f"ctx{i}", str(i))) for i in range(3)]
    rng = random.Random(15)
    rounds = 4 if backend == "sim" else 2
    for n in range(rounds):
        child = children.start(backend, state, "loop", {"seed": n, "contexts": contexts, "path": str(tmp_path / "loop.tar")})
        time.sleep(rng.uniform(0.5, 2.0) if backend == "sim" else rng.uniform(1.0, 3.0))
        assert child.proc.poll() is None, child.output  # still looping: killed mid-work
        children.kill(child)
        eng = engine(backend, state)
        try:
            consistent(eng)
            assert store_files(state) == []
            assert "after:1" in eng.build(contexts[0], tag="after:1").image.tags
        finally:
            eng.close()

"""Eight engine processes on one image store at once, for a while, on each backend: then ``fsck``
finds nothing.

Each worker is its own process (``python -c``) with its own engine state folder whose ``images``
(and, on the kernel, ``layers``) are symlinks to one shared folder: one image store, one layer
cache, eight engines.  (Containers and the build cache stay per engine: container state shared
between engines is not this test's subject.)  A worker draws operations at random (seeded):
build (four contexts, random tags), tag, rmi, prune (dangling, all, or a bare collection),
save (the tar checked by loading it into a fresh in-memory store), load, commit (run a container,
commit it, remove it), reopening its engine every few operations as separate commands would.
Races that Docker refuses too (an image removed or in use meanwhile) count as refusals; any other
error fails the test.  The default run is short, so CI time stays bounded; the 30-second run of
the issue is ``slow`` (``LAYERLAB_PROFILE=deep``).  Set ``LAYERLAB_STRESS_REPORT=1`` to print
the counts.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import sim
from sim.errors import BuildfileError, ConflictError, ImageNotFoundError
from sim.images.store import ImageStore
from tests.backends import require_real

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 8
OPS = ("build", "build", "tag", "rmi", "prune", "save", "load", "commit")


def _refusal(exc: BaseException) -> bool:
    """A race Docker refuses too: the image is gone or in use (a base removed under a build included)."""
    if isinstance(exc, (ImageNotFoundError, ConflictError)):
        return True
    return isinstance(exc, BuildfileError) and "pull access denied" in str(exc)


def _tags(eng: Any) -> list[str]:
    return sorted(t for r in eng.store.list(all=True) for t in r.tags)


def _one(eng: Any, op: str, rng: random.Random, own: Path, contexts: list[str], n: int) -> None:
    tags = _tags(eng)
    if op == "build":
        if "busybox" not in eng.store:
            eng.base_image()
        eng.build(rng.choice(contexts), tag=f"app:{rng.randrange(4)}")
    elif op == "tag" and tags:
        eng.tag(rng.choice(tags), f"t{rng.randrange(4)}:latest")
    elif op == "rmi" and tags:
        eng.remove_image(rng.choice(tags))
    elif op == "prune":
        choice = rng.randrange(3)
        if choice == 0:
            eng.image_prune()
        elif choice == 1:
            eng.image_prune(all=True)
        else:
            eng.store.gc()
    elif op == "save" and tags:
        path = own / "saved.tar"
        eng.save([rng.choice(tags)], path)
        assert ImageStore().load(path), "a saved archive loads nothing"  # complete: every blob verifies
    elif op == "load" and (own / "saved.tar").exists():
        eng.load(own / "saved.tar")
    elif op == "commit" and tags:
        name = f"c{n}"
        eng.run(rng.choice(tags), f"echo {n} > /n", name=name)
        try:
            eng.commit(name, f"snap:{rng.randrange(3)}")
        finally:
            eng.remove(name)


def worker(backend: str, own: str, contexts: list[str], seed: int, seconds: float, out: str) -> None:
    """One stress worker (run in its own process): random operations until ``seconds`` have passed."""
    rng = random.Random(seed)
    done: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    errors: list[str] = []
    eng: Any = sim.connect(backend, state_dir=own)
    deadline = time.monotonic() + seconds
    n = 0
    try:
        while time.monotonic() < deadline:
            n += 1
            op = rng.choice(OPS)
            try:
                _one(eng, op, rng, Path(own), contexts, n)
                done[op] += 1
            except Exception as exc:
                if _refusal(exc):
                    refused[op] += 1
                else:
                    errors.append(f"{op}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            if n % 8 == 0:  # separate commands open separate engines
                eng.close()
                eng = sim.connect(backend, state_dir=own)
    finally:
        eng.close()
        Path(out).write_text(json.dumps({"done": done, "refused": refused, "errors": errors}))


CHILD = "import json, sys; from tests.test_stress import worker; worker(*json.loads(sys.argv[1]))"


def _contexts(folder: Path) -> list[str]:
    out = []
    for i in range(4):
        ctx = folder / f"ctx{i}"
        ctx.mkdir(parents=True)
        (ctx / "file.txt").write_text(f"file {i}\n")
        (ctx / "Buildfile").write_text(f"FROM busybox\nRUN echo {i} > /i\nCOPY file.txt /file.txt\nRUN cat /i /file.txt > /both\n")
        out.append(str(ctx))
    return out


@pytest.mark.parametrize("seconds", [8, pytest.param(30, marks=pytest.mark.slow)])
@pytest.mark.parametrize("backend", ["sim", pytest.param("real", marks=pytest.mark.real)])
def test_eight_processes_on_one_store_leave_nothing_for_fsck(backend: str, seconds: int, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    monkeypatch.delenv("LAYERLAB_FAULT_POINT", raising=False)
    shared = tmp_path / "shared"
    (shared / "images").mkdir(parents=True)
    (shared / "layers").mkdir()
    maps = None
    if backend == "real":
        probe: Any = require_real(state_dir=str(tmp_path / "probe"))
        maps = probe.id_maps
        probe.close()
    contexts = _contexts(tmp_path / "contexts")
    procs = []
    for i in range(WORKERS):
        own = tmp_path / f"w{i}"
        own.mkdir()
        (own / "images").symlink_to(shared / "images")
        (own / "layers").symlink_to(shared / "layers")
        args = [backend, str(own), contexts, i, seconds, str(tmp_path / f"w{i}.json")]
        with open(tmp_path / f"w{i}.log", "wb") as log:  # the child keeps its own copy of the descriptor
            procs.append(subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], cwd=ROOT,
                                          env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=subprocess.STDOUT))
    try:
        for proc in procs:
            proc.wait(timeout=seconds + 240)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    done: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    errors: list[str] = []
    for i, proc in enumerate(procs):
        result = tmp_path / f"w{i}.json"
        assert proc.returncode == 0 and result.exists(), (tmp_path / f"w{i}.log").read_text()[-3000:]
        found = json.loads(result.read_text())
        done.update(found["done"])
        refused.update(found["refused"])
        errors += found["errors"]
    assert errors == [], errors[:3]
    checker = tmp_path / "checker"
    checker.mkdir()
    (checker / "images").symlink_to(shared / "images")
    eng: Any = sim.connect(backend, state_dir=str(checker))
    try:
        report = eng.fsck()
        assert report.problems == (), [p.line() for p in report.problems]
        assert all(eng.store.load_layers(r) for r in eng.store.list(all=True))
        images = len(eng.store.list(all=True))
    finally:
        eng.close()
    if maps is not None:
        from realrt import _idmap

        for entry in tmp_path.iterdir():  # rootless, layer files of subordinate ids: removed from a namespace
            _idmap.remove_tree(entry, maps)
    assert sum(done.values()) >= WORKERS and done["build"] > 0
    if os.environ.get("LAYERLAB_STRESS_REPORT"):
        print(f"\n{backend} {seconds}s x{WORKERS}: {sum(done.values())} operations {dict(sorted(done.items()))}, "
              f"{sum(refused.values())} refused {dict(sorted(refused.items()))}, {images} images left, "
              f"fsck: {report.blobs_checked} blobs, {report.images_checked} images, {len(report.problems)} problems")

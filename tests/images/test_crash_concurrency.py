"""Two engine processes on one store at the same time: neither fails, nothing is lost, no blob that is
being written or relied on is collected (docs/concurrency.md).

The interleaving is forced, not hoped for: process A stops at a named fault point
(:mod:`sim.images._faults`) in the middle of its work; process B runs a whole command; then A is
continued (SIGCONT) and must finish.  Without the store lock A would write back its stale view of
``index.json`` (B's image lost); without leases B's collection would delete the blobs A has stored
or found but not yet committed (A's pull fails, A's build cache is gone).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.images.test_crash import Children, backend, children, consistent, context, engine, prepared

__all__ = ["backend", "children"]  # fixtures, used by name

BOTH = ["sim", pytest.param("real", marks=pytest.mark.real)]
BOTH_SLOW_ON_REAL = ["sim", pytest.param("real", marks=[pytest.mark.real, pytest.mark.slow])]


def stopped_at(children: Children, backend: str, state: Path, op: str, arg: dict[str, object], point: str) -> object:
    child = children.start(backend, state, op, arg, point)
    outcome = children.wait(child)
    assert outcome == "stopped", f"{op} never reached {point} ({outcome}):\n{child.output}"
    return child


def run_whole(children: Children, backend: str, state: Path, op: str, arg: dict[str, object]) -> None:
    child = children.start(backend, state, op, arg)
    outcome = children.wait(child, stop=False)
    assert outcome == "exit 0", child.output


def resume(children: Children, child: object) -> None:
    os.kill(child.proc.pid, signal.SIGCONT)  # type: ignore[attr-defined]
    outcome = children.wait(child, stop=False)  # type: ignore[arg-type]
    assert outcome == "exit 0", child.output  # type: ignore[attr-defined]


def waits_for(children: Children, backend: str, state: Path, holder: object, op: str, arg: dict[str, object]) -> None:
    """Start ``op`` while ``holder`` is stopped holding the store lock: it must still be waiting a second
    later, and finish once the holder is continued and has finished."""
    b = children.start(backend, state, op, arg)
    time.sleep(1.0)
    assert b.proc.poll() is None, b.output  # blocked on the store lock
    resume(children, holder)
    assert children.wait(b, stop=False) == "exit 0", b.output


def step_blobs(state: Path) -> set[str]:
    """The DiffIDs the build cache names (each step's layer)."""
    return set(json.loads((state / "build-cache.json").read_bytes()).values())


@pytest.mark.parametrize("backend", BOTH, indirect=True)
def test_two_builds_at_once_keep_both_images(backend: str, children: Children, tmp_path: Path) -> None:
    state = tmp_path / "state"
    prepared(backend, state)
    a = stopped_at(children, backend, state, "build", {"context": str(context(tmp_path / "a", "a")), "tag": "a:1"},
                   "build.step-done:3")
    run_whole(children, backend, state, "build", {"context": str(context(tmp_path / "b", "b")), "tag": "b:1"})
    resume(children, a)
    eng = engine(backend, state)
    try:
        assert {"a:1", "b:1"} <= {t for i in eng.images() for t in i.tags}  # A did not write back a stale index
        assert eng.run("a:1", "cat /three", remove=True).stdout == b"threea\n"
        assert eng.run("b:1", "cat /three", remove=True).stdout == b"threeb\n"
        assert len(step_blobs(state)) == 6  # both builds' cache entries: neither overwrote the other's
        consistent(eng)
    finally:
        eng.close()


@pytest.mark.parametrize("backend", BOTH_SLOW_ON_REAL, indirect=True)
def test_a_build_and_an_rmi_of_its_base_at_once(backend: str, children: Children, tmp_path: Path) -> None:
    state = tmp_path / "state"
    prepared(backend, state)
    a = stopped_at(children, backend, state, "build", {"context": str(context(tmp_path / "a")), "tag": "a:1"},
                   "build.step-done:3")
    run_whole(children, backend, state, "rmi", {"ref": "busybox"})  # its collection runs while A holds step layers
    eng = engine(backend, state)
    try:
        assert "busybox" not in eng.store
        assert all(eng.store.content.has(d) for d in step_blobs(state))  # A's lease kept them
    finally:
        eng.close()
    resume(children, a)
    eng = engine(backend, state)
    try:
        assert eng.run("a:1", "cat /one /two", remove=True).stdout == b"one\ntwo\n"
        consistent(eng)
    finally:
        eng.close()


@pytest.mark.parametrize("backend", BOTH, indirect=True)
@pytest.mark.parametrize(("present", "point"), [(True, "store.adopt"), (False, "download.committed")], ids=["found", "downloaded"])
def test_a_pull_and_a_prune_at_once(backend: str, children: Children, tmp_path: Path, present: bool, point: str) -> None:
    """A pull that found (or downloaded) its blobs and has not committed the image yet; a prune -a
    in another process would collect them, but the pull's lease keeps them."""
    state = tmp_path / "state"
    if present:
        prepared(backend, state)  # busybox's blobs are here: the pull finds them ("Already exists")
    else:
        engine(backend, state).close()
    a = stopped_at(children, backend, state, "pull", {"ref": "busybox"}, point)
    run_whole(children, backend, state, "prune", {})
    resume(children, a)
    eng = engine(backend, state)
    try:
        assert "busybox" in eng.store
        assert eng.run("busybox", "echo pulled", remove=True).stdout == b"pulled\n"
        consistent(eng)
    finally:
        eng.close()


@pytest.mark.parametrize("backend", ["sim"], indirect=True)
def test_a_writer_waits_for_the_one_holding_the_store(backend: str, children: Children, tmp_path: Path) -> None:
    """A stopped between writing index.json and renaming it holds the exclusive store lock: B's
    change waits for it instead of interleaving, then both are there."""
    state = tmp_path / "state"
    prepared(backend, state)
    a = stopped_at(children, backend, state, "build", {"context": str(context(tmp_path / "a")), "tag": "a:1"},
                   "index.synced")
    waits_for(children, backend, state, a, "build", {"context": str(context(tmp_path / "b", "b")), "tag": "b:1"})
    eng = engine(backend, state)
    try:
        assert {"a:1", "b:1"} <= {t for i in eng.images() for t in i.tags}
        consistent(eng)
    finally:
        eng.close()


@pytest.mark.parametrize("backend", BOTH, indirect=True)
def test_a_create_and_a_prune_at_once(backend: str, children: Children, tmp_path: Path) -> None:
    """A create that has found its image and not yet saved the container holds the store shared: a
    prune -a in another process waits, then sees the container and keeps the image it uses."""
    state = tmp_path / "state"
    prepared(backend, state)
    a = stopped_at(children, backend, state, "create", {"ref": "busybox", "name": "user"}, "create.resolved")
    waits_for(children, backend, state, a, "prune", {})
    eng = engine(backend, state)
    try:
        assert "busybox" in eng.store
        assert [c.name for c in eng.containers(all=True)] == ["user"]
        consistent(eng)
        assert eng.fsck().problems == ()
    finally:
        eng.close()

"""The model against the kernel: random lower stacks, random operations, same answers.

Each rule runs on :class:`sim.layers.unionfs.UnionFS` and on a real overlay mount of
the same layers; every call must give the same value or the same errno, and
after every step the merged trees must match.  At teardown the upper layers
must match too (whiteouts, opaque directories, redirects, copied-up data).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import sim
from sim.errors import LayerFormatError
from sim.layers.layer import Layer
from tests.backends import require_real
from tests.differential import layer_view, outcome, stat_view, tree

NAMES = ["a", "b", "c"]
PAST = [1_500_000_000_123_456_789, 1_600_000_000_000_000_000, 1_700_000_000_987_654_321]
CONTENTS = [b"", b"one", b"two\n", b"x" * 5000]
SYMLINK_TARGETS = ["a", "/a", "../b", "a/b", "/c/a", "nowhere", "/", "..", "b/../a", "/a/b/c", "a/", "/b/."]
PATHS = ["/" + "/".join(p) for p in
         [[a] for a in NAMES] + [[a, b] for a in NAMES for b in NAMES] + [[a, b, c] for a in NAMES for b in NAMES for c in "ab"]]
ODD_PATHS = ["/a/", "a/b", "/a/../b", "/../a", "/a/./b", "/a/b/.", "/a/.."]

paths = st.sampled_from(PATHS) | st.sampled_from(ODD_PATHS)
plain_paths = st.sampled_from(PATHS)


@st.composite
def lower_layer(draw: st.DrawFn, uids: list[int]) -> Layer:
    layer = Layer()
    for _ in range(draw(st.integers(0, 7))):
        path = draw(plain_paths).lstrip("/")
        kind = draw(st.sampled_from(["file", "file", "dir", "dir", "opaque", "symlink", "whiteout", "hardlink"]))
        meta: dict[str, Any] = dict(uid=draw(st.sampled_from(uids)), gid=draw(st.sampled_from(uids)),
                                    mtime_ns=draw(st.sampled_from(PAST)))
        try:
            if kind == "file":
                xattrs = draw(st.sampled_from([{}, {}, {"user.note": b"kept"}]))
                layer.add_file(path, draw(st.sampled_from(CONTENTS)), mode=draw(st.sampled_from([0o644, 0o600, 0o755])),
                               xattrs=xattrs, **meta)
            elif kind in ("dir", "opaque"):
                layer.add_dir(path, mode=draw(st.sampled_from([0o755, 0o700, 0o1777])), opaque=kind == "opaque", **meta)
            elif kind == "symlink":
                layer.add_symlink(path, draw(st.sampled_from(SYMLINK_TARGETS)), **meta)
            elif kind == "whiteout":
                layer.add_whiteout(path)
            else:
                files = [p for p, e in layer.items() if e.kind == "file"]
                if files:
                    layer.add_hardlink(path, draw(st.sampled_from(files)))
        except LayerFormatError:
            pass  # that combination is not a valid layer; the next draw tries another
    for p, e in layer.items():  # implied parents get a past mtime too, so it can be compared
        if e.kind == "dir" and getattr(e, "implied", False):
            e.mtime_ns = PAST[0]
    return layer.freeze()


class UnionMachine(RuleBasedStateMachine):
    """Apply each rule to the model and to the kernel; they must agree."""

    rootless = False
    uids = [0, 1000]
    examples = 0  # how many stacks were mounted in both backends: the figure the issue reports
    steps = 0

    def __init__(self) -> None:
        super().__init__()
        self.fds: list[tuple[int, int]] = []
        self.mounts: list[Any] = []

    @initialize(data=st.data(), redirect_dir=st.booleans(), index=st.booleans())
    def mount(self, data: st.DataObject, redirect_dir: bool, index: bool) -> None:
        if self.rootless:
            redirect_dir = False  # userxattr mounts only take redirect_dir=nofollow
            index = False  # and fall back to index=off (no file handles in a user namespace)
        layers = data.draw(st.lists(lower_layer(self.uids), min_size=1, max_size=4), label="layers")
        for i, layer in enumerate(layers):
            note(f"layer {i}: {layer.items()}")
        self.t0 = time.time_ns()
        opts = dict(redirect_dir=redirect_dir, index=index)
        type(self).examples += 1
        self.model = sim.connect("sim").union(layers, **opts)
        self.kernel = self.real_engine.union(layers, **opts)
        self.mounts = [self.model, self.kernel]

    def both(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        type(self).steps += 1
        got_m = outcome(lambda: getattr(self.model, name)(*args, **kwargs))
        got_k = outcome(lambda: getattr(self.kernel, name)(*args, **kwargs))
        if name in ("stat", "lstat"):
            got_m, got_k = (self._stat(g) for g in (got_m, got_k))
        if name == "listdir":
            got_m, got_k = (("ok", sorted(g[1])) if g[0] == "ok" else g for g in (got_m, got_k))
        assert got_m[0] == got_k[0] and (got_m[0] == "ok" and name == "open" or got_m == got_k), (
            f"{name}{args}: model {got_m} kernel {got_k}"
        )
        return got_m, got_k

    def _stat(self, got: tuple[str, Any]) -> tuple[str, Any]:
        return ("ok", stat_view(got[1], self.t0)) if got[0] == "ok" else got

    # -- rules ------------------------------------------------------------------

    @rule(path=paths)
    def stat(self, path: str) -> None:
        self.both("stat", path)
        self.both("lstat", path)

    @rule(path=paths)
    def listdir(self, path: str) -> None:
        self.both("listdir", path)

    @rule(path=paths)
    def readlink(self, path: str) -> None:
        self.both("readlink", path)

    @rule(path=paths, flags=st.sampled_from([
        os.O_RDONLY, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, os.O_RDWR, os.O_RDWR | os.O_APPEND,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL, os.O_RDONLY | os.O_NOFOLLOW, os.O_RDONLY | os.O_DIRECTORY,
        os.O_WRONLY | os.O_CREAT, os.O_RDONLY | os.O_TRUNC,
    ]), mode=st.sampled_from([0o666, 0o600, 0o777]))
    def open(self, path: str, flags: int, mode: int) -> None:
        m, k = self.both("open", path, flags, mode)
        if m[0] == "ok":
            self.fds.append((m[1], k[1]))

    @precondition(lambda self: self.fds)
    @rule(data=st.data(), payload=st.sampled_from([b"", b"new", b"longer content\n"]), n=st.sampled_from([1, 3, 100000]))
    def use_fd(self, data: st.DataObject, payload: bytes, n: int) -> None:
        fm, fk = data.draw(st.sampled_from(self.fds))
        for name, arg in (("write", payload), ("read", n)):
            m = outcome(lambda: getattr(self.model, name)(fm, arg))
            k = outcome(lambda: getattr(self.kernel, name)(fk, arg))
            assert m == k, f"{name} on fd: model {m} kernel {k}"

    @precondition(lambda self: self.fds)
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        pair = data.draw(st.sampled_from(self.fds))
        self.fds.remove(pair)
        self.model.close(pair[0])
        self.kernel.close(pair[1])

    @rule(path=paths, mode=st.sampled_from([0o777, 0o700]))
    def mkdir(self, path: str, mode: int) -> None:
        self.both("mkdir", path, mode)

    @rule(path=paths)
    def rmdir(self, path: str) -> None:
        self.both("rmdir", path)

    @rule(path=paths)
    def unlink(self, path: str) -> None:
        self.both("unlink", path)

    @rule(src=paths, dst=paths)
    def rename(self, src: str, dst: str) -> None:
        self.both("rename", src, dst)

    @rule(link_target=st.sampled_from(SYMLINK_TARGETS), path=paths)
    def symlink(self, link_target: str, path: str) -> None:
        self.both("symlink", link_target, path)

    @rule(src=paths, dst=paths, follow=st.booleans())
    def link(self, src: str, dst: str, follow: bool) -> None:
        self.both("link", src, dst, follow_symlinks=follow)

    @rule(path=paths, mode=st.sampled_from([0o600, 0o755, 0o4755, 0o1777]))
    def chmod(self, path: str, mode: int) -> None:
        self.both("chmod", path, mode)

    @rule(path=paths, length=st.sampled_from([0, 2, 6000]))
    def truncate(self, path: str, length: int) -> None:
        self.both("truncate", path, length)

    @rule(path=paths, t=st.sampled_from(PAST), follow=st.booleans())
    def utime(self, path: str, t: int, follow: bool) -> None:
        self.both("utime", path, ns=(t, t), follow_symlinks=follow)

    # -- agreement ----------------------------------------------------------------

    @invariant()
    def same_tree(self) -> None:
        if self.mounts:
            assert tree(self.model, self.t0) == tree(self.kernel, self.t0)

    def teardown(self) -> None:
        try:
            if self.mounts:
                for fm, fk in self.fds:
                    self.model.close(fm)
                    self.kernel.close(fk)
                assert layer_view(self.model.upper, self.t0) == layer_view(self.kernel.upper, self.t0)
        finally:
            for mount in self.mounts:
                mount.unmount()


def _machine(rootless: bool, uids: list[int], examples_factor: float) -> type[UnionMachine]:
    class Machine(UnionMachine):
        pass

    Machine.rootless = rootless
    Machine.uids = uids
    current = settings()
    Machine.TestCase.settings = settings(
        current, max_examples=max(10, int(current.max_examples * examples_factor)), stateful_step_count=25
    )
    return Machine


@pytest.mark.real
@pytest.mark.root_only
def test_model_matches_kernel_overlayfs(tmp_path: Path) -> None:
    machine = _machine(rootless=False, uids=[0, 1000], examples_factor=5)
    machine.real_engine = require_real(rootless=False, state_dir=str(tmp_path))  # type: ignore[attr-defined]
    machine.TestCase().runTest()
    print(f"differential (root): {machine.examples} stacks, {machine.steps} compared calls")
    assert machine.examples >= machine.TestCase.settings.max_examples


@pytest.mark.real
def test_model_matches_rootless_overlayfs(tmp_path: Path) -> None:
    """The unprivileged form: a user namespace, ``userxattr``, everything owned by the caller."""
    machine = _machine(rootless=True, uids=[0], examples_factor=1)
    machine.real_engine = require_real(rootless=True, state_dir=str(tmp_path))  # type: ignore[attr-defined]
    machine.TestCase().runTest()
    print(f"differential (rootless): {machine.examples} stacks, {machine.steps} compared calls")
    assert machine.examples >= machine.TestCase.settings.max_examples

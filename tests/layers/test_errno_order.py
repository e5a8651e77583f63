"""When one call could fail for two reasons, the model reports the kernel's one.

Every double-fault shape of :mod:`sim.testing._faults` (an operation, two faults: in the walk, at
the final name, a trailing slash, or one in each argument of link and rename) runs on the model
and on a kernel overlay mount of :func:`~sim.testing._faults.fault_layers`, as root and rootless
(``userxattr``); the errnos must be the same.  The kernel also says which shapes are real double
faults (each fault fails alone) and in how many the two faults alone give different errnos, so
the order of the checks decides the answer.  A model-only test pins a few orders read in
``fs/namei.c`` so the model's order is checked where no kernel runs.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import sim
from sim.interface import Engine, UnionMount
from sim.layers.unionfs import UnionFS
from sim.testing import Operation, outcome
from sim.testing._faults import (
    FAULT_OPERATIONS,
    LONG_NAME,
    WALK_FAULTS,
    PathSpec,
    Shape,
    build_call,
    call_for,
    double_fault_shapes,
    fault_layers,
    path_of,
    read_only_shapes,
)
from tests.backends import require_real

_READS = {"stat", "lstat", "listdir", "readlink"}


@dataclass
class _Pair:
    """The model and the kernel on the same fault stack; a fresh pair after a call that may have
    changed either, so every call sees the stack as built."""

    kernel: Engine
    mounts: list[UnionMount] = field(default_factory=list)
    remounts: int = 0

    def _fresh(self) -> None:
        self.close()
        layers = fault_layers()
        self.mounts = [sim.connect("sim").union(layers), self.kernel.union(layers)]
        self.remounts += 1

    def close(self) -> None:
        for mount in self.mounts:
            mount.unmount()
        self.mounts = []

    def run(self, op: Operation) -> list[tuple[str, object]]:
        if not self.mounts:
            self._fresh()
        got = []
        for mount in self.mounts:
            status, value = outcome(lambda: op(mount))
            if status == "ok" and op.name == "open":
                mount.close(value)
            got.append((status, value if status == "err" or op.name in ("stat", "lstat") else "-"))
        writes = op.name not in _READS and not (op.name == "open" and op.args[1] == os.O_RDONLY)
        if writes and any(status == "ok" for status, _ in got):
            self._fresh()
        return [(s, v if s == "err" else "ok") for s, v in got]


def _split(spec: PathSpec) -> list[PathSpec]:
    """The one-fault arguments whose faults together make ``spec``."""
    return [PathSpec(walk=(f.name,)) if f.kind == "walk" else PathSpec(final=f.name) if f.kind == "final"
            else PathSpec(slash=True) for f in spec.faults]


def _singles(shape: Shape) -> list[tuple[int, PathSpec]]:
    return [(i, single) for i, spec in enumerate(shape.paths) for single in _split(spec)]


@pytest.mark.real
@pytest.mark.parametrize("rootless", [pytest.param(False, marks=pytest.mark.root_only), True], ids=["root", "rootless"])
def test_every_double_fault_gives_the_kernels_errno(rootless: bool, tmp_path: Path) -> None:
    pair = _Pair(require_real(rootless=rootless, state_dir=str(tmp_path)))
    alone: dict[tuple[str, int, PathSpec], tuple[str, object]] = {}
    mismatches: list[str] = []
    doubles = precedence = 0
    shapes = double_fault_shapes()
    try:
        for n, shape in enumerate(shapes):
            op = build_call(shape, f"n{n}_")
            model, kernel = pair.run(op)
            if model != kernel:
                mismatches.append(f"{shape}: {op!r:.120}: model {model[1]}, kernel {kernel[1]}")
            faults = []
            for i, single in _singles(shape):
                key = (shape.op, i, single)
                if key not in alone:
                    roles = FAULT_OPERATIONS[shape.op]
                    args = [path_of(single if j == i else PathSpec(), role, f"s{n}_{i}_{j}") for j, role in enumerate(roles)]
                    alone[key] = pair.run(call_for(shape.op, args))[1]
                faults.append(alone[key])
            if all(status == "err" for status, _ in faults):
                doubles += 1
                precedence += faults[0] != faults[1]
    finally:
        pair.close()
    print(f"errno order ({'rootless' if rootless else 'root'}): {len(shapes)} shapes over {len(FAULT_OPERATIONS)} "
          f"operations, {doubles} double faults (each fault fails alone), {precedence} where the two alone give "
          f"different errnos; {pair.remounts} mounts")
    assert not mismatches, f"{len(mismatches)} shapes differ:\n" + "\n".join(mismatches[:40])
    assert doubles > 2500 and precedence > 2000  # the stack really holds the faults


def _errno(fs: UnionMount, op: Operation) -> str:
    status, value = outcome(lambda: op(fs))
    assert status == "err", f"{op!r} succeeded"
    return str(value)


@pytest.mark.parametrize(("op", "expected"), [
    # getname() before the walk: a path of PATH_MAX bytes is refused whatever it names.
    (Operation("stat", (WALK_FAULTS["pathmax"] + "nope/x",)), "ENAMETOOLONG"),
    # the walk, one name after another: the first bad name wins, whatever its check.
    (Operation("stat", ("/nope/" + LONG_NAME,)), "ENOENT"),
    (Operation("stat", (f"/{LONG_NAME}/nope",)), "ENAMETOOLONG"),
    (Operation("mkdir", (f"/f/{LONG_NAME}",)), "ENOTDIR"),
    (Operation("mkdir", (f"/w/{LONG_NAME}",)), "ENOENT"),  # a whited-out directory is a negative dentry
    # filename_create(): the final lookup's ENAMETOOLONG, then EEXIST, then the trailing slash.
    (Operation("mkdir", (f"/{LONG_NAME}/",)), "ENAMETOOLONG"),
    (Operation("symlink", ("t", "/f/")), "EEXIST"),
    (Operation("link", ("/f", f"/d/{LONG_NAME}")), "ENAMETOOLONG"),
    # do_linkat(): the old name's walk before the new name's getname().
    (Operation("link", ("/nope/f", WALK_FAULTS["pathmax"] + "x")), "ENOENT"),
    (Operation("link", ("/ed", f"/{LONG_NAME}")), "ENAMETOOLONG"),  # vfs_link's EPERM comes after
    # do_symlinkat(): the target is read first.
    (Operation("symlink", ("x" * 4096, "/nope/x")), "ENAMETOOLONG"),
    # do_unlinkat()/do_rmdir(): the final lookup, then may_delete()'s types.
    (Operation("unlink", (f"/{LONG_NAME}/",)), "ENAMETOOLONG"),
    (Operation("rmdir", (f"/{LONG_NAME}",)), "ENAMETOOLONG"),
    # open_last_lookups(): "." with O_CREAT|O_EXCL is the directory itself: EEXIST before EISDIR.
    (Operation("open", ("/./", os.O_WRONLY | os.O_CREAT | os.O_EXCL)), "EEXIST"),
    (Operation("open", ("/./", os.O_WRONLY | os.O_CREAT)), "EISDIR"),
    # do_renameat2(): the source's lookup before the target's.
    (Operation("rename", (f"/{LONG_NAME}", "/nope/x")), "ENOENT"),  # both parents are walked first
    (Operation("rename", ("/nope", f"/{LONG_NAME}")), "ENOENT"),
    (Operation("rename", ("/f", f"/{LONG_NAME}")), "ENAMETOOLONG"),
    # do_sys_truncate(): a negative length before the walk (realrt's twin walks first: model only).
    (Operation("truncate", ("/nope/x", -1)), "EINVAL"),
], ids=repr)
def test_model_follows_namei_order(op: Operation, expected: str) -> None:
    with sim.connect("sim").union(fault_layers()) as fs:
        assert _errno(fs, op) == expected


@contextlib.contextmanager
def _read_only_view(mountpoint: str) -> Iterator[Any]:
    """The kernel overlay at ``mountpoint`` through a read-only bind mount (``MS_RDONLY``: what
    ``mnt_want_write()`` checks), with realrt's confined calls on it; unmounted afterwards.

    realrt's ``link`` answers a directory source with ``EPERM`` itself (after ``EEXIST``, without
    calling ``linkat``), which on a read-only mount hides the kernel's ``EROFS``: here a
    directory source goes to ``linkat(2)`` too, so the kernel answers."""
    from realrt import _syscalls
    from realrt.layers._rooted import RootedOps
    from sim.layers import _paths

    class KernelLink(RootedOps):
        def link(self, src: str, dst: str, *, follow_symlinks: bool = True) -> None:
            follow = follow_symlinks or _paths.final_dot(src) is not None or src.endswith("/")
            try:
                sfd = self._open(src, os.O_PATH | (0 if follow else os.O_NOFOLLOW))
            except OSError:
                return super().link(src, dst, follow_symlinks=follow_symlinks)
            try:
                if not stat.S_ISDIR(os.fstat(sfd).st_mode):
                    return super().link(src, dst, follow_symlinks=follow_symlinks)
                dfd, name = self._parent(dst, "link")
                try:
                    os.link(f"/proc/self/fd/{sfd}", name, dst_dir_fd=dfd, follow_symlinks=True)
                finally:
                    os.close(dfd)
            finally:
                os.close(sfd)

    target = tempfile.mkdtemp(prefix="layerlab-ro-")
    try:
        _syscalls.mount(mountpoint, target, None, _syscalls.MS_BIND)
        try:
            _syscalls.mount("none", target, None, _syscalls.MS_BIND | _syscalls.MS_REMOUNT | _syscalls.MS_RDONLY)
            fd = os.open(target, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            ops = KernelLink(fd, 0o022)
            try:
                yield ops
            finally:
                ops.close_all()
                os.close(fd)
        finally:
            _syscalls.umount2(target, _syscalls.MNT_DETACH)
    finally:
        os.rmdir(target)


@pytest.mark.real
@pytest.mark.root_only  # a read-only bind of the overlay needs mounts in this namespace
def test_read_only_mount_double_faults_give_the_kernels_errno(tmp_path: Path) -> None:
    """Every operation on a read-only mount with one more fault: the model's ``read_only``
    union against a read-only bind mount of the kernel's overlay."""
    kernel = require_real(rootless=False, state_dir=str(tmp_path))
    pair = _Pair(kernel)
    shapes = read_only_shapes()
    mismatches: list[str] = []
    doubles = precedence = 0
    alone: dict[tuple[str, int, PathSpec], tuple[str, object]] = {}
    try:
        with kernel.union(fault_layers()) as kfs, _read_only_view(kfs.mountpoint) as ro:  # type: ignore[attr-defined]
            model = UnionFS(fault_layers(), read_only=True)
            for n, shape in enumerate(shapes):
                op = build_call(shape, f"n{n}_")
                got = []
                for fs in (model, ro):
                    status, value = outcome(lambda: op(fs))
                    if status == "ok" and op.name == "open":
                        fs.close(value)
                    got.append(value if status == "err" else "ok")
                if got[0] != got[1]:
                    mismatches.append(f"{shape}: {op!r:.120}: model {got[0]}, kernel {got[1]}")
                # the two faults alone: the ordinary call on the read-only mount, the fault on a writable one
                plain = outcome(lambda: call_for(shape.op, [path_of(PathSpec(), r, f"p{n}_{j}") for j, r in
                                                            enumerate(FAULT_OPERATIONS[shape.op])])(ro))
                i, single = next((i, spec) for i, spec in enumerate(shape.paths) if spec.faults)
                key = (shape.op, i, single)
                if key not in alone:
                    alone[key] = pair.run(build_call(shape, f"s{n}_"))[1]
                if plain[0] == "err" and alone[key][0] == "err":
                    doubles += 1
                    precedence += plain[1] != alone[key][1]
            assert not model.upper.items(), "a read-only union changed its upper layer"
    finally:
        pair.close()
    print(f"errno order (read-only mount): {len(shapes)} shapes, {doubles} double faults, {precedence} where the "
          "two alone give different errnos")
    assert not mismatches, f"{len(mismatches)} shapes differ:\n" + "\n".join(mismatches[:40])
    assert doubles > 150 and precedence > 100


@pytest.mark.parametrize(("op", "expected"), [
    # filename_create() reports EEXIST and the trailing slash's ENOENT before the mount's EROFS.
    (Operation("mkdir", ("/d",)), "EEXIST"),
    (Operation("mkdir", ("/nope",)), "EROFS"),
    (Operation("symlink", ("t", "/nope/")), "ENOENT"),
    (Operation("mkdir", (f"/{LONG_NAME}",)), "ENAMETOOLONG"),
    # do_unlinkat(), do_rmdir(), do_renameat2() take the mount before the final lookup.
    (Operation("unlink", ("/nope",)), "EROFS"),
    (Operation("rmdir", ("/f",)), "EROFS"),
    (Operation("rename", ("/nope", "/x")), "EROFS"),
    (Operation("rmdir", ("/.",)), "EINVAL"),  # the final name's type comes before the mount
    # the walk comes first for all of them; attribute changes take the mount after the lookup.
    (Operation("unlink", ("/nope/x",)), "ENOENT"),
    (Operation("chmod", ("/nope", 0o600)), "ENOENT"),
    (Operation("chmod", ("/f", 0o600)), "EROFS"),
    # lookup_open() reports EROFS only when it would create; O_EXCL on an existing name is EEXIST.
    (Operation("open", ("/f", os.O_WRONLY | os.O_CREAT | os.O_EXCL)), "EEXIST"),
    (Operation("open", ("/nope", os.O_WRONLY | os.O_CREAT)), "EROFS"),
    (Operation("open", ("/d", os.O_WRONLY)), "EISDIR"),
    (Operation("truncate", ("/d", 0)), "EISDIR"),
    # seen on a read-only tmpfs (Linux 6.18) as well as read in namei.c:
    (Operation("unlink", (f"/{LONG_NAME}",)), "EROFS"),
    (Operation("open", ("/f", os.O_WRONLY | os.O_CREAT)), "EROFS"),
    (Operation("open", ("/f", os.O_RDONLY | os.O_TRUNC)), "EROFS"),
    (Operation("link", ("/f", "/d")), "EEXIST"),
    (Operation("link", ("/ed", "/x")), "EROFS"),  # before vfs_link's EPERM for a directory
    (Operation("utime", ("/nope",)), "ENOENT"),
    (Operation("rename", ("/f", "/ed")), "EROFS"),  # before may_delete's EISDIR
    (Operation("rename", (f"/{LONG_NAME}", "/x")), "EROFS"),
], ids=repr)
def test_read_only_mount_reports_erofs_where_namei_does(op: Operation, expected: str) -> None:
    fs = UnionFS(fault_layers(), read_only=True)
    assert _errno(fs, op) == expected
    assert _errno(fs, Operation("stat", ("/nope",))) == "ENOENT" and not fs.upper.items()

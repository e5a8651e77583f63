"""FIFOs and device nodes in layers, and a container layer's problems never eating a run's output.

Model part: the entries, their OCI tar form (tar types 6/3/4 with devmajor/devminor, mode,
owner), the overlay directory form (a character 0/0 stays the whiteout; rootless writes a
device as an empty regular file), sockets skipped, the union's ``mknod``, the shell's
``mkfifo``/``mknod``, and ``diff``/``commit``/``save``/``load`` through the engine.
Real part (marked ``real``): the issue's command on the kernel, ``mknod c 1 3`` as root.
"""

from __future__ import annotations

import errno
import io
import os
import socket
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sim
from sim.containers.shell import run as run_shell
from sim.errors import LayerFormatError, UnsupportedCommandError, UnsupportedEntryError
from sim.layers import UnionFS
from sim.layers.changes import Change, ChangeKind
from sim.layers.layer import BlockDevice, CharDevice, Fifo, Layer, RegularFile, Whiteout
from tests.backends import require_real

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mknod(2) of a device and chown need root")


def special_layer() -> Layer:
    layer = Layer()
    layer.add_fifo("run/pipe", mode=0o620, uid=7, gid=8, mtime_ns=5 * 10**9)
    layer.add_device("dev/null", 1, 3, mode=0o666, mtime_ns=6 * 10**9)
    layer.add_device("dev/loop9", 7, 9, block=True, mode=0o660, gid=6, mtime_ns=7 * 10**9)
    layer.add_device("dev/big", 4095, 1048575)  # the largest dev_t numbers Linux has
    layer.add_whiteout("dev/gone")
    return layer.freeze()


def members(raw: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        return {m.name: m for m in archive.getmembers()}


# -- entries -----------------------------------------------------------------------------


class TestEntries:
    def test_values_and_kinds(self) -> None:
        assert CharDevice(1, 3) == CharDevice(1, 3) != CharDevice(1, 5)
        assert BlockDevice(1, 3) != CharDevice(1, 3)  # a kind is part of the value
        assert Fifo(mode=0o600) != Fifo(mode=0o644)
        assert CharDevice(1, 3).rdev == os.makedev(1, 3)
        assert (Fifo().kind, CharDevice(1, 3).kind, BlockDevice(0, 0).kind) == ("fifo", "chardev", "blockdev")
        copy = BlockDevice(8, 1, mode=0o600, uid=3).copy()
        assert type(copy) is BlockDevice and copy == BlockDevice(8, 1, mode=0o600, uid=3)

    def test_char_0_0_is_the_whiteout_not_a_device(self) -> None:
        with pytest.raises(LayerFormatError, match="whiteout"):
            CharDevice(0, 0)
        with pytest.raises(LayerFormatError, match="whiteout"):
            Layer().add_device("w", 0, 0)
        assert BlockDevice(0, 0).rdev == 0  # only a *character* 0/0 is overlay's marker

    @pytest.mark.parametrize("numbers", [(4096, 0), (0, 1048576), (-1, 1)])
    def test_numbers_outside_dev_t_refused(self, numbers: tuple[int, int]) -> None:
        layer = Layer()
        with pytest.raises(LayerFormatError, match="dev_t"):
            layer.add_device("d", *numbers)
        assert len(layer) == 0  # a refused call changes nothing

    def test_frozen_and_size(self) -> None:
        layer = special_layer()
        entry = layer["dev/null"]
        assert isinstance(entry, CharDevice)
        with pytest.raises(TypeError):
            entry.major = 2
        assert layer.size == 0  # special files have no content
        assert layer.nlink("run/pipe") == 1


# -- the OCI tar form ----------------------------------------------------------------------


class TestTarForm:
    def test_round_trip(self) -> None:
        layer = special_layer()
        raw = layer.tar_bytes()
        assert Layer.from_tar(io.BytesIO(raw)) == layer
        gz = layer.tar_bytes(compression="gzip")
        assert Layer.from_tar(io.BytesIO(gz)) == layer
        assert layer.tar_bytes() == raw  # reproducible

    def test_headers_are_what_oci_tars_carry(self) -> None:
        got = members(special_layer().tar_bytes())
        pipe, null, loop = got["run/pipe"], got["dev/null"], got["dev/loop9"]
        assert pipe.type == tarfile.FIFOTYPE and (pipe.mode, pipe.uid, pipe.gid, pipe.mtime) == (0o620, 7, 8, 5)
        assert null.type == tarfile.CHRTYPE and (null.devmajor, null.devminor, null.mode) == (1, 3, 0o666)
        assert loop.type == tarfile.BLKTYPE and (loop.devmajor, loop.devminor, loop.gid) == (7, 9, 6)
        assert (got["dev/big"].devmajor, got["dev/big"].devminor) == (4095, 1048575)
        assert all(m.size == 0 for m in (pipe, null, loop))
        assert got["dev/.wh.gone"].type == tarfile.REGTYPE  # a whiteout stays a .wh. file

    def test_reads_tars_written_by_other_tools(self) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as archive:
            for name, kind, numbers in (("p", tarfile.FIFOTYPE, (0, 0)), ("c", tarfile.CHRTYPE, (5, 1)),
                                        ("b", tarfile.BLKTYPE, (259, 0))):
                info = tarfile.TarInfo(name)
                info.type, (info.devmajor, info.devminor), info.mode, info.uid = kind, numbers, 0o640, 42
                archive.addfile(info)
        layer = Layer.from_tar(io.BytesIO(buf.getvalue()))
        assert layer["p"] == Fifo(mode=0o640, uid=42)
        assert layer["c"] == CharDevice(5, 1, mode=0o640, uid=42)
        assert layer["b"] == BlockDevice(259, 0, mode=0o640, uid=42)

    def test_char_0_0_in_a_tar_is_refused(self) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as archive:
            info = tarfile.TarInfo("w")
            info.type = tarfile.CHRTYPE
            archive.addfile(info)
        with pytest.raises(UnsupportedEntryError, match="whiteout"):
            Layer.from_tar(io.BytesIO(buf.getvalue()))

    def test_a_hard_link_to_a_fifo_is_refused(self) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as archive:
            fifo = tarfile.TarInfo("p")
            fifo.type = tarfile.FIFOTYPE
            link = tarfile.TarInfo("q")
            link.type, link.linkname = tarfile.LNKTYPE, "p"
            archive.addfile(fifo)
            archive.addfile(link)
        with pytest.raises(LayerFormatError, match="fifo"):
            Layer.from_tar(io.BytesIO(buf.getvalue()))


# -- the overlay directory form -------------------------------------------------------------


class TestDirectoryForm:
    @needs_root
    def test_round_trip_as_root(self, tmp_path: Path) -> None:
        layer = special_layer()
        layer.to_directory(tmp_path / "l")
        st = os.lstat(tmp_path / "l" / "dev" / "loop9")
        assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(7, 9) and stat.S_IMODE(st.st_mode) == 0o660
        assert stat.S_ISFIFO(os.lstat(tmp_path / "l" / "run" / "pipe").st_mode)
        assert os.lstat(tmp_path / "l" / "dev" / "gone").st_rdev == 0  # the whiteout: char 0/0
        back = Layer.from_directory(tmp_path / "l")
        assert back == layer
        assert isinstance(back["dev/gone"], Whiteout) and isinstance(back["dev/null"], CharDevice)

    def test_rootless_makes_devices_empty_files(self, tmp_path: Path) -> None:
        # A user namespace cannot mknod a device (EPERM): containers/storage writes an empty file.
        special_layer().to_directory(tmp_path / "l", userxattr=True)
        null = os.lstat(tmp_path / "l" / "dev" / "null")
        assert stat.S_ISREG(null.st_mode) and null.st_size == 0 and stat.S_IMODE(null.st_mode) == 0o666
        assert null.st_mtime_ns == 6 * 10**9
        assert stat.S_ISFIFO(os.lstat(tmp_path / "l" / "run" / "pipe").st_mode)  # a FIFO is fine in a userns
        back = Layer.from_directory(tmp_path / "l")
        assert back["dev/null"] == RegularFile(b"", mode=0o666, mtime_ns=6 * 10**9)
        assert isinstance(back["run/pipe"], Fifo)

    def test_rootless_is_its_own_choice(self, tmp_path: Path) -> None:
        layer = Layer()
        layer.add_device("d", 1, 3)
        layer.freeze().to_directory(tmp_path / "l", rootless=True)
        assert stat.S_ISREG(os.lstat(tmp_path / "l" / "d").st_mode)

    def test_sockets_are_skipped(self, tmp_path: Path) -> None:
        (tmp_path / "up" / "run").mkdir(parents=True)
        os.mkfifo(tmp_path / "up" / "run" / "fifo")
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(tmp_path / "up" / "run" / "sock"))
            layer = Layer.from_directory(tmp_path / "up")
        assert layer.paths() == ["run", "run/fifo"]


# -- the union model and the shell ------------------------------------------------------


def shell(union: Any, script: str, *, uid: int = 0) -> tuple[int, str, str]:
    result = run_shell(script, union, uid=uid, gid=uid, hostname="h")
    return result.exit_code, result.stdout.decode(), result.stderr.decode()


class TestUnionAndShell:
    def test_mknod_in_the_union(self) -> None:
        union = UnionFS([])
        union.mknod("/p", stat.S_IFIFO | 0o666)
        union.mknod("/c", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        assert stat.S_ISFIFO(union.lstat("/p").st_mode) and stat.S_IMODE(union.lstat("/p").st_mode) == 0o644
        st = union.stat("/c")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3) and st.st_size == 0
        calls: list[tuple[Callable[[], None], int]] = [
            (lambda: union.mknod("/p", stat.S_IFIFO), errno.EEXIST),
            (lambda: union.mknod("/w", stat.S_IFCHR, 0), errno.EPERM),  # ovl_mknod: no whiteouts
            (lambda: union.mknod("/nope/x", stat.S_IFIFO), errno.ENOENT),
            (lambda: union.truncate("/p", 0), errno.EINVAL),
        ]
        for call, code in calls:
            with pytest.raises(OSError) as info:
                call()
            assert info.value.errno == code
        with pytest.raises(UnsupportedCommandError):
            union.open("/p", os.O_RDONLY)  # it would block: the model runs one process at a time

    def test_lower_special_files_copy_up_and_white_out(self) -> None:
        union = UnionFS([special_layer()])
        union.chmod("/dev/null", 0o600)  # a copy-up of the node, not of any content
        union.unlink("/run/pipe")
        assert union.upper["dev/null"] == CharDevice(1, 3, mode=0o600, mtime_ns=6 * 10**9)
        assert isinstance(union.upper["run/pipe"], Whiteout)

    def test_mkfifo_and_mknod_applets(self) -> None:
        union = UnionFS([])
        code, out, err = shell(union, "echo before; mkfifo /p; mknod /c c 1 3; mknod -m 600 /b b 8 0; "
                                      "mknod /u u 4 1; mknod -m 4777 /q p; ls -l /c; echo after")
        assert (code, err) == (0, "")
        assert out.startswith("before\ncrw-r--r--    1 0        0           1,   3 ") and out.endswith("after\n")
        fifo, block = union.upper["p"], union.upper["b"]
        assert isinstance(fifo, Fifo) and fifo.mode == 0o644
        assert isinstance(block, BlockDevice) and block.mode == 0o600
        assert isinstance(union.upper["u"], CharDevice)
        assert union.upper["q"].mode == 0o4777  # type: ignore[attr-defined]  # -m is exact (busybox umask(0))

    @pytest.mark.parametrize(("script", "message"), [
        ("mkfifo /p; mkfifo /p", "mkfifo: /p: File exists\n"),
        ("mknod /c c 0 0", "mknod: /c: Operation not permitted\n"),
        ("mknod /c c 5000 1", "mknod: number 5000 is not in 0..4095 range\n"),
        ("mknod /c c 1 2000000", "mknod: number 2000000 is not in 0..1048575 range\n"),
        ("mknod /c c a 1", "mknod: invalid number 'a'\n"),
        ("mknod -m zz /c p", "mknod: /c: Invalid argument\n"),
        ("mkfifo -m zz /c", "mkfifo: /c: Invalid argument\n"),
        ("mknod /nope/c p", "mknod: /nope/c: No such file or directory\n"),
    ])
    def test_applet_errors_as_busybox_prints_them(self, script: str, message: str) -> None:
        assert shell(UnionFS([]), script) == (1, "", message)

    @pytest.mark.parametrize("script", ["mknod /x p 1 2", "mknod /x q", "mknod /x c 1", "mkfifo", "mknod"])
    def test_usage_errors(self, script: str) -> None:
        code, out, err = shell(UnionFS([]), script)
        assert code == 1 and out == "" and "Usage: mk" in err

    def test_devices_are_for_root_only(self) -> None:
        union = UnionFS([])
        code, _, err = shell(union, "mkfifo /p && mknod /c c 1 3", uid=1000)
        assert (code, err) == (1, "mknod: /c: Operation not permitted\n")  # no CAP_MKNOD
        assert union.upper.paths() == ["p"] and union.upper["p"].uid == 1000  # type: ignore[attr-defined]


# -- the engine: diff, commit, save and load ------------------------------------------------


SCRIPT = "echo before; mkfifo /tmp/p; mknod /tmp/null c 1 3; mknod /tmp/sda b 8 0; echo after"


def test_diff_commit_save_load_in_the_model(tmp_path: Path) -> None:
    engine: Any = sim.connect("sim")
    info = engine.create("busybox", ["sh", "-c", SCRIPT])
    result = engine.start(info.id)
    assert (result.exit_code, result.stdout, result.warnings) == (0, b"before\nafter\n", ())
    changes = engine.diff(info.id)
    for path in ("/tmp/p", "/tmp/null", "/tmp/sda"):
        assert Change(path, ChangeKind.ADDED) in changes
    image = engine.commit(info.id, "special:1")
    engine.save(["special:1"], tmp_path / "image.tar")

    fresh: Any = sim.connect("sim")
    fresh.load(tmp_path / "image.tar")
    assert fresh.inspect_image("special:1").id == image.id  # same bytes, same ImageID
    top = fresh._layers(fresh._image("special:1"))[-1]
    assert top["tmp/p"] == Fifo(mode=0o644, mtime_ns=top["tmp/p"].mtime_ns)
    assert isinstance(top["tmp/null"], CharDevice) and top["tmp/null"].rdev == os.makedev(1, 3)
    assert isinstance(top["tmp/sda"], BlockDevice)

    # In a container of that image: changed (chmod: copy-up) and deleted, as docker diff shows them.
    second = fresh.create("special:1", ["sh", "-c", "chmod 600 /tmp/null; rm /tmp/p /tmp/sda; ls -l /tmp/null"])
    out = fresh.start(second.id)
    assert out.exit_code == 0 and out.stdout.startswith(b"crw-------")
    assert {str(c) for c in fresh.diff(second.id)} >= {"C /tmp/null", "D /tmp/p", "D /tmp/sda"}


def test_a_layer_problem_never_eats_the_output(tmp_path: Path) -> None:
    """Design: the run's result comes back whole; the problem comes with it as a warning, the
    container keeps its state, and what needs the layer (commit; diff after a restart) raises."""
    engine: Any = sim.connect("sim", state_dir=str(tmp_path / "state"))
    info = engine.create("busybox", ["sh", "-c", "echo out; echo err >&2; touch /tmp/.wh.x; exit 3"])
    result = engine.start(info.id)
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    assert len(result.warnings) == 1 and ".wh." in result.warnings[0]
    assert engine.containers()[0].state == "exited" and engine.logs(info.id) == b"out\nerr\n"
    assert "A /tmp/.wh.x" in {str(c) for c in engine.diff(info.id)}  # the live layer is still readable
    with pytest.raises(LayerFormatError, match=".wh."):
        engine.commit(info.id, "bad:1")
    engine.close()
    again: Any = sim.connect("sim", state_dir=str(tmp_path / "state"))
    with pytest.raises(LayerFormatError, match="could not be saved"):
        again.diff(info.id)  # not the stale tar's contents
    assert again.containers()[0].exit_code == 3
    again.remove(info.id)


def test_an_unreadable_upper_layer_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine: Any = sim.connect("sim", state_dir=str(tmp_path / "state"))
    info = engine.create("busybox", ["sh", "-c", "echo before; echo after"])

    def unreadable(self: UnionFS) -> Layer:
        raise UnsupportedEntryError("/tmp/x: file type 0o170000 entries are not represented by the model")

    monkeypatch.setattr(UnionFS, "upper", property(unreadable))
    result = engine.start(info.id)
    assert (result.exit_code, result.stdout) == (0, b"before\nafter\n")
    assert result.warnings and "not represented" in result.warnings[0]
    assert engine.containers()[0].upper_size == 0  # ps still works
    with pytest.raises(UnsupportedEntryError):
        engine.diff(info.id)
    monkeypatch.undo()
    engine.remove(info.id)


# -- the kernel -------------------------------------------------------------------------------


@pytest.fixture(params=["default", "rootless"])
def real_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The kernel as this user gets it, and from a user namespace (the rootless helper reads the upper)."""
    rootless = True if request.param == "rootless" else None
    engine: Any = require_real(rootless=rootless, state_dir=str(tmp_path_factory.mktemp("state")))
    try:
        yield engine
    finally:
        engine.close()
        assert list(engine.journal.records()) == [], "a journal record is left"


@pytest.mark.real
def test_mkfifo_on_the_kernel_keeps_the_output(real_engine: Any) -> None:
    info = real_engine.create("busybox", ["sh", "-c", "echo before; mkfifo /tmp/p; echo after"])
    result = real_engine.start(info.id)
    assert (result.exit_code, result.stdout, result.stderr, result.warnings) == (0, b"before\nafter\n", b"", ())
    assert Change("/tmp/p", ChangeKind.ADDED) in real_engine.diff(info.id)
    image = real_engine.commit(info.id, "fifo:1")
    top = real_engine._layers(real_engine._image("fifo:1"))[-1]
    assert isinstance(top["tmp/p"], Fifo)
    out = real_engine.run(image.id, ["sh", "-c", "test -p /tmp/p && echo still a fifo"], remove=True)
    assert out.stdout == b"still a fifo\n"


@pytest.mark.real
def test_the_issue_command_through_the_cli(tmp_path: Path) -> None:
    probe: Any = require_real(state_dir=str(tmp_path / "probe"))
    probe.close()  # skip (or fail in CI) without the backend
    env = {**os.environ, "LAYERLAB_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run([sys.executable, "-m", "sim.cli", "run", "--backend", "real", "--diff", "busybox", "sh", "-c",
                           "echo before; mkfifo /tmp/p; echo after"], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"before\nafter\n"
    assert b"A /tmp/p" in done.stderr.splitlines()


@pytest.mark.real
def test_a_layer_problem_on_the_kernel_keeps_the_output(real_engine: Any) -> None:
    info = real_engine.create("busybox", ["sh", "-c", "echo out; touch /tmp/.wh.x; exit 3"])
    result = real_engine.start(info.id)
    assert (result.exit_code, result.stdout) == (3, b"out\n")
    assert result.warnings and ".wh." in result.warnings[0]
    with pytest.raises(LayerFormatError):
        real_engine.commit(info.id, "bad:1")


@pytest.mark.real
@pytest.mark.root_only
def test_mknod_char_1_3_as_root(real_engine: Any) -> None:
    # The node is made (CAP_MKNOD), but the container root is nodev: opening it is refused, so no
    # node made in a container reaches a host device (docs/runtime.md).
    info = real_engine.create("busybox", ["sh", "-c",
                                          "mknod /tmp/null c 1 3 && echo made && { echo hi 2>/dev/null >/tmp/null || echo refused; }"])
    result = real_engine.start(info.id)
    if real_engine.id_maps.user_namespace:
        # Root of a user namespace has no CAP_MKNOD over the host: the kernel says EPERM, and
        # the output still comes back.
        assert (result.exit_code, result.stderr, result.warnings) == (
            1, b"mknod: /tmp/null: Operation not permitted\n", ())
        assert "/tmp/null" not in {c.path for c in real_engine.diff(info.id)}
        return
    assert (result.exit_code, result.stdout, result.warnings) == (0, b"made\nrefused\n", ())
    assert Change("/tmp/null", ChangeKind.ADDED) in real_engine.diff(info.id)
    real_engine.commit(info.id, "null:1")
    top = real_engine._layers(real_engine._image("null:1"))[-1]
    assert top["tmp/null"] == CharDevice(1, 3, mode=0o644, mtime_ns=top["tmp/null"].mtime_ns)
    out = real_engine.run("null:1", ["ls", "-l", "/tmp/null"], remove=True)
    assert out.stdout.startswith(b"crw-r--r--") and b"1,   3" in out.stdout


@pytest.mark.real
def test_rootless_mount_makes_lower_devices_empty_files(tmp_path_factory: pytest.TempPathFactory) -> None:
    engine: Any = require_real(rootless=True, state_dir=str(tmp_path_factory.mktemp("rootless")))
    try:
        layer = Layer()  # owned by root only: a single-id mapping cannot hold other owners
        layer.add_device("dev/null", 1, 3, mode=0o666)
        layer.add_fifo("run/pipe")
        layer.add_whiteout("dev/gone")
        with engine.union([layer.freeze()]) as mount:
            null = mount.lstat("/dev/null")
            assert stat.S_ISREG(null.st_mode) and null.st_size == 0 and stat.S_IMODE(null.st_mode) == 0o666
            assert stat.S_ISFIFO(mount.lstat("/run/pipe").st_mode)
            with pytest.raises(FileNotFoundError):
                mount.lstat("/dev/gone")  # the whiteout still deletes, it never became a device
    finally:
        engine.close()

"""One abstract suite, one fixture class per backend: the reference's edge cases and the os-shaped errors.

Every test talks only to the :class:`sim.interface.UnionMount` interface, so
it runs unchanged on the model, on a kernel mount as root and on a kernel
mount from a user namespace.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import sim
from sim.errors import FrozenLayerError
from sim.interface import Engine, UnionMount
from sim.layers.layer import Directory, Layer, Whiteout
from tests.backends import RealBackend, RootlessBackend, SimBackend


def layer(*entries: tuple[str, ...]) -> Layer:
    """Tiny layer language: ("f", path, data) ("d", path) ("o", path) opaque ("l", path, target) ("w", path) ("h", path, target)."""
    out = Layer()
    for kind, path, *rest in entries:
        if kind == "f":
            out.add_file(path, rest[0].encode() if rest else b"", mtime_ns=1_600_000_000_000_000_000)
        elif kind in ("d", "o"):
            out.add_dir(path, opaque=kind == "o", mode=int(rest[0]) if rest else 0o755)
        elif kind == "l":
            out.add_symlink(path, rest[0])
        elif kind == "w":
            out.add_whiteout(path)
        elif kind == "h":
            out.add_hardlink(path, rest[0])
    return out.freeze()


def errno_of(call) -> int | None:  # type: ignore[no-untyped-def]
    try:
        call()
    except OSError as exc:
        return exc.errno
    return None


class UnionSuite:
    engine: Engine
    rootless_kernel = os.geteuid() != 0  # the real backend is rootless for an unprivileged user

    def mount(self, engine: Engine, *layers: Layer, **opts: bool) -> UnionMount:
        return engine.union(list(layers), **opts)

    # -- section 8 of the reference ---------------------------------------------------

    def test_deleted_then_recreated_across_layers(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "a", "old")), layer(("w", "a")), layer(("f", "a", "new"))) as fs:
            assert fs.read_bytes("/a") == b"new"

    def test_rm_then_recreate_leaves_only_the_file_in_upper(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "a", "old"))) as fs:
            fs.unlink("/a")
            fs.write_bytes("/a", b"new\n")
            upper = fs.upper
            assert upper.paths() == ["a"] and upper["a"].kind == "file"

    def test_rm_rf_then_mkdir_makes_an_opaque_directory(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "d/old"))) as fs:
            fs.unlink("/d/old")
            fs.rmdir("/d")
            fs.mkdir("/d")
            fs.write_bytes("/d/n", b"")
            upper = fs.upper
            assert upper.paths() == ["d", "d/n"]
            assert isinstance(upper["d"], Directory) and upper["d"].opaque
            assert sorted(fs.listdir("/d")) == ["n"]
            names = [m for m in _tar_names(upper)]
            assert names == ["d", "d/.wh..wh..opq", "d/n"]

    def test_whiteout_of_a_missing_name_has_no_effect(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "a")), layer(("w", "zzz"))) as fs:
            assert sorted(fs.listdir("/")) == ["a"]

    def test_file_then_directory_across_layers(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "x")), layer(("f", "x/y"))) as fs:
            assert stat.S_ISDIR(fs.stat("/x").st_mode) and fs.listdir("/x") == ["y"]

    def test_dir_file_dir(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "d/a"), ("f", "d/b")), layer(("f", "d")), layer(("f", "d/c"))) as fs:
            assert fs.listdir("/d") == ["c"]

    def test_dir_over_a_middle_whiteout(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "d/old")), layer(("w", "d")), layer(("f", "d/new"))) as fs:
            assert fs.listdir("/d") == ["new"]

    def test_implied_parent_mode_is_the_higher_layers(self, engine: Engine) -> None:
        with self.mount(engine, layer(("d", "etc", 0o700)), layer(("f", "etc/f"))) as fs:
            assert stat.S_IMODE(fs.stat("/etc").st_mode) == 0o755  # documented choice: overlay form

    def test_directory_hides_a_lower_symlink_in_its_place(self, engine: Engine) -> None:
        with self.mount(engine, layer(("d", "usr/lib"), ("l", "lib", "usr/lib")), layer(("f", "lib/x"))) as fs:
            assert stat.S_ISDIR(fs.lstat("/lib").st_mode)
            assert fs.listdir("/usr/lib") == []

    def test_creating_through_a_symlink_to_name_slash_is_eisdir(self, engine: Engine) -> None:
        """open(O_CREAT) through a final symlink whose body ends in "/" is O_CREAT on "name/":
        EISDIR whatever the name is, as the kernel's last-component rule says."""
        creat = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        with self.mount(engine, layer(("f", "a"), ("l", "b", "a/"), ("l", "c", "nope/"), ("l", "d", "x/y/"))) as fs:
            assert errno_of(lambda: fs.open("/b", creat)) == errno.EISDIR
            assert errno_of(lambda: fs.open("/c", creat)) == errno.EISDIR
            assert errno_of(lambda: fs.open("/d", creat)) == errno.ENOENT  # the walk to x fails first
            assert errno_of(lambda: fs.open("/b", os.O_RDONLY)) == errno.ENOTDIR  # no O_CREAT: a/ is not a dir

    def test_rename_lower_dir_is_exdev_without_redirects(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "d/f"))) as fs:
            assert errno_of(lambda: fs.rename("/d", "/e")) == errno.EXDEV

    def test_rename_lower_dir_with_redirect_dir(self, engine: Engine) -> None:
        if self.rootless_kernel:  # the kernel refuses redirect_dir=on with userxattr: a typed error says so
            with pytest.raises(sim.MountError, match="redirect_dir"):
                self.mount(engine, layer(("f", "d/f")), redirect_dir=True)
            return
        with self.mount(engine, layer(("f", "d/f", "data")), redirect_dir=True) as fs:
            fs.rename("/d", "/e")
            assert fs.read_bytes("/e/f") == b"data"
            assert fs.listdir("/") == ["e"]
            upper = fs.upper
            assert isinstance(upper["e"], Directory) and upper["e"].redirect == "d"
            assert isinstance(upper["d"], Whiteout)

    def test_rename_lower_file_leaves_a_whiteout(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "a", "x"))) as fs:
            fs.rename("/a", "/b")
            upper = fs.upper
            assert isinstance(upper["a"], Whiteout) and upper["b"].kind == "file"
            assert fs.read_bytes("/b") == b"x"

    def test_copy_up_breaks_hard_links_without_index(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "a", "same"), ("h", "b", "a"))) as fs:
            assert fs.stat("/a").st_nlink == 2
            fs.write_bytes("/a", b"changed")
            assert fs.read_bytes("/b") == b"same"
            assert fs.stat("/a").st_nlink == 1

    def test_chmod_copies_up_and_keeps_mtime(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "a", "x"))) as fs:
            before = fs.stat("/a").st_mtime_ns
            fs.chmod("/a", 0o600)
            entry = fs.upper["a"]
            assert entry.kind == "file" and entry.mode == 0o600 and entry.mtime_ns == before  # type: ignore[attr-defined]

    def test_open_rdwr_without_writing_copies_up(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "a", "x"))) as fs:
            fs.close(fs.open("/a", os.O_RDWR))
            assert fs.upper.paths() == ["a"]

    def test_reading_never_copies_up(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "d/a", "x"))) as fs:
            assert fs.read_bytes("/d/a") == b"x"
            fs.stat("/d/a")
            fs.listdir("/d")
            assert fs.upper.paths() == []

    def test_rmdir_of_merged_dir_with_visible_children(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "d/a")), layer(("f", "d/b"))) as fs:
            assert errno_of(lambda: fs.rmdir("/d")) == errno.ENOTEMPTY
            fs.unlink("/d/a")
            fs.unlink("/d/b")
            fs.rmdir("/d")
            assert isinstance(fs.upper["d"], Whiteout) and fs.upper.paths() == ["d"]

    def test_listdir_is_compared_as_a_set(self, engine: Engine) -> None:
        with self.mount(engine, layer(*[("f", n) for n in "zyxabc"])) as fs:
            assert set(fs.listdir("/")) == set("zyxabc")

    def test_whiteout_still_costs_bytes_below(self, engine: Engine) -> None:
        base = layer(("f", "big", "x" * 10_000))
        with self.mount(engine, base, layer(("w", "big"))) as fs:
            assert fs.listdir("/") == []
            assert base.size == 10_000

    # -- confinement ------------------------------------------------------------------

    def test_symlinks_never_leave_the_union_root(self, engine: Engine, tmp_path: Path) -> None:
        victim = tmp_path / "victim"
        victim.write_text("host secret")
        layers = layer(("l", "passwd", "/etc/passwd"), ("l", "up", "../../../../../../.."), ("l", "abs", str(victim)),
                       ("l", "etcdir", "/etc"))
        with self.mount(engine, layers) as fs:
            for path in ("/passwd", "/up/etc/passwd", "/abs", "/etcdir/passwd", "/../../etc/passwd"):
                assert errno_of(lambda: fs.read_bytes(path)) == errno.ENOENT, path
            # Writing through the link resolves inside the union, where the host path's parents do not exist.
            assert errno_of(lambda: fs.write_bytes("/abs", b"escaped?")) == errno.ENOENT
            fs.mkdir("/tmp")
            fs.symlink("/tmp/created", "/planted")
            fs.write_bytes("/planted", b"inside")  # a dangling link is created at its in-union target
            assert fs.read_bytes("/tmp/created") == b"inside"
            assert victim.read_text() == "host secret" and not Path("/tmp/created").exists()

    def test_trailing_slash_follows_links_inside_the_root_only(self, engine: Engine, tmp_path: Path) -> None:
        host_dir = tmp_path / "hostdir"
        host_dir.mkdir()
        os.utime(host_dir, ns=(1, 1))
        with self.mount(engine, layer(("l", "h", str(host_dir)), ("l", "self", "/self"))) as fs:
            assert errno_of(lambda: fs.readlink("/h/")) == errno.ENOENT
            assert errno_of(lambda: fs.utime("/h/", ns=(5, 5), follow_symlinks=False)) == errno.ENOENT
            assert errno_of(lambda: fs.link("/h/", "/x", follow_symlinks=False)) == errno.ENOENT
            assert errno_of(lambda: fs.readlink("/self/")) == errno.ELOOP
        assert host_dir.stat().st_mtime_ns == 1

    # -- os-shaped errors ---------------------------------------------------------------

    @pytest.mark.parametrize(
        "call, code",
        [
            (lambda fs: fs.stat("/nope"), errno.ENOENT),
            (lambda fs: fs.stat(""), errno.ENOENT),
            (lambda fs: fs.stat("/f/x"), errno.ENOTDIR),
            (lambda fs: fs.listdir("/f"), errno.ENOTDIR),
            (lambda fs: fs.mkdir("/d"), errno.EEXIST),
            (lambda fs: fs.mkdir("/nope/x"), errno.ENOENT),
            (lambda fs: fs.rmdir("/f"), errno.ENOTDIR),
            (lambda fs: fs.rmdir("/d"), errno.ENOTEMPTY),
            (lambda fs: fs.rmdir("/"), errno.EBUSY),
            (lambda fs: fs.unlink("/d"), errno.EISDIR),
            (lambda fs: fs.unlink("/nope"), errno.ENOENT),
            (lambda fs: fs.open("/d", os.O_WRONLY), errno.EISDIR),
            (lambda fs: fs.open("/f", os.O_RDONLY | os.O_DIRECTORY), errno.ENOTDIR),
            (lambda fs: fs.open("/f", os.O_WRONLY | os.O_CREAT | os.O_EXCL), errno.EEXIST),
            (lambda fs: fs.open("/loop", os.O_RDONLY), errno.ELOOP),
            (lambda fs: fs.open("/l", os.O_RDONLY | os.O_NOFOLLOW), errno.ELOOP),
            (lambda fs: fs.readlink("/f"), errno.EINVAL),
            (lambda fs: fs.rename("/d", "/d/sub/x"), errno.EINVAL),
            (lambda fs: fs.rename("/f", "/d"), errno.EISDIR),
            (lambda fs: fs.link("/d", "/d2"), errno.EPERM),
            (lambda fs: fs.link("/f", "/l"), errno.EEXIST),
            (lambda fs: fs.symlink("x", "/f"), errno.EEXIST),
            (lambda fs: fs.truncate("/d", 0), errno.EISDIR),
            (lambda fs: fs.read(999, 1), errno.EBADF),
            (lambda fs: fs.close(999), errno.EBADF),
        ],
    )
    def test_errors_carry_the_kernels_errno(self, engine: Engine, call, code: int) -> None:  # type: ignore[no-untyped-def]
        base = layer(("f", "f", "x"), ("d", "d"), ("f", "d/sub/y"), ("l", "l", "f"), ("l", "loop", "loop"))
        with self.mount(engine, base) as fs:
            assert errno_of(lambda: call(fs)) == code
            assert fs.upper.paths() == []  # a refused call changes nothing

    def test_descriptor_io(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "f", "hello"))) as fs:
            fd = fs.open("/f", os.O_RDWR | os.O_APPEND)
            assert fs.read(fd, 2) == b"he"
            assert fs.write(fd, b"!") == 1
            fs.close(fd)
            assert fs.read_bytes("/f") == b"hello!"
            ro = fs.open("/f", os.O_RDONLY)
            assert errno_of(lambda: fs.write(ro, b"x")) == errno.EBADF
            fs.close(ro)

    def test_index_keeps_hard_links_together(self, engine: Engine) -> None:
        if self.rootless_kernel:  # the kernel would fall back to index=off: a typed error says so
            with pytest.raises(sim.MountError, match="index=off"):
                self.mount(engine, layer(("f", "a")), index=True)
            return
        with self.mount(engine, layer(("f", "a", "same"), ("h", "b", "a")), index=True) as fs:
            fs.write_bytes("/a", b"changed")
            assert fs.read_bytes("/b") == b"changed"
            assert fs.stat("/b").st_nlink == 2
            fs.unlink("/a")
            assert fs.stat("/b").st_nlink == 1

    def test_deep_stacks_mount_and_the_top_layer_wins(self, engine: Engine) -> None:
        stack = [layer(("f", "same", f"layer {i}"), ("f", f"only{i}")) for i in range(200)]
        with self.mount(engine, *stack) as fs:
            assert fs.read_bytes("/same") == b"layer 199"
            assert len(fs.listdir("/")) == 201

    def test_frozen_upper_is_refused(self, engine: Engine) -> None:
        with pytest.raises(FrozenLayerError):
            engine.union([layer(("f", "a"))], Layer().freeze())

    def test_existing_upper_layer_is_used(self, engine: Engine) -> None:
        upper = Layer()
        upper.add_file("mine", b"kept")
        upper.add_whiteout("a")
        with engine.union([layer(("f", "a"))], upper) as fs:
            assert fs.listdir("/") == ["mine"]


def _tar_names(upper: Layer) -> list[str]:
    import io
    import tarfile

    data = upper.tar_bytes()
    return tarfile.open(fileobj=io.BytesIO(data)).getnames()


class TestSimUnion(UnionSuite, SimBackend):
    def test_events_trace_copy_up_whiteout_opaque(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "d/a", "x")), layer(("f", "b"))) as fs:
            fs.close(fs.open("/d/a", os.O_RDWR))
            fs.unlink("/b")
            fs.unlink("/d/a")
            fs.rmdir("/d")
            fs.mkdir("/d")
            kinds = [(e.kind.value, e.path, e.layer) for e in fs.events]
            assert ("copy-up", "d/a", 0) in kinds and ("whiteout", "b", 1) in kinds
            assert any(k == "opaque" and p == "d" for k, p, _ in kinds)


@pytest.mark.real
class TestKernelUnion(UnionSuite, RealBackend):
    @pytest.mark.root_only
    def test_nothing_is_left_mounted(self, engine: Engine) -> None:
        before = Path("/proc/self/mountinfo").read_text().count(" overlay ")
        with self.mount(engine, layer(("f", "a"))) as fs:
            fs.open("/a", os.O_RDONLY)  # left open on purpose: unmount closes it
            assert Path("/proc/self/mountinfo").read_text().count(" overlay ") == before + 1
        assert Path("/proc/self/mountinfo").read_text().count(" overlay ") == before

    def test_upper_holds_a_char_0_0_whiteout_on_disk(self, engine: Engine) -> None:
        with self.mount(engine, layer(("f", "a"))) as fs:
            fs.unlink("/a")
            st = os.lstat(Path(fs.upper_dir) / "a")  # type: ignore[attr-defined]
            assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


@pytest.mark.real
class TestRootlessKernelUnion(UnionSuite, RootlessBackend):
    rootless_kernel = True


@pytest.mark.real
@pytest.mark.root_only
def test_unprivileged_user_mounts_through_a_user_namespace() -> None:
    """A real unprivileged uid (65534) runs the rootless mount and gets the model's answer."""
    import shutil
    import tempfile

    from tests.backends import require_real

    require_real(rootless=False)  # we need root to become somebody else
    tmp_path = Path(tempfile.mkdtemp(prefix="layerlab-unpriv-"))
    request_cleanup = shutil.rmtree
    script = tmp_path / "probe.py"
    script.write_text(
        "import os, sim\n"
        "L = sim.Layer(); L.add_file('a', b'x'); L.add_dir('d'); L.add_file('d/f', b'y'); L.freeze()\n"
        "out = []\n"
        "for backend in ('sim', 'real'):\n"
        "    eng = sim.connect(backend, **({'rootless': True} if backend == 'real' else {}))\n"
        "    with eng.union([L]) as fs:\n"
        "        fs.unlink('/a'); fs.mkdir('/d/n'); fs.close(fs.open('/d/f', os.O_RDWR))\n"
        "        out.append((sorted(fs.listdir('/')), sorted(fs.listdir('/d')), fs.upper.paths()))\n"
        "print(os.getuid(), out[0] == out[1], out[1])\n"
    )
    os.chmod(tmp_path, 0o755)
    os.chmod(script, 0o644)
    (tmp_path / "state").mkdir()
    os.chown(tmp_path / "state", 65534, 65534)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "LAYERLAB_STATE_DIR": str(tmp_path / "state")}
    run = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, str(script)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    request_cleanup(tmp_path, ignore_errors=True)
    assert run.returncode == 0, run.stderr
    uid, same, _ = run.stdout.split(" ", 2)
    assert uid == "65534" and same == "True", run.stdout


def test_kernel_layer_order_is_flipped_in_one_place() -> None:
    from realrt.layers.overlay import legacy_options, overlay_settings

    settings = overlay_settings(["/l/bottom", "/l/top"], "/u", "/w", sim.UnionOptions(), userxattr=False)
    assert [v for k, v in settings if k == "lowerdir+"] == ["/l/top", "/l/bottom"]
    assert legacy_options(settings) == (
        "lowerdir=/l/top:/l/bottom,upperdir=/u,workdir=/w,redirect_dir=off,index=off,metacopy=off,xino=off"
    )
    rootless = overlay_settings(["/l"], "/u", "/w", sim.UnionOptions(), userxattr=True)
    assert ("redirect_dir", "nofollow") in rootless and ("userxattr", None) in rootless

"""Volumes and binds over the union: writes under a mount point never reach the container layer."""

from __future__ import annotations

import errno
import os

import pytest

import sim
from sim.containers.mounts import MountedFS


def base() -> sim.Layer:
    layer = sim.Layer()
    layer.add_file("etc/motd", b"hi")
    layer.add_dir("data")
    layer.add_file("data/from-image", b"shadowed by the volume")
    layer.add_symlink("link-into-volume", "/data/file")
    layer.add_symlink("data-parent", "/data/..")
    return layer.freeze()


def container() -> tuple[MountedFS, sim.UnionFS, sim.UnionFS]:
    rootfs = sim.UnionFS([base()])
    volume = sim.UnionFS([])  # a volume is a plain writable tree: a union with nothing below
    return MountedFS(rootfs, {"/data": volume}), rootfs, volume


def test_writes_under_a_volume_never_enter_the_container_layer() -> None:
    fs, rootfs, volume = container()
    fs.write_bytes("/data/file", b"kept")
    fs.mkdir("/data/dir")
    assert rootfs.upper.paths() == []
    assert volume.upper.paths() == ["dir", "file"]
    assert set(fs.listdir("/data")) == {"dir", "file"}
    assert fs.read_bytes("/link-into-volume") == b"kept"  # a union symlink leads into the volume


def test_the_volume_hides_what_the_image_had_there() -> None:
    fs, _, _ = container()
    assert fs.listdir("/data") == []
    with pytest.raises(FileNotFoundError):
        fs.stat("/data/from-image")


def test_dotdot_climbs_out_of_the_mount() -> None:
    fs, _, _ = container()
    assert fs.read_bytes("/data/../etc/motd") == b"hi"
    assert set(fs.listdir("/data-parent")) >= {"etc", "data"}


def test_crossing_mounts_and_removing_mount_points() -> None:
    fs, _, _ = container()
    fs.write_bytes("/data/f", b"x")
    for call, code in [
        (lambda: fs.rename("/data/f", "/f"), errno.EXDEV),
        (lambda: fs.link("/etc/motd", "/data/motd"), errno.EXDEV),
        (lambda: fs.rmdir("/data"), errno.EBUSY),
        (lambda: fs.rename("/data", "/data2"), errno.EBUSY),
    ]:
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == code


def test_descriptors_route_to_the_owning_file_system() -> None:
    fs, rootfs, volume = container()
    fd = fs.open("/data/log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    fs.write(fd, b"line\n")
    fs.close(fd)
    assert volume.read_bytes("/log") == b"line\n" and rootfs.upper.paths() == []
    with pytest.raises(OSError) as info:
        fs.close(fd)
    assert info.value.errno == errno.EBADF


def test_bad_mount_points_are_refused() -> None:
    for point in ["/", "data", "/a/../b"]:
        with pytest.raises(ValueError):
            MountedFS(sim.UnionFS([]), {point: sim.UnionFS([])})

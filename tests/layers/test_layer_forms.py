"""Behaviour of :class:`sim.layers.layer.Layer`: building, freezing, hard links, digests and the two on-disk forms.

References are to ``/work/shared/reference/layer-semantics.md`` sections 2, 7 and 8.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import os
import pickle
import socket
import stat
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sim import EMPTY_LAYER_DIFF_ID, Digest, UnionFS, chain_id, chain_ids
from sim.errors import (
    FrozenLayerError,
    LayerFormatError,
    TargetNotEmptyError,
    UnsafeLayerError,
    UnsupportedEntryError,
)
from sim.interface import UnionMount
from sim.layers.layer import BlockDevice, CharDevice, Directory, Fifo, Layer, RegularFile, Whiteout
from tests.backends import require_real

CHAIN_VECTOR = "sha256:970a948bffa8de94d6e22d747ba8c95030e6e546909f98f54e99a13005e173a8"
SECOND = 1_000_000_000

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the overlay directory form needs root (mknod, chown, trusted.*)")


@pytest.fixture(autouse=True)
def _no_sde(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    yield


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    """A PAX tar written by Python's tarfile (another writer than ours, with record padding)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def member(name: str, data: bytes = b"", **fields: object) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, (data if info.isreg() else None)


def read(raw: bytes) -> Layer:
    return Layer.from_tar(io.BytesIO(raw))


def members_of(layer_or_raw: Layer | bytes) -> list[tarfile.TarInfo]:
    raw = layer_or_raw.tar_bytes() if isinstance(layer_or_raw, Layer) else layer_or_raw
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
        return archive.getmembers()


def sample_layer() -> Layer:
    layer = Layer()
    layer.add_dir("etc", mode=0o755, mtime_ns=5 * SECOND)
    layer.add_file("etc/passwd", b"root:x:0:0\n", mode=0o644, uid=0, gid=0, mtime_ns=7 * SECOND + 1)
    layer.add_hardlink("etc/passwd-", "etc/passwd")
    layer.add_symlink("bin", "usr/bin")
    layer.add_dir("var/cache", opaque=True)
    layer.add_file("var/cache/new", b"n", xattrs={"user.k": b"v"})
    layer.add_whiteout("tmp/old")
    return layer.freeze()


# -- building ------------------------------------------------------------------------


class TestBuilding:
    def test_missing_parents_are_implied_directories(self) -> None:
        layer = Layer()
        layer.add_file("a/b/c", b"x")
        for parent in ("a", "a/b"):
            entry = layer[parent]
            assert isinstance(entry, Directory) and entry.implied
            assert (entry.mode, entry.uid, entry.gid, entry.mtime_ns) == (0o755, 0, 0, 0)
        assert layer.paths() == ["a", "a/b", "a/b/c"]

    def test_explicit_directory_replaces_an_implied_one(self) -> None:
        layer = Layer()
        layer.add_file("a/f")
        explicit = layer.add_dir("a", mode=0o700, mtime_ns=3)
        assert layer["a"] is explicit and not explicit.implied
        assert layer.children("a") == ["f"]

    def test_paths_are_cleaned(self) -> None:
        layer = Layer()
        layer.add_file("./a//b/", b"x")
        assert "a/b" in layer

    @pytest.mark.parametrize("name", ["../x", "a/../../x", "a/..", "/etc/passwd", "//x", "a\x00b"])
    def test_escaping_paths_are_unsafe(self, name: str) -> None:
        with pytest.raises(UnsafeLayerError):
            Layer().add_file(name)

    @pytest.mark.parametrize("name", ["", ".", "./", "./."])
    def test_the_root_cannot_be_an_entry(self, name: str) -> None:
        with pytest.raises(LayerFormatError):
            Layer().add_file(name)

    @pytest.mark.parametrize(
        "first, second",
        [
            (lambda l: l.add_file("a"), lambda l: l.add_file("a")),
            (lambda l: l.add_file("a"), lambda l: l.add_dir("a")),
            (lambda l: l.add_dir("a"), lambda l: l.add_dir("./a/")),
            (lambda l: l.add_symlink("a", "b"), lambda l: l.add_file("a")),
            (lambda l: l.add_whiteout("a"), lambda l: l.add_whiteout("a")),
            (lambda l: l.add_file("a/x"), lambda l: l.add_file("a")),  # over an implied directory
        ],
    )
    def test_duplicate_entries_are_refused(self, first: Callable[[Layer], object], second: Callable[[Layer], object]) -> None:
        layer = Layer()
        first(layer)
        before = layer.items()
        with pytest.raises(LayerFormatError, match="duplicate"):
            second(layer)
        assert layer.items() == before

    def test_entry_below_a_symlink_is_unsafe(self) -> None:
        layer = Layer()
        layer.add_symlink("lib", "../../victim")
        with pytest.raises(UnsafeLayerError):
            layer.add_file("lib/x")
        with pytest.raises(UnsafeLayerError):
            layer.add_whiteout("lib/x")
        with pytest.raises(UnsafeLayerError):
            layer.add_dir("lib/sub/deeper")
        assert layer.paths() == ["lib"]

    def test_entry_below_a_file_is_refused(self) -> None:
        layer = Layer()
        layer.add_file("f")
        with pytest.raises(LayerFormatError, match="not a directory"):
            layer.add_file("f/x")
        assert layer.paths() == ["f"]

    def test_file_and_its_whiteout_are_refused_in_either_order(self) -> None:
        layer = Layer()
        layer.add_file("a")
        with pytest.raises(LayerFormatError):
            layer.add_whiteout("a")
        layer = Layer()
        layer.add_whiteout("a")
        with pytest.raises(LayerFormatError):
            layer.add_file("a")
        with pytest.raises(LayerFormatError, match="deletes"):
            layer.add_file("a/x")  # below its own whiteout
        layer = Layer()
        layer.add_file("d/x")
        with pytest.raises(LayerFormatError):
            layer.add_whiteout("d")  # a populated directory and its whiteout

    @pytest.mark.parametrize(
        "call",
        [
            lambda l: l.add_file(".wh.x"),
            lambda l: l.add_file("d/.wh..wh..opq"),
            lambda l: l.add_dir(".wh.x"),
            lambda l: l.add_symlink("d/.wh.x", "t"),
            lambda l: l.add_hardlink(".wh.x", "f"),
            lambda l: l.add_whiteout(".wh.x"),
        ],
    )
    def test_whiteout_names_are_reserved(self, call: Callable[[Layer], object]) -> None:
        layer = Layer()
        layer.add_file("f")
        with pytest.raises(LayerFormatError, match=r"\.wh\."):
            call(layer)
        assert layer.paths() == ["f"]

    def test_wh_prefix_on_a_parent_is_an_ordinary_name(self) -> None:
        layer = Layer()
        layer.add_file(".wh.etc/file", b"x")
        assert isinstance(layer[".wh.etc"], Directory)
        assert read(layer.freeze().tar_bytes()) == layer

    def test_whiteouts_and_opaque_directories_do_not_mix(self) -> None:
        layer = Layer()
        layer.add_dir("d", opaque=True)
        with pytest.raises(LayerFormatError, match="opaque"):
            layer.add_whiteout("d/x")
        layer = Layer()
        layer.add_whiteout("d/x")
        with pytest.raises(LayerFormatError, match="opaque"):
            layer.add_dir("d", opaque=True)

    def test_hardlink_targets_must_be_files_of_this_layer(self) -> None:
        layer = Layer()
        layer.add_dir("d")
        layer.add_symlink("s", "d")
        layer.add_whiteout("w")
        for target in ("missing", "d", "s", "w"):
            with pytest.raises(LayerFormatError):
                layer.add_hardlink("h", target)
        with pytest.raises(UnsafeLayerError):
            layer.add_hardlink("h", "../../etc/passwd")
        with pytest.raises(UnsafeLayerError):
            layer.add_hardlink("h", "/etc/passwd")
        assert "h" not in layer

    @pytest.mark.parametrize(
        "kwargs",
        [dict(mode=0o10000), dict(mode=-1), dict(uid=-1), dict(gid=-2)],
    )
    def test_metadata_ranges(self, kwargs: dict[str, int]) -> None:
        with pytest.raises(LayerFormatError):
            Layer().add_file("f", b"", **kwargs)  # type: ignore[arg-type]

    @pytest.mark.parametrize("target", ["", "a\x00b"])
    def test_symlink_targets_must_be_non_empty_without_nul(self, target: str) -> None:
        with pytest.raises(LayerFormatError):
            Layer().add_symlink("l", target)

    @pytest.mark.parametrize(
        "xattrs",
        [
            {"trusted.overlay.opaque": b"y"},
            {"user.overlay.redirect": b"/x"},
            {"trusted.overlay.metacopy": b""},
            {"noname": b"x"},
            {"user.": b"x"},
            {"user.big": b"x" * 65537},
        ],
    )
    def test_bad_xattrs_are_refused_and_leave_no_trace(self, xattrs: dict[str, bytes]) -> None:
        layer = Layer()
        with pytest.raises(LayerFormatError):
            layer.add_file("new/parent/f", xattrs=xattrs)
        with pytest.raises(LayerFormatError):
            layer.add_dir("new/dir", xattrs=xattrs)
        assert len(layer) == 0  # a refused call creates no implied parents either

    def test_layers_compare_by_value_and_link_shape(self) -> None:
        one, two, linked = Layer(), Layer(), Layer()
        for layer in (one, two):
            layer.add_file("a", b"x")
            layer.add_file("b", b"x")
        linked.add_file("a", b"x")
        linked.add_hardlink("b", "a")
        assert one == two
        assert one != linked  # same bytes, but two inodes rather than one
        assert one != Layer()


# -- freezing ------------------------------------------------------------------------


class TestFreezing:
    def test_freeze_returns_self_and_is_idempotent(self) -> None:
        layer = Layer()
        assert not layer.frozen
        assert layer.freeze() is layer and layer.freeze() is layer
        assert layer.frozen

    @pytest.mark.parametrize(
        "call",
        [
            lambda l: l.add_file("new"),
            lambda l: l.add_dir("new"),
            lambda l: l.add_symlink("new", "x"),
            lambda l: l.add_hardlink("new", "etc/passwd"),
            lambda l: l.add_whiteout("new"),
            lambda l: l._set("new", Whiteout()),
            lambda l: l._delete("bin"),
            lambda l: l._delete_tree("etc"),
        ],
    )
    def test_layer_mutations_raise(self, call: Callable[[Layer], object]) -> None:
        layer = sample_layer()
        before = layer.tar_bytes()
        with pytest.raises(FrozenLayerError):
            call(layer)
        assert layer.tar_bytes() == before

    @pytest.mark.parametrize(
        "path, mutate",
        [
            ("etc/passwd", lambda e: setattr(e, "mode", 0o777)),
            ("etc/passwd", lambda e: setattr(e, "uid", 1)),
            ("etc/passwd", lambda e: setattr(e, "gid", 1)),
            ("etc/passwd", lambda e: setattr(e, "mtime_ns", 1)),
            ("etc/passwd", lambda e: setattr(e, "data", b"pwned")),
            ("etc/passwd", lambda e: setattr(e, "xattrs", {})),
            ("etc/passwd", lambda e: e.buffer()),
            ("var/cache/new", lambda e: e.xattrs.__setitem__("user.k", b"w")),
            ("var/cache/new", lambda e: e.xattrs.__delitem__("user.k")),
            ("var/cache/new", lambda e: e.xattrs.clear()),
            ("var/cache/new", lambda e: e.xattrs.pop("user.k")),
            ("var/cache/new", lambda e: e.xattrs.popitem()),
            ("var/cache/new", lambda e: e.xattrs.setdefault("user.z", b"")),
            ("var/cache/new", lambda e: e.xattrs.update({"user.z": b""})),
            ("var/cache/new", lambda e: e.xattrs.__ior__({"user.z": b""})),
            ("var/cache", lambda e: setattr(e, "opaque", False)),
            ("var/cache", lambda e: setattr(e, "redirect", "/x")),
            ("bin", lambda e: setattr(e, "target", "/")),
            ("tmp/old", lambda e: setattr(e, "anything", 1)),
        ],
    )
    def test_entry_mutations_raise(self, path: str, mutate: Callable[[object], object]) -> None:
        layer = sample_layer()
        before = layer.tar_bytes()
        with pytest.raises(FrozenLayerError):
            mutate(layer[path])
        assert layer.tar_bytes() == before

    def test_in_place_or_on_xattrs_changes_nothing(self) -> None:
        layer = sample_layer()
        entry = layer["var/cache/new"]
        assert isinstance(entry, RegularFile)
        with pytest.raises(FrozenLayerError):
            entry.xattrs |= {"user.z": b"1"}
        assert entry.xattrs == {"user.k": b"v"}

    def test_a_buffer_taken_before_freezing_cannot_change_the_frozen_file(self) -> None:
        layer = Layer()
        entry = layer.add_file("f", b"abc")
        buffer = entry.buffer()
        buffer[0:1] = b"X"
        layer.freeze()
        buffer[0:1] = b"Y"  # the caller still holds the old bytearray
        assert entry.data == b"Xbc"

    def test_copies_of_frozen_entries_are_writable(self) -> None:
        layer = sample_layer()
        for path in ("etc/passwd", "bin", "tmp/old"):
            assert layer[path].copy() == layer[path]
        dir_copy = layer["var/cache"].copy()
        assert isinstance(dir_copy, Directory) and not dir_copy.opaque  # a copy-up is a plain directory
        dir_copy.mode = 0o700
        file_copy = layer["etc/passwd"].copy()
        assert isinstance(file_copy, RegularFile)
        file_copy.mode = 0o600
        file_copy.xattrs["user.n"] = b"1"
        file_copy.buffer()[0:4] = b"ROOT"
        assert layer["etc/passwd"].data.startswith(b"root")  # type: ignore[attr-defined]

    def test_pickled_frozen_layer_stays_frozen(self) -> None:
        layer = sample_layer()
        clone = pickle.loads(pickle.dumps(layer))
        assert clone == layer and clone.frozen
        assert clone.link_groups() == [["etc/passwd", "etc/passwd-"]]
        assert clone.nlink("etc/passwd") == 2 and clone.nlink("bin") == 1  # link counts survive the trip
        assert copy.deepcopy(layer).nlink("etc/passwd-") == 2
        with pytest.raises(FrozenLayerError):
            clone["var/cache/new"].xattrs["user.k"] = b"w"
        with pytest.raises(FrozenLayerError):
            clone.add_file("x")

    @pytest.mark.parametrize("duplicate", [copy.deepcopy, lambda layer: pickle.loads(pickle.dumps(layer))])
    def test_a_copied_writable_layer_serves_as_an_upper(self, duplicate: Callable[[Layer], Layer]) -> None:
        """A deep copy or an unpickled layer is a layer like any other: a union can write through it
        (its lookup cache keys on a change counter that the copy must carry too)."""
        upper = Layer()
        upper.add_file("kept", b"k")
        clone = duplicate(upper)
        fs = UnionFS([sample_layer()], clone)
        assert fs.read_bytes("/kept") == b"k" and fs.exists("/etc/passwd")
        fs.write_bytes("/new", b"n")
        fs.unlink("/kept")
        assert not fs.exists("/kept") and fs.read_bytes("/new") == b"n"
        assert "kept" not in clone and "new" in clone and "kept" in upper


# -- hard links and size ---------------------------------------------------------------


class TestHardLinks:
    def layer(self) -> Layer:
        layer = Layer()
        layer.add_file("a", b"12345")
        layer.add_hardlink("d/b", "a")
        layer.add_hardlink("c", "d/b")
        layer.add_file("other", b"xy")
        layer.add_dir("d/sub")
        return layer.freeze()

    def test_link_groups(self) -> None:
        layer = self.layer()
        assert layer.link_groups() == [["a", "c", "d/b"]]
        assert layer["a"] is layer["c"] is layer["d/b"]

    def test_nlink(self) -> None:
        layer = self.layer()
        assert [layer.nlink(p) for p in ("a", "c", "d/b", "other")] == [3, 3, 3, 1]
        assert layer.nlink("d") == 3  # ".", its name in the root, "sub/.."
        assert layer.nlink("") == 3  # the root: itself, "..", and d

    def test_size_counts_linked_content_once(self) -> None:
        assert self.layer().size == 5 + 2
        assert Layer().size == 0

    def test_tar_stores_later_names_as_type_1(self) -> None:
        infos = {m.name: m for m in members_of(self.layer())}
        assert infos["a"].type == tarfile.REGTYPE and infos["a"].size == 5
        for name in ("c", "d/b"):
            assert infos[name].type == tarfile.LNKTYPE and infos[name].linkname == "a" and infos[name].size == 0

    def test_tar_round_trip_keeps_the_links(self) -> None:
        back = read(self.layer().tar_bytes())
        assert back.link_groups() == [["a", "c", "d/b"]]
        assert back["a"] is back["c"]

    def test_hardlink_before_its_target_in_a_tar_is_refused(self) -> None:
        raw = tar_of(member("h", type=tarfile.LNKTYPE, linkname="f"), member("f", b"x"))
        with pytest.raises(LayerFormatError, match="missing"):
            read(raw)


# -- digests ---------------------------------------------------------------------------


class TestDigests:
    def test_empty_layer(self) -> None:
        assert Layer().tar_bytes() == b"\0" * 1024
        assert Layer().freeze().diff_id == EMPTY_LAYER_DIFF_ID
        assert EMPTY_LAYER_DIFF_ID == "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        assert read(b"\0" * 1024) == Layer()

    def test_chain_id_vector(self) -> None:
        assert chain_id(["sha256:a", "sha256:b"]) == CHAIN_VECTOR
        assert chain_ids(["sha256:a", "sha256:b"]) == ["sha256:a", CHAIN_VECTOR]
        assert chain_id([EMPTY_LAYER_DIFF_ID]) == EMPTY_LAYER_DIFF_ID
        third = "sha256:" + hashlib.sha256(f"{CHAIN_VECTOR} sha256:c".encode()).hexdigest()
        assert chain_id(["sha256:a", "sha256:b", "sha256:c"]) == third

    @pytest.mark.parametrize("bad", [[], ["nocolon"], ["sha256:a", "b"]])
    def test_chain_id_input_errors(self, bad: list[str]) -> None:
        with pytest.raises(LayerFormatError):
            chain_id(bad)

    def test_digest_validation(self) -> None:
        assert Digest(EMPTY_LAYER_DIFF_ID).short == "5f70bf18a086"
        for bad in ("sha256:ABC", "md5:" + "0" * 32, "sha256:" + "0" * 63):
            with pytest.raises(LayerFormatError):
                Digest(bad)

    def test_diff_id_is_sha256_of_the_uncompressed_tar(self) -> None:
        layer = sample_layer()
        assert layer.diff_id == "sha256:" + hashlib.sha256(layer.tar_bytes()).hexdigest()
        assert layer.diff_id != "sha256:" + hashlib.sha256(layer.tar_bytes(compression="gzip")).hexdigest()

    def test_diff_id_of_a_writable_layer_follows_its_changes(self) -> None:
        layer = Layer()
        empty = layer.diff_id
        layer.add_file("a")
        assert layer.diff_id != empty
        layer.freeze()
        assert layer.diff_id == read(layer.tar_bytes()).diff_id

    def test_diff_id_honours_source_date_epoch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        layer = Layer()
        layer.add_file("a", mtime_ns=2000 * SECOND)
        layer.freeze()
        plain = layer.diff_id
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000")
        clamped = layer.diff_id
        assert clamped != plain
        assert clamped == "sha256:" + hashlib.sha256(layer.tar_bytes(source_date_epoch=1000)).hexdigest()
        monkeypatch.delenv("SOURCE_DATE_EPOCH")
        assert layer.diff_id == plain


# -- tar form --------------------------------------------------------------------------


class TestTarForm:
    def test_entries_are_sorted_parents_first(self) -> None:
        layer = Layer()
        for name in ("z", "a-b", "a/b", "a/a", "m/n/o"):
            layer.add_file(name)
        names = [m.name for m in members_of(layer)]
        assert names == ["a/a", "a/b", "a-b", "m/n/o", "z"]  # implied parents are not written

    def test_whiteout_is_an_empty_0600_regular_file(self) -> None:
        layer = Layer()
        layer.add_whiteout("etc/shadow")
        (info,) = members_of(layer)
        assert info.name == "etc/.wh.shadow"
        assert (info.type, info.mode, info.size, info.mtime, info.uid, info.gid) == (tarfile.REGTYPE, 0o600, 0, 0, 0, 0)
        assert info.uname == info.gname == ""

    def test_opaque_directory_is_its_entry_then_the_marker(self) -> None:
        layer = Layer()
        layer.add_dir("d", opaque=True, mode=0o750)
        layer.add_file("d/n")
        infos = members_of(layer)
        assert [m.name for m in infos] == ["d", "d/.wh..wh..opq", "d/n"]
        marker = infos[1]
        assert (marker.type, marker.mode, marker.size, marker.mtime) == (tarfile.REGTYPE, 0o600, 0, 0)
        assert infos[0].isdir() and infos[0].mode == 0o750

    def test_marker_after_the_children_is_still_applied(self) -> None:
        """Edge case 3: the opaque marker hides the lower children wherever it stands in the tar."""
        raw = tar_of(member("d", type=tarfile.DIRTYPE, mode=0o755), member("d/new", b"n"), member("d/.wh..wh..opq"))
        upper = read(raw)
        assert isinstance(upper["d"], Directory) and upper["d"].opaque
        assert isinstance(upper["d/new"], RegularFile)
        lower = Layer()
        lower.add_file("d/old", b"o")
        union = UnionFS([lower.freeze(), upper])
        assert sorted(union.listdir("/d")) == ["new"]

    def test_marker_without_a_directory_entry_makes_an_implied_opaque_directory(self) -> None:
        layer = read(tar_of(member("d/.wh..wh..opq")))
        entry = layer["d"]
        assert isinstance(entry, Directory) and entry.opaque and entry.implied
        assert [m.name for m in members_of(layer)] == ["d/.wh..wh..opq"]

    def test_redundant_whiteouts_inside_an_opaque_directory_are_dropped(self) -> None:
        raw = tar_of(member("d", type=tarfile.DIRTYPE), member("d/.wh.gone"), member("d/.wh..wh..opq"))
        assert read(raw).paths() == ["d"]

    def test_pax_xattrs(self) -> None:
        layer = Layer()
        layer.add_file("f", xattrs={"user.b": b"\xff\x00bin", "user.a": b"text", "security.capability": b"\x01"})
        layer.add_dir("d", xattrs={"user.d": b""})
        infos = {m.name: m for m in members_of(layer)}
        assert infos["f"].pax_headers["SCHILY.xattr.user.a"] == "text"
        assert "SCHILY.xattr.security.capability" in infos["f"].pax_headers
        assert infos["d"].pax_headers["SCHILY.xattr.user.d"] == ""
        assert read(layer.tar_bytes()) == layer

    def test_nanosecond_mtimes(self) -> None:
        layer = Layer()
        times = {"s": 7 * SECOND, "ns": 7 * SECOND + 1, "half": 7 * SECOND + SECOND // 2, "neg": -4 * SECOND - SECOND // 2,
                 "neg_whole": -3 * SECOND, "far": 2**34 * SECOND + 9}
        for name, t in times.items():
            layer.add_file(name, mtime_ns=t)
        infos = {m.name: m for m in members_of(layer)}
        assert "mtime" not in infos["s"].pax_headers and infos["s"].mtime == 7
        assert infos["ns"].pax_headers["mtime"] == "7.000000001"
        assert infos["half"].pax_headers["mtime"] == "7.5"
        assert infos["neg"].pax_headers["mtime"] == "-4.5"
        back = read(layer.tar_bytes())
        assert {name: back[name].mtime_ns for name in times} == times  # type: ignore[attr-defined]

    @pytest.mark.parametrize("value", ["abc", "1e9", "1.2.3", "", " 5"])
    def test_malformed_pax_mtime_is_a_format_error(self, value: str) -> None:
        info, data = member("f")
        info.pax_headers = {"mtime": value}
        with pytest.raises(LayerFormatError, match="mtime"):
            read(tar_of((info, data)))

    def test_source_date_epoch_clamps(self, monkeypatch: pytest.MonkeyPatch) -> None:
        layer = Layer()
        layer.add_file("old", mtime_ns=500 * SECOND + 3)
        layer.add_file("new", mtime_ns=5000 * SECOND + 3)
        layer.add_dir("d", mtime_ns=9000 * SECOND)
        layer.add_symlink("l", "old", mtime_ns=9000 * SECOND)
        layer.freeze()
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000")
        back = read(layer.tar_bytes())
        assert back["old"].mtime_ns == 500 * SECOND + 3  # type: ignore[attr-defined]
        for name in ("new", "d", "l"):
            assert back[name].mtime_ns == 1000 * SECOND  # type: ignore[attr-defined]
        assert layer.tar_bytes() == layer.tar_bytes(source_date_epoch=1000)
        assert layer.tar_bytes(source_date_epoch=100) != layer.tar_bytes()  # explicit beats the environment
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "")
        assert read(layer.tar_bytes()) == layer  # empty means unset
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "soon")
        with pytest.raises(LayerFormatError, match="SOURCE_DATE_EPOCH"):
            layer.tar_bytes()

    def test_gzip_is_reproducible_and_readable(self) -> None:
        layer = sample_layer()
        blob = layer.tar_bytes(compression="gzip")
        assert blob[:2] == b"\x1f\x8b"
        assert blob[4:8] == b"\0\0\0\0"  # header mtime 0
        assert not blob[3] & 0x08  # no file name stored
        assert blob == sample_layer().tar_bytes(compression="gzip")
        assert gzip.decompress(blob) == layer.tar_bytes()
        assert read(blob) == layer
        assert read(gzip.compress(layer.tar_bytes(), mtime=123)) == layer  # any gzip writer

    def test_unknown_compression(self) -> None:
        with pytest.raises(LayerFormatError, match="compression"):
            sample_layer().tar_bytes(compression="zstd")  # type: ignore[arg-type]

    def test_corrupt_gzip_and_non_tar_input(self) -> None:
        blob = sample_layer().tar_bytes(compression="gzip")
        for raw in (blob[:40], b"\x1f\x8bnonsense", b"", b"hello world" * 100):
            with pytest.raises(LayerFormatError):
                read(raw)

    def test_truncated_or_corrupt_archives_are_refused(self) -> None:
        raw = tar_of(member("a", b"x" * 600), member("b", b"y"))
        for cut in (raw[:700], raw[:1536 + 100], raw[:2560]):
            with pytest.raises(LayerFormatError):
                read(cut)
        corrupt = bytearray(raw)
        corrupt[1536 + 100] ^= 0xFF  # inside the second member's header: tarfile alone would just stop there
        with pytest.raises(LayerFormatError, match="corrupt header"):
            read(bytes(corrupt))

    def test_root_entry_is_ignored(self) -> None:
        raw = tar_of(member("./", type=tarfile.DIRTYPE, mode=0o700), member("./a", b"x"))
        assert read(raw).paths() == ["a"]

    def test_opaque_marker_at_the_root_is_unsupported(self) -> None:
        with pytest.raises(UnsupportedEntryError, match="root"):
            read(tar_of(member("./.wh..wh..opq")))

    def test_metadata_round_trip(self) -> None:
        layer = Layer()
        layer.add_file("f", b"data", mode=0o4751, uid=2**22, gid=7, mtime_ns=3)
        layer.add_dir("d", mode=0o1777, uid=5, gid=2**31)
        layer.add_symlink("s", "/abs/target", uid=9, gid=9, mtime_ns=SECOND)
        layer.add_file("x" * 150 + "/" + "y" * 120, b"long")
        layer.add_file("é", b"utf-8")
        layer.freeze()
        assert read(layer.tar_bytes()) == layer
        assert read(layer.tar_bytes()).tar_bytes() == layer.tar_bytes()

    def test_v7_directory_and_gnu_format_are_read(self) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as archive:
            info = tarfile.TarInfo("n" * 200)
            info.size = 1
            archive.addfile(info, io.BytesIO(b"z"))
        assert read(buf.getvalue())["n" * 200].data == b"z"  # type: ignore[attr-defined]

    def test_redirects_cannot_be_written_as_a_tar(self) -> None:
        layer = Layer()
        renamed = Directory()
        renamed.redirect = "/old"
        layer._set("new", renamed)
        with pytest.raises(LayerFormatError, match="redirect"):
            layer.tar_bytes()
        out = io.BytesIO()
        with pytest.raises(LayerFormatError):
            layer.to_tar(out, compression="gzip")
        assert out.getvalue() == b""  # refused before the first byte

    def test_wh_named_entries_from_other_sources_cannot_be_written(self) -> None:
        """A container can create ".wh.x"; written as-is it would read back as a whiteout of "x"."""
        layer = Layer()
        layer._set(".wh.x", RegularFile(b"user data"))
        out = io.BytesIO()
        with pytest.raises(LayerFormatError, match=r"\.wh\."):
            layer.to_tar(out)
        assert out.getvalue() == b""


# -- overlay directory form ------------------------------------------------------------


@needs_root
class TestDirectoryForm:
    def test_markers_on_disk(self, tmp_path: Path) -> None:
        layer = sample_layer()
        target = tmp_path / "layer"
        layer.to_directory(target)
        st = os.lstat(target / "tmp" / "old")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        assert os.getxattr(target / "var" / "cache", "trusted.overlay.opaque") == b"y"
        assert os.readlink(target / "bin") == "usr/bin"
        assert os.stat(target / "etc" / "passwd").st_ino == os.stat(target / "etc" / "passwd-").st_ino
        st = os.stat(target / "etc" / "passwd")
        assert (stat.S_IMODE(st.st_mode), st.st_nlink, st.st_mtime_ns) == (0o644, 2, 7 * SECOND + 1)
        assert os.getxattr(target / "var" / "cache" / "new", "user.k") == b"v"
        assert stat.S_IMODE(os.stat(target / "var").st_mode) == 0o755  # implied parents: 0755 root mtime 0
        assert os.stat(target / "var").st_mtime_ns == 0
        assert Layer.from_directory(target) == layer

    def test_userxattr_markers(self, tmp_path: Path) -> None:
        layer = sample_layer()
        layer.to_directory(tmp_path / "u", userxattr=True)
        cache = tmp_path / "u" / "var" / "cache"
        assert os.getxattr(cache, "user.overlay.opaque") == b"y"
        assert "trusted.overlay.opaque" not in os.listxattr(cache)
        assert Layer.from_directory(tmp_path / "u") == layer

    def test_kernel_private_and_host_xattrs_are_dropped(self, tmp_path: Path) -> None:
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "sub").mkdir()
        os.setxattr(tmp_path / "d" / "sub", "trusted.overlay.origin", b"\x00fh")
        os.setxattr(tmp_path / "d" / "sub", "trusted.overlay.impure", b"y")
        os.setxattr(tmp_path / "d" / "sub", "user.keep", b"1")
        os.setxattr(tmp_path / "d" / "sub", "security.foo", b"label")
        entry = Layer.from_directory(tmp_path / "d")["sub"]
        assert isinstance(entry, Directory) and not entry.opaque
        assert entry.xattrs == {"user.keep": b"1"}

    def test_redirect_is_read_and_refused_by_the_tar_form(self, tmp_path: Path) -> None:
        (tmp_path / "d" / "new").mkdir(parents=True)
        os.setxattr(tmp_path / "d" / "new", "trusted.overlay.redirect", b"/old")
        layer = Layer.from_directory(tmp_path / "d")
        assert layer["new"].redirect == "/old"  # type: ignore[attr-defined]
        assert layer.has_redirects()
        with pytest.raises(LayerFormatError, match="redirect"):
            layer.tar_bytes()

    def test_a_shared_whiteout_inode_is_not_a_hard_link(self, tmp_path: Path) -> None:
        """Newer kernels hard-link one whiteout inode for every whiteout (nlink > 1)."""
        root = tmp_path / "upper"
        (root / "d").mkdir(parents=True)
        os.mknod(root / "a", stat.S_IFCHR, os.makedev(0, 0))
        os.link(root / "a", root / "b")
        os.link(root / "a", root / "d" / "c")
        assert os.lstat(root / "a").st_nlink == 3
        layer = Layer.from_directory(root)
        for path in ("a", "b", "d/c"):
            assert isinstance(layer[path], Whiteout)
        assert layer.link_groups() == []
        assert sorted(m.name for m in members_of(layer)) == [".wh.a", ".wh.b", "d", "d/.wh.c"]
        assert all(m.isreg() and m.size == 0 for m in members_of(layer) if ".wh." in m.name)

    def test_hard_links_are_read_by_inode(self, tmp_path: Path) -> None:
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "f").write_bytes(b"x")
        os.link(tmp_path / "d" / "f", tmp_path / "d" / "g")
        (tmp_path / "d" / "h").write_bytes(b"x")
        layer = Layer.from_directory(tmp_path / "d")
        assert layer.link_groups() == [["f", "g"]]
        assert layer.nlink("f") == 2 and layer.nlink("h") == 1

    def test_to_directory_refuses_a_non_empty_folder_and_writes_nothing(self, tmp_path: Path) -> None:
        target = tmp_path / "t"
        target.mkdir()
        (target / "keep").write_bytes(b"mine")
        os.utime(target / "keep", ns=(SECOND, SECOND))
        with pytest.raises(TargetNotEmptyError) as info:
            sample_layer().to_directory(target)
        assert isinstance(info.value, FileExistsError)
        assert os.listdir(target) == ["keep"]
        assert (target / "keep").read_bytes() == b"mine" and os.stat(target / "keep").st_mtime_ns == SECOND

    def test_to_directory_refuses_a_file_or_symlink_target(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_bytes(b"")
        (tmp_path / "empty").mkdir()
        os.symlink("empty", tmp_path / "link")
        for name in ("file", "link"):
            with pytest.raises(TargetNotEmptyError):
                sample_layer().to_directory(tmp_path / name)
        assert os.listdir(tmp_path / "empty") == []

    def test_to_directory_into_an_empty_or_missing_folder(self, tmp_path: Path) -> None:
        (tmp_path / "empty").mkdir()
        sample_layer().to_directory(tmp_path / "empty")
        sample_layer().to_directory(tmp_path / "missing")
        assert Layer.from_directory(tmp_path / "empty") == Layer.from_directory(tmp_path / "missing") == sample_layer()

    def test_special_files_are_read_and_sockets_skipped(self, tmp_path: Path) -> None:
        # FIFOs and devices are entries (tests/layers/test_special_files.py has the rest); a
        # socket is skipped, as Docker's archiver does.
        for name, mode, kind in (
            ("fifo", stat.S_IFIFO, Fifo),
            ("chr", stat.S_IFCHR, CharDevice),
            ("blk", stat.S_IFBLK, BlockDevice),
        ):
            root = tmp_path / name
            root.mkdir()
            os.mknod(root / "x", mode | 0o644, os.makedev(7, 3) if mode != stat.S_IFIFO else 0)
            assert type(Layer.from_directory(root)["x"]) is kind
        root = tmp_path / "sock"
        root.mkdir()
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(root / "s"))
            assert len(Layer.from_directory(root)) == 0

    def test_from_directory_needs_a_directory(self, tmp_path: Path) -> None:
        (tmp_path / "f").write_bytes(b"")
        with pytest.raises(LayerFormatError):
            Layer.from_directory(tmp_path / "f")

    def test_wh_named_user_file_reads_but_cannot_become_a_tar(self, tmp_path: Path) -> None:
        (tmp_path / "up").mkdir()
        (tmp_path / "up" / ".wh.notes").write_bytes(b"a user's file")
        layer = Layer.from_directory(tmp_path / "up")
        assert isinstance(layer[".wh.notes"], RegularFile)
        with pytest.raises(LayerFormatError, match=r"\.wh\."):
            layer.tar_bytes()


# -- choices the OCI spec leaves open (docs/layers.md) ---------------------------------------


def _implied_parent_stack() -> list[Layer]:
    """Edge case 9: L1 has ``etc`` 0700; L2 has only ``etc/f``."""
    lower, upper = Layer(), Layer()
    lower.add_dir("etc", mode=0o700, mtime_ns=5 * SECOND)
    lower.add_file("etc/old", b"o")
    upper.add_file("etc/f", b"f")
    return [lower.freeze(), upper.freeze()]


def _symlink_parent_stack() -> list[Layer]:
    """Edge case 10: L1 has ``lib -> usr/lib``; L2 has ``lib/x``."""
    lower, upper = Layer(), Layer()
    lower.add_file("usr/lib/a", b"a")
    lower.add_symlink("lib", "usr/lib")
    upper.add_file("lib/x", b"x")
    return [lower.freeze(), upper.freeze()]


def _check_implied_parent(union: UnionMount) -> None:
    # Overlay form: L2's implied 0755 directory is the topmost "etc" and supplies the metadata.
    assert stat.S_IMODE(union.stat("/etc").st_mode) == 0o755
    assert sorted(union.listdir("/etc")) == ["f", "old"]


def _check_symlink_parent(union: UnionMount) -> None:
    # Overlay form: L2's directory "lib" hides L1's symlink; nothing lands in usr/lib.
    assert stat.S_ISDIR(union.lstat("/lib").st_mode)
    assert union.listdir("/lib") == ["x"]
    assert union.listdir("/usr/lib") == ["a"]


class TestOpenChoices:
    def test_implied_parent_wins_over_the_lower_mode(self) -> None:
        _check_implied_parent(UnionFS(_implied_parent_stack()))

    def test_parent_that_is_a_lower_symlink_is_hidden(self) -> None:
        _check_symlink_parent(UnionFS(_symlink_parent_stack()))

    @pytest.mark.real
    def test_the_kernel_agrees(self) -> None:
        engine = require_real()
        with engine.union(_implied_parent_stack()) as union:
            _check_implied_parent(union)
        with engine.union(_symlink_parent_stack()) as union:
            _check_symlink_parent(union)

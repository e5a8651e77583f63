"""fsck, the prune family and ``system df``: one suite on the model (in memory and over a state
folder) and on the kernel.  What is in use is never removed; the bytes a prune reports are the
bytes that left the store; a flipped byte in a stored layer is found, and ``--repair`` never
deletes a tagged image's intact blobs."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sim
from sim.cli import main
from sim.containers._maintenance import FsckReport, is_anonymous_volume
from tests.backends import RealBackend, SimBackend


def _build(eng: Any, folder: Path, text: str, tag: str | None) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Buildfile").write_text(f"FROM busybox\nRUN echo '{text}' > /a.txt\n")
    return eng.build(folder, tag=tag).image


def _layer_digest(eng: Any, ref: str) -> str:
    return str(eng.store.resolve(ref).layers[-1].digest)


def flip_byte(eng: Any, digest: str) -> None:
    """Flip one byte of a stored blob in place (a folder store's file is read-only: chmod, flip, restore)."""
    content = eng.store.content
    hexd = digest.removeprefix("sha256:")
    if content.root is None:
        data = bytearray(content._memory[hexd])
        data[len(data) // 2] ^= 0x01
        content._memory[hexd] = bytes(data)
        return
    path = content.root / "blobs" / "sha256" / hexd
    mode = stat.S_IMODE(path.stat().st_mode)
    path.chmod(0o644)
    try:
        with open(path, "r+b") as fh:
            fh.seek(path.stat().st_size // 2)
            byte = fh.read(1)
            fh.seek(-1, os.SEEK_CUR)
            fh.write(bytes([byte[0] ^ 0x01]))
    finally:
        path.chmod(mode)


def kinds(report: FsckReport) -> set[str]:
    return {p.kind for p in report.problems}


class MaintenanceSuite:
    @pytest.fixture
    def eng(self, engine: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
        engine.base_image()
        yield engine
        engine.close()

    # -- image prune

    def test_image_prune_removes_only_dangling_images(self, eng: Any, tmp_path: Path) -> None:
        old = _build(eng, tmp_path / "c", "one", "app:1")
        new = _build(eng, tmp_path / "c", "two", "app:1")  # app:1 moves: the first image is dangling
        before = eng.store.content.total_size()
        result = eng.image_prune()
        assert result.deleted == (old.id,) and result.untagged == ()
        assert result.freed_bytes == before - eng.store.content.total_size() > 0
        assert {i.id for i in eng.images()} == {new.id, eng.inspect_image("busybox").id}
        assert eng.image_prune().deleted == ()  # nothing dangling is left
        assert eng.fsck().ok

    def test_image_prune_all_keeps_what_containers_use(self, eng: Any, tmp_path: Path) -> None:
        used = _build(eng, tmp_path / "a", "used", "used:1")
        running_on = _build(eng, tmp_path / "b", "dangling but used", None)  # untagged: dangling
        unused = _build(eng, tmp_path / "c", "unused", "unused:1")
        eng.create("used:1", "true", name="c1")  # created, never started
        eng.create(running_on.id, "true", name="c2")
        eng.run("used:1", "true", name="c3")  # exited
        base = eng.inspect_image("busybox").id
        result = eng.image_prune(all=True)
        assert set(result.deleted) == {unused.id, base}
        assert set(result.untagged) == {"unused:1", "busybox:latest"}
        left = {r.id for r in eng.store.list(all=True)}
        assert {used.id, running_on.id} <= left and unused.id not in left
        assert eng.run("used:1", "cat /a.txt", remove=True).stdout == b"used\n"

    def test_the_parent_of_a_tagged_child_stays(self, eng: Any, tmp_path: Path) -> None:
        parent = _build(eng, tmp_path / "p", "parent", "parent:1")
        eng.run("parent:1", "echo child > /b.txt", name="work")
        child = eng.commit("work", "child:1")
        eng.remove("work")
        eng.store.untag("parent:1")  # the parent is now untagged, with a tagged child
        assert eng.image_prune().deleted == ()
        assert parent.id in {r.id for r in eng.store.list(all=True)}
        eng.create("child:1", "true", name="user")
        assert {parent.id, child.id} & set(eng.image_prune(all=True).deleted) == set()
        assert eng.run("child:1", "cat /a.txt /b.txt", remove=True).stdout == b"parent\nchild\n"

    # -- container prune

    def test_container_prune_removes_created_and_exited(self, eng: Any) -> None:
        eng.create("busybox", "true", name="made")
        eng.run("busybox", "echo data > /f", name="done")
        result = eng.container_prune()
        assert len(result.deleted) == 2 and result.freed_bytes == 5  # the exited one's writable layer
        assert eng.containers() == []
        assert eng.container_prune().deleted == ()

    # -- volume prune

    def test_volume_prune_removes_unused_anonymous_volumes_by_default(self, eng: Any, tmp_path: Path) -> None:
        (tmp_path / "Buildfile").write_text("FROM busybox\nVOLUME /data\n")
        eng.build(tmp_path, tag="vol:1")
        eng.run("vol:1", "echo hi > /data/f", name="gone")
        eng.remove("gone")  # its anonymous volume stays (no -v)
        eng.run("busybox", "echo kept > /keep/f", name="holder", volumes={"/keep": "keep"})
        eng.create_volume("old")
        anonymous = [v.name for v in eng.list_volumes() if is_anonymous_volume(v.name)]
        assert len(anonymous) == 1
        result = eng.volume_prune()
        assert result.deleted == tuple(anonymous) and result.freed_bytes == 3
        assert {v.name for v in eng.list_volumes()} == {"keep", "old"}
        result = eng.volume_prune(all=True)
        assert result.deleted == ("old",)
        assert [v.name for v in eng.list_volumes()] == ["keep"]  # holder (exited) still mounts it

    # -- builder prune

    def test_builder_prune_forgets_the_build_cache(self, eng: Any, tmp_path: Path) -> None:
        _build(eng, tmp_path / "c", "cached", "app:1")
        assert eng.builder_prune().deleted == ()  # the image keeps the layer: not dangling
        assert [s.cached for s in eng.build(tmp_path / "c", tag="app:1").steps if s.layer] == [True]
        result = eng.builder_prune(all=True)
        assert len(result.deleted) == 1
        assert [s.cached for s in eng.build(tmp_path / "c", tag="app:1").steps if s.layer] == [False]
        eng.remove_image("app:1")
        result = eng.builder_prune()
        assert len(result.deleted) == 1  # its layer is no image's any more
        assert eng.system_df().build_cache.total == 0

    def test_builder_prune_discards_resumable_downloads(self, eng: Any) -> None:
        digest = "sha256:" + "ab" * 32
        download = eng.store.content.download(digest, 100)
        download.write(b"x" * 40)
        download.close()
        if eng.store.content.root is not None:
            assert eng.system_df().build_cache.size == 40
        result = eng.builder_prune()
        assert len(result.deleted) == 1
        assert eng.store.content.download(digest, 100).offset == 0  # started again

    # -- system df / system prune

    def test_system_df_reclaimable_is_what_prune_frees(self, eng: Any, tmp_path: Path) -> None:
        _build(eng, tmp_path / "a", "one", "app:1")
        _build(eng, tmp_path / "a", "two", "app:1")
        _build(eng, tmp_path / "b", "other", "other:1")
        eng.run("app:1", "echo 12345 > /f", name="stopped", volumes={"/v": "named"})
        eng.run("busybox", "echo abc > /v/x", name="tmp", volumes={"/v": "loose"})
        eng.remove("tmp")
        df = eng.system_df()
        assert [r.type for r in df.rows] == ["Images", "Containers", "Local Volumes", "Build Cache"]
        assert (df.images.total, df.images.active) == (4, 1)
        assert (df.containers.total, df.containers.active, df.containers.reclaimable) == (1, 0, 6)
        assert (df.volumes.total, df.volumes.active, df.volumes.reclaimable) == (2, 1, 4)
        assert eng.container_prune().freed_bytes == df.containers.reclaimable
        after = eng.system_df()
        assert after.images.reclaimable == eng.image_prune(all=True).freed_bytes > 0
        assert eng.system_df().images.total == 0
        assert eng.volume_prune(all=True).freed_bytes == after.volumes.reclaimable

    def test_system_prune(self, eng: Any, tmp_path: Path) -> None:
        _build(eng, tmp_path / "a", "one", "app:1")
        _build(eng, tmp_path / "a", "two", "app:1")
        eng.create("app:1", "true", name="made")
        result = eng.system_prune()
        assert [p.kind for p in result.parts] == ["containers", "images", "build cache"]
        assert len(result.parts[0].deleted) == 1 and len(result.parts[1].deleted) == 1
        assert result.freed_bytes == sum(p.freed_bytes for p in result.parts) > 0
        assert {i.tags[0] for i in eng.images()} == {"app:1", "busybox:latest"}
        everything = eng.system_prune(all=True, volumes=True)
        assert [p.kind for p in everything.parts] == ["containers", "volumes", "images", "build cache"]
        assert eng.images() == [] and eng.fsck().ok

    # -- fsck

    def test_fsck_of_a_healthy_store_finds_nothing(self, eng: Any, tmp_path: Path) -> None:
        _build(eng, tmp_path / "a", "one", "app:1")
        eng.create("app:1", "true")
        report = eng.fsck()
        assert report.ok and report.problems == () and report.images_checked == 2
        assert report.blobs_checked == len(eng.store.content)

    def test_fsck_finds_a_flipped_byte_in_a_layer_and_repair_keeps_intact_images(self, eng: Any, tmp_path: Path) -> None:
        _build(eng, tmp_path / "a", "one", "app:1")
        _build(eng, tmp_path / "b", "two", "two:1")
        digest = _layer_digest(eng, "app:1")
        flip_byte(eng, digest)
        intact = {str(d) for ref in ("busybox", "two:1") for d in _blobs(eng, ref)}
        report = eng.fsck()
        assert not report.ok and kinds(report) == {"corrupt-blob", "broken-image", "broken-tag"}
        (corrupt,) = [p for p in report.problems if p.kind == "corrupt-blob"]
        assert corrupt.subject == digest and "app:1" in corrupt.what and "--repair" in corrupt.todo
        assert [p.subject for p in report.problems if p.kind == "broken-tag"] == ["app:1"]
        assert report.remaining == report.problems and report.repaired == ()
        repaired = eng.fsck(repair=True)
        assert repaired.ok and "Untagged: app:1" in repaired.repaired
        assert not eng.store.content.has(digest) and "app:1" not in eng.store
        assert {str(d) for d in eng.store.content.digests()} >= intact  # every intact blob is still there
        assert eng.run("two:1", "cat /a.txt", remove=True).stdout == b"two\n"
        assert eng.fsck().problems == ()

    def test_fsck_keeps_a_broken_image_a_container_uses(self, eng: Any, tmp_path: Path) -> None:
        _build(eng, tmp_path / "a", "one", "app:1")
        eng.create("app:1", "true", name="user")
        flip_byte(eng, _layer_digest(eng, "app:1"))
        repaired = eng.fsck(repair=True)
        assert "app:1" in eng.store  # the container needs it: reported, not removed
        assert {p.kind for p in repaired.remaining} == {"missing-blob", "broken-image", "broken-tag"}
        assert any("remove its containers first" in p.todo for p in repaired.remaining)
        eng.remove("user")
        assert eng.fsck(repair=True).ok and "app:1" not in eng.store

    def test_fsck_reports_a_container_whose_image_is_gone(self, eng: Any, tmp_path: Path) -> None:
        _build(eng, tmp_path / "a", "one", "app:1")
        eng.create("app:1", "true", name="orphan")
        eng.remove_image("app:1", force=True)
        report = eng.fsck(repair=True)
        assert [p.subject for p in report.remaining] == ["orphan"]
        assert report.remaining[0].kind == "container-image-missing"
        assert [c.name for c in eng.containers()] == ["orphan"]  # never removed by fsck


def _blobs(eng: Any, ref: str) -> list[str]:
    r = eng.store.resolve(ref)
    return [str(r.manifest_digest), str(r.manifest.config.digest), *(str(d.digest) for d in r.layers)]


class FolderSuite(MaintenanceSuite):
    """What only a store on disk has: blob files, ingest files, saved containers."""

    def test_fsck_finds_a_missing_layer_file(self, eng: Any, tmp_path: Path) -> None:
        _build(eng, tmp_path / "a", "one", "app:1")
        digest = _layer_digest(eng, "app:1")
        (eng.store.content.root / "blobs" / "sha256" / digest[7:]).unlink()
        report = eng.fsck()
        assert kinds(report) == {"missing-blob", "broken-image", "broken-tag"}
        assert eng.fsck(repair=True).ok and "app:1" not in eng.store and "busybox" in eng.store

    def test_fsck_finds_leftover_ingest_files_but_not_downloads(self, eng: Any) -> None:
        ingest = eng.store.content.root / "ingest"
        (ingest / "deadbeef.partial").write_bytes(b"half")
        eng.store.content.download("sha256:" + "cd" * 32, 10).close()
        report = eng.fsck()
        assert [(p.kind, p.subject) for p in report.problems] == [("leftover-ingest", "deadbeef.partial")]
        assert eng.fsck(repair=True).ok
        assert sorted(os.listdir(ingest)) == ["cd" * 32 + ".download"]

    @pytest.mark.parametrize("role", ["config", "manifest"])
    def test_a_corrupt_manifest_or_config_is_reported_not_fatal(self, eng: Any, tmp_path: Path, role: str) -> None:
        bad = _build(eng, tmp_path / "a", "bad", "bad:1")
        good = _build(eng, tmp_path / "b", "good", "good:1")
        record = eng.store.resolve("bad:1")
        target = str(record.manifest.config.digest) if role == "config" else str(record.manifest_digest)
        keep = _blobs(eng, "good:1")
        state = eng.containers_dir.parent
        eng.close()
        flip_byte(eng, target)
        again = type(eng)(state_dir=state)  # today's main: DigestMismatchError here, so no fsck could run
        try:
            assert {i.id for i in again.images()} == {good.id, again.inspect_image("busybox").id}
            assert [d.name for d in again.store.damaged()] == ["docker.io/library/bad:1"]
            report = again.fsck()
            assert {"damaged-image", "broken-tag", "corrupt-blob"} <= kinds(report)
            assert any("bad:1" in p.what and p.kind == "damaged-image" for p in report.problems)
            again.tag("good:1", "other:1")  # a change keeps the damaged entry in the index until repaired
            assert [d.name for d in type(eng)(state_dir=state).store.damaged()] == ["docker.io/library/bad:1"]
            repaired = again.fsck(repair=True)
            assert repaired.ok and again.store.damaged() == ()
            assert all(again.store.content.has(d) for d in keep)  # a tagged image's intact blobs stay
            assert not again.store.content.has(target) and bad.id not in {r.id for r in again.store.list(all=True)}
            assert again.run("good:1", "cat /a.txt", remove=True).stdout == b"good\n"
            assert _build(again, tmp_path / "a", "bad", "bad:1").id == bad.id  # built again, whole
        finally:
            again.close()

    def test_fsck_finds_a_saved_container_whose_image_is_gone(self, eng: Any) -> None:
        folder = eng.containers_dir / ("ef" * 32)
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"image": "sha256:" + "00" * 32}))
        report = eng.fsck()
        assert [p.kind for p in report.problems] == ["orphan-container"]
        assert eng.fsck(repair=True).ok and not folder.exists()


class SimFolderBackend:
    backend = "sim-folder"

    @pytest.fixture
    def engine(self, tmp_path_factory: pytest.TempPathFactory) -> Any:
        return sim.connect("sim", state_dir=str(tmp_path_factory.mktemp("state")))


class TestSimMaintenance(MaintenanceSuite, SimBackend):
    pass


class TestSimFolderMaintenance(FolderSuite, SimFolderBackend):
    pass


@pytest.mark.real
class TestRealMaintenance(FolderSuite, RealBackend):
    def test_a_running_container_and_its_image_are_never_pruned(self, eng: Any, tmp_path: Path) -> None:
        image = _build(eng, tmp_path / "a", "busy", None)  # untagged: dangling but in use
        info = eng.create(image.id, "sleep 30", name="busy", volumes={"/v": "busyvol"})
        eng.start("busy", detach=True)
        try:
            assert eng.container_prune().deleted == ()
            base = eng.inspect_image("busybox").id
            assert eng.image_prune(all=True).deleted == (base,)
            assert eng.volume_prune(all=True).deleted == ()
            df = eng.system_df()
            assert (df.containers.active, df.images.active, df.volumes.active) == (1, 1, 1)
            assert image.id in {r.id for r in eng.store.list(all=True)}
        finally:
            eng.kill(info.id)
        assert eng.container_prune().deleted == (info.id,)

    def test_removed_images_take_their_extracted_layers(self, eng: Any, tmp_path: Path) -> None:
        """An image's layers are extracted once into the layer cache; ``rmi`` and ``prune`` remove the
        folders of layers no stored image has, as overlay2 does (a mount's locks keep the folders it
        stands on: tests/images/test_store_races.py)."""
        from realrt.layers.overlay import layer_cache_dir

        cache = layer_cache_dir(eng.state_dir / "layers", rootless=eng.rootless, id_maps=eng.id_maps)

        def extracted() -> set[str]:
            return {p.name.removesuffix("-userxattr") for p in cache.iterdir() if not p.name.startswith(".")
                    and not p.name.startswith("idmap-")}

        def top(ref: str) -> str:
            return str(eng._layers(eng.store.resolve(ref))[-1].content_id.hex)

        _build(eng, tmp_path / "a", "kept", "a:1")
        _build(eng, tmp_path / "b", "gone", "b:1")
        eng.run("a:1", "true", remove=True)
        eng.run("b:1", "true", remove=True)
        a, b, base = top("a:1"), top("b:1"), top("busybox")
        assert {a, b, base} <= extracted()
        eng.run_detached("a:1", "sleep 30", name="user")
        try:
            eng.remove_image("b:1")
            assert b not in extracted() and {a, base} <= extracted()
        finally:
            eng.remove("user", force=True)
        eng.image_prune(all=True)
        assert extracted() == set()  # nothing is stored any more: every folder went
        assert eng.run("busybox", "echo again", remove=True).stdout == b"again\n"  # pulled and extracted anew


# -- the command line (model, state folder) ---------------------------------------------------------


def test_cli_fsck_prune_and_df(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LAYERLAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("LAYERLAB_BACKEND", raising=False)
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Buildfile").write_text("FROM busybox\nRUN echo one > /a\n")
    assert main(["build", str(tmp_path / "ctx"), "-t", "app:1"]) == 0
    (tmp_path / "ctx" / "Buildfile").write_text("FROM busybox\nRUN echo two > /a\n")
    assert main(["build", str(tmp_path / "ctx"), "-t", "app:1"]) == 0
    capsys.readouterr()
    assert main(["fsck"]) == 0 and "no problems found" in capsys.readouterr().out
    assert main(["system", "df"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"] and "Build Cache" in out
    assert main(["image", "prune", "-f"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Deleted Images:\ndeleted: sha256:") and "Total reclaimed space: " in out
    for argv in (["container", "prune"], ["volume", "prune", "-a"], ["builder", "prune", "-a"], ["system", "prune"]):
        assert main(argv) == 0
        assert "Total reclaimed space: " in capsys.readouterr().out
    eng: Any = sim.connect("sim", state_dir=str(tmp_path / "state" / "sim"))
    try:
        flip_byte(eng, _layer_digest(eng, "app:1"))
    finally:
        eng.close()
    assert main(["fsck"]) == 1
    out = capsys.readouterr().out
    assert "corrupt-blob: blob sha256:" in out and "broken-tag: tag app:1" in out
    assert main(["fsck", "--repair"]) == 0
    assert "Untagged: app:1" in capsys.readouterr().out
    assert main(["fsck"]) == 0


def test_repair_decides_on_the_store_as_it_is_then_not_on_the_report_scan(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A blob another process made whole again between fsck's scan and its repair is kept."""
    import sim.containers._maintenance as maintenance

    eng = sim.connect("sim", state_dir=str(tmp_path / "state"))
    try:
        _build(eng, tmp_path / "ctx", "hello", "demo:1")
        digest = _layer_digest(eng, "demo:1")
        flip_byte(eng, digest)
        first_scan = maintenance._scan

        def scan_then_fixed(engine: Any) -> Any:
            found = first_scan(engine)
            flip_byte(eng, digest)  # flipped back: whole again, as a re-pull elsewhere would make it
            monkeypatch.setattr(maintenance, "_scan", first_scan)
            return found

        monkeypatch.setattr(maintenance, "_scan", scan_then_fixed)
        report = eng.fsck(repair=True)
        assert any(p.kind == "corrupt-blob" for p in report.problems)
        assert not any(digest in line for line in report.repaired) and report.remaining == ()
        assert eng.run("demo:1", ["cat", "/a.txt"], remove=True).stdout == b"hello\n"
    finally:
        eng.close()

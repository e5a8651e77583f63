"""``ImageStore.export`` in the model: every form × compression round-trips, bytes are reproducible,
bad requests are refused before anything is written, and an existing OCI layout folder is added to.

The witnesses with the real tools (skopeo, umoci, runc) are in ``test_oci_interop.py``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sim
from sim.cli import main
from sim.digest import sha256_digest
from sim.errors import ImageNotFoundError, LayerlabError, TargetNotEmptyError
from sim.images._compress import GZIP_LEVEL, deterministic_gzip, gzip_manifest
from sim.images.oci import (
    ANNOTATION_CONTAINERD_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    Descriptor,
    ImageFormatError,
    Index,
    Manifest,
)
from sim.images.store import ExportFormatError, ImageRecord, ImageStore

FORMATS = ["docker-archive", "oci-archive", "oci-dir"]
COMPRESSIONS = [None, "gzip"]

BUILDFILE = """\
FROM busybox
COPY hello.txt /app/hello.txt
RUN echo made > /app/made.txt && rm /etc/group
"""


def build(context: Path, buildfile: str = BUILDFILE, tag: str = "demo:1", engine: Any = None) -> tuple[Any, ImageRecord]:
    """A small image built by the model engine: busybox, a COPY and a RUN that writes one file and deletes one."""
    context.mkdir(parents=True, exist_ok=True)
    (context / "Buildfile").write_text(buildfile)
    (context / "hello.txt").write_text("hello from the context\n")
    eng: Any = engine if engine is not None else sim.connect("sim")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", "1700000000")
        eng.build(context, tag=tag)
    return eng, eng.store.resolve(tag)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ImageRecord]]:
    """One engine for the module: exports only read its store."""
    eng, record = build(tmp_path_factory.mktemp("context"))
    yield eng, record
    eng.close()


def export(store: ImageStore, refs: list[str], dest: Path, fmt: str, compression: str | None = None) -> None:
    store.export(refs, dest, format=fmt, compression=compression)


def files_of(path: Path) -> dict[str, bytes]:
    """Every regular file of a tar or a folder, by name."""
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}  # type: ignore[union-attr]


def tree(path: Path) -> dict[str, bytes | None]:
    """What a folder holds, folders included (None), to show that nothing changed."""
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))}


def index_of(folder: Path) -> Index:
    return Index.from_json((folder / "index.json").read_bytes())


# -- round trips ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_form_round_trips(built: tuple[Any, ImageRecord], tmp_path: Path, fmt: str, compression: str | None) -> None:
    eng, record = built
    dest = tmp_path / ("out" if fmt == "oci-dir" else "out.tar")
    export(eng.store, ["demo:1", "busybox"], dest, fmt, compression)
    other = ImageStore()
    loaded = {r.id: r for r in other.load(dest)}  # the full names come from io.containerd.image.name
    base = eng.store.resolve("busybox")
    assert set(loaded) == {record.id, base.id}  # the config bytes, so the ImageIDs, never change
    assert loaded[record.id].tags == ("demo:1",) and loaded[base.id].tags == ("busybox:latest",)
    assert other.config_bytes(loaded[record.id]) == eng.store.config_bytes(record)
    assert other.load_layers(loaded[record.id]) == eng.store.load_layers(record)
    got = loaded[record.id]
    if compression is None:
        assert got.manifest_digest == record.manifest_digest
        assert {d.media_type for d in got.layers} == {MEDIA_TYPE_OCI_LAYER}
    else:
        assert got.manifest_digest == sha256_digest(gzip_manifest(eng.store, record)[0]) != record.manifest_digest
        assert {d.media_type for d in got.layers} == {MEDIA_TYPE_OCI_LAYER_GZIP}
    names = set(files_of(dest))
    assert {"oci-layout", "index.json"} <= names
    assert ("manifest.json" in names) == (fmt == "docker-archive")
    assert ("repositories" in names) == (fmt == "docker-archive")


def test_docker_archive_is_what_save_writes(built: tuple[Any, ImageRecord], tmp_path: Path) -> None:
    eng, _ = built
    buf = io.BytesIO()
    eng.store.save(["demo:1"], buf)
    eng.store.export(["demo:1"], tmp_path / "a.tar")
    out = io.BytesIO()
    eng.store.export(["demo:1"], out, format="docker-archive")
    assert (tmp_path / "a.tar").read_bytes() == buf.getvalue() == out.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["a.tar"]  # the temporary name is gone


def test_oci_archive_is_the_layout_without_the_docker_extras(built: tuple[Any, ImageRecord], tmp_path: Path) -> None:
    eng, _ = built
    eng.store.export(["demo:1"], tmp_path / "d.tar")
    eng.store.export(["demo:1"], tmp_path / "o.tar", format="oci-archive")
    eng.store.export(["demo:1"], tmp_path / "dir", format="oci-dir")
    docker = files_of(tmp_path / "d.tar")
    del docker["manifest.json"], docker["repositories"]
    assert files_of(tmp_path / "o.tar") == docker == files_of(tmp_path / "dir")
    with tarfile.open(tmp_path / "o.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}


def test_an_oci_dir_names_each_image_by_its_bare_tag_and_its_full_name(built: tuple[Any, ImageRecord], tmp_path: Path) -> None:
    eng, record = built
    eng.store.export(["demo:1", "busybox:latest"], tmp_path / "dir", format="oci-dir")
    assert json.loads((tmp_path / "dir" / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    entries = {d.annotations[ANNOTATION_REF_NAME]: d for d in index_of(tmp_path / "dir").manifests}
    assert set(entries) == {"1", "latest"}
    assert entries["1"].annotations[ANNOTATION_CONTAINERD_IMAGE_NAME] == "docker.io/library/demo:1"
    assert entries["1"].digest == record.manifest_digest
    for name, data in files_of(tmp_path / "dir").items():
        if name.startswith("blobs/"):
            assert name == f"blobs/sha256/{sha256_digest(data).hex}"
    # the full name beside the bare tag is what lets a load name the images without repository=...
    assert sorted(t for r in ImageStore().load(tmp_path / "dir") for t in r.tags) == ["busybox:latest", "demo:1"]


def test_an_untagged_export_by_id(built: tuple[Any, ImageRecord], tmp_path: Path) -> None:
    eng, record = built
    eng.store.export([record.short_id], tmp_path / "dir", format="oci-dir", compression="gzip")
    (entry,) = index_of(tmp_path / "dir").manifests
    assert entry.annotations == {}
    (loaded,) = ImageStore().load(tmp_path / "dir")
    assert loaded.id == record.id and loaded.tags == ()


# -- reproducible bytes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_same_images_give_the_same_bytes(built: tuple[Any, ImageRecord], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                             fmt: str, compression: str | None) -> None:
    eng, _ = built
    name = "x" if fmt == "oci-dir" else "x.tar"
    for where in "abc":
        (tmp_path / where).mkdir()
    export(eng.store, ["demo:1"], tmp_path / "a" / name, fmt, compression)
    export(eng.store, ["demo:1"], tmp_path / "b" / name, fmt, compression)
    # another engine building the same Buildfile writes the same bytes too (the gzip stream included)
    other, _ = build(tmp_path_factory.mktemp("context2"))
    export(other.store, ["demo:1"], tmp_path / "c" / name, fmt, compression)
    other.close()
    first = files_of(tmp_path / "a" / name)
    assert first == files_of(tmp_path / "b" / name) == files_of(tmp_path / "c" / name)
    if fmt != "oci-dir":
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes() == (tmp_path / "c" / name).read_bytes()


def test_gzip_is_deterministic_and_standard() -> None:
    data = b"layer bytes " * 1000
    out = deterministic_gzip(data)
    assert out == deterministic_gzip(data)
    assert out[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0, OS "unknown"
    assert gzip.decompress(out) == data
    with gzip.GzipFile(fileobj=io.BytesIO(out)) as fh:
        assert fh.read() == data and fh.mtime == 0
    assert out[10:-8] == zlib.compress(data, GZIP_LEVEL)[2:-4]  # the deflate stream is zlib's at the fixed level
    assert gzip.decompress(deterministic_gzip(b"")) == b""


def test_gzip_manifest_keeps_the_config_and_gzip_layers(built: tuple[Any, ImageRecord], tmp_path: Path) -> None:
    eng, record = built
    manifest_bytes, blobs = gzip_manifest(eng.store, record)
    assert gzip_manifest(eng.store, record) == (manifest_bytes, blobs)
    manifest = Manifest.from_json(manifest_bytes)
    assert manifest.config == record.manifest.config
    assert set(blobs) == {record.id, *(d.digest for d in manifest.layers)}
    assert blobs[record.id] == (eng.store.config_bytes(record), record.manifest.config.media_type)
    for desc, diff_id in zip(manifest.layers, record.diff_ids):
        data, media_type = blobs[desc.digest]  # type: ignore[index]
        assert media_type == desc.media_type == MEDIA_TYPE_OCI_LAYER_GZIP and len(data) == desc.size
        assert sha256_digest(gzip.decompress(data)) == diff_id
    # an image whose layers are gzip already keeps its manifest, byte for byte
    eng.store.export(["demo:1"], tmp_path / "gz", format="oci-dir", compression="gzip")
    other = ImageStore()
    (loaded,) = other.load(tmp_path / "gz")
    assert gzip_manifest(other, loaded)[0] == other.manifest_bytes(loaded) == manifest_bytes
    # ... and exporting it plain keeps its gzip layers (export never decompresses)
    other.export(["demo:1"], tmp_path / "again", format="oci-dir")
    assert files_of(tmp_path / "again") == files_of(tmp_path / "gz")


# -- refused before anything is written ---------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "compression"), [("tar", None), ("OCI-DIR", None), ("oci-dir", "zstd"), ("docker-archive", "")])
def test_an_unknown_format_or_compression_writes_nothing(built: tuple[Any, ImageRecord], tmp_path: Path,
                                                         fmt: str, compression: str | None) -> None:
    eng, _ = built
    buf = io.BytesIO()
    for dest in (tmp_path / "out", buf):
        with pytest.raises(ExportFormatError, match="unknown") as caught:
            eng.store.export(["demo:1"], dest, format=fmt, compression=compression)
        assert isinstance(caught.value, (ValueError, ImageFormatError, LayerlabError))
    with pytest.raises(ExportFormatError, match="unknown"):
        eng.save(["demo:1"], tmp_path / "out", format=fmt, compression=compression)
    assert list(tmp_path.iterdir()) == [] and buf.getvalue() == b""


def test_a_destination_of_the_wrong_kind_is_refused(built: tuple[Any, ImageRecord], tmp_path: Path) -> None:
    eng, _ = built
    with pytest.raises(ExportFormatError, match="give a path"):
        eng.store.export(["demo:1"], io.BytesIO(), format="oci-dir")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ExportFormatError, match="is a folder"):
        eng.store.export(["demo:1"], tmp_path / "folder", format="oci-archive")
    (tmp_path / "file").write_bytes(b"keep")
    with pytest.raises(TargetNotEmptyError, match="not a folder"):
        eng.store.export(["demo:1"], tmp_path / "file", format="oci-dir")
    with pytest.raises(ImageNotFoundError):
        eng.store.export(["demo:1", "nope:1"], tmp_path / "new", format="oci-dir")
    assert tree(tmp_path) == {"folder": None, "file": b"keep"}


def test_a_non_empty_folder_that_is_no_layout_is_refused(built: tuple[Any, ImageRecord], tmp_path: Path) -> None:
    eng, _ = built
    (tmp_path / "mine" / "sub").mkdir(parents=True)
    (tmp_path / "mine" / "notes.txt").write_text("my files\n")
    before = tree(tmp_path)
    with pytest.raises(TargetNotEmptyError, match="not an OCI image layout"):
        eng.store.export(["demo:1"], tmp_path / "mine", format="oci-dir", compression="gzip")
    assert tree(tmp_path) == before
    (tmp_path / "empty").mkdir()
    eng.store.export(["demo:1"], tmp_path / "empty", format="oci-dir")  # an empty folder is fine
    assert ImageStore().load(tmp_path / "empty")[0].tags == ("demo:1",)


def test_a_broken_layout_is_refused(built: tuple[Any, ImageRecord], tmp_path: Path) -> None:
    eng, _ = built
    cases = {"v2": (b'{"imageLayoutVersion":"2.0.0"}', b'{"schemaVersion":2,"manifests":[]}'),
             "badjson": (b"{nope", None), "badindex": (b'{"imageLayoutVersion":"1.0.0"}', b'{"schemaVersion":1}')}
    for name, (layout, index) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "oci-layout").write_bytes(layout)
        if index is not None:
            (folder / "index.json").write_bytes(index)
    before = tree(tmp_path)
    for name in cases:
        with pytest.raises(ImageFormatError):
            eng.store.export(["demo:1"], tmp_path / name, format="oci-dir")
    assert tree(tmp_path) == before


def test_two_names_with_one_tag_cannot_share_an_oci_dir(built: tuple[Any, ImageRecord], tmp_path: Path) -> None:
    eng, _ = built
    eng.store.tag("demo:1", "localhost:5000/demo:1")
    try:
        with pytest.raises(ExportFormatError, match="would both be tag '1'"):
            eng.store.export(["demo:1", "localhost:5000/demo:1"], tmp_path / "dir", format="oci-dir")
        assert not (tmp_path / "dir").exists()
        # the tar forms, like docker save, list both
        eng.store.export(["demo:1", "localhost:5000/demo:1"], tmp_path / "a.tar", format="oci-archive")
        assert sorted(ImageStore().load(tmp_path / "a.tar")[0].tags) == ["demo:1", "localhost:5000/demo:1"]
    finally:
        eng.store.untag("localhost:5000/demo:1")


# -- adding to a layout ---------------------------------------------------------------------------------


def test_an_existing_layout_is_added_to(built: tuple[Any, ImageRecord], tmp_path: Path) -> None:
    eng, record = built
    folder = tmp_path / "dir"
    eng.store.export(["busybox"], folder, format="oci-dir")
    base = eng.store.resolve("busybox")
    # another tool's entry (an unknown media type, with a ref.name of its own) and file must survive
    index = index_of(folder)
    foreign = Descriptor("application/vnd.example.thing+json", sha256_digest(b"thing"), 5, {ANNOTATION_REF_NAME: "thing"})
    (folder / "index.json").write_bytes(Index(index.manifests + (foreign,), annotations={"org.example": "kept"}).to_json())
    (folder / "blobs" / "sha256" / sha256_digest(b"thing").hex).write_bytes(b"thing")
    (folder / "README").write_text("not part of the spec\n")
    eng.store.export(["demo:1"], folder, format="oci-dir", compression="gzip")
    index = index_of(folder)
    assert [d.annotations.get(ANNOTATION_REF_NAME) for d in index.manifests] == ["latest", "thing", "1"]
    assert index.annotations == {"org.example": "kept"} and (folder / "README").exists()
    loaded = {r.id: r.tags for r in ImageStore().load(folder)}
    assert loaded == {base.id: ("busybox:latest",), record.id: ("demo:1",)}
    # exporting the same again changes no byte; the shared base blob was not written twice
    before = tree(folder)
    eng.store.export(["demo:1"], folder, format="oci-dir", compression="gzip")
    assert tree(folder) == before
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_tag_moves_to_the_new_image_and_the_old_entry_stays_unnamed(built: tuple[Any, ImageRecord], tmp_path: Path) -> None:
    eng, record = built
    folder = tmp_path / "dir"
    eng.store.export(["demo:1"], folder, format="oci-dir")
    other, newer = build(tmp_path / "ctx", BUILDFILE + "RUN echo newer > /newer\n")
    other.store.export(["demo:1"], folder, format="oci-dir")
    other.close()
    entries = index_of(folder).manifests
    assert [(d.digest, dict(d.annotations)) for d in entries] == [
        (record.manifest_digest, {}),
        (newer.manifest_digest, {ANNOTATION_CONTAINERD_IMAGE_NAME: "docker.io/library/demo:1", ANNOTATION_REF_NAME: "1"}),
    ]
    assert {r.id: r.tags for r in ImageStore().load(folder)} == {record.id: (), newer.id: ("demo:1",)}
    # exporting the old image by ID again adds no second unnamed entry
    eng.store.export([record.short_id], folder, format="oci-dir")
    assert index_of(folder).manifests == entries


def test_a_failed_write_leaves_the_old_index(built: tuple[Any, ImageRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """index.json is the commit point: written last, atomically, after every blob."""
    eng, _ = built
    folder = tmp_path / "dir"
    eng.store.export(["busybox"], folder, format="oci-dir")
    old_index = (folder / "index.json").read_bytes()
    renames: list[str] = []
    real_rename = os.rename

    def failing_rename(src: Any, dst: Any) -> None:
        renames.append(os.path.basename(os.fspath(dst)))
        if len(renames) == 2:
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError, match="No space"):
        eng.store.export(["demo:1"], folder, format="oci-dir", compression="gzip")
    assert (folder / "index.json").read_bytes() == old_index
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert [r.tags for r in ImageStore().load(folder)] == [("busybox:latest",)]
    renames.clear()
    def recording_rename(src: Any, dst: Any) -> None:
        renames.append(os.path.basename(os.fspath(dst)))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", recording_rename)
    eng.store.export(["demo:1"], folder, format="oci-dir", compression="gzip")
    assert renames[-1] == "index.json" and "index.json" not in renames[:-1]
    assert sorted(t for r in ImageStore().load(folder) for t in r.tags) == ["busybox:latest", "demo:1"]


# -- engine and CLI ------------------------------------------------------------------------------------------


def test_engine_save_takes_a_form_and_a_folder(built: tuple[Any, ImageRecord], tmp_path: Path) -> None:
    eng, record = built
    eng.save("demo:1", tmp_path / "dir", format="oci-dir", compression="gzip")  # one name as a str, too
    fresh = sim.connect("sim")
    try:
        assert [i.id for i in fresh.load(tmp_path / "dir")] == [record.id]  # type: ignore[attr-defined]
    finally:
        fresh.close()  # type: ignore[attr-defined]


def test_cli_save_and_load_every_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Buildfile").write_text(BUILDFILE)
    (context / "hello.txt").write_text("hello from the context\n")

    def layerlab(state: str, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setenv("LAYERLAB_STATE_DIR", str(tmp_path / state))
        code = main([argv[0], "--backend", "sim", *argv[1:]])
        out, err = capsys.readouterr()
        return code, out, err

    assert layerlab("one", "build", "-t", "demo:1", str(context))[0] == 0
    for fmt, name in (("docker-archive", "d.tar"), ("oci-archive", "o.tar"), ("oci-dir", "dir")):
        for extra in ([], ["--compress", "gzip"]):
            out = tmp_path / f"{'gz-' if extra else ''}{name}"
            assert layerlab("one", "save", "demo:1", "-o", str(out), "--format", fmt, *extra)[0] == 0
            assert layerlab(f"two-{out.name}", "load", "-i", str(out)) == (0, "Loaded image: demo:1\n", "")
    assert layerlab("one", "save", "demo:1", "-o", str(tmp_path / "plain.tar"))[0] == 0
    assert files_of(tmp_path / "plain.tar") == files_of(tmp_path / "d.tar")
    code, _, err = layerlab("one", "save", "demo:1", "-o", str(tmp_path / "x"), "--format", "tar")
    assert code == 2 and "invalid choice" in err and not (tmp_path / "x").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("x")
    code, _, err = layerlab("one", "save", "demo:1", "-o", str(tmp_path / "busy"), "--format", "oci-dir")
    assert code == 1 and "TargetNotEmptyError" in err and err.count("\n") == 1

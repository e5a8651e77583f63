"""OCI documents, the content store and the image store.

* documents: canonical JSON and stable ImageIDs; every validation error typed;
  media-type confusion (CVE-2021-41190) refused;
* ContentStore: too short, too long and wrong-digest blobs raise
  DigestMismatchError and leave nothing visible; reads verify again; a writer
  killed with SIGKILL leaves only an ingest file, which the next open removes;
* ImageStore: shared layers stored once, tags and ``docker rmi`` semantics,
  ``docker save``/``docker load`` round trips byte for byte, and OCI layouts
  from other tools (umoci, skopeo when installed; hand-made otherwise) load
  with their unknown files and media types skipped.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.digest import Digest, sha256_digest
from sim.errors import (
    ConflictError,
    DigestMismatchError,
    ImageNotFoundError,
    InvalidReferenceError,
    NotFoundError,
)
from sim.images.oci import (
    ANNOTATION_CONTAINERD_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    MAX_DOCUMENT_SIZE,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
    ContainerConfig,
    Descriptor,
    DocumentTooLargeError,
    History,
    ImageConfig,
    ImageFormatError,
    Index,
    Manifest,
    MediaTypeError,
    Platform,
    RootFS,
    canonical_json,
    image_id,
    parse_document,
    rfc3339,
    validate_image,
)
from sim.images.store import BlobNotFoundError, ContentStore, ImageStore, Usage
from sim.layers.layer import Layer

ROOT = Path(__file__).resolve().parents[2]
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def layer(files: dict[str, bytes]) -> Layer:
    out = Layer()
    for path, data in files.items():
        out.add_file(path, data)
    return out.freeze()


def config_for(layers: list[Layer], **kwargs: Any) -> ImageConfig:
    history = tuple(History(created="2024-01-01T00:00:00Z", created_by=f"COPY {i}") for i in range(len(layers)))
    return ImageConfig("amd64", "linux", RootFS(tuple(lay.diff_id for lay in layers)), history=history, **kwargs)


def full_config() -> ImageConfig:
    return ImageConfig(
        architecture="amd64",
        os="linux",
        created="2024-01-02T03:04:05Z",
        config=ContainerConfig(
            env=("PATH=/usr/bin:/bin", "A=1"),
            cmd=("sh", "-c", "echo hi"),
            entrypoint=(),
            working_dir="/app",
            user="1000:1000",
            labels={"b": "2", "a": "1"},
            volumes=("/data", "/cache"),
            exposed_ports=("80/tcp", "53/udp"),
        ),
        rootfs=RootFS((D1, D2)),
        history=(
            History(created="2024-01-02T03:04:05Z", created_by="ADD rootfs.tar /"),
            History(created="2024-01-02T03:04:05Z", created_by="ENV A=1", empty_layer=True),
            History(created="2024-01-02T03:04:05Z", created_by="RUN make", comment="buildkit"),
        ),
    )


# =========================================================================================
# OCI documents
# =========================================================================================


def test_config_json_is_canonical() -> None:
    data = full_config().to_json()
    doc = json.loads(data)
    assert data == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert doc["rootfs"] == {"type": "layers", "diff_ids": [D1, D2]}
    assert doc["config"]["Volumes"] == {"/cache": {}, "/data": {}}
    assert doc["config"]["ExposedPorts"] == {"53/udp": {}, "80/tcp": {}}
    assert doc["config"]["Entrypoint"] == [] and "StopSignal" not in doc["config"]
    assert [h.get("empty_layer", False) for h in doc["history"]] == [False, True, False]


def test_equal_configs_give_equal_image_ids() -> None:
    a = full_config()
    b = ImageConfig(
        architecture="amd64", os="linux", created="2024-01-02T03:04:05Z",
        config=ContainerConfig(
            env=["PATH=/usr/bin:/bin", "A=1"], cmd=["sh", "-c", "echo hi"], entrypoint=[], working_dir="/app",
            user="1000:1000", labels={"a": "1", "b": "2"}, volumes=["/cache", "/data", "/data"],
            exposed_ports=["53/udp", "80/tcp"],
        ),
        rootfs=RootFS([D1, D2]), history=list(a.history),
    )
    assert a == b and hash(a) == hash(b)
    assert a.to_json() == b.to_json() and a.image_id == b.image_id == image_id(a.to_json())
    # a pinned vector: the canonical form must not drift between versions
    assert ImageConfig("amd64", "linux").to_json() == (
        b'{"architecture":"amd64","config":{},"os":"linux","rootfs":{"diff_ids":[],"type":"layers"}}'
    )
    assert ImageConfig("amd64", "linux").image_id == sha256_digest(ImageConfig("amd64", "linux").to_json())
    assert ImageConfig("arm64", "linux").image_id != ImageConfig("amd64", "linux").image_id


def test_documents_round_trip() -> None:
    config = full_config()
    assert ImageConfig.from_json(config.to_json()) == config
    manifest = Manifest(
        Descriptor(MEDIA_TYPE_OCI_CONFIG, D1, 10),
        (Descriptor(MEDIA_TYPE_OCI_LAYER, D2, 20, {"k": "v"}),),
        annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    )
    assert Manifest.from_json(manifest.to_json()) == manifest
    index = Index((Descriptor(MEDIA_TYPE_OCI_MANIFEST, D1, 5, platform=Platform("arm64", "linux", "v8")),))
    assert Index.from_json(index.to_json()) == index
    assert parse_document(manifest.to_json()) == manifest and parse_document(index.to_json()) == index


_strs = st.text("abc=/ 01", max_size=6)


@given(
    env=st.lists(_strs, max_size=3), cmd=st.none() | st.lists(_strs, max_size=3), labels=st.dictionaries(_strs, _strs, max_size=3),
    volumes=st.lists(_strs, max_size=3), n_layers=st.integers(0, 3), empties=st.integers(0, 2), created=st.none() | st.integers(0, 2**33),
)
def test_config_round_trip_property(env: list[str], cmd: list[str] | None, labels: dict[str, str], volumes: list[str],
                                    n_layers: int, empties: int, created: int | None) -> None:
    history = [History(created_by=f"L{i}") for i in range(n_layers)] + [History(empty_layer=True)] * empties
    config = ImageConfig(
        "amd64", "linux", RootFS(tuple(sha256_digest(bytes([i])) for i in range(n_layers))),
        ContainerConfig(env=env, cmd=cmd, labels=labels, volumes=volumes),
        tuple(history) if n_layers or empties else (), created=rfc3339(created) if created is not None else None,
    )
    data = config.to_json()
    assert ImageConfig.from_json(data) == config
    assert ImageConfig.from_json(data).to_json() == data


def test_rfc3339() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1700000000.5) == "2023-11-14T22:13:20.5Z"


def _config_doc(**changes: Any) -> dict[str, Any]:
    doc = json.loads(full_config().to_json())
    for key, value in changes.items():
        if value is _DELETE:
            del doc[key]
        else:
            doc[key] = value
    return doc


_DELETE = object()

BAD_CONFIGS: dict[str, tuple[Any, str]] = {
    "no architecture": (_config_doc(architecture=_DELETE), "architecture is required"),
    "empty os": (_config_doc(os=""), "architecture and os"),
    "no rootfs": (_config_doc(rootfs=_DELETE), "rootfs is required"),
    "rootfs type": (_config_doc(rootfs={"type": "layered", "diff_ids": []}), 'rootfs.type must be "layers"'),
    "diff_ids not a list": (_config_doc(rootfs={"type": "layers", "diff_ids": D1}), "rootfs.diff_ids must be list"),
    "diff_id not a digest": (_config_doc(rootfs={"type": "layers", "diff_ids": ["no-digest"]}), "not a digest"),
    "diff_id short": (_config_doc(rootfs={"type": "layers", "diff_ids": ["sha256:abc"]}), "64 lowercase hex"),
    "history count": (_config_doc(history=[{"created_by": "one"}]), "history has 1 entries with a layer"),
    "empty_layer type": (_config_doc(history=[{"empty_layer": "yes"}]), "empty_layer must be bool"),
    "Env type": (_config_doc(config={"Env": "A=1"}), "config.Env must be list"),
    "Env items": (_config_doc(config={"Env": [1]}), "config.Env must be a list of strings"),
    "Labels values": (_config_doc(config={"Labels": {"a": 1}}), "config.Labels must map strings to strings"),
    "Volumes": (_config_doc(config={"Volumes": ["/data"]}), "config.Volumes must be dict"),
    "created": (_config_doc(created="yesterday"), "RFC 3339"),
    "not an object": ([], "must be a JSON object"),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_config_validation_errors(name: str) -> None:
    doc, message = BAD_CONFIGS[name]
    with pytest.raises(ImageFormatError, match=message.replace("(", r"\(").replace(".", r"\.")):
        ImageConfig.from_json(json.dumps(doc).encode())


def test_json_level_errors() -> None:
    for data in (b"{", b"\xff", b'{"a": NaN}', b"null"):
        with pytest.raises(ImageFormatError):
            ImageConfig.from_json(data)
    big = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                      "config": {"Labels": {"x": "y" * MAX_DOCUMENT_SIZE}}}).encode()
    for parse in (ImageConfig.from_json, Manifest.from_json, Index.from_json, parse_document):
        with pytest.raises(DocumentTooLargeError, match="4 MiB"):
            parse(big)
    assert issubclass(DocumentTooLargeError, ImageFormatError) and issubclass(ImageFormatError, ValueError)


def _manifest_doc(**extra: Any) -> dict[str, Any]:
    doc = json.loads(Manifest(Descriptor(MEDIA_TYPE_OCI_CONFIG, D1, 1), (Descriptor(MEDIA_TYPE_OCI_LAYER, D2, 2),)).to_json())
    doc.update(extra)
    return doc


def test_media_type_confusion_is_refused() -> None:
    both = _manifest_doc(manifests=[{"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": D1, "size": 1}])
    data = json.dumps(both).encode()
    for parse in (Manifest.from_json, Index.from_json, parse_document):
        with pytest.raises(MediaTypeError, match="CVE-2021-41190"):
            parse(data)
    index_with_layers = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": [], "layers": []}).encode()
    with pytest.raises(MediaTypeError):
        Index.from_json(index_with_layers)
    with pytest.raises(MediaTypeError):
        parse_document(index_with_layers)
    manifest = json.dumps(_manifest_doc()).encode()
    # a Content-Type that disagrees with the document's mediaType
    with pytest.raises(MediaTypeError, match="disagrees"):
        Manifest.from_json(manifest, content_type=MEDIA_TYPE_DOCKER_MANIFEST)
    with pytest.raises(MediaTypeError):
        Manifest.from_json(manifest, content_type=MEDIA_TYPE_OCI_INDEX)
    assert Manifest.from_json(manifest, content_type=MEDIA_TYPE_OCI_MANIFEST + "; charset=utf-8").layers[0].size == 2
    # a manifest that says it is an index
    with pytest.raises(MediaTypeError):
        Manifest.from_json(json.dumps(_manifest_doc(mediaType=MEDIA_TYPE_OCI_INDEX)).encode())
    with pytest.raises(MediaTypeError):
        parse_document(json.dumps({"schemaVersion": 2, "mediaType": "text/plain"}).encode())


def test_manifest_and_descriptor_validation() -> None:
    cases = {
        "schema 1": _manifest_doc(schemaVersion=1),
        "no config": {k: v for k, v in _manifest_doc().items() if k != "config"},
        "no layers": {k: v for k, v in _manifest_doc().items() if k != "layers"},
        "negative size": _manifest_doc(layers=[{"mediaType": MEDIA_TYPE_OCI_LAYER, "digest": D2, "size": -1}]),
        "bool size": _manifest_doc(layers=[{"mediaType": MEDIA_TYPE_OCI_LAYER, "digest": D2, "size": True}]),
        "no digest": _manifest_doc(layers=[{"mediaType": MEDIA_TYPE_OCI_LAYER, "size": 1}]),
        "no mediaType": _manifest_doc(layers=[{"digest": D2, "size": 1}]),
        "bad digest": _manifest_doc(layers=[{"mediaType": MEDIA_TYPE_OCI_LAYER, "digest": "sha256:../../etc", "size": 1}]),
        "upper hex": _manifest_doc(layers=[{"mediaType": MEDIA_TYPE_OCI_LAYER, "digest": "sha256:" + "A" * 64, "size": 1}]),
    }
    for name, doc in cases.items():
        with pytest.raises(ImageFormatError):
            Manifest.from_json(json.dumps(doc).encode())
            pytest.fail(name)
    # other algorithms are valid in documents (sha512), even if the store keeps sha256 only
    sha512 = "sha512:" + "a" * 128
    assert Descriptor(MEDIA_TYPE_OCI_LAYER, sha512, 1).digest == sha512


def test_validate_image_needs_one_diff_id_per_layer() -> None:
    config = ImageConfig("amd64", "linux", RootFS((D1,)))
    manifest = Manifest(Descriptor(MEDIA_TYPE_OCI_CONFIG, D1, 1), (Descriptor(MEDIA_TYPE_OCI_LAYER, D1, 1),) * 2)
    with pytest.raises(ImageFormatError, match="2 layers but rootfs.diff_ids has 1"):
        validate_image(manifest, config)
    with pytest.raises(MediaTypeError):
        validate_image(Manifest(Descriptor("application/x-unknown", D1, 1), manifest.layers[:1]), config)
    with pytest.raises(MediaTypeError):
        validate_image(Manifest(Descriptor(MEDIA_TYPE_OCI_CONFIG, D1, 1), (Descriptor("text/plain", D1, 1),)), config)
    validate_image(Manifest(Descriptor(MEDIA_TYPE_OCI_CONFIG, D1, 1), manifest.layers[:1]), config)


# =========================================================================================
# ContentStore
# =========================================================================================


@pytest.fixture(params=["memory", "folder"])
def content(request: pytest.FixtureRequest, tmp_path: Path) -> ContentStore:
    return ContentStore() if request.param == "memory" else ContentStore(tmp_path / "store")


def test_put_get_has_delete(content: ContentStore) -> None:
    desc = content.put(b"hello", "text/plain")
    assert desc == Descriptor("text/plain", sha256_digest(b"hello"), 5)
    assert content.put(b"hello").digest == desc.digest and len(content) == 1  # stored once
    assert content.get(desc.digest) == b"hello" and content.get(desc.digest, size=5) == b"hello"
    assert desc.digest in content and content.has(desc.digest) and content.size(desc.digest) == 5
    assert content.sizes() == {desc.digest: 5} and content.total_size() == 5
    assert content.delete(desc.digest) and not content.delete(desc.digest)
    with pytest.raises(BlobNotFoundError):
        content.get(desc.digest)
    assert issubclass(BlobNotFoundError, NotFoundError)
    for bad in ("sha256:../../etc/passwd", "md5:abc", "sha256:" + "A" * 64, "x"):
        with pytest.raises(ImageFormatError):
            content.get(bad)


def _assert_nothing_visible(content: ContentStore) -> None:
    assert content.digests() == [] and content.ingests() == []
    if content.root is not None:
        assert os.listdir(content.root / "blobs" / "sha256") == [] and os.listdir(content.root / "ingest") == []


@pytest.mark.parametrize("stream", [False, True], ids=["bytes", "file"])
def test_bad_blobs_raise_and_leave_nothing(content: ContentStore, stream: bool) -> None:
    data = b"0123456789" * 1000
    d = sha256_digest(data)
    cases = {
        "truncated": (data[:-1], d, len(data)),
        "too long": (data + b"!", d, len(data)),
        "wrong digest": (data, D1, len(data)),
        "wrong digest, no size": (data, D1, None),
        "right size, other bytes": (data[:-1] + b"x", d, len(data)),
    }
    for name, (payload, digest, size) in cases.items():
        source = io.BytesIO(payload) if stream else payload
        with pytest.raises(DigestMismatchError):
            content.ingest(source, digest=digest, size=size)
        _assert_nothing_visible(content)
    assert content.ingest(io.BytesIO(data) if stream else data, digest=d, size=len(data)).digest == d


class Endless:
    """A source that never ends: a too-long check must stop reading, not fill the disk."""

    def __init__(self) -> None:
        self.given = 0

    def read(self, n: int = -1) -> bytes:
        n = 65536 if n is None or n < 0 else n
        self.given += n
        return b"z" * n


def test_too_long_stream_stops_after_size_plus_one(content: ContentStore) -> None:
    source = Endless()
    with pytest.raises(DigestMismatchError, match="longer than the promised 100 bytes"):
        content.ingest(source, digest=D1, size=100)
    assert source.given == 101
    _assert_nothing_visible(content)


def test_reads_are_verified(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    good = store.put(b"good data")
    other = store.put(b"other")
    path = tmp_path / "blobs" / "sha256" / good.digest.hex
    assert oct(path.stat().st_mode & 0o777) == "0o444"  # read-only once committed
    os.chmod(path, 0o644)
    path.write_bytes(b"evil data")  # same length, other bytes
    with pytest.raises(DigestMismatchError, match="corrupt"):
        store.get(good.digest)
    path.write_bytes(b"good dat")  # truncated on disk
    with pytest.raises(DigestMismatchError):
        store.get(good.digest, size=9)
    with pytest.raises(DigestMismatchError):
        store.get(other.digest, size=4)  # the caller was promised another size
    assert store.verify() == [good.digest]
    path.unlink()
    path.symlink_to(tmp_path / "blobs" / "sha256" / other.digest.hex)
    with pytest.raises(DigestMismatchError, match="symlink"):
        store.get(good.digest)


def test_memory_reads_are_verified() -> None:
    store = ContentStore()
    desc = store.put(b"abc")
    store._memory[desc.digest.hex] = b"abd"  # type: ignore[index]  # bit rot
    with pytest.raises(DigestMismatchError):
        store.get(desc.digest)


def test_opening_cleans_what_an_interrupted_ingest_left(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    kept = store.put(b"committed")
    partial = tmp_path / "ingest" / "0123.partial"
    partial.write_bytes(b"half a bl")
    assert store.ingests() == ["0123.partial"]
    assert store.digests() == [kept.digest]  # never visible as a blob
    again = ContentStore(tmp_path)
    assert again.cleaned_up == ["0123.partial"] and again.ingests() == []
    assert again.get(kept.digest) == b"committed"


def test_a_live_writers_ingest_is_not_cleaned(tmp_path: Path) -> None:
    ContentStore(tmp_path)
    busy = tmp_path / "ingest" / "busy.partial"
    fd = os.open(busy, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert ContentStore(tmp_path).cleaned_up == [] and busy.exists()
    finally:
        os.close(fd)
    assert ContentStore(tmp_path).cleaned_up == ["busy.partial"]


KILLED_WRITER = """
import os, signal, sys
from sim.images.store import ContentStore
store = ContentStore(sys.argv[1])
class HalfThenDie:
    calls = 0
    def read(self, n=-1):
        self.calls += 1
        if self.calls == 1:
            return b"x" * 100000
        os.kill(os.getpid(), signal.SIGKILL)
store.ingest(HalfThenDie(), digest="sha256:" + "0" * 64, size=200000)
"""


def test_sigkill_in_the_middle_of_an_ingest(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    before = store.put(b"already here")
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = store.ingests()
    assert len(leftovers) == 1 and (tmp_path / "ingest" / leftovers[0]).stat().st_size == 100000
    assert store.digests() == [before.digest]  # 0 partial blobs visible
    reopened = ContentStore(tmp_path)
    assert reopened.cleaned_up == leftovers and reopened.ingests() == []
    assert reopened.digests() == [before.digest] and reopened.verify() == []


def test_reference_counting_helpers(content: ContentStore) -> None:
    a, b, c = (content.put(x).digest for x in (b"a" * 10, b"b" * 20, b"c" * 40))
    owners = {"one": [a, b, a], "two": [a, c]}
    assert ContentStore.reference_counts(owners) == {a: 2, b: 1, c: 1}
    assert content.usage(owners) == {"one": Usage(30, 10, 20), "two": Usage(50, 10, 40)}
    assert content.unreferenced({"one": [a]}) == sorted([b, c])


# =========================================================================================
# ImageStore
# =========================================================================================

BASE = layer({"etc/os-release": b"NAME=layerlab\n", "bin/sh": b"\x7fELF" + b"\0" * 4000})


@pytest.fixture(params=["memory", "folder"])
def images(request: pytest.FixtureRequest, tmp_path: Path) -> ImageStore:
    return ImageStore() if request.param == "memory" else ImageStore(tmp_path / "images")


def app_layer(n: int) -> Layer:
    return layer({f"app/{n}.txt": f"app {n}\n".encode() * (n + 1)})


def add_app(images: ImageStore, n: int, *tags: str, parent: str | None = None) -> Any:
    layers = [BASE, app_layer(n)]
    return images.add(layers, config_for(layers), tags=tags, parent=parent)


def test_add_stores_layers_config_and_manifest(images: ImageStore) -> None:
    record = add_app(images, 1, "app:1")
    assert record.id == sha256_digest(images.config_bytes(record)) == record.config.image_id
    assert [lay.digest for lay in record.layers] == list(record.diff_ids) == [BASE.diff_id, app_layer(1).diff_id]
    assert all(lay.media_type == MEDIA_TYPE_OCI_LAYER for lay in record.layers)
    assert Manifest.from_json(images.manifest_bytes("app:1")) == record.manifest
    assert record.tags == ("app:1",) and record.repo_tags == ("docker.io/library/app:1",)
    assert record.size == len(BASE.tar_bytes()) + len(app_layer(1).tar_bytes())
    assert images.load_layers(record) == [BASE, app_layer(1)]
    assert images.load_layers("app:1")[0].frozen


def test_add_without_config_and_refusals(images: ImageStore) -> None:
    record = images.add([BASE], tags=["base"])
    assert record.config.rootfs.diff_ids == (BASE.diff_id,) and record.config.os == "linux"
    before = images.content.digests()
    with pytest.raises(ImageFormatError, match="do not match"):
        images.add([BASE, app_layer(1)], config_for([BASE]))
    with pytest.raises(InvalidReferenceError):
        images.add([app_layer(2)], tags=["Bad:tag"])
    with pytest.raises(ImageNotFoundError):
        images.add([app_layer(2)], parent="nope")
    assert images.content.digests() == before and len(images) == 1  # refused before any side effect


def test_shared_layers_are_stored_once(images: ImageStore) -> None:
    n = 5
    records = [add_app(images, i, f"app:{i}") for i in range(n)]
    base_blob = BASE.diff_id
    assert sum(base_blob in [lay.digest for lay in r.layers] for r in records) == n
    layer_blobs = {lay.digest for r in records for lay in r.layers}
    assert len(layer_blobs) == n + 1
    base_size = len(BASE.tar_bytes())
    app_sizes = [len(app_layer(i).tar_bytes()) for i in range(n)]
    assert images.layer_bytes() == base_size + sum(app_sizes)
    assert sum(r.size for r in records) == n * base_size + sum(app_sizes)  # what N full copies would take
    usage = images.usage()
    for i, r in enumerate(records):
        assert usage[r.id] == Usage(base_size + app_sizes[i], base_size, app_sizes[i])
    if images.content.root is not None:  # on disk: one file per distinct blob
        assert len(os.listdir(images.content.root / "blobs" / "sha256")) == n + 1 + 2 * n


def test_resolve_by_tag_id_and_prefix(images: ImageStore) -> None:
    record = add_app(images, 1, "app:1", "registry.example:5000/team/app")
    for text in ("app:1", "docker.io/library/app:1", "index.docker.io/library/app:1", "registry.example:5000/team/app:latest",
                 "registry.example:5000/team/app", record.id, record.id.hex, record.short_id, "sha256:" + record.short_id,
                 record.id.hex[:3], f"registry.example:5000/team/app@{record.manifest_digest}"):
        assert images.resolve(text).id == record.id, text
    assert "app:1" in images and "app:2" not in images and "Bad" not in images
    with pytest.raises(ImageNotFoundError, match=r"^No such image: app:2$"):
        images.resolve("app:2")
    with pytest.raises(ImageNotFoundError, match="No such image: sha256:"):
        images.resolve("sha256:" + "0" * 64)
    with pytest.raises(InvalidReferenceError, match="must be lowercase"):
        images.resolve("App")
    with pytest.raises(ImageNotFoundError):
        images.resolve(f"other/app@{record.manifest_digest}")  # the digest belongs to another repository


def test_ambiguous_short_id() -> None:
    images = ImageStore()
    ids = [add_app(images, i).id for i in range(40)]
    firsts = [i.hex[0] for i in ids]
    common = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(ImageNotFoundError, match="ambiguous"):
        images.resolve(common)


def test_tags(images: ImageStore) -> None:
    one = add_app(images, 1, "app:1")
    two = add_app(images, 2)
    assert images.tag("app:1", "app:latest").tags == ("app:1", "app:latest")
    assert images.tags() == {"docker.io/library/app:1": one.manifest_digest, "docker.io/library/app:latest": one.manifest_digest}
    images.tag(two.short_id, "app:latest")  # a tag moves, as `docker tag` moves it
    assert images.resolve("app").id == two.id and images.resolve("app:1").tags == ("app:1",)
    assert images.untag("app:1").repo_tags == () and len(images) == 2  # untag keeps the image
    with pytest.raises(ImageNotFoundError):
        images.untag("app:1")
    with pytest.raises(InvalidReferenceError, match="refusing to create a tag with a digest reference"):
        images.tag("app", f"app@{one.manifest_digest}")
    with pytest.raises(InvalidReferenceError):
        images.tag("app", "app:-bad")


def test_remove_follows_docker_rmi(images: ImageStore) -> None:
    base = images.add([BASE], config_for([BASE]), tags=["base:1", "base:stable", "mirror/base:1"])
    app = add_app(images, 1, "app:1", parent="base:1")
    # by tag: only the tag goes while others remain
    result = images.remove("base:stable")
    assert result.untagged == ("base:stable",) and result.deleted == () and result.freed_bytes == 0
    # by ID with tags in two repositories: refused unless forced; children refuse even force
    blobs_before, tags_before = images.content.digests(), images.tags()
    with pytest.raises(ConflictError, match=r"unable to delete [0-9a-f]{12} \(cannot be forced\) - image has dependent child images"):
        images.remove(base.id, force=True)
    assert images.content.digests() == blobs_before and images.tags() == tags_before  # nothing changed
    images.remove("mirror/base:1")
    # by tag, last tag, but a child exists: untagged, kept (hidden from the default listing)
    result = images.remove("base:1")
    assert result.untagged == ("base:1",) and result.deleted == ()
    assert base.id in [r.id for r in images.list(all=True)] and base.id not in [r.id for r in images.list()]
    # the child goes, and takes its untagged parent with it; shared blobs then go too
    total = images.content.total_size()
    result = images.remove("app:1")
    assert result.untagged == ("app:1",) and result.deleted == (app.id, base.id)
    assert result.lines() == ["Untagged: app:1", f"Deleted: {app.id}", f"Deleted: {base.id}"]
    assert images.content.digests() == [] and len(images) == 0
    assert result.freed_bytes == total and len(result.deleted_blobs) == len(blobs_before)


def test_remove_by_id(images: ImageStore) -> None:
    one = add_app(images, 1, "app:1", "app:one")
    two = add_app(images, 2, "app:2", "other:2")
    three = add_app(images, 3)
    result = images.remove(one.short_id)  # tags in one repository: no force needed
    assert sorted(result.untagged) == ["app:1", "app:one"] and result.deleted == (one.id,)
    assert app_layer(1).diff_id in result.deleted_blobs and BASE.diff_id not in result.deleted_blobs  # still shared
    with pytest.raises(ConflictError, match=r"\(must be forced\) - image is referenced in multiple repositories"):
        images.remove(two.id)
    assert images.remove(two.id, force=True).deleted == (two.id,)
    assert images.remove(three.id).lines() == [f"Deleted: {three.id}"]  # dangling
    assert images.content.digests() == [] and images.gc().deleted_blobs == ()
    with pytest.raises(ImageNotFoundError):
        images.remove("app:1")


def test_remove_frees_exactly_the_unique_bytes(images: ImageStore) -> None:
    add_app(images, 1, "a")
    b = add_app(images, 2, "b")
    unique = images.usage()[b.id].unique_size
    config_and_manifest = len(images.config_bytes(b)) + len(images.manifest_bytes(b))
    assert images.remove("b").freed_bytes == unique + config_and_manifest


def test_gc_collects_what_an_interrupted_add_left(images: ImageStore) -> None:
    add_app(images, 1, "a")
    stray = images.content.put(b"a layer whose image never got committed")
    result = images.gc()
    assert result.deleted_blobs == (stray.digest,) and images.resolve("a")


def test_folder_store_is_persistent_and_an_oci_layout(tmp_path: Path) -> None:
    root = tmp_path / "images"
    store = ImageStore(root)
    base = store.add([BASE], tags=["base"])
    add_app(store, 1, "app:1", "app:latest", parent="base")
    dangling = add_app(store, 2)
    reopened = ImageStore(root)
    assert [(r.id, r.repo_tags, r.parent) for r in reopened.list(all=True)] == [
        (r.id, r.repo_tags, r.parent) for r in store.list(all=True)
    ]
    assert reopened.resolve(dangling.short_id).repo_tags == ()
    assert reopened.resolve("app").parent == base.id
    assert json.loads((root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = Index.from_json((root / "index.json").read_bytes())
    names = sorted(d.annotations.get(ANNOTATION_REF_NAME, "") for d in index.manifests)
    assert names == ["", "1", "latest", "latest"]
    assert reopened.load_layers("app:1") == [BASE, app_layer(1)]


def test_an_image_store_will_not_take_over_a_foreign_layout(tmp_path: Path) -> None:
    source = ImageStore()
    add_app(source, 1, "app:1")
    files = tar_files(saved(source, ["app:1"]))
    index = Index.from_json(files["index.json"])
    files["index.json"] = Index(tuple(d.with_annotations({ANNOTATION_REF_NAME: "1"}) for d in index.manifests)).to_json()
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ImageFormatError, match="another tool"):
        ImageStore(tmp_path)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert ImageStore().load(tmp_path, repository="app")[0].tags == ("app:1",)


# -- docker save / docker load ------------------------------------------------------------------------


def saved(images: ImageStore, refs: list[str]) -> bytes:
    buf = io.BytesIO()
    images.save(refs, buf)
    return buf.getvalue()


def tar_files(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}  # type: ignore[union-attr]


def make_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_save_writes_a_docker_save_layout(images: ImageStore) -> None:
    one = add_app(images, 1, "app:1", "app:latest", "localhost:5000/app:1")
    data = saved(images, ["app", "localhost:5000/app:1"])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    files = tar_files(data)
    assert set(files) == {"oci-layout", "index.json", "manifest.json", "repositories",
                          *(f"blobs/sha256/{Digest(d).hex}" for d in (one.manifest_digest, one.id, *one.diff_ids))}
    index = Index.from_json(files["index.json"])
    assert [(d.digest, d.annotations[ANNOTATION_CONTAINERD_IMAGE_NAME], d.annotations[ANNOTATION_REF_NAME]) for d in index.manifests] == [
        (one.manifest_digest, "docker.io/library/app:1", "1"),
        (one.manifest_digest, "docker.io/library/app:latest", "latest"),
        (one.manifest_digest, "localhost:5000/app:1", "1"),
    ]
    legacy = json.loads(files["manifest.json"])
    assert legacy == [{
        "Config": f"blobs/sha256/{one.id.hex}",
        "RepoTags": ["app:1", "app:latest", "localhost:5000/app:1"],
        "Layers": [f"blobs/sha256/{Digest(d).hex}" for d in one.diff_ids],
    }]
    top = Digest(one.diff_ids[-1]).hex
    assert json.loads(files["repositories"]) == {"app": {"1": top, "latest": top}, "localhost:5000/app": {"1": top}}
    for name, blob in files.items():
        if name.startswith("blobs/"):
            assert hashlib.sha256(blob).hexdigest() == name.rsplit("/", 1)[1]


def test_save_by_id_is_untagged(images: ImageStore) -> None:
    one = add_app(images, 1, "app:1")
    files = tar_files(saved(images, [one.short_id]))
    assert json.loads(files["manifest.json"])[0]["RepoTags"] is None
    assert Index.from_json(files["index.json"]).manifests[0].annotations == {}
    assert "repositories" not in files


def test_save_load_round_trip_is_byte_identical(images: ImageStore, tmp_path: Path) -> None:
    base = images.add([BASE], config_for([BASE]), tags=["base:1"])
    add_app(images, 1, "app:1", "app:latest", parent="base:1")
    add_app(images, 2, "registry.example/team/app:2")
    refs = ["app", "base:1", "registry.example/team/app:2"]
    first = saved(images, refs)
    assert saved(images, refs) == first  # reproducible
    other = ImageStore(tmp_path / "other")
    loaded = other.load(io.BytesIO(first))
    assert sorted(t for r in loaded for t in r.tags) == ["app:1", "app:latest", "base:1", "registry.example/team/app:2"]
    assert saved(other, refs) == first  # re-save: the same bytes
    assert other.load_layers("app:1") == [BASE, app_layer(1)]
    assert other.resolve("base:1").id == base.id
    # loading the same archive again changes nothing
    assert other.load(io.BytesIO(first)) and saved(other, refs) == first
    # an archive file by path works too
    (tmp_path / "x.tar").write_bytes(first)
    assert len(ImageStore().load(tmp_path / "x.tar")) == 3


def test_load_moves_existing_tags(images: ImageStore) -> None:
    add_app(images, 1, "app:latest")
    other = ImageStore()
    new = add_app(other, 2, "app:latest")
    images.load(io.BytesIO(saved(other, ["app"])))
    assert images.resolve("app").id == new.id and len(images) == 2


def _tamper(data: bytes, name: str, payload: bytes) -> bytes:
    files = tar_files(data)
    files[name] = payload
    return make_tar(files)


def test_load_verifies_every_blob(images: ImageStore) -> None:
    source = ImageStore()
    record = add_app(source, 1, "app:1")
    good = saved(source, ["app:1"])
    layer_name = f"blobs/sha256/{Digest(record.diff_ids[1]).hex}"
    config_name = f"blobs/sha256/{record.id.hex}"
    lay = tar_files(good)[layer_name]
    cases = {
        "layer truncated": (_tamper(good, layer_name, lay[:-1]), DigestMismatchError),
        "layer too long": (_tamper(good, layer_name, lay + b"\0"), DigestMismatchError),
        "layer swapped, same size": (_tamper(good, layer_name, lay[:-1] + b"x"), DigestMismatchError),
        "config edited": (_tamper(good, config_name, tar_files(good)[config_name].replace(b"amd64", b"arm64")), DigestMismatchError),
        "blob missing": (make_tar({k: v for k, v in tar_files(good).items() if k != layer_name}), ImageFormatError),
        "not an archive": (b"hello", ImageFormatError),
        "no index or manifest.json": (make_tar({"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}), ImageFormatError),
        "layout version 2": (_tamper(good, "oci-layout", b'{"imageLayoutVersion":"2.0.0"}'), ImageFormatError),
        "unsafe name": (make_tar({"../index.json": b"{}"}), ImageFormatError),
        "manifest over 4 MiB": (_tamper(good, "index.json", tar_files(good)["index.json"].replace(
            b'"size":%d' % len(source.manifest_bytes(record)), b'"size":%d' % (MAX_DOCUMENT_SIZE + 1))), DocumentTooLargeError),
    }
    for name, (data, error) in cases.items():
        with pytest.raises(error):
            images.load(io.BytesIO(data))
            pytest.fail(name)
        assert images.content.digests() == [] and len(images) == 0, name  # 0 unverified blobs committed


def test_load_checks_diff_ids_against_the_config(images: ImageStore) -> None:
    """A layer blob that matches its manifest digest but not the config's DiffID is refused."""
    good_layers = [BASE]
    evil = layer({"etc/os-release": b"NAME=evil\n"})
    config = config_for(good_layers)
    config_bytes = config.to_json()
    blob = evil.tar_bytes()
    manifest = Manifest(Descriptor(MEDIA_TYPE_OCI_CONFIG, sha256_digest(config_bytes), len(config_bytes)),
                        (Descriptor(MEDIA_TYPE_OCI_LAYER, sha256_digest(blob), len(blob)),))
    archive = oci_layout_files([(manifest, config_bytes, [blob], {ANNOTATION_REF_NAME: "x/y:1"})])
    with pytest.raises(DigestMismatchError, match="DiffID"):
        images.load(io.BytesIO(make_tar(archive)))
    assert images.content.digests() == []


def test_load_refuses_media_type_confusion_in_a_layout(images: ImageStore) -> None:
    source = ImageStore()
    record = add_app(source, 1, "app:1")
    files = tar_files(saved(source, ["app:1"]))
    doc = json.loads(files[f"blobs/sha256/{record.manifest_digest.hex}"])
    doc["manifests"] = []
    evil = canonical_json(doc)
    del files[f"blobs/sha256/{record.manifest_digest.hex}"]
    files[f"blobs/sha256/{sha256_digest(evil).hex}"] = evil
    files["index.json"] = Index((Descriptor(MEDIA_TYPE_OCI_MANIFEST, sha256_digest(evil), len(evil)),)).to_json()
    with pytest.raises(MediaTypeError):
        images.load(io.BytesIO(make_tar(files)))
    assert images.content.digests() == []


def oci_layout_files(images: list[tuple[Manifest, bytes, list[bytes], dict[str, str]]], extra_index: list[Descriptor] = ()) -> dict[str, bytes]:  # type: ignore[assignment]
    files: dict[str, bytes] = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
    entries = []
    for manifest, config_bytes, blobs, notes in images:
        mbytes = manifest.to_json()
        for blob in [mbytes, config_bytes, *blobs]:
            files[f"blobs/sha256/{sha256_digest(blob).hex}"] = blob
        entries.append(Descriptor(manifest.media_type or MEDIA_TYPE_OCI_MANIFEST, sha256_digest(mbytes), len(mbytes), notes))
    files["index.json"] = Index(tuple(entries) + tuple(extra_index)).to_json()
    return files


def test_load_a_foreign_layout_folder(tmp_path: Path, images: ImageStore) -> None:
    """What skopeo/umoci write: gzip layers, a bare tag in ref.name, Docker-style JSON, plus things we do not know."""
    layers = [BASE, app_layer(7)]
    gz = [gzip.compress(lay.tar_bytes(), mtime=0) for lay in layers]
    # a config as another tool writes it: spaces, unknown fields, key order of its own
    config_doc = {"created": "2024-05-01T10:00:00.123456789Z", "architecture": "amd64", "os": "linux",
                  "config": {"Env": ["A=1"], "Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": [lay.diff_id for lay in layers]},
                  "history": [{"created_by": "umoci repack"}, {"created_by": "umoci config", "empty_layer": True}, {"created_by": "x"}],
                  "container_config": {"Hostname": "abc"}, "docker_version": "1.0"}
    config_bytes = json.dumps(config_doc, indent=2).encode()
    manifest = Manifest(Descriptor(MEDIA_TYPE_OCI_CONFIG, sha256_digest(config_bytes), len(config_bytes)),
                        tuple(Descriptor(MEDIA_TYPE_OCI_LAYER_GZIP, sha256_digest(b), len(b)) for b in gz),
                        annotations={"org.opencontainers.image.created": "2024-05-01T10:00:00Z"})
    # an artifact (unknown config media type), an unknown descriptor type, a nested index for two platforms
    artifact_config = b"{}"
    artifact = Manifest(Descriptor("application/vnd.example.sbom.config+json", sha256_digest(artifact_config), 2),
                        (Descriptor("application/spdx+json", sha256_digest(b"sbom"), 4),))
    unknown = Descriptor("application/vnd.example.thing+json", sha256_digest(b"thing"), 5)
    arm_config = ImageConfig("arm64", "linux", RootFS((BASE.diff_id,))).to_json()
    arm = Manifest(Descriptor(MEDIA_TYPE_OCI_CONFIG, sha256_digest(arm_config), len(arm_config)),
                   (Descriptor(MEDIA_TYPE_OCI_LAYER, BASE.diff_id, len(BASE.tar_bytes())),))
    files = oci_layout_files(
        [(manifest, config_bytes, gz, {ANNOTATION_REF_NAME: "v1"}),
         (artifact, artifact_config, [b"sbom"], {ANNOTATION_REF_NAME: "sbom"})],
        extra_index=[unknown],
    )
    files[f"blobs/sha256/{sha256_digest(b'thing').hex}"] = b"thing"
    arm_bytes = arm.to_json()
    files[f"blobs/sha256/{sha256_digest(arm_bytes).hex}"] = arm_bytes
    files[f"blobs/sha256/{sha256_digest(arm_config).hex}"] = arm_config
    files[f"blobs/sha256/{BASE.diff_id.hex}"] = BASE.tar_bytes()
    amd_bytes = manifest.to_json()
    nested = Index((
        Descriptor(MEDIA_TYPE_OCI_MANIFEST, sha256_digest(arm_bytes), len(arm_bytes), platform=Platform("arm64", "linux", "v8")),
        Descriptor(MEDIA_TYPE_OCI_MANIFEST, sha256_digest(amd_bytes), len(amd_bytes), platform=Platform("amd64", "linux")),
    )).to_json()
    files[f"blobs/sha256/{sha256_digest(nested).hex}"] = nested
    index = Index.from_json(files["index.json"])
    files["index.json"] = Index(index.manifests + (
        Descriptor(MEDIA_TYPE_OCI_INDEX, sha256_digest(nested), len(nested), {ANNOTATION_REF_NAME: "multi"}),)).to_json()
    files["README.txt"] = b"not part of the spec"
    files["blobs/sha512/" + "a" * 128] = b"someone else's blob"
    folder = tmp_path / "layout"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    loaded = images.load(folder, repository="umoci/test", platform=Platform("arm64", "linux", "v8"))
    assert [r.tags for r in loaded] == [("umoci/test:v1",), ("umoci/test:multi",)]
    first = loaded[0]
    assert first.id == sha256_digest(config_bytes)  # the foreign bytes are kept: the ImageID does not change
    assert images.config_bytes(first) == config_bytes
    assert first.config.config.env == ("A=1",) and first.layers[0].media_type == MEDIA_TYPE_OCI_LAYER_GZIP
    assert images.load_layers(first) == layers
    assert loaded[1].config.architecture == "arm64"  # the platform asked for, from the nested index
    # without a repository the bare tags name nothing: untagged; for amd64 the nested index gives the first image again
    assert [(r.id, r.repo_tags) for r in ImageStore().load(folder, platform=Platform("amd64", "linux"))] == [(first.id, ())]
    # and the layout re-saves as a docker save archive that loads again
    again = ImageStore()
    again.load(io.BytesIO(saved(images, ["umoci/test:v1"])))
    assert again.load_layers("umoci/test:v1") == layers


def test_load_legacy_docker_save(images: ImageStore) -> None:
    """``docker save`` before Docker 25: <id>.json configs and <id>/layer.tar files, no index.json."""
    layers = [BASE, app_layer(3)]
    config_bytes = config_for(layers).to_json()
    cid = sha256_digest(config_bytes).hex
    files = {f"{cid}.json": config_bytes, "manifest.json": json.dumps([{
        "Config": f"{cid}.json", "RepoTags": ["legacy/app:3"], "Layers": ["aaa/layer.tar", "bbb/layer.tar"]}]).encode(),
        "aaa/layer.tar": layers[0].tar_bytes(), "bbb/layer.tar": gzip.compress(layers[1].tar_bytes()),
        "aaa/VERSION": b"1.0", "repositories": b"{}"}
    (record,) = images.load(io.BytesIO(make_tar(files)))
    assert record.tags == ("legacy/app:3",) and record.id == sha256_digest(config_bytes)
    assert images.load_layers(record) == layers
    files["bbb/layer.tar"] = app_layer(4).tar_bytes()
    with pytest.raises(DigestMismatchError):
        ImageStore().load(io.BytesIO(make_tar(files)))


UMOCI = shutil.which("umoci")
SKOPEO = shutil.which("skopeo")


@pytest.mark.skipif(UMOCI is None, reason="umoci is not installed")
def test_interop_with_umoci_and_skopeo(tmp_path: Path) -> None:
    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, cwd=tmp_path, timeout=120)

    run("umoci", "init", "--layout", "layout")
    run("umoci", "new", "--image", "layout:t")
    run("umoci", "unpack", "--rootless", "--image", "layout:t", "bundle")
    (tmp_path / "bundle" / "rootfs" / "hello").write_text("hi\n")
    run("umoci", "repack", "--image", "layout:t", "bundle")
    run("umoci", "config", "--image", "layout:t", "--config.cmd", "sh", "--config.env", "A=1")
    images = ImageStore(tmp_path / "store")
    (record,) = images.load(tmp_path / "layout", repository="umoci/test")
    assert record.tags == ("umoci/test:t",) and record.config.config.cmd == ("sh",)
    assert [lay.paths() for lay in images.load_layers(record)] == [["hello"]]
    if SKOPEO is None:
        return
    # skopeo reads what we save, both as an OCI archive and as a docker archive ...
    (tmp_path / "ours.tar").write_bytes(saved(images, ["umoci/test:t"]))
    run("skopeo", "copy", "-q", "oci-archive:ours.tar:t", "oci:back:t")
    run("skopeo", "copy", "-q", "docker-archive:ours.tar:umoci/test:t", "oci:back2:t")
    assert ImageStore().load(tmp_path / "back", repository="x/y")[0].id == record.id
    # ... and we read skopeo's docker-archive (the pre-25 docker save form, with symlinked layers)
    run("skopeo", "copy", "-q", "oci:layout:t", "docker-archive:legacy.tar:foo/bar:1")
    (legacy,) = ImageStore().load(tmp_path / "legacy.tar")
    assert legacy.id == record.id and legacy.tags == ("foo/bar:1",)
    # and skopeo reads our store folder, which is an OCI layout itself
    run("skopeo", "copy", "-q", f"oci:{tmp_path / 'store'}:t", "oci:back3:t")

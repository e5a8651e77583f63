"""Push and pull over the model: what crosses each link, and every fault a pull must survive
with a typed error, nothing partial visible and nothing lost (safety.md's registry rules)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.errors import (
    AuthenticationError,
    DigestMismatchError,
    ImageNotFoundError,
    RegistryUnavailableError,
    UnsupportedOperationError,
)
from sim.images.oci import MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, DocumentTooLargeError, MediaTypeError
from sim.images.store import ImageRecord, ImageStore
from sim.layers.layer import Layer
from sim.registries import Credentials, ModelMirror, ModelRegistry, pull, push
from sim.registries.api import MAX_MANIFEST_BYTES, ManifestResponse

from .tampered import Tampered


def layer(files: dict[str, bytes]) -> Layer:
    out = Layer()
    for path, data in files.items():
        out.add_file(path.lstrip("/"), data)
    return out.freeze()


def image(store: ImageStore, tag: str = "app:1", sizes: tuple[int, ...] = (300_000, 5_000)) -> ImageRecord:
    layers = [layer({f"/data/{i}": os.urandom(n)}) for i, n in enumerate(sizes)]
    return store.add(layers, tags=[tag])


def no_leftovers(store: ImageStore, before: set[object]) -> None:
    assert set(store.content.digests()) == before, "a blob became visible"
    assert [n for n in store.content.ingests() if not n.endswith(".download")] == []


@pytest.fixture(params=["memory", "folder"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "pulled" if request.param == "folder" else None)


def test_push_then_pull_keeps_every_digest(target: ImageStore) -> None:
    source = ImageStore()
    record = image(source)
    registry = ModelRegistry("localhost:5000")
    pushed = push(source, record, registry.client(), "lab/app", "1")
    assert [b.action for b in pushed.blobs] == ["uploaded"] * 3
    pulled = pull(target, registry.client(), "lab/app", "1", tags=["localhost:5000/lab/app:1"])
    assert pulled.digest == pushed.digest == record.manifest_digest
    assert pulled.image_id == record.id
    assert target.manifest_bytes("localhost:5000/lab/app:1") == source.manifest_bytes(record)
    assert pulled.bytes_received == pushed.bytes_sent
    assert [L.diff_id for L in target.load_layers("localhost:5000/lab/app:1")] == list(record.diff_ids)


def test_a_second_push_sends_only_the_manifest() -> None:
    source = ImageStore()
    record = image(source)
    registry = ModelRegistry("localhost:5000")
    push(source, record, registry.client(), "lab/app", "1")
    again = push(source, record, registry.client(), "lab/app", "1")
    assert [b.action for b in again.blobs] == ["exists"] * 3
    assert again.bytes_sent == again.manifest_size


def test_a_push_to_another_repository_mounts_instead_of_uploading() -> None:
    source = ImageStore()
    record = image(source)
    registry = ModelRegistry("localhost:5000")
    push(source, record, registry.client(), "lab/app", "1")
    before = registry.stats().bytes_in
    other = push(source, record, registry.client(), "lab/copy", "1", mount_from=["lab/app"])
    assert {b.action for b in other.blobs} == {"mounted"}
    assert registry.stats().bytes_in - before == other.manifest_size
    assert registry.stats().stored_bytes < registry.stats().linked_bytes


def test_chunked_push_stores_the_same_blobs() -> None:
    source = ImageStore()
    record = image(source)
    registry = ModelRegistry("localhost:5000")
    result = push(source, record, registry.client(), "lab/app", "1", chunk_size=64_000)
    assert result.digest == record.manifest_digest


def test_a_second_pull_downloads_nothing(target: ImageStore) -> None:
    source = ImageStore()
    record = image(source)
    registry = ModelRegistry("localhost:5000")
    push(source, record, registry.client(), "lab/app", "1")
    pull(target, registry.client(), "lab/app", "1")
    again = pull(target, registry.client(), "lab/app", "1")
    assert {b.action for b in again.blobs} == {"present"} and sum(b.bytes for b in again.blobs) == 0


def test_a_mirror_saves_the_upstream_link_on_the_second_pull() -> None:
    source = ImageStore()
    record = image(source)
    hub = ModelRegistry("docker.io")
    push(source, record, hub.client(), "library/app", "1")
    mirror = ModelMirror("127.0.0.1:5001", hub.client())
    first = pull(ImageStore(), mirror.client(), "library/app", "1")
    upstream_after_first = mirror.stats().upstream_bytes
    second = pull(ImageStore(), mirror.client(), "library/app", "1")
    assert {b.origin for b in first.blobs} == {"upstream"} and {b.origin for b in second.blobs} == {"cache"}
    # only the tag lookup went upstream the second time
    assert mirror.stats().upstream_bytes - upstream_after_first == len(source.manifest_bytes(record))
    assert second.bytes_received == first.bytes_received


def test_a_push_to_a_mirror_is_refused_before_any_byte_is_stored() -> None:
    source = ImageStore()
    record = image(source)
    mirror = ModelMirror("127.0.0.1:5001", ModelRegistry("docker.io").client())
    with pytest.raises(UnsupportedOperationError):
        push(source, record, mirror.client(), "library/app", "1")
    assert mirror.stats().stored_bytes == 0


def test_a_wrong_password_pulls_nothing() -> None:
    source = ImageStore()
    record = image(source)
    registry = ModelRegistry("localhost:5000", accounts={"student": "right"})
    push(source, record, registry.client(Credentials("student", "right")), "lab/app", "1")
    target = ImageStore()
    with pytest.raises(AuthenticationError):
        pull(target, registry.client(Credentials("student", "wrong")), "lab/app", "1")
    assert target.content.digests() == []


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]


@pytest.mark.parametrize("fault", [_flip, lambda d: d[:-1], lambda d: d + b"extra"], ids=["flipped", "truncated", "longer"])
def test_a_bad_blob_is_refused_and_never_visible(target: ImageStore, fault: object) -> None:
    source = ImageStore()
    record = image(source)
    registry = ModelRegistry("localhost:5000")
    push(source, record, registry.client(), "lab/app", "1")
    before = set(target.content.digests())
    with pytest.raises(DigestMismatchError):
        pull(target, Tampered(registry.client(), blob=fault), "lab/app", "1")  # type: ignore[arg-type]
    no_leftovers(target, before)
    assert target.content.ingests() == []  # a blob that failed its check is not kept to resume
    assert len(target) == 0


def _with_media_type(media_type: str) -> object:
    return lambda answer: dataclasses.replace(answer, media_type=media_type)


@pytest.mark.parametrize("change, error", [
    (_with_media_type(MEDIA_TYPE_OCI_INDEX), MediaTypeError),
    (lambda a: ManifestResponse(a.data + b" ", a.media_type, a.digest), DigestMismatchError),
    (lambda a: ManifestResponse(json.dumps({**json.loads(a.data), "manifests": []}).encode(), a.media_type, None),
     MediaTypeError),
    (lambda a: ManifestResponse(b" " * (MAX_MANIFEST_BYTES + 1), a.media_type, None), DocumentTooLargeError),
], ids=["content-type-disagrees", "digest-header-disagrees", "layers-and-manifests", "over-4-MiB"])
def test_a_bad_manifest_is_refused_before_any_blob_moves(change: object, error: type[Exception]) -> None:
    source = ImageStore()
    record = image(source)
    registry = ModelRegistry("localhost:5000")
    push(source, record, registry.client(), "lab/app", "1")
    target = ImageStore()
    tampered = Tampered(registry.client(), manifest=change)  # type: ignore[arg-type]
    with pytest.raises(error):
        pull(target, tampered, "lab/app", "1")
    assert tampered.offsets == [] and target.content.digests() == []


def test_a_manifest_by_digest_must_hash_to_it() -> None:
    source = ImageStore()
    record = image(source)
    registry = ModelRegistry("localhost:5000")
    push(source, record, registry.client(), "lab/app", "1")
    other = push(source, image(source, "app:2"), registry.client(), "lab/app", "2").digest
    swap = Tampered(registry.client(), manifest=lambda a: registry.client().get_manifest("lab/app", str(other)))
    with pytest.raises(DigestMismatchError):
        pull(ImageStore(), swap, "lab/app", str(record.manifest_digest))


def test_a_broken_connection_resumes_with_range(target: ImageStore) -> None:
    source = ImageStore()
    record = image(source, sizes=(400_000,))
    registry = ModelRegistry("localhost:5000")
    push(source, record, registry.client(), "lab/app", "1")
    flaky = Tampered(registry.client(), cut_after=150_000)
    result = pull(target, flaky, "lab/app", "1")
    big = max(result.blobs, key=lambda b: b.size)
    assert big.action == "resumed" and big.bytes == big.size
    assert 150_000 in flaky.offsets
    assert result.image_id == record.id


def test_a_registry_that_ignores_range_is_read_again_from_the_start() -> None:
    source = ImageStore()
    record = image(source, sizes=(400_000,))
    registry = ModelRegistry("localhost:5000")
    push(source, record, registry.client(), "lab/app", "1")
    flaky = Tampered(registry.client(), cut_after=150_000, ignore_range=True)
    result = pull(ImageStore(), flaky, "lab/app", "1")
    assert result.image_id == record.id and max(b.bytes for b in result.blobs) > 400_000


def test_a_pull_that_gives_up_keeps_its_bytes_for_the_next_run(tmp_path: Path) -> None:
    source = ImageStore()
    record = image(source, sizes=(400_000,))
    registry = ModelRegistry("localhost:5000")
    push(source, record, registry.client(), "lab/app", "1")
    with pytest.raises(RegistryUnavailableError):
        pull(ImageStore(tmp_path / "store"), Tampered(registry.client(), cut_after=150_000), "lab/app", "1", retries=0)
    reopened = ImageStore(tmp_path / "store")  # a new process: the partial download survives the open
    assert len(reopened) == 0 and any(n.endswith(".download") for n in reopened.content.ingests())
    result = pull(reopened, registry.client(), "lab/app", "1")
    big = max(result.blobs, key=lambda b: b.size)
    assert big.action == "resumed" and big.bytes == big.size - 150_000
    assert reopened.content.ingests() == []


def test_an_index_resolves_to_the_host_platform() -> None:
    source = ImageStore()
    record = image(source)
    registry = ModelRegistry("localhost:5000")
    client = registry.client()
    pushed = push(source, record, client, "lab/app", "amd64")
    manifest = source.manifest_bytes(record)
    host_only = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": [
        {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": str(pushed.digest), "size": len(manifest),
         "platform": {"architecture": record.config.architecture, "os": "linux"}}]}
    client.put_manifest("lab/app", "latest", json.dumps(host_only).encode(), MEDIA_TYPE_OCI_INDEX)
    result = pull(ImageStore(), client, "lab/app", "latest")
    assert result.digest == pushed.digest and result.index_digest is not None
    foreign = dict(host_only, manifests=[dict(host_only["manifests"][0], platform={"architecture": "s390x", "os": "linux"})])
    client.put_manifest("lab/app", "s390x", json.dumps(foreign).encode(), MEDIA_TYPE_OCI_INDEX)
    with pytest.raises(ImageNotFoundError, match="no matching manifest"):
        pull(ImageStore(), client, "lab/app", "s390x")


_KILLED_PULL = """
import sys, time
from sim.images.store import ImageStore
from sim.registries import ModelRegistry, pull
from tests.registries.tampered import Tampered

registry = ModelRegistry("localhost:5000", root=sys.argv[1])
slow = Tampered(registry.client(), blob=lambda d: d)
inner_open = slow.open_blob
def open_blob(repository, digest, *, offset=0):
    reader = inner_open(repository, digest, offset=offset)
    data = b"".join(reader)
    class Slow(type(reader)):
        pass
    def chunks():
        for i in range(0, len(data), 50_000):
            yield data[i:i + 50_000]
            time.sleep(0.05)
    reader._chunks = chunks()
    return reader
slow.open_blob = open_blob
pull(ImageStore(sys.argv[2]), slow, "lab/app", "1")
"""


def test_a_pull_killed_half_way_resumes_in_the_next_process(tmp_path: Path) -> None:
    source = ImageStore()
    record = image(source, sizes=(2_000_000,))
    registry = ModelRegistry("localhost:5000", root=tmp_path / "registry")
    push(source, record, registry.client(), "lab/app", "1")
    store_dir = tmp_path / "store"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_PULL, str(tmp_path / "registry"), str(store_dir)],
                             cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 30
        partial = 0
        while time.monotonic() < deadline and partial < 500_000:
            downloads = list((store_dir / "ingest").glob("*.download")) if (store_dir / "ingest").exists() else []
            partial = max((p.stat().st_size for p in downloads), default=0)
            time.sleep(0.02)
        assert partial >= 500_000, "the child never got half-way"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    store = ImageStore(store_dir)
    assert len(store) == 0  # nothing partial is visible
    result = pull(store, registry.client(), "lab/app", "1")
    big = max(result.blobs, key=lambda b: b.size)
    assert big.action == "resumed" and 0 < big.bytes < big.size
    assert result.image_id == record.id and store.content.ingests() == []

"""The model's registries: the shared contract, and what only the model shows (byte counts per
link, a mirror's pull-through rules, de-duplicated storage, accounts, persistence)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.digest import sha256_digest
from sim.errors import (
    AuthenticationError,
    ImageNotFoundError,
    InvalidReferenceError,
    RegistryConfigError,
    RegistryUnavailableError,
    UnsupportedOperationError,
)
from sim.images.oci import MEDIA_TYPE_OCI_MANIFEST, DocumentTooLargeError, MediaTypeError
from sim.registries import Credentials, ModelMirror, ModelRegistry, RegistryClient
from sim.registries.api import MAX_MANIFEST_BYTES, BlobReader, ManifestResponse

from .suite import RegistryContract, image_documents, push_image, read_blob, upload


class TestModelContract(RegistryContract):
    @pytest.fixture
    def registry(self) -> RegistryClient:
        return ModelRegistry("localhost:5000").client()


class TestModelMirrorServesTheContractsReads:
    """A mirror answers reads like its upstream (the contract's pull half)."""

    def test_pull_through_reads(self) -> None:
        hub = ModelRegistry("docker.io")
        digest = push_image(hub.client(), "library/app", "1", b"payload" * 100)
        mirror = ModelMirror("127.0.0.1:5001", hub.client()).client()
        assert str(sha256_digest(mirror.get_manifest("library/app", "1").data)) == digest
        assert mirror.tags("library/app") == ["1"]
        layer, _, _ = image_documents(b"payload" * 100)
        assert read_blob(mirror, "library/app", str(sha256_digest(layer))) == layer


def test_a_blob_in_two_repositories_is_stored_once() -> None:
    registry = ModelRegistry("localhost:5000")
    client = registry.client()
    big = b"z" * 100_000
    upload(client, "team/a", big)
    upload(client, "team/b", big)  # uploaded again by a client that did not mount: still one copy
    stats = registry.stats()
    assert stats.stored_bytes == len(big)
    assert stats.linked_bytes == 2 * len(big)
    assert stats.bytes_in == 2 * len(big)


def test_byte_counters_follow_each_link() -> None:
    hub = ModelRegistry("docker.io")
    push_image(hub.client(), "library/app", "1", b"L" * 50_000)
    manifest_size = len(hub.client().get_manifest("library/app", "1").data)
    hub_out_before = hub.stats().bytes_out
    mirror = ModelMirror("127.0.0.1:5001", hub.client())
    layer, config, _ = image_documents(b"L" * 50_000)
    session = mirror.client()
    for _ in range(2):  # two clients pull the same image through the mirror
        session.get_manifest("library/app", "1")
        read_blob(session, "library/app", str(sha256_digest(layer)))
    # upstream: the manifest twice (tag lookups go upstream first), the layer once
    assert mirror.stats().upstream_bytes == 2 * manifest_size + len(layer)
    assert hub.stats().bytes_out - hub_out_before == 2 * manifest_size + len(layer)
    assert mirror.stats().bytes_out == 2 * (manifest_size + len(layer))


def test_the_mirror_says_where_a_blob_came_from() -> None:
    hub = ModelRegistry("docker.io")
    push_image(hub.client(), "library/app", "1")
    layer, _, _ = image_documents()
    mirror = ModelMirror("127.0.0.1:5001", hub.client()).client()
    origins = []
    for _ in range(2):
        with mirror.open_blob("library/app", str(sha256_digest(layer))) as reader:
            b"".join(reader)
            origins.append(getattr(reader, "origin", None))
    assert origins == ["upstream", "cache"]


class _Down(RegistryClient):
    """An upstream that cannot be reached (a link that is cut)."""

    name = "down.example.invalid"

    def _fail(self) -> RegistryUnavailableError:
        return RegistryUnavailableError("dial tcp: connection refused")

    def ping(self) -> None:
        raise self._fail()

    def tags(self, repository: str, *, page_size: int | None = None) -> list[str]:
        raise self._fail()

    def catalog(self, *, page_size: int | None = None) -> list[str]:
        raise self._fail()

    def get_manifest(self, repository: str, reference: str, *, accept: object = ()) -> ManifestResponse:
        raise self._fail()

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> object:  # type: ignore[override]
        raise self._fail()

    def delete_manifest(self, repository: str, digest: str) -> None:
        raise self._fail()

    def stat_blob(self, repository: str, digest: str) -> int | None:
        raise self._fail()

    def open_blob(self, repository: str, digest: str, *, offset: int = 0) -> BlobReader:
        raise self._fail()

    def put_blob(self, *args: object, **kwargs: object) -> None:
        raise self._fail()

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        raise self._fail()


def test_a_mirror_falls_back_to_its_cache_when_the_upstream_is_down() -> None:
    hub = ModelRegistry("docker.io")
    digest = push_image(hub.client(), "library/app", "1")
    mirror = ModelMirror("127.0.0.1:5001", hub.client())
    mirror.client().get_manifest("library/app", "1")  # cached
    mirror.upstream = _Down()
    assert str(sha256_digest(mirror.client().get_manifest("library/app", "1").data)) == digest
    assert mirror.client().tags("library/app") == ["1"]
    with pytest.raises(RegistryUnavailableError):  # never cached: nothing to fall back to
        mirror.client().get_manifest("library/other", "1")


def test_a_tag_moved_upstream_is_seen_through_the_mirror() -> None:
    hub = ModelRegistry("docker.io")
    push_image(hub.client(), "library/app", "latest", b"v1")
    mirror = ModelMirror("127.0.0.1:5001", hub.client())
    mirror.client().get_manifest("library/app", "latest")
    new = push_image(hub.client(), "library/app", "latest", b"v2")
    assert str(sha256_digest(mirror.client().get_manifest("library/app", "latest").data)) == new


@pytest.mark.parametrize("operation", ["put_blob", "put_manifest", "mount_blob", "delete_manifest"])
def test_a_mirror_refuses_every_write(operation: str) -> None:
    hub = ModelRegistry("docker.io")
    digest = push_image(hub.client(), "library/app", "1")
    mirror = ModelMirror("127.0.0.1:5001", hub.client())
    layer, config, manifest = image_documents()
    session = mirror.client()
    calls = {
        "put_blob": lambda: upload(session, "library/app", b"new"),
        "put_manifest": lambda: session.put_manifest("library/app", "2", manifest, MEDIA_TYPE_OCI_MANIFEST),
        "mount_blob": lambda: session.mount_blob("library/x", str(sha256_digest(layer)), "library/app"),
        "delete_manifest": lambda: session.delete_manifest("library/app", digest),
    }
    with pytest.raises(UnsupportedOperationError, match="pull-through cache"):
        calls[operation]()
    assert mirror.stats().bytes_in == 0 and hub.client().tags("library/app") == ["1"]


def test_accounts_are_checked_on_every_call() -> None:
    registry = ModelRegistry("localhost:5000", accounts={"student": "s3cret"})
    with pytest.raises(AuthenticationError, match="authentication required"):
        registry.client().ping()
    with pytest.raises(AuthenticationError, match="incorrect username or password"):
        registry.client(Credentials("student", "wrong")).ping()
    with pytest.raises(AuthenticationError):
        registry.client(Credentials("nobody", "s3cret")).catalog()
    good = registry.client(Credentials("student", "s3cret"))
    push_image(good, "lab/app", "1")
    assert good.catalog() == ["lab/app"]


def test_passwords_are_never_shown() -> None:
    creds = Credentials("student", "s3cret")
    registry = ModelRegistry("localhost:5000", accounts={"student": "s3cret"})
    assert "s3cret" not in repr(creds) and "s3cret" not in repr(registry) and "s3cret" not in repr(registry.client(creds))
    try:
        registry.client(Credentials("student", "wrong-s3cret")).ping()
    except AuthenticationError as exc:
        assert "s3cret" not in str(exc)


@pytest.mark.parametrize("bad", [{"": "x"}, {"a:b": "x"}, {"a": ""}])
def test_bad_accounts_are_refused_when_the_registry_is_made(bad: dict[str, str]) -> None:
    with pytest.raises(RegistryConfigError):
        ModelRegistry("localhost:5000", accounts=bad)


@pytest.mark.parametrize("name", ["", "a/b", None])
def test_bad_registry_names_are_refused(name: object) -> None:
    with pytest.raises(RegistryConfigError):
        ModelRegistry(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("repo", ["Upper/case", "a//b", "-x", "", "x/"])
def test_bad_repository_names_are_refused_before_any_write(repo: str) -> None:
    registry = ModelRegistry("localhost:5000")
    with pytest.raises(InvalidReferenceError):
        upload(registry.client(), repo, b"data")
    assert registry.stats().stored_bytes == 0


def test_a_manifest_over_4_mib_is_refused_before_parsing() -> None:
    registry = ModelRegistry("localhost:5000").client()
    huge = b'{"schemaVersion": 2, "pad": "' + b"x" * MAX_MANIFEST_BYTES + b'"}'
    with pytest.raises(DocumentTooLargeError):
        registry.put_manifest("lab/app", "huge", huge, MEDIA_TYPE_OCI_MANIFEST)


def test_a_document_with_both_layers_and_manifests_is_refused() -> None:
    registry = ModelRegistry("localhost:5000").client()
    layer, config, manifest = image_documents()
    upload(registry, "lab/app", layer)
    upload(registry, "lab/app", config)
    doc = json.loads(manifest)
    doc["manifests"] = []
    with pytest.raises(MediaTypeError, match="CVE-2021-41190"):
        registry.put_manifest("lab/app", "both", json.dumps(doc).encode(), MEDIA_TYPE_OCI_MANIFEST)


def test_a_registry_folder_outlives_the_process(tmp_path: Path) -> None:
    first = ModelRegistry("localhost:5000", root=tmp_path)
    digest = push_image(first.client(), "lab/app", "1")
    again = ModelRegistry("localhost:5000", root=tmp_path)
    assert str(sha256_digest(again.client().get_manifest("lab/app", "1").data)) == digest
    assert (tmp_path / "repositories.json").exists()


def test_garbage_collection_frees_only_unreferenced_blobs() -> None:
    registry = ModelRegistry("localhost:5000")
    client = registry.client()
    keep = push_image(client, "lab/app", "keep", b"kept layer")
    gone = push_image(client, "lab/app", "gone", b"deleted layer")
    client.delete_manifest("lab/app", gone)
    freed = registry.garbage_collect()
    assert freed > len(b"deleted layer")
    assert client.get_manifest("lab/app", keep)
    layer, _, _ = image_documents(b"kept layer")
    assert read_blob(client, "lab/app", str(sha256_digest(layer))) == layer
    with pytest.raises(ImageNotFoundError):
        client.get_manifest("lab/app", gone)

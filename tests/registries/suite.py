"""The registry contract: one abstract suite every RegistryClient passes (the fsspec pattern).

A fixture class supplies ``registry`` (a fresh, empty registry session) and
``other_session`` (a second session on the same registry); the model's is in
test_model.py, the real server's (Debian's docker-registry over httpx) in
test_contract_real.py.  Each test states one rule of the distribution API.
"""

from __future__ import annotations

import io
import json

import pytest

from sim.digest import sha256_digest
from sim.errors import DigestMismatchError, ImageNotFoundError, LayerlabError, RegistryError
from sim.images.blobs import BlobNotFoundError
from sim.images.oci import (
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_MANIFEST,
    Descriptor,
    ImageConfig,
    Manifest,
    RootFS,
)
from sim.registries.api import RegistryClient


def image_documents(payload: bytes = b"layer bytes") -> tuple[bytes, bytes, bytes]:
    """(layer, config, manifest) of a one-layer image whose "tar" is ``payload`` (registries do not untar)."""
    layer = payload
    config = ImageConfig("amd64", "linux", RootFS((sha256_digest(layer),))).to_json()
    manifest = Manifest(Descriptor(MEDIA_TYPE_OCI_CONFIG, sha256_digest(config), len(config)),
                        (Descriptor(MEDIA_TYPE_OCI_LAYER, sha256_digest(layer), len(layer)),)).to_json()
    return layer, config, manifest


def upload(client: RegistryClient, repo: str, data: bytes, **options: int) -> str:
    digest = sha256_digest(data)
    client.put_blob(repo, digest, len(data), io.BytesIO(data), **options)  # type: ignore[arg-type]
    return str(digest)


def push_image(client: RegistryClient, repo: str, tag: str, payload: bytes = b"layer bytes") -> str:
    layer, config, manifest = image_documents(payload)
    upload(client, repo, layer)
    upload(client, repo, config)
    return str(client.put_manifest(repo, tag, manifest, MEDIA_TYPE_OCI_MANIFEST))


def read_blob(client: RegistryClient, repo: str, digest: str, offset: int = 0) -> bytes:
    with client.open_blob(repo, digest, offset=offset) as reader:
        return b"".join(reader)


class RegistryContract:
    registry: RegistryClient

    # -- blobs

    def test_blob_round_trip_and_head(self, registry: RegistryClient) -> None:
        data = b"x" * 70_000
        assert registry.stat_blob("lab/app", str(sha256_digest(data))) is None
        digest = upload(registry, "lab/app", data)
        assert registry.stat_blob("lab/app", digest) == len(data)
        assert read_blob(registry, "lab/app", digest) == data

    def test_chunked_upload_reads_back(self, registry: RegistryClient) -> None:
        data = bytes(range(256)) * 1000
        digest = upload(registry, "lab/chunks", data, chunk_size=40_000)
        assert read_blob(registry, "lab/chunks", digest) == data

    def test_ranged_read_starts_at_the_offset(self, registry: RegistryClient) -> None:
        data = bytes(range(256)) * 100
        digest = upload(registry, "lab/range", data)
        with registry.open_blob("lab/range", digest, offset=1000) as reader:
            assert reader.size == len(data)
            assert reader.offset == 1000
            assert b"".join(reader) == data[1000:]

    @pytest.mark.parametrize("fault", ["flipped", "truncated"])
    def test_an_upload_that_is_not_its_digest_is_refused_and_not_kept(self, registry: RegistryClient, fault: str) -> None:
        data = b"0123456789" * 1000
        sent = {"flipped": data[:5] + b"X" + data[6:], "truncated": data[:-1]}[fault]
        with pytest.raises(LayerlabError):
            registry.put_blob("lab/bad", str(sha256_digest(data)), len(data), io.BytesIO(sent))
        assert registry.stat_blob("lab/bad", str(sha256_digest(data))) is None

    def test_a_source_longer_than_its_size_never_stores_the_extra_bytes(self, registry: RegistryClient) -> None:
        """The spec leaves it open: the model refuses the source, the HTTP client sends ``size`` bytes."""
        data = b"0123456789" * 1000
        digest = str(sha256_digest(data))
        try:
            registry.put_blob("lab/long", digest, len(data), io.BytesIO(data + b"!"))
        except LayerlabError:
            assert registry.stat_blob("lab/long", digest) is None
        else:
            assert read_blob(registry, "lab/long", digest) == data

    def test_an_unknown_blob_is_a_typed_not_found(self, registry: RegistryClient) -> None:
        upload(registry, "lab/app", b"something")
        with pytest.raises(BlobNotFoundError):
            read_blob(registry, "lab/app", str(sha256_digest(b"never pushed")))

    def test_cross_repository_mount(self, registry: RegistryClient) -> None:
        digest = upload(registry, "lab/one", b"shared layer")
        assert registry.mount_blob("lab/two", digest, "lab/one") is True
        assert registry.stat_blob("lab/two", digest) == len(b"shared layer")
        missing = str(sha256_digest(b"nowhere"))
        assert registry.mount_blob("lab/three", missing, "lab/one") is False
        assert registry.stat_blob("lab/three", missing) is None

    # -- manifests and tags

    def test_manifest_by_tag_and_by_digest(self, registry: RegistryClient) -> None:
        digest = push_image(registry, "lab/app", "1.0")
        by_tag = registry.get_manifest("lab/app", "1.0")
        by_digest = registry.get_manifest("lab/app", digest)
        assert by_tag.data == by_digest.data
        assert str(sha256_digest(by_tag.data)) == digest
        assert by_tag.media_type.split(";")[0] == MEDIA_TYPE_OCI_MANIFEST
        assert by_tag.digest in (None, digest)

    def test_tags_are_mutable_manifests_are_not(self, registry: RegistryClient) -> None:
        first = push_image(registry, "lab/app", "latest", b"v1")
        second = push_image(registry, "lab/app", "latest", b"v2")
        assert first != second
        assert str(sha256_digest(registry.get_manifest("lab/app", "latest").data)) == second
        # the old image is still there by digest: retagging moved a name, it deleted nothing
        assert str(sha256_digest(registry.get_manifest("lab/app", first).data)) == first

    def test_a_manifest_whose_blobs_are_missing_is_refused(self, registry: RegistryClient) -> None:
        layer, config, manifest = image_documents(b"not uploaded")
        upload(registry, "lab/app", config)
        with pytest.raises(RegistryError):
            registry.put_manifest("lab/app", "broken", manifest, MEDIA_TYPE_OCI_MANIFEST)
        with pytest.raises(ImageNotFoundError):
            registry.get_manifest("lab/app", "broken")

    def test_a_manifest_claiming_another_media_type_is_refused(self, registry: RegistryClient) -> None:
        layer, config, manifest = image_documents()
        upload(registry, "lab/app", layer)
        upload(registry, "lab/app", config)
        with pytest.raises(LayerlabError):
            registry.put_manifest("lab/app", "confused", manifest, MEDIA_TYPE_OCI_INDEX)

    def test_tags_list_every_page(self, registry: RegistryClient) -> None:
        for n in range(5):
            push_image(registry, "lab/many", f"v{n}")
        assert registry.tags("lab/many", page_size=2) == [f"v{n}" for n in range(5)]

    def test_catalog_lists_repositories(self, registry: RegistryClient) -> None:
        for name in ("lab/a", "lab/b", "lab/c"):
            push_image(registry, name, "1")
        assert {"lab/a", "lab/b", "lab/c"} <= set(registry.catalog(page_size=2))

    def test_unknown_repository_and_tag_are_typed(self, registry: RegistryClient) -> None:
        with pytest.raises(ImageNotFoundError):
            registry.get_manifest("lab/nothing", "latest")
        push_image(registry, "lab/app", "1")
        with pytest.raises(ImageNotFoundError):
            registry.get_manifest("lab/app", "2")

    def test_delete_by_digest_removes_the_tags_on_it(self, registry: RegistryClient) -> None:
        digest = push_image(registry, "lab/app", "gone")
        registry.delete_manifest("lab/app", digest)
        with pytest.raises(ImageNotFoundError):
            registry.get_manifest("lab/app", digest)
        with pytest.raises(ImageNotFoundError):
            registry.get_manifest("lab/app", "gone")

    def test_put_manifest_by_digest_checks_it(self, registry: RegistryClient) -> None:
        layer, config, manifest = image_documents()
        upload(registry, "lab/app", layer)
        upload(registry, "lab/app", config)
        wrong = str(sha256_digest(b"other"))
        with pytest.raises((DigestMismatchError, RegistryError)):
            registry.put_manifest("lab/app", wrong, manifest, MEDIA_TYPE_OCI_MANIFEST)
        assert registry.put_manifest("lab/app", str(sha256_digest(manifest)), manifest, MEDIA_TYPE_OCI_MANIFEST) == sha256_digest(manifest)

    def test_an_index_lists_manifests(self, registry: RegistryClient) -> None:
        digest = push_image(registry, "lab/multi", "amd64")
        size = len(registry.get_manifest("lab/multi", digest).data)
        index = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": [
            {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": digest, "size": size,
             "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
        registry.put_manifest("lab/multi", "latest", index, MEDIA_TYPE_OCI_INDEX)
        answer = registry.get_manifest("lab/multi", "latest")
        assert answer.data == index and answer.media_type.split(";")[0] == MEDIA_TYPE_OCI_INDEX

"""Real servers, real tools: layerlab and skopeo push to and pull from Debian's docker-registry and
agree on every digest; TLS with a generated CA, logins, a real mirror; and every fault a pull over
HTTP must survive (typed error, nothing partial visible), injected by FaultyProxy."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sim
from sim.digest import sha256_digest
from sim.errors import (
    AuthenticationError,
    DigestMismatchError,
    RegistryUnavailableError,
    UnsupportedOperationError,
)
from sim.images.oci import MEDIA_TYPE_OCI_INDEX, DocumentTooLargeError, MediaTypeError
from sim.images.store import ImageStore
from sim.registries import pull
from sim.registries.api import MAX_MANIFEST_BYTES
from sim.registries.config import RegistryConfig
from tests.backends import require_real

from .faulty import FaultyProxy

pytestmark = pytest.mark.real

BUILDFILE = "FROM busybox\nCOPY note.txt /note.txt\nRUN echo built > /built.txt && rm /bin/true\n"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is not installed (./dev installs it)"
    return path


def skopeo(*args: str) -> str:
    done = subprocess.run([tool("skopeo"), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    from realrt.registries.server import RegistryServer

    with RegistryServer(tmp_path / "registry") as srv:
        yield srv


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Buildfile").write_text(BUILDFILE)
    (tmp_path / "ctx" / "note.txt").write_text("crossed a real registry\n")
    engine = sim.connect("sim", registries=RegistryConfig(config_dir=tmp_path / "config"))
    engine.build(tmp_path / "ctx", tag="lab/app:1")  # type: ignore[attr-defined]
    yield engine
    engine.close()  # type: ignore[attr-defined]


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Any]:
    engine = require_real(state_dir=str(tmp_path / "state"))
    engine.close()  # type: ignore[attr-defined]
    engine = sim.connect("real", state_dir=str(tmp_path / "state"), registries=RegistryConfig(config_dir=tmp_path / "config"))
    yield engine
    engine.close()  # type: ignore[attr-defined]
    assert list(engine.journal.records()) == []  # type: ignore[attr-defined]


def oci_folder(engine: Any, ref: str, folder: Path) -> Path:
    """The image as an OCI layout folder holding it alone (what skopeo's oci: transport reads)."""
    buffer = io.BytesIO()
    engine.save([ref], buffer)
    buffer.seek(0)
    ImageStore(folder).load(buffer)
    return folder


def test_layerlab_pushes_skopeo_reads_the_same_digests(server: Any, model: Any, tmp_path: Path) -> None:
    model.tag("lab/app:1", f"{server.host}/lab/app:1")
    pushed = model.push(f"{server.host}/lab/app:1")
    raw = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{server.host}/lab/app:1")
    assert sha256_digest(raw.encode()) == pushed.digest
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{server.host}/lab/app:1"))
    assert info["Digest"] == str(pushed.digest)
    assert info["Layers"] == [str(b.digest) for b in pushed.blobs if b.kind == "layer"]
    out = tmp_path / "out"
    skopeo("copy", "--src-tls-verify=false", "--preserve-digests", "--dest-oci-accept-uncompressed-layers",
           f"docker://{server.host}/lab/app:1", f"oci:{out}:1")
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == str(pushed.digest)


def test_skopeo_pushes_layerlab_pulls_and_runs_it(server: Any, model: Any, kernel: Any, tmp_path: Path) -> None:
    local = model.inspect_image("lab/app:1")
    folder = oci_folder(model, "lab/app:1", tmp_path / "layout")
    skopeo("copy", "--dest-tls-verify=false", "--preserve-digests", f"oci:{folder}:1",
           f"docker://{server.host}/lab/skopeo:1")
    pulled = kernel.pull(f"{server.host}/lab/skopeo:1")
    assert str(pulled.digest) == local.digest and str(pulled.image_id) == local.id
    run = kernel.run(f"{server.host}/lab/skopeo:1", ["cat", "/note.txt"], remove=True)
    assert run.stdout == b"crossed a real registry\n"


def test_gzip_layers_from_skopeo_keep_the_image_id(server: Any, model: Any, tmp_path: Path) -> None:
    local = model.inspect_image("lab/app:1")
    folder = oci_folder(model, "lab/app:1", tmp_path / "layout")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{folder}:1", f"docker://{server.host}/lab/gzip:1")  # compresses
    raw = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{server.host}/lab/gzip:1"))
    assert all(layer["mediaType"].endswith("gzip") for layer in raw["layers"])
    puller = sim.connect("sim")
    pulled = puller.pull(f"{server.host}/lab/gzip:1")  # type: ignore[attr-defined]
    assert str(pulled.image_id) == local.id and str(pulled.digest) != local.digest  # same config, other manifest
    assert puller.run(f"{server.host}/lab/gzip:1", ["cat", "/note.txt"], remove=True).stdout == b"crossed a real registry\n"  # type: ignore[attr-defined]


def test_the_kernel_builds_the_model_pulls_same_digests(server: Any, kernel: Any, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    (tmp_path / "ctx2").mkdir()
    (tmp_path / "ctx2" / "Buildfile").write_text(BUILDFILE)
    (tmp_path / "ctx2" / "note.txt").write_text("built by the kernel\n")
    built = kernel.build(tmp_path / "ctx2", tag=f"{server.host}/lab/kernel:1").image
    pushed = kernel.push(f"{server.host}/lab/kernel:1")
    model = sim.connect("sim")
    pulled = model.pull(f"{server.host}/lab/kernel:1")  # type: ignore[attr-defined]
    assert pulled.digest == pushed.digest and str(pulled.image_id) == built.id
    assert model.run(f"{server.host}/lab/kernel:1", ["cat", "/built.txt"], remove=True).stdout == b"built\n"  # type: ignore[attr-defined]


def test_login_over_tls_with_the_generated_ca(tmp_path: Path, model: Any) -> None:
    from realrt.registries.server import RegistryServer

    with RegistryServer(tmp_path / "private", accounts={"student": "s3cret"}) as private, \
            RegistryServer(tmp_path / "stranger", accounts={"x": "y"}) as stranger:
        ref = f"{private.host}/lab/app:1"
        model.tag("lab/app:1", ref)
        with pytest.raises(RegistryUnavailableError, match="certificate"):  # no CA trusted yet
            model.login(private.host, "student", "s3cret")
        certs = tmp_path / "config" / "certs.d" / private.host
        certs.mkdir(parents=True)
        shutil.copy(stranger.ca_file, certs / "ca.crt")  # a certificate from another CA
        with pytest.raises(RegistryUnavailableError, match="certificate"):
            model.login(private.host, "student", "s3cret")
        shutil.copy(private.ca_file, certs / "ca.crt")
        with pytest.raises(AuthenticationError):
            model.login(private.host, "student", "wrong")
        with pytest.raises(AuthenticationError):
            model.push(ref)
        assert model.login(private.host, "student", "s3cret") == "Login Succeeded"
        assert "s3cret" not in (tmp_path / "config" / "config.json").read_text()
        pushed = model.push(ref)
        info = json.loads(skopeo("inspect", "--creds", "student:s3cret", "--cert-dir", str(certs), f"docker://{ref}"))
        assert info["Digest"] == str(pushed.digest)


def test_a_real_mirror_serves_docker_io_and_its_cache(tmp_path: Path, model: Any) -> None:
    from realrt.registries.server import RegistryServer

    upstream = RegistryServer(tmp_path / "hub").start()
    try:
        with RegistryServer(tmp_path / "mirror", mirror_of=upstream.url) as mirror:
            model.tag("lab/app:1", f"{upstream.host}/library/app:1")
            pushed = model.push(f"{upstream.host}/library/app:1")
            config = RegistryConfig(mirrors=(mirror.url,), endpoints={"docker.io": upstream.url})
            first = sim.connect("sim", registries=config)
            result = first.pull("app:1")  # type: ignore[attr-defined]
            assert result.registry == mirror.host and result.digest == pushed.digest
            upstream.stop()  # the upstream goes away: the mirror still answers from its cache
            second = sim.connect("sim", registries=config)
            assert second.pull("app:1").digest == pushed.digest  # type: ignore[attr-defined]
            with pytest.raises(UnsupportedOperationError):
                from realrt.registries.client import HttpRegistry

                with HttpRegistry(mirror.url) as session:
                    session.put_manifest("library/app", "2", b"{}", "application/vnd.oci.image.manifest.v1+json")
    finally:
        upstream.stop()


# -- faults over HTTP -------------------------------------------------------------------------


@pytest.fixture
def proxied(server: Any, model: Any) -> Iterator[tuple[FaultyProxy, str]]:
    model.tag("lab/app:1", f"{server.host}/lab/app:1")
    model.push(f"{server.host}/lab/app:1")
    with FaultyProxy(server.url) as proxy:
        yield proxy, "lab/app"


def http(proxy: FaultyProxy, **options: Any) -> Any:
    from realrt.registries.client import HttpRegistry

    return HttpRegistry(proxy.url, backoff=0.01, **options)


def assert_nothing_visible(store: ImageStore) -> None:
    assert len(store) == 0
    assert [d for d in store.content.digests()] == [] or all(store.content.size(d) < 1000 for d in store.content.digests())
    assert [n for n in store.content.ingests() if not n.endswith(".download")] == []


@pytest.mark.parametrize("fault", ["flip_blob_byte", "truncate_blobs", "extend_blobs"])
def test_a_bad_blob_over_http_is_refused(proxied: tuple[FaultyProxy, str], tmp_path: Path, fault: str) -> None:
    proxy, repo = proxied
    setattr(proxy, fault, {"flip_blob_byte": True, "truncate_blobs": 1000, "extend_blobs": b"tail"}[fault])
    store = ImageStore(tmp_path / "store")
    with pytest.raises((DigestMismatchError, RegistryUnavailableError)):
        pull(store, http(proxy, retries=1), repo, "1", retries=1)
    assert len(store) == 0
    big = [d for d in store.content.digests() if store.content.size(d) > 100_000]
    assert big == []  # the layer never became visible


@pytest.mark.parametrize("override, error", [
    (lambda data, ctype: (data, MEDIA_TYPE_OCI_INDEX), MediaTypeError),
    (lambda data, ctype: (json.dumps({**json.loads(data), "manifests": []}).encode(), ctype), MediaTypeError),
    (lambda data, ctype: (b" " * (MAX_MANIFEST_BYTES + 10), ctype), DocumentTooLargeError),
], ids=["content-type-disagrees", "layers-and-manifests", "over-4-MiB"])
def test_a_bad_manifest_over_http_is_refused(proxied: tuple[FaultyProxy, str], server: Any, override: Any,
                                              error: type[Exception]) -> None:
    proxy, repo = proxied
    from realrt.registries.client import HttpRegistry

    answer = HttpRegistry(server.url).get_manifest(repo, "1")
    proxy.manifest_override = override(answer.data, answer.media_type)
    store = ImageStore()
    with pytest.raises(error):
        pull(store, http(proxy), repo, "1")
    assert store.content.digests() == []
    assert not any(path.endswith("/blobs/" + "x") for _, path in proxy.requests)
    assert all("/blobs/" not in path for _, path in proxy.requests)


def test_500s_are_retried_with_back_off_then_given_up(proxied: tuple[FaultyProxy, str]) -> None:
    proxy, repo = proxied
    proxy.fail_next, proxy.fail_status = 2, 500
    client = http(proxy, retries=3)
    assert pull(ImageStore(), client, repo, "1").digest
    assert client.retried == 2
    proxy.fail_next = 100
    client = http(proxy, retries=2)
    with pytest.raises(RegistryUnavailableError, match="3"):
        pull(ImageStore(), client, repo, "1")


def test_a_registry_that_is_down(proxied: tuple[FaultyProxy, str]) -> None:
    proxy, repo = proxied
    proxy.down()
    store = ImageStore()
    with pytest.raises(RegistryUnavailableError):
        pull(store, http(proxy, retries=1), repo, "1")
    assert store.content.digests() == []


def test_a_cut_connection_resumes_with_range_against_the_real_registry(proxied: tuple[FaultyProxy, str],
                                                                       tmp_path: Path) -> None:
    proxy, repo = proxied
    store = ImageStore(tmp_path / "store")
    proxy.cut_after = 500_000  # the busybox layer is ~2 MB: cut a quarter of the way in
    with pytest.raises(RegistryUnavailableError):
        pull(store, http(proxy, retries=0), repo, "1", retries=0)
    assert len(ImageStore(tmp_path / "store")) == 0
    result = pull(ImageStore(tmp_path / "store"), http(proxy), repo, "1")
    resumed = [b for b in result.blobs if b.action == "resumed"]
    assert len(resumed) == 1 and 0 < resumed[0].bytes < resumed[0].size

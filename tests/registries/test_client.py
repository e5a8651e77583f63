"""The real registry client (realrt.registries.client.HttpRegistry) against Debian's docker-registry.

Two servers per module (plain HTTP, and HTTPS with an htpasswd login), a
:class:`~tests.registries.faulty.FaultyProxy` in front of the plain one for
faults, and a small token-serving fake for the Bearer challenge protocol
(which distribution's htpasswd mode does not speak).  Every repository name
is this test's own, so tests share the servers without seeing each other.
"""

from __future__ import annotations

import base64
import io
import json
import random
import secrets
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

import pytest

from realrt.registries._certs import CertificateAuthority
from realrt.registries._challenge import Challenge, parse_challenges
from realrt.registries.client import HttpRegistry
from realrt.registries.server import RegistryServer
from sim.digest import Digest, sha256_digest
from sim.errors import (
    AuthenticationError,
    DigestMismatchError,
    ImageNotFoundError,
    InvalidReferenceError,
    RegistryConfigError,
    RegistryError,
    RegistryUnavailableError,
)
from sim.images.blobs import BlobNotFoundError
from sim.images.oci import DocumentTooLargeError, ImageFormatError
from sim.registries.api import MAX_MANIFEST_BYTES, ManifestResponse
from sim.registries.auth import Credentials
from tests.registries.faulty import FaultyProxy

pytestmark = pytest.mark.real

PASSWORD = "correct-horse-battery-staple"
WRONG = "not-the-password-at-all"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
BACKOFF = 0.001  # retries in tests wait milliseconds, not tenths


# -- servers and clients


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryServer]:
    with tempfile.TemporaryDirectory(prefix="layerlab-registry-") as root, RegistryServer(root) as server:
        yield server


@pytest.fixture(scope="module")
def secure() -> Iterator[RegistryServer]:
    with tempfile.TemporaryDirectory(prefix="layerlab-registry-") as root, \
            RegistryServer(root, accounts={"alice": PASSWORD}) as server:
        yield server


@pytest.fixture
def client(registry: RegistryServer) -> Iterator[HttpRegistry]:
    with HttpRegistry(registry.url, backoff=BACKOFF) as session:
        yield session


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultyProxy]:
    with FaultyProxy(registry.url) as faulty:
        yield faulty


@pytest.fixture
def via_proxy(proxy: FaultyProxy) -> Iterator[HttpRegistry]:
    with HttpRegistry(proxy.url, backoff=BACKOFF) as session:
        yield session


def blob(size: int, seed: int) -> tuple[bytes, Digest]:
    data = random.Random(seed).randbytes(size)
    return data, sha256_digest(data)


def push(session: HttpRegistry, repository: str, data: bytes) -> Digest:
    digest = sha256_digest(data)
    session.put_blob(repository, digest, len(data), io.BytesIO(data))
    return digest


def image(session: HttpRegistry, repository: str, seed: int = 0) -> bytes:
    """Push a config and a layer; return a manifest over them (not yet pushed)."""
    layer, layer_digest = blob(4096, seed)
    push(session, repository, layer)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}).encode()
    config_digest = push(session, repository, config)
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                    "size": len(layer)}],
    }).encode()


class Pipe(io.RawIOBase):
    """A source that cannot seek (like a pipe), recording the size of every read."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.reads: list[int] = []

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self.reads.append(len(buffer))
        return self._inner.readinto(buffer)


# -- uploads and reads


def test_monolithic_upload_streams_in_pieces_and_reads_back(client: HttpRegistry) -> None:
    data, digest = blob(3 * 2**20 + 5, 1)
    source = Pipe(data)
    client.put_blob("up/mono", digest, len(data), source)  # type: ignore[arg-type]
    assert max(source.reads) <= 1 << 20, "the blob was read whole instead of in pieces"
    assert client.bytes_sent == len(data)
    assert client.stat_blob("up/mono", digest) == len(data)
    with client.open_blob("up/mono", digest) as reader:
        assert (reader.offset, reader.size) == (0, len(data))
        assert b"".join(reader) == data
    assert client.bytes_received == len(data)
    assert client.retried == 0


def test_chunked_upload_patches_and_follows_each_location(via_proxy: HttpRegistry, proxy: FaultyProxy) -> None:
    data, digest = blob(1_000_000, 2)
    via_proxy.put_blob("up/chunked", digest, len(data), io.BytesIO(data), chunk_size=300_000)
    assert [m for m, _ in proxy.requests] == ["POST", "PATCH", "PATCH", "PATCH", "PATCH", "PUT"]
    patched = [p for m, p in proxy.requests if m == "PATCH"]
    assert len(set(patched)) == 4, "each PATCH goes to the Location the previous one returned"
    assert "digest=sha256%3A" in proxy.requests[-1][1]
    with via_proxy.open_blob("up/chunked", digest) as reader:
        assert b"".join(reader) == data


def test_head_says_which_blobs_a_push_can_skip(client: HttpRegistry) -> None:
    data, digest = blob(5000, 3)
    assert client.stat_blob("up/head", digest) is None  # an unknown repository
    push(client, "up/head", data)
    before = client.requests
    assert client.stat_blob("up/head", digest) == len(data)
    assert client.requests == before + 1, "one HEAD, no body"
    assert client.stat_blob("up/head", sha256_digest(b"other")) is None


def test_cross_repository_mount_and_its_refusal(via_proxy: HttpRegistry, proxy: FaultyProxy) -> None:
    data, digest = blob(10_000, 4)
    push(via_proxy, "mount/src", data)
    assert via_proxy.mount_blob("mount/dst", digest, "mount/src") is True
    assert via_proxy.stat_blob("mount/dst", digest) == len(data)
    assert via_proxy.mount_blob("mount/other", digest, "mount/without") is False
    method, path = proxy.requests[-1]
    assert method == "DELETE" and path.startswith("/v2/mount/other/blobs/uploads/"), "the opened session is cancelled"
    assert via_proxy.stat_blob("mount/other", digest) is None


def test_a_failed_upload_cancels_its_session(via_proxy: HttpRegistry, proxy: FaultyProxy) -> None:
    data, digest = blob(50_000, 5)
    with pytest.raises(DigestMismatchError, match="short"):
        via_proxy.put_blob("up/short", digest, len(data) + 10, io.BytesIO(data))
    assert proxy.requests[-1][0] == "DELETE"
    assert via_proxy.stat_blob("up/short", digest) is None


def test_a_seekable_body_is_rewound_and_sent_again(via_proxy: HttpRegistry, proxy: FaultyProxy) -> None:
    data, digest = blob(200_000, 6)
    proxy.fail_only, proxy.fail_next = "PUT", 1
    via_proxy.put_blob("up/rewind", digest, len(data), io.BytesIO(data))
    assert via_proxy.retried == 1
    assert [m for m, _ in proxy.requests] == ["POST", "PUT", "PUT"]
    assert via_proxy.stat_blob("up/rewind", digest) == len(data)


def test_a_pipe_is_never_sent_twice(via_proxy: HttpRegistry, proxy: FaultyProxy) -> None:
    data, digest = blob(200_000, 7)
    proxy.fail_only, proxy.fail_next = "PATCH", 1
    with pytest.raises(RegistryError) as caught:
        via_proxy.put_blob("up/pipe", digest, len(data), Pipe(data), chunk_size=100_000)  # type: ignore[arg-type]
    assert caught.value.status == 500
    assert via_proxy.retried == 0
    assert [m for m, _ in proxy.requests] == ["POST", "PATCH", "DELETE"]


# -- manifests and listings


def test_manifest_by_tag_and_by_digest(client: HttpRegistry) -> None:
    manifest = image(client, "man/app")
    digest = client.put_manifest("man/app", "v1", manifest, OCI_MANIFEST)
    assert digest == sha256_digest(manifest)
    expected = ManifestResponse(manifest, OCI_MANIFEST, digest)
    assert client.get_manifest("man/app", "v1") == expected
    assert client.get_manifest("man/app", digest) == expected
    assert client.put_manifest("man/app", digest, manifest, OCI_MANIFEST) == digest
    with pytest.raises(DigestMismatchError):
        client.put_manifest("man/app", sha256_digest(b"x"), manifest, OCI_MANIFEST)


def test_delete_by_digest_then_the_manifest_is_unknown(client: HttpRegistry) -> None:
    manifest = image(client, "man/gone", seed=1)
    digest = client.put_manifest("man/gone", "v1", manifest, OCI_MANIFEST)
    client.delete_manifest("man/gone", digest)
    with pytest.raises(ImageNotFoundError, match=r"manifest unknown: 127\.0\.0\.1:\d+/man/gone@sha256:"):
        client.get_manifest("man/gone", digest)
    with pytest.raises(ImageNotFoundError):
        client.get_manifest("man/gone", "v1")


def test_tags_follow_every_page(registry: RegistryServer, via_proxy: HttpRegistry, proxy: FaultyProxy) -> None:
    manifest = image(via_proxy, "list/tags", seed=2)
    tags = ["e", "a", "d", "b", "c"]
    for tag in tags:
        via_proxy.put_manifest("list/tags", tag, manifest, OCI_MANIFEST)
    proxy.page_tags = True
    start = len(proxy.requests)
    assert via_proxy.tags("list/tags", page_size=2) == sorted(tags)
    pages = proxy.requests[start:]
    assert [p for _, p in pages] == ["/v2/list/tags/tags/list?n=2", "/v2/list/tags/tags/list?n=2&last=b",
                                     "/v2/list/tags/tags/list?n=2&last=d"]
    # distribution 2.8 itself ignores n on tags/list: one page with everything
    with HttpRegistry(registry.url, backoff=BACKOFF) as direct:
        assert direct.tags("list/tags", page_size=2) == sorted(tags)
        assert direct.requests == 1
    with pytest.raises(ImageNotFoundError, match="name unknown"):
        via_proxy.tags("list/nothing")


def test_catalog_follows_every_page(client: HttpRegistry) -> None:
    for name in ("cat/a", "cat/b", "cat/c"):
        push(client, name, b"catalog " + name.encode())
    everything = client.catalog()
    assert {"cat/a", "cat/b", "cat/c"} <= set(everything)
    before = client.requests
    assert client.catalog(page_size=2) == everything
    assert client.requests - before >= len(everything) // 2 >= 2


def test_ranged_reads_resume_after_a_cut(via_proxy: HttpRegistry, proxy: FaultyProxy) -> None:
    data, digest = blob(2_000_000, 8)
    push(via_proxy, "range/app", data)
    with via_proxy.open_blob("range/app", digest, offset=1234) as reader:
        assert (reader.offset, reader.size) == (1234, len(data))
        assert b"".join(reader) == data[1234:]
    proxy.cut_after = 700_000
    got = bytearray()
    with pytest.raises(RegistryUnavailableError, match="after 700000 of 2000000 bytes"):
        with via_proxy.open_blob("range/app", digest) as reader:
            for chunk in reader:
                got += chunk
    assert len(got) == 700_000
    with via_proxy.open_blob("range/app", digest, offset=len(got)) as reader:
        assert reader.offset == 700_000
        got += b"".join(reader)
    assert bytes(got) == data
    assert proxy.requests[-1][0] == "GET"
    proxy.ignore_range = True
    with via_proxy.open_blob("range/app", digest, offset=10) as reader:
        assert reader.offset == 0, "a registry that ignores Range answers from 0"
        assert b"".join(reader) == data


def test_altered_blob_bytes_are_passed_on_for_the_caller_to_verify(via_proxy: HttpRegistry, proxy: FaultyProxy) -> None:
    data, digest = blob(100_000, 9)
    push(via_proxy, "faults/blob", data)

    def read() -> tuple[bytes, int | None]:
        with via_proxy.open_blob("faults/blob", digest) as reader:
            return b"".join(reader), reader.size

    proxy.flip_blob_byte = True
    flipped, size = read()
    assert size == len(flipped) == len(data)
    assert [i for i in range(len(data)) if flipped[i] != data[i]] == [len(data) // 2]
    proxy.flip_blob_byte = False
    proxy.truncate_blobs = 1000
    assert read() == (data[:1000], 1000)
    proxy.truncate_blobs = None
    proxy.extend_blobs = b"EXTRA"
    assert read() == (data + b"EXTRA", len(data) + 5)
    proxy.extend_blobs = b""
    assert read() == (data, len(data))
    assert {sha256_digest(flipped), sha256_digest(data[:1000]), sha256_digest(data + b"EXTRA")}.isdisjoint({digest})


def test_a_manifest_over_the_limit_is_refused_before_it_is_read(via_proxy: HttpRegistry, proxy: FaultyProxy) -> None:
    huge = b"{" + b" " * (2 * MAX_MANIFEST_BYTES) + b"}"
    proxy.manifest_override = (huge, OCI_MANIFEST)
    with pytest.raises(DocumentTooLargeError, match="limit"):
        via_proxy.get_manifest("faults/huge", "latest")
    assert via_proxy.bytes_received == 0, "a declared Content-Length over the limit is refused unread"
    proxy.chunked_manifests = True  # no Content-Length: refused once the stream passes the limit
    with pytest.raises(DocumentTooLargeError):
        via_proxy.get_manifest("faults/huge", "latest")
    assert MAX_MANIFEST_BYTES < via_proxy.bytes_received < MAX_MANIFEST_BYTES + (1 << 20)


# -- retries and an unreachable registry


def test_two_server_errors_then_success(client: HttpRegistry, via_proxy: HttpRegistry, proxy: FaultyProxy) -> None:
    push(client, "retry/ok", b"retry")
    proxy.fail_next = 2
    assert via_proxy.catalog() == client.catalog()
    assert (via_proxy.retried, via_proxy.requests, len(proxy.requests)) == (2, 3, 3)


def test_server_errors_forever_end_after_the_retries(proxy: FaultyProxy) -> None:
    proxy.fail_next = 100
    with HttpRegistry(proxy.url, retries=3, backoff=BACKOFF) as session:
        with pytest.raises(RegistryUnavailableError, match="4 attempts") as caught:
            session.tags("retry/forever")
        assert caught.value.status == 500
        assert (session.requests, session.retried, len(proxy.requests)) == (4, 3, 4)


def test_a_registry_that_is_down(via_proxy: HttpRegistry, proxy: FaultyProxy) -> None:
    via_proxy.ping()  # a keep-alive connection is open when the registry goes away
    proxy.down()
    with pytest.raises(RegistryUnavailableError, match="cannot be reached") as caught:
        via_proxy.ping()
    assert isinstance(caught.value, ConnectionError)
    assert via_proxy.retried == 3


# -- typed errors before anything is sent


def test_bad_arguments_are_refused_before_any_request(client: HttpRegistry) -> None:
    digest = sha256_digest(b"x")
    with pytest.raises(InvalidReferenceError):
        client.get_manifest("Upper/Case", "latest")
    with pytest.raises(InvalidReferenceError):
        client.get_manifest("ok/repo", "bad tag")
    with pytest.raises(ImageFormatError):
        client.open_blob("ok/repo", "md5:abc")
    with pytest.raises(RegistryConfigError):
        client.put_blob("ok/repo", digest, 1, io.BytesIO(b"x"), chunk_size=0)
    with pytest.raises(RegistryConfigError):
        client.tags("ok/repo", page_size=0)
    assert client.requests == 0
    for url in ("ftp://127.0.0.1:1", "http://127.0.0.1:1/some/path", "127.0.0.1:5000"):
        with pytest.raises(RegistryConfigError):
            HttpRegistry(url)
    with pytest.raises(RegistryConfigError) as caught:
        HttpRegistry(f"http://alice:{PASSWORD}@127.0.0.1:1")
    assert PASSWORD not in str(caught.value)


def test_registry_answers_become_typed_errors(client: HttpRegistry) -> None:
    with pytest.raises(ImageNotFoundError, match=r"manifest unknown: 127\.0\.0\.1:\d+/errors/none:latest"):
        client.get_manifest("errors/none", "latest")
    with pytest.raises(BlobNotFoundError, match="blob unknown"):
        client.open_blob("errors/none", sha256_digest(b"nothing"))
    config = b"{}"
    push(client, "errors/app", config)
    missing = sha256_digest(b"missing layer")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha256_digest(config), "size": 2},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": missing,
                                       "size": 13}]}).encode()
    with pytest.raises(RegistryError) as caught:
        client.put_manifest("errors/app", "v1", manifest, OCI_MANIFEST)
    assert (caught.value.code, caught.value.status) == ("MANIFEST_BLOB_UNKNOWN", 400)


# -- Basic auth over TLS, certificates


def test_basic_auth_over_tls_with_the_ca_file(secure: RegistryServer) -> None:
    assert secure.url.startswith("https://") and secure.ca_file is not None
    with HttpRegistry(secure.url, credentials=Credentials("alice", PASSWORD), ca_file=secure.ca_file) as session:
        session.ping()
        assert session.requests == 2, "a 401 with a Basic challenge, then the same request with credentials"
        data, digest = blob(20_000, 10)
        push(session, "private/app", data)
        assert session.stat_blob("private/app", digest) == len(data)
        assert "private/app" in session.catalog()
        assert session.retried == 0


def auth_failures(secure: RegistryServer, folder: Path) -> list[BaseException]:
    """Every way a login or a certificate can fail; each must be typed and name the registry."""
    other = CertificateAuthority.create(folder / "other-ca")
    cases: list[tuple[dict[str, object], type[BaseException], str]] = [
        ({"credentials": Credentials("alice", WRONG), "ca_file": secure.ca_file}, AuthenticationError, "refused"),
        ({"credentials": Credentials("mallory", PASSWORD), "ca_file": secure.ca_file}, AuthenticationError, "refused"),
        ({"ca_file": secure.ca_file}, AuthenticationError, "requires a login"),
        ({"credentials": Credentials("alice", PASSWORD)}, RegistryUnavailableError, "certificate is not trusted"),
        ({"credentials": Credentials("alice", PASSWORD), "ca_file": other.cert_file}, RegistryUnavailableError,
         "certificate is not trusted"),
    ]
    raised: list[BaseException] = []
    for settings, kind, words in cases:
        with HttpRegistry(secure.url, **settings, backoff=BACKOFF) as session:  # type: ignore[arg-type]
            with pytest.raises(kind, match=words) as caught:
                session.ping()
            assert secure.host in str(caught.value)
            if kind is RegistryUnavailableError:
                assert "ca_file" in str(caught.value)
                assert session.requests == 1, "an untrusted certificate is not retried"
            raised.append(caught.value)
            assert PASSWORD not in repr(session)
    return raised


def secrets_in(error: BaseException) -> list[str]:
    found: list[str] = []
    current: BaseException | None = error
    spelled = {PASSWORD, WRONG, base64.b64encode(f"alice:{PASSWORD}".encode()).decode(),
               base64.b64encode(f"alice:{WRONG}".encode()).decode()}
    while current is not None:
        found += [s for s in spelled if s in str(current) or s in repr(current) or s in repr(current.args)]
        current = current.__cause__ or current.__context__
    return found


def test_logins_and_certificates_fail_typed_and_never_show_the_password(secure: RegistryServer) -> None:
    with tempfile.TemporaryDirectory() as folder:
        errors = auth_failures(secure, Path(folder))
    for error in errors:
        assert secrets_in(error) == [], error
    assert PASSWORD not in repr(Credentials("alice", PASSWORD))


# -- the Bearer challenge protocol, against a fake


class TokenFake:
    """A fake registry that answers only the Bearer token protocol: a 401 with a challenge, a token
    service (Basic login required) at the challenge's realm, and 200 for a request with a token of
    the right scope. Its service name holds a comma and escaped quotes, as a parser must handle."""

    SERVICE = 'fake "quoted", registry'

    def __init__(self, user: str, password: str) -> None:
        self.login = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.token_requests: list[dict[str, list[str]]] = []
        self.issued: dict[str, set[str]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> TokenFake:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def answer(self, status: int, doc: object, headers: dict[str, str] | None = None) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/token":
                    query = parse_qs(url.query)
                    fake.token_requests.append(query)
                    if self.headers.get("Authorization") != fake.login or query.get("service") != [fake.SERVICE]:
                        self.answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad login"}]})
                        return
                    token = secrets.token_hex(8)
                    fake.issued[token] = set(query.get("scope", []))
                    # Both spellings token services use: "access_token" (OAuth 2) and "token" (Docker's).
                    spelling = "token" if len(fake.issued) % 2 == 0 else "access_token"
                    self.answer(200, {spelling: token, "expires_in": 300})
                    return
                repo = url.path.removeprefix("/v2/").removesuffix("/tags/list")
                scope = f"repository:{repo}:pull" if url.path.endswith("/tags/list") else None
                sent = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                if sent in fake.issued and (scope is None or scope in fake.issued[sent]):
                    self.answer(200, {"name": repo, "tags": ["b", "a"]} if scope else {})
                    return
                service = fake.SERVICE.replace('"', '\\"')
                challenge = f'Bearer realm="{fake.url}/token",service="{service}"'
                if scope:
                    challenge += f',scope="{scope}"'
                self.answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                            {"WWW-Authenticate": challenge})

        return Handler


def test_bearer_tokens_are_fetched_per_scope_and_cached() -> None:
    with TokenFake("bob", PASSWORD) as fake, \
            HttpRegistry(fake.url, credentials=Credentials("bob", PASSWORD), backoff=BACKOFF) as session:
        assert session.tags("team/app") == ["a", "b"]
        assert session.tags("team/app") == ["a", "b"]
        assert len(fake.token_requests) == 1, "the token for a scope is cached"
        asked = fake.token_requests[0]
        assert asked["scope"] == ["repository:team/app:pull"] and asked["account"] == ["bob"]
        session.ping()
        session.tags("team/other")
        assert len(fake.token_requests) == 3, "one token per scope"
        assert session.retried == 0
    with TokenFake("bob", PASSWORD) as fake:
        for credentials in (Credentials("bob", WRONG), None):
            with HttpRegistry(fake.url, credentials=credentials, backoff=BACKOFF) as session:
                with pytest.raises(AuthenticationError, match="refused") as caught:
                    session.tags("team/app")
                assert fake.url.removeprefix("http://") in str(caught.value)
                assert secrets_in(caught.value) == []


@pytest.mark.parametrize(("header", "expected"), [
    ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
    ('Bearer realm="https://h/token",service="reg",scope="repository:a/b:pull,push"',
     [Challenge("bearer", {"realm": "https://h/token", "service": "reg", "scope": "repository:a/b:pull,push"})]),
    (r'Bearer realm="a \"quoted\", realm", Basic realm=plain',
     [Challenge("bearer", {"realm": 'a "quoted", realm'}), Challenge("basic", {"realm": "plain"})]),
    ("Negotiate abc==, BASIC Realm=x", [Challenge("negotiate", {"": "abc=="}), Challenge("basic", {"realm": "x"})]),
    ("Bearer realm=https://h:5/token,service=x", [Challenge("bearer", {"realm": "https://h:5/token", "service": "x"})]),
    ("", []),
])
def test_challenges_parse(header: str, expected: list[Challenge]) -> None:
    assert parse_challenges(header) == expected


def test_a_malformed_challenge_is_a_typed_error() -> None:
    with pytest.raises(AuthenticationError, match="unterminated"):
        parse_challenges('Bearer realm="never closed', source="127.0.0.1:1")

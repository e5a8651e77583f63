"""The real registry server: Debian's docker-registry (distribution 2.8) started on 127.0.0.1.

Private registries (私有仓库) plain and with logins over TLS, a pull-through mirror
(加速器) of another one, several at once, and every way a start can fail: each
test checks afterwards that no docker-registry process is left (by scanning
``/proc/*/cmdline`` for the test's folders) and that a refused argument wrote nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from realrt.registries import server as server_module
from realrt.registries._certs import CertificateAuthority
from realrt.registries.server import RegistryServer, serve
from sim.errors import ConflictError, RegistryConfigError, RegistryUnavailableError

pytestmark = pytest.mark.real

REPO_ROOT = Path(__file__).resolve().parents[2]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


# -- helpers -----------------------------------------------------------------------------------

def processes_with(text: str) -> list[int]:
    """Pids whose command line mentions ``text`` (zombies have an empty one, so they do not count)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if text.encode() in fh.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    # Location carries its own query (_state=...): the digest is added to it, not put in its place.
    done = client.put(httpx.URL(started.headers["location"]).copy_merge_params({"digest": digest}), content=data)
    assert done.status_code == 201, done.text
    return digest


def push_image(client: httpx.Client, repo: str, tag: str) -> tuple[str, bytes, str]:
    """A config and one layer, then the manifest under ``tag``: (manifest digest, manifest bytes, layer digest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = b"a small layer for " + tag.encode()
    config_digest, layer_digest = push_blob(client, repo, config), push_blob(client, repo, layer)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                    "size": len(layer)}],
    }).encode()
    put = client.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"content-type": OCI_MANIFEST})
    assert put.status_code == 201, put.text
    assert put.headers["docker-content-digest"] == "sha256:" + hashlib.sha256(manifest).hexdigest()
    return put.headers["docker-content-digest"], manifest, layer_digest


def client_for(srv: RegistryServer, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=srv.url, verify=srv.ssl_context() or False, trust_env=False, timeout=5.0, **kwargs)


def alive(srv: RegistryServer) -> bool:
    """``srv.running``, read through a call so a type checker does not carry an earlier assert over a stop()."""
    return srv.running


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def no_process_left(tmp_path: Path) -> Iterator[None]:
    yield
    assert processes_with(str(tmp_path)) == [], "a docker-registry process outlived its test"


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., RegistryServer]]:
    """``start(name, **kwargs)``: a started server in ``tmp_path/name``; every one is stopped afterwards."""
    made: list[RegistryServer] = []

    def _start(name: str, **kwargs: Any) -> RegistryServer:
        srv = RegistryServer(tmp_path / name, **kwargs)
        made.append(srv)
        return srv.start()

    yield _start
    for srv in made:
        srv.stop()


# -- a private registry ------------------------------------------------------------------------

def test_plain_server_answers_and_stops(start: Callable[..., RegistryServer], tmp_path: Path) -> None:
    srv = start("plain")
    pid = srv.pid
    assert srv.running and pid is not None and not srv.is_mirror and srv.ca_file is None
    assert srv.url == f"http://127.0.0.1:{srv.port}" and srv.host == f"127.0.0.1:{srv.port}" and srv.port > 0
    with client_for(srv) as client:
        ping = client.get("/v2/")
        assert ping.status_code == 200 and ping.json() == {}
        push_image(client, "demo", "v1")
        assert client.get("/v2/demo/tags/list").json() == {"name": "demo", "tags": ["v1"]}
    assert srv.data_dir == tmp_path / "plain" / "data" and (srv.data_dir / "docker").is_dir()
    config = srv.config_file.read_text()
    assert "rootdirectory: " + json.dumps(str(srv.data_dir)) in config and "enabled: true" in config
    assert "proxy" not in config and "auth" not in config and mode(srv.config_file) == 0o600
    assert "listening on 127.0.0.1:%d" % srv.port in srv.log_file.read_text()
    assert processes_with(str(srv.config_file)) == [pid]
    srv.stop()
    assert not alive(srv) and srv.pid is None and processes_with(str(srv.config_file)) == []
    assert not os.path.exists(f"/proc/{pid}/cmdline") or Path(f"/proc/{pid}/cmdline").read_bytes() == b""


def test_stop_is_idempotent_and_a_restart_keeps_the_data(start: Callable[..., RegistryServer], tmp_path: Path) -> None:
    never = RegistryServer(tmp_path / "never")
    never.stop()
    never.stop()
    assert not never.running and not (tmp_path / "never").exists()
    with pytest.raises(RegistryUnavailableError):
        never.url
    srv = start("again")
    with client_for(srv) as client:
        digest, _, _ = push_image(client, "demo", "v1")
    srv.stop()
    srv.stop(timeout=0)
    srv.start()
    with client_for(srv) as client:
        assert client.get(f"/v2/demo/manifests/{digest}", headers={"accept": OCI_MANIFEST}).status_code == 200
    with pytest.raises(ConflictError):
        srv.start()
    with RegistryServer(tmp_path / "ctx") as in_with:
        assert in_with.running
    assert not alive(in_with)
    in_with.stop()
    assert processes_with(str(tmp_path)) == [srv.pid]


def test_two_servers_at_once_on_different_ports(start: Callable[..., RegistryServer]) -> None:
    first, second = start("one"), start("two")
    assert first.port != second.port and first.pid != second.pid
    with client_for(first) as one, client_for(second) as two:
        push_image(one, "only-in-one", "v1")
        assert one.get("/v2/_catalog").json() == {"repositories": ["only-in-one"]}
        assert two.get("/v2/_catalog").json() == {"repositories": []}


def test_a_busy_port_is_refused_and_a_free_one_is_used(start: Callable[..., RegistryServer], tmp_path: Path) -> None:
    first = start("first")
    with pytest.raises(RegistryUnavailableError, match="address already in use") as caught:
        start("second", port=first.port)
    assert "last lines of" in str(caught.value)
    assert processes_with(str(tmp_path / "second")) == [] and first.running
    chosen = free_port()
    assert start("chosen", port=chosen).url == f"http://127.0.0.1:{chosen}"


def test_one_root_serves_one_server_at_a_time(start: Callable[..., RegistryServer], tmp_path: Path) -> None:
    first = start("shared")
    with pytest.raises(ConflictError, match="another registry server"):
        RegistryServer(tmp_path / "shared").start()
    with client_for(first) as client:
        assert client.get("/v2/").status_code == 200


# -- logins over TLS ---------------------------------------------------------------------------

def test_auth_needs_the_right_password_over_verified_tls(start: Callable[..., RegistryServer],
                                                         tmp_path: Path) -> None:
    srv = start("auth", accounts={"alice": "correct horse", "bob": "battery staple"})
    root = tmp_path / "auth"
    assert srv.url == f"https://127.0.0.1:{srv.port}" and srv.ca_file == root / "ca" / "ca.crt"
    with client_for(srv) as client:
        anonymous = client.get("/v2/")
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == 'Basic realm="layerlab"'
        assert client.get("/v2/", auth=("alice", "correct horse")).status_code == 200
        assert client.get("/v2/", auth=("bob", "battery staple")).status_code == 200
        assert client.get("/v2/", auth=("alice", "battery staple")).status_code == 401
        assert client.get("/v2/", auth=("mallory", "correct horse")).status_code == 401
    with httpx.Client(trust_env=False) as untrusting, pytest.raises(httpx.ConnectError):
        untrusting.get(srv.url + "/v2/")  # the system's CAs do not know the test CA
    with httpx.Client(trust_env=False) as plain:  # Go's TLS server answers plain HTTP with a bare 400
        assert plain.get(f"http://127.0.0.1:{srv.port}/v2/").status_code == 400

    lines = (root / "htpasswd").read_text().splitlines()
    assert [ln.split(":", 1)[0] for ln in lines] == ["alice", "bob"]
    assert all(ln.split(":", 1)[1].startswith("$2y$10$") and len(ln.split(":", 1)[1]) == 60 for ln in lines)
    for path in root.rglob("*"):  # no password anywhere on disk, data and log included
        if path.is_file():
            assert b"correct horse" not in path.read_bytes() and b"battery staple" not in path.read_bytes()
    for secret in (root / "ca" / "ca.key", root / "tls" / "server.key", root / "htpasswd", srv.config_file):
        assert mode(secret) == 0o600, secret
    ca = CertificateAuthority.load(root / "ca")
    assert ca.verifies(root / "tls" / "server.crt")
    config = srv.config_file.read_text()
    assert json.dumps(str(root / "tls" / "server.crt")) in config and "htpasswd:" in config

    ca_bytes = srv.ca_file.read_bytes()
    srv.stop()
    srv.start()  # the CA is reused: clients that trust it keep trusting the restarted server
    assert srv.ca_file.read_bytes() == ca_bytes
    with client_for(srv) as client:
        assert client.get("/v2/", auth=("alice", "correct horse")).status_code == 200


def test_a_given_ca_signs_the_server_and_tls_alone_needs_no_login(start: Callable[..., RegistryServer],
                                                                   tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path / "my-ca", name="class CA")
    srv = start("tls-only", ca=ca)
    assert srv.ca_file == ca.cert_file and not (tmp_path / "tls-only" / "ca").exists()
    with client_for(srv) as client:
        assert client.get("/v2/").status_code == 200
    context = ssl.create_default_context(cafile=str(ca.cert_file))
    with httpx.Client(verify=context, trust_env=False) as client:
        assert client.get(f"https://localhost:{srv.port}/v2/").status_code == 200  # the DNS name is in the SAN too


def test_certificate_authority_files_and_extensions(tmp_path: Path) -> None:
    old = os.umask(0)  # the key's mode must not depend on the caller's umask
    try:
        ca = CertificateAuthority.create(tmp_path / "ca")
    finally:
        os.umask(old)
    assert mode(ca.key_file) == 0o600 and mode(ca.cert_file) == 0o644
    assert CertificateAuthority.load(tmp_path / "ca") == ca
    cert = x509.load_pem_x509_certificate(ca.cert_file.read_bytes())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).critical
    with pytest.raises(ConflictError):
        CertificateAuthority.create(tmp_path / "ca")

    crt, key = ca.issue(tmp_path / "srv", hosts=("127.0.0.1", "::1", "localhost", "registry.test"))
    assert mode(key) == 0o600 and ca.verifies(crt)
    leaf = x509.load_pem_x509_certificate(crt.read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "registry.test"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not CertificateAuthority.create(tmp_path / "other").verifies(crt)

    before = sorted(p.name for p in (tmp_path / "srv").iterdir())
    for hosts in ((), ("bad host",), ("-x.test",), "127.0.0.1"):
        with pytest.raises(RegistryConfigError):
            ca.issue(tmp_path / "srv", hosts=hosts)
    assert sorted(p.name for p in (tmp_path / "srv").iterdir()) == before
    with pytest.raises(RegistryConfigError):
        CertificateAuthority.load(tmp_path / "missing")
    with pytest.raises(RegistryConfigError):
        CertificateAuthority.load(tmp_path / "srv")  # a server key and certificate are not a CA
    with pytest.raises(RegistryConfigError):
        CertificateAuthority.create(tmp_path / "unnamed", name=" ")
    assert not (tmp_path / "unnamed").exists() and not (tmp_path / "missing").exists()


# -- a pull-through mirror ---------------------------------------------------------------------

def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_mirror_caches_what_it_served_and_refuses_pushes(start: Callable[..., RegistryServer]) -> None:
    upstream = start("upstream")
    with client_for(upstream) as up:
        digest, manifest, layer = push_image(up, "demo", "v1")
    mirror = start("mirror", mirror_of=upstream.url + "/")
    assert mirror.is_mirror and mirror.mirror_of == upstream.url
    config = mirror.config_file.read_text()
    assert f"remoteurl: {json.dumps(upstream.url)}" in config and "enabled: false" in config

    with client_for(mirror) as client:
        by_tag = client.get("/v2/demo/manifests/v1", headers={"accept": OCI_MANIFEST})
        assert by_tag.status_code == 200 and by_tag.content == manifest
        assert by_tag.headers["docker-content-digest"] == digest
        assert client.get(f"/v2/demo/blobs/{layer}").content == b"a small layer for v1"
        # distribution 2.8 stores a proxied blob in a goroutine of its own, after serving it
        stored = mirror.data_dir / "docker/registry/v2/blobs/sha256" / layer[7:9] / layer[7:] / "data"
        assert wait_for(stored.exists), "the mirror never stored the blob it served"

        refused = client.post("/v2/demo/blobs/uploads/")
        assert refused.status_code in (401, 405) and refused.json()["errors"][0]["code"] == "UNSUPPORTED"
        put = client.put("/v2/demo/manifests/v2", content=manifest, headers={"content-type": OCI_MANIFEST})
        assert put.status_code in (401, 405) and put.json()["errors"][0]["code"] == "UNSUPPORTED"
        assert client.delete(f"/v2/demo/manifests/{digest}").status_code in (401, 405)

        upstream.stop()
        offline = client.get(f"/v2/demo/manifests/{digest}", headers={"accept": OCI_MANIFEST})
        assert offline.status_code == 200 and offline.content == manifest
        assert client.get(f"/v2/demo/blobs/{layer}").content == b"a small layer for v1"
        # something never pulled is not there to serve
        assert client.get("/v2/demo/manifests/never", headers={"accept": OCI_MANIFEST}).status_code >= 400


def test_a_mirror_of_an_https_upstream_trusts_only_the_ca_it_is_given(start: Callable[..., RegistryServer],
                                                                      tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path / "upstream-ca")
    upstream = start("tls-upstream", ca=ca)
    with client_for(upstream) as up:
        digest, manifest, _ = push_image(up, "demo", "v1")
    with pytest.raises(RegistryUnavailableError, match="certificate"):
        start("untrusting", mirror_of=upstream.url)  # Go's own roots do not include the test CA
    assert processes_with(str(tmp_path / "untrusting")) == []
    mirror = start("trusting", mirror_of=upstream.url, upstream_ca_file=ca.cert_file)
    assert mirror.url.startswith("http://")  # TLS towards the upstream only; the mirror itself is plain
    with client_for(mirror) as client:
        got = client.get("/v2/demo/manifests/v1", headers={"accept": OCI_MANIFEST})
        assert got.status_code == 200 and got.content == manifest and got.headers["docker-content-digest"] == digest
    assert "SSL_CERT_FILE" not in mirror.config_file.read_text()


def test_a_mirror_whose_upstream_is_down_fails_to_start_and_leaves_no_process(tmp_path: Path) -> None:
    dead = free_port()
    srv = RegistryServer(tmp_path / "orphan", mirror_of=f"http://127.0.0.1:{dead}")
    began = time.monotonic()
    with pytest.raises(RegistryUnavailableError, match="connection refused") as caught:
        srv.start()
    assert time.monotonic() - began < 5
    assert "exited with status" in str(caught.value) and "goroutine" not in str(caught.value)
    assert not srv.running and srv.pid is None
    assert processes_with(str(tmp_path / "orphan")) == []
    srv.stop()
    with pytest.raises(RegistryUnavailableError):  # the lock was released: a new attempt fails the same way
        srv.start()


def test_a_server_that_never_answers_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = CertificateAuthority.create(tmp_path / "other-ca")
    # The readiness probe trusts another CA, so every handshake fails until the deadline.
    monkeypatch.setattr(server_module, "READY_TIMEOUT", 0.6)
    monkeypatch.setattr(RegistryServer, "ssl_context",
                        lambda self: ssl.create_default_context(cafile=str(other.cert_file)))
    srv = RegistryServer(tmp_path / "silent", accounts={"alice": "pw"})
    with pytest.raises(RegistryUnavailableError, match="did not become ready"):
        srv.start()
    assert not srv.running and processes_with(str(tmp_path / "silent")) == []


# -- bad arguments -----------------------------------------------------------------------------

BAD_ARGUMENTS: list[dict[str, Any]] = [
    {"mirror_of": "ftp://127.0.0.1:5000"},
    {"mirror_of": "127.0.0.1:5000"},
    {"mirror_of": "http://10.1.2.3:5000"},
    {"mirror_of": "https://registry.test"},
    {"mirror_of": "http://user:pw@127.0.0.1:5000"},
    {"mirror_of": "http://127.0.0.1:5000/v2/"},
    {"mirror_of": "http://127.0.0.1:99999"},
    {"mirror_of": ""},
    {"port": -1},
    {"port": 65536},
    {"port": True},
    {"port": "5000"},
    {"accounts": {}},
    {"accounts": {"": "pw"}},
    {"accounts": {"al:ice": "pw"}},
    {"accounts": {"al ice": "pw"}},
    {"accounts": {"alice": ""}},
    {"accounts": {"alice": "x" * 73}},
    {"upstream_credentials": ("alice", "pw")},
    {"mirror_of": "http://127.0.0.1:5000", "upstream_credentials": ("", "pw")},
    {"mirror_of": "http://127.0.0.1:5000", "upstream_credentials": ("a:b", "pw")},
    {"mirror_of": "http://127.0.0.1:5000", "upstream_ca_file": "/etc/hostname"},
    {"mirror_of": "https://127.0.0.1:5000", "upstream_ca_file": "/nonexistent/ca.crt"},
    {"mirror_of": "https://127.0.0.1:5000", "upstream_ca_file": 42},
    {"ca": "not a CA"},
    {"ca": CertificateAuthority(Path("/nonexistent/ca.crt"), Path("/nonexistent/ca.key"))},
]


@pytest.mark.parametrize("kwargs", BAD_ARGUMENTS, ids=lambda kw: ",".join(f"{k}={v!r}"[:40] for k, v in kw.items()))
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    root = tmp_path / "never"
    with pytest.raises(RegistryConfigError):
        RegistryServer(root, **kwargs)
    assert not root.exists()


def test_bad_roots_and_timeouts_are_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    for root in (a_file, "", 42):
        with pytest.raises(RegistryConfigError):
            RegistryServer(root)  # type: ignore[arg-type]
    assert a_file.read_text() == "not a folder"
    with pytest.raises(RegistryConfigError):
        RegistryServer(tmp_path / "r").stop(timeout=-1)
    assert not (tmp_path / "r").exists()


def test_serve_refuses_bad_arguments_before_making_a_folder(tmp_path: Path) -> None:
    before = sorted(Path(tempfile.gettempdir()).glob("layerlab-registry-*"))
    out = open(os.devnull, "w")  # noqa: SIM115 -- closed below
    try:
        for kwargs in ({"auth": True, "user": "al:ice"}, {"auth": "yes"}, {"port": 70000},
                       {"mirror_of": "http://10.0.0.1"}):
            arguments: dict[str, Any] = {"mirror_of": None, "auth": False, "port": 0, **kwargs}
            with pytest.raises(RegistryConfigError):
                serve(None, out=out, **arguments)
            with pytest.raises(RegistryConfigError):
                serve(tmp_path / "kept", out=out, **arguments)
    finally:
        out.close()
    assert sorted(Path(tempfile.gettempdir()).glob("layerlab-registry-*")) == before
    assert not (tmp_path / "kept").exists()


# -- the CLI's blocking serve() and dying with the parent ----------------------------------------

def read_until(proc: subprocess.Popen[bytes], marker: str, seconds: float = 15.0) -> list[str]:
    """The child's output lines up to the first one containing ``marker`` (read unbuffered, so select is honest)."""
    assert proc.stdout is not None
    fd, data = proc.stdout.fileno(), b""
    deadline = time.monotonic() + seconds
    while marker.encode() not in data or not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0 and select.select([fd], [], [], left)[0], f"no {marker!r} in {data!r}"
        chunk = os.read(fd, 65536)
        assert chunk, f"the child exited early ({proc.poll()}): {data!r}"
        data += chunk
    return data.decode().splitlines()


@pytest.mark.parametrize("stop_with, auth, own_root", [(signal.SIGINT, True, False), (signal.SIGTERM, False, True)])
def test_serve_prints_how_to_connect_and_stops_on_a_signal(tmp_path: Path, stop_with: int, auth: bool,
                                                          own_root: bool) -> None:
    root = f"Path({str(tmp_path / 'served')!r})" if own_root else "None"
    code = ("import sys\nfrom pathlib import Path\nfrom realrt.registries.server import serve\n"
            f"sys.exit(serve({root}, mirror_of=None, auth={auth}, port=0, out=sys.stdout))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE)
    try:
        lines = read_until(proc, "Ctrl-C")
        fields = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:]) if v}
        url = lines[0].split()[-1]
        served_root = Path(fields["root"])
        assert served_root == tmp_path / "served" if own_root else served_root.name.startswith("layerlab-registry-")
        if auth:
            assert url.startswith("https://127.0.0.1:") and fields["user"] == "student"
            password = fields["password"].split()[0]
            context = ssl.create_default_context(cafile=fields["CA certificate for clients"])
            with httpx.Client(verify=context, trust_env=False) as client:
                assert client.get(url + "/v2/").status_code == 401
                assert client.get(url + "/v2/", auth=("student", password)).status_code == 200
            assert password not in "".join(p.read_text(errors="replace") for p in served_root.rglob("*") if p.is_file())
        else:
            assert url.startswith("http://127.0.0.1:") and "password" not in fields
            assert httpx.get(url + "/v2/", trust_env=False).status_code == 200
        assert processes_with(str(served_root))
        proc.send_signal(stop_with)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None and b"stopping the registry" in proc.stdout.read()
        assert processes_with(str(served_root)) == []
        assert served_root.exists() == own_root
    finally:
        if proc.poll() is None:  # a failed assertion: SIGTERM first, so serve() still removes its folder
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_the_registry_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    code = ("import sys, time\nfrom realrt.registries.server import RegistryServer\n"
            f"srv = RegistryServer({str(tmp_path / 'owned')!r}).start()\n"
            "print(srv.pid, flush=True)\ntime.sleep(60)\n")
    owner = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE)
    try:
        registry_pid = int(read_until(owner, "\n")[0])
        config = str(tmp_path / "owned" / "config.yml")  # in the registry's command line, not the owner's
        assert processes_with(config) == [registry_pid]
        owner.kill()  # SIGKILL: no Python cleanup runs, only PR_SET_PDEATHSIG
        owner.wait()
        assert wait_for(lambda: processes_with(config) == [])
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()

"""A real registry on loopback: Debian's ``docker-registry`` (CNCF distribution 2.8) with a generated config.

:class:`RegistryServer` is what tests, notebooks and ``layerlab registry serve``
start: a private registry (私有仓库), optionally with logins over TLS, or a
pull-through mirror (加速器) of another loopback registry.  Everything lives in
one folder, ``root``::

    root/config.yml      the generated distribution config (0600: it holds http.secret)
    root/data/           storage.filesystem.rootdirectory: repositories, blobs, uploads
    root/registry.log    the process's stdout and stderr (logrus text, level info)
    root/htpasswd        with accounts: user:bcrypt-hash lines (0600), never a password
    root/ca/             with accounts and no CA given: the test CA (ca.crt, ca.key 0600)
    root/tls/            with TLS: server.crt and server.key (0600) for 127.0.0.1 and localhost
    root/server.lock     flock'ed while a server runs, so two never share one root

Facts about distribution 2.8.2 this module relies on (checked against the binary):

* With ``http.addr: 127.0.0.1:0`` the kernel picks the port and the log says
  ``msg="listening on 127.0.0.1:<port>"`` *after* binding; reading that line is
  race-free, unlike binding a probe socket, closing it and hoping the port stays free.
* A mirror (``proxy.remoteurl``) fetches ``<remoteurl>/v2/`` while it starts and
  panics if the upstream is unreachable: a mirror needs its upstream up to start.
* ``REGISTRY_<SECTION>_<KEY>`` environment variables override the config file;
  the upstream password goes that way (``REGISTRY_PROXY_PASSWORD``) so it is never
  on disk, and the child gets a clean environment so a stray ``REGISTRY_*`` or
  proxy variable of the caller's cannot change the server.
* The htpasswd backend accepts bcrypt only; hashes are written in the ``$2y$``
  spelling ``htpasswd -B`` uses (the same algorithm as Python's ``$2b$``).
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TextIO
from urllib.parse import urlsplit

import bcrypt
import httpx
from cryptography import x509

from realrt._syscalls import prctl
from realrt.registries._certs import CA_CERT_NAME, CertificateAuthority, write_atomic
from sim.errors import BackendUnavailableError, ConflictError, RegistryConfigError, RegistryUnavailableError
from sim.registries.auth import Credentials
from sim.registries.config import is_loopback_host

__all__ = ["RegistryServer", "serve", "BINARY", "READY_TIMEOUT", "REALM"]

#: The Debian package's binary (``apt-get install docker-registry``).
BINARY = "docker-registry"
#: How long :meth:`RegistryServer.start` waits for ``GET /v2/`` to answer.
READY_TIMEOUT = 10.0
#: The Basic-auth realm a server with accounts announces.
REALM = "layerlab"

_PR_SET_PDEATHSIG = 1
# Go's bcrypt.DefaultCost: distribution checks the hash on every request, so 12 (Python's
# default) would cost the server ~0.25 s of CPU per authenticated call.
_BCRYPT_ROUNDS = 10
_BCRYPT_MAX_BYTES = 72  # bcrypt ignores the rest; bcrypt>=5 refuses longer passwords
_LISTENING = re.compile(r'msg="listening on 127\.0\.0\.1:(\d+)')
_TAIL_LINES = 10
_POLL = 0.02


@dataclass(frozen=True)
class _Settings:
    """The checked arguments of a server (everything but its folder)."""

    mirror_of: str | None
    accounts: tuple[Credentials, ...]
    upstream_ca_file: Path | None
    upstream: Credentials | None
    port: int


def _check_mirror_of(url: object) -> str:
    """``url`` as distribution's ``proxy.remoteurl`` (no trailing ``/``), or a RegistryConfigError."""
    if not isinstance(url, str) or not url:
        raise RegistryConfigError(f"mirror_of must be an http(s) URL, not {url!r}")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 -- raises ValueError for a port out of range or not a number
    except ValueError:
        raise RegistryConfigError(f"mirror_of {url!r} has a malformed port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RegistryConfigError(f"mirror_of must be an http:// or https:// URL, not {url!r}")
    if not is_loopback_host(parts.hostname.lower()):
        raise RegistryConfigError(f"mirror_of {url!r} is not on a loopback host (127.0.0.0/8, ::1, localhost)")
    if parts.username is not None or parts.password is not None:
        raise RegistryConfigError("mirror_of must not carry credentials; pass upstream_credentials=(user, password)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise RegistryConfigError(f"mirror_of {url!r} must name a registry root (no path, query or fragment)")
    return f"{parts.scheme}://{parts.netloc}"


def _check_login(user: object, password: object, what: str) -> Credentials:
    if not isinstance(user, str) or not isinstance(password, str):
        raise RegistryConfigError(f"{what}: user name and password must be strings")
    if any(ch.isspace() or not ch.isprintable() for ch in user):
        raise RegistryConfigError(f"{what}: user name {user!r} contains white space or control characters")
    if len(password.encode()) > _BCRYPT_MAX_BYTES:
        raise RegistryConfigError(f"{what}: a password is at most {_BCRYPT_MAX_BYTES} bytes (bcrypt's limit)")
    return Credentials(user, password)  # empty names and passwords, ':' in a name


def _check(mirror_of: str | None, accounts: Mapping[str, str] | None,
           upstream_ca_file: str | os.PathLike[str] | None,
           upstream_credentials: tuple[str, str] | None, port: int) -> _Settings:
    """Every argument but the folder, checked; raises RegistryConfigError before any side effect."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise RegistryConfigError(f"port must be an integer from 0 (any free port) to 65535, not {port!r}")
    remote = None if mirror_of is None else _check_mirror_of(mirror_of)
    logins: tuple[Credentials, ...] = ()
    if accounts is not None:
        if not isinstance(accounts, Mapping) or not accounts:
            raise RegistryConfigError("accounts must be a non-empty mapping of user name to password")
        logins = tuple(_check_login(user, pw, "accounts") for user, pw in accounts.items())
    ca_file = None
    if upstream_ca_file is not None:
        if remote is None or not remote.startswith("https://"):
            raise RegistryConfigError("upstream_ca_file is only for a mirror of an https:// upstream")
        if not isinstance(upstream_ca_file, (str, os.PathLike)):
            raise RegistryConfigError(f"upstream_ca_file must be a path, not {upstream_ca_file!r}")
        ca_file = Path(upstream_ca_file).absolute()
        try:
            x509.load_pem_x509_certificates(ca_file.read_bytes())
        except (OSError, ValueError) as exc:
            raise RegistryConfigError(f"upstream_ca_file {ca_file} is not a readable PEM certificate: {exc}") from None
    upstream = None
    if upstream_credentials is not None:
        if remote is None:
            raise RegistryConfigError("upstream_credentials are only for a mirror (mirror_of=...)")
        if not isinstance(upstream_credentials, tuple) or len(upstream_credentials) != 2:
            raise RegistryConfigError("upstream_credentials must be a (user, password) tuple")
        upstream = _check_login(*upstream_credentials, "upstream_credentials")
    return _Settings(remote, logins, ca_file, upstream, port)


def _check_root(root: object) -> Path:
    if not isinstance(root, (str, os.PathLike)) or not os.fspath(root):
        raise RegistryConfigError(f"root must be a folder path, not {root!r}")
    path = Path(root).absolute()
    if path.exists() and not path.is_dir():
        raise RegistryConfigError(f"root {path} exists and is not a folder")
    return path


def _yaml(node: Mapping[str, object], depth: int = 0) -> str:
    """Block-style YAML for nested mappings of str, int and bool; strings are JSON-quoted (valid YAML)."""
    out = []
    for key, value in node.items():
        pad = "  " * depth
        if isinstance(value, Mapping):
            out.append(f"{pad}{key}:\n{_yaml(value, depth + 1)}")
        elif isinstance(value, bool):
            out.append(f"{pad}{key}: {'true' if value else 'false'}\n")
        elif isinstance(value, int):
            out.append(f"{pad}{key}: {value}\n")
        else:
            out.append(f"{pad}{key}: {json.dumps(str(value))}\n")
    return "".join(out)


def _htpasswd_line(login: Credentials) -> str:
    hashed = bcrypt.hashpw(login.password.encode(), bcrypt.gensalt(rounds=_BCRYPT_ROUNDS)).decode()
    return f"{login.username}:$2y${hashed[4:]}\n"  # "$2b$..." -> "$2y$...": same algorithm, htpasswd's spelling


def _child_setup(parent: int) -> None:
    """Run in the child between fork and exec: it must not outlive the parent thread that started it."""
    # serve() blocks SIGINT/SIGTERM while it waits; the registry must get them normally.
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class _NotReady(Exception):
    """Private: the process exited or did not answer; start() kills it and reports the log."""


class RegistryServer:
    """One ``docker-registry serve`` process on 127.0.0.1, configured from the arguments.

    * ``root``: the folder everything is kept in (see the module docstring);
      repositories survive a stop and a new start on the same root.
    * ``mirror_of``: make a pull-through mirror of that registry (an
      ``http(s)://`` URL on a loopback host); deletes are off and pushes refused.
    * ``accounts``: user name -> password; turns on Basic auth (htpasswd, bcrypt)
      *and* TLS.  TLS is also on whenever ``ca`` is given.  The server
      certificate is issued by ``ca``, or by a CA made (once, then reused) in ``root/ca``.
    * ``upstream_ca_file``: the CA certificate an ``https://`` upstream is
      signed by (given to the Go process as ``SSL_CERT_FILE``).
    * ``upstream_credentials``: ``(user, password)`` the mirror logs in to its
      upstream with (the password only through the process environment).
      Distribution 2.8 sends them only to a *token* auth realm: to a Basic
      (htpasswd) upstream it sends none, so that upstream answers 401 and the
      mirror answers 404 MANIFEST_UNKNOWN (checked against 2.8.2).
    * ``port``: 0 lets the kernel pick a free one (read back from the log).

    Every argument is checked here, before anything is written:
    :class:`~sim.errors.RegistryConfigError` for a bad ``mirror_of``, port,
    account (empty name or password, ``:`` or white space in a name, a
    password over 72 bytes), CA file or root.  Nothing is written or started
    until :meth:`start`.  ``with RegistryServer(...) as srv`` starts it (unless it
    runs already) and stops it at the end.  The process is tied to the *thread* that calls
    :meth:`start` (``PR_SET_PDEATHSIG``): it gets SIGTERM when that thread ends,
    so start servers from a thread that lives as long as they should.
    """

    def __init__(self, root: str | os.PathLike[str], *, mirror_of: str | None = None,
                 accounts: Mapping[str, str] | None = None, ca: CertificateAuthority | None = None,
                 upstream_ca_file: str | os.PathLike[str] | None = None,
                 upstream_credentials: tuple[str, str] | None = None, port: int = 0) -> None:
        self._settings = _check(mirror_of, accounts, upstream_ca_file, upstream_credentials, port)
        if ca is not None and not isinstance(ca, CertificateAuthority):
            raise RegistryConfigError(f"ca must be a CertificateAuthority, not {type(ca).__name__}")
        if ca is not None and not (ca.cert_file.is_file() and ca.key_file.is_file()):
            raise RegistryConfigError(f"the CA files {ca.cert_file} and {ca.key_file} must both exist")
        self._root = _check_root(root)
        self._ca = ca
        self._tls = bool(self._settings.accounts) or ca is not None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self._port: int | None = None

    # -- where things are

    @property
    def root(self) -> Path:
        return self._root

    @property
    def data_dir(self) -> Path:
        """``storage.filesystem.rootdirectory``."""
        return self._root / "data"

    @property
    def config_file(self) -> Path:
        return self._root / "config.yml"

    @property
    def log_file(self) -> Path:
        return self._root / "registry.log"

    @property
    def htpasswd_file(self) -> Path | None:
        return self._root / "htpasswd" if self._settings.accounts else None

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate clients must trust (exists once started), or ``None`` for plain HTTP."""
        if self._ca is not None:
            return self._ca.cert_file
        return self._root / "ca" / CA_CERT_NAME if self._tls else None

    @property
    def is_mirror(self) -> bool:
        return self._settings.mirror_of is not None

    @property
    def mirror_of(self) -> str | None:
        return self._settings.mirror_of

    # -- the running process

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while it runs, else ``None``."""
        return self._proc.pid if self._proc is not None and self.running else None

    @property
    def port(self) -> int:
        """The port bound by the last start; RegistryUnavailableError if never started."""
        if self._port is None:
            raise RegistryUnavailableError(f"the registry server in {self._root} has not been started")
        return self._port

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``, how image references name this registry."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, or ``https://`` with TLS."""
        return f"{'https' if self._tls else 'http'}://{self.host}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context that trusts :attr:`ca_file` (``None`` for plain HTTP), for ``httpx``'s ``verify``."""
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file is not None else None

    # -- life cycle

    def start(self) -> RegistryServer:
        """Write the config (and htpasswd, certificates), start the process and wait until it answers.

        Returns ``self`` once ``GET /v2/`` answers 200 (401 with accounts),
        at most :data:`READY_TIMEOUT` seconds later.  Raises
        :class:`~sim.errors.ConflictError` if this server runs already or another
        one holds ``root``; :class:`~sim.errors.BackendUnavailableError` without
        the binary; :class:`~sim.errors.RegistryUnavailableError` (with the last
        lines of the log) when the process exits or never answers, after
        killing it: a failed start leaves no process.
        """
        if self.running:
            raise ConflictError(f"the registry server in {self._root} is already running at {self.url}")
        self.stop()  # a process that died on its own: reap it and drop its lock
        binary = shutil.which(BINARY)
        if binary is None:
            raise BackendUnavailableError(f"{BINARY} not found on PATH: install Debian's docker-registry package")
        self._root.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self._lock()
        try:
            tls = self._write_tls()
            if self._settings.accounts:
                write_atomic(self._root / "htpasswd",
                            "".join(_htpasswd_line(a) for a in self._settings.accounts).encode(), mode=0o600)
            write_atomic(self.config_file, _yaml(self._config(tls)).encode(), mode=0o600)
            self._spawn(binary)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; reaps the process. Idempotent."""
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
            raise RegistryConfigError(f"stop timeout must be a number of seconds >= 0, not {timeout!r}")
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def __enter__(self) -> RegistryServer:
        return self if self.running else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        kind = f" mirror of {self.mirror_of}" if self.is_mirror else ""
        return f"<RegistryServer {where}{kind} root={str(self._root)!r}>"

    # -- internals

    def _lock(self) -> None:
        fd = os.open(self._root / "server.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ConflictError(f"another registry server is running in {self._root}") from None
            raise
        self._lock_fd = fd

    def _write_tls(self) -> tuple[Path, Path] | None:
        if not self._tls:
            return None
        ca = self._ca
        if ca is None:
            folder = self._root / "ca"
            # Reused across starts, so clients that trust it keep trusting the restarted server.
            ca = CertificateAuthority.load(folder) if (folder / CA_CERT_NAME).exists() else \
                CertificateAuthority.create(folder)
        return ca.issue(self._root / "tls")

    def _config(self, tls: tuple[Path, Path] | None) -> dict[str, object]:
        http: dict[str, object] = {"addr": f"127.0.0.1:{self._settings.port}", "secret": secrets.token_hex(32)}
        if tls is not None:
            http["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
        config: dict[str, object] = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text", "fields": {"service": "layerlab-registry"}},
            "storage": {"filesystem": {"rootdirectory": str(self.data_dir)},
                        "delete": {"enabled": not self.is_mirror}},
            "http": http,
        }
        if self._settings.accounts:
            config["auth"] = {"htpasswd": {"realm": REALM, "path": str(self._root / "htpasswd")}}
        if self._settings.mirror_of is not None:
            proxy: dict[str, object] = {"remoteurl": self._settings.mirror_of}
            if self._settings.upstream is not None:
                proxy["username"] = self._settings.upstream.username  # the password: environment only
            config["proxy"] = proxy
        return config

    def _environment(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", os.defpath)}
        if self._settings.upstream_ca_file is not None:
            env["SSL_CERT_FILE"] = str(self._settings.upstream_ca_file)
        if self._settings.upstream is not None:
            env["REGISTRY_PROXY_PASSWORD"] = self._settings.upstream.password
        return env

    def _spawn(self, binary: str) -> None:
        fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        with os.fdopen(fd, "ab") as log:
            offset = os.fstat(fd).st_size  # this run's lines start here; earlier runs stay above
            self._proc = subprocess.Popen(
                [binary, "serve", str(self.config_file)], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=self._environment(), cwd=self._root, close_fds=True,
                process_group=0, preexec_fn=functools.partial(_child_setup, os.getpid()))
        try:
            self._port = self._wait_ready(self._proc, offset)
        except _NotReady as exc:
            self.stop(timeout=1.0)
            raise RegistryUnavailableError(self._failure(str(exc), offset)) from None

    def _wait_ready(self, proc: subprocess.Popen[bytes], offset: int) -> int:
        """Poll the log for the bound port, then ``GET /v2/`` until it answers; return the port."""
        deadline = time.monotonic() + READY_TIMEOUT
        port: int | None = None
        last = "no answer"
        verify: ssl.SSLContext | bool = self.ssl_context() or False
        expected = (200, 401) if self._settings.accounts else (200,)
        with httpx.Client(verify=verify, trust_env=False, timeout=1.0) as client:
            while True:
                if proc.poll() is not None:
                    raise _NotReady(f"{BINARY} exited with status {proc.returncode} while starting")
                if port is None:
                    port = self._bound_port(offset)
                if port is not None:
                    scheme = "https" if self._tls else "http"
                    try:
                        status = client.get(f"{scheme}://127.0.0.1:{port}/v2/").status_code
                        if status in expected:
                            return port
                        last = f"GET /v2/ answered {status}"
                    except httpx.HTTPError as exc:
                        last = f"GET /v2/ failed: {exc}"
                if time.monotonic() > deadline:
                    where = f"on port {port}" if port is not None else "(it never logged a listening address)"
                    raise _NotReady(f"{BINARY} did not become ready {where} within {READY_TIMEOUT:g} s: {last}")
                time.sleep(_POLL)

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def _bound_port(self, offset: int) -> int | None:
        found = _LISTENING.search(self._log_since(offset))
        return int(found.group(1)) if found else None

    def _failure(self, reason: str, offset: int) -> str:
        lines = self._log_since(offset).splitlines()
        # A Go panic ends in a goroutine dump; the lines worth showing are the ones above it.
        dump = next((i for i, ln in enumerate(lines) if ln.startswith("goroutine ")), len(lines))
        lines = [ln for ln in lines[:dump] if ln.strip()]
        # The one line that says why (a Go panic, a fatal or error entry) is often above a long stack trace.
        cause = next((ln for ln in lines if ln.startswith(("panic:", "fatal error:"))
                      or "level=fatal" in ln or "level=error" in ln), None)
        tail = "\n".join(lines[-_TAIL_LINES:]) or "(the log is empty)"
        because = f"\ncause: {cause}" if cause else ""
        return f"{reason}{because}\nlast lines of {self.log_file}:\n{tail}"


def serve(root: Path | None, *, mirror_of: str | None, auth: bool, port: int, user: str = "student",
          out: TextIO) -> int:
    """``layerlab registry serve``: run a server until SIGINT or SIGTERM, then stop it; returns 0.

    Without ``root`` the server lives in a temporary folder removed at exit.
    Prints the URL and, with ``auth``, the generated account (``user`` and a
    random password, printed once and kept nowhere in plain text) and the CA
    file clients must trust.  Returns 1 if the registry process dies on its
    own.  Arguments are checked (RegistryConfigError) before anything is made;
    start failures raise as :meth:`RegistryServer.start` does.  Call it from
    the main thread: it blocks SIGINT and SIGTERM in this thread to wait for them.
    """
    if not isinstance(auth, bool):
        raise RegistryConfigError(f"auth must be True or False, not {auth!r}")
    accounts = {user: secrets.token_urlsafe(18)} if auth else None
    _check(mirror_of, accounts, None, None, port)
    where = _check_root(root) if root is not None else None
    made: Path | None = None
    if where is None:
        where = made = Path(tempfile.mkdtemp(prefix="layerlab-registry-"))
    stopping = {signal.SIGINT, signal.SIGTERM}
    # Blocked before the start: a signal during it waits and then stops the server cleanly.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    try:
        with RegistryServer(where, mirror_of=mirror_of, accounts=accounts, port=port) as srv:
            kind = f" (mirror of {srv.mirror_of})" if srv.is_mirror else ""
            out.write(f"registry listening on {srv.url}{kind}\n  root: {srv.root}\n")
            if accounts is not None:
                out.write(f"  user: {user}\n  password: {accounts[user]}   (shown once; only its bcrypt hash is kept)\n"
                          f"  CA certificate for clients: {srv.ca_file}\n")
            out.write("Press Ctrl-C to stop.\n")
            out.flush()
            while signal.sigtimedwait(stopping, 0.5) is None:
                if not srv.running:
                    out.write(f"the registry process exited; see {srv.log_file}\n")
                    out.flush()
                    return 1
            out.write("stopping the registry\n")
            out.flush()
        return 0
    finally:
        while signal.sigtimedwait(stopping, 0) is not None:
            pass  # a second Ctrl-C while stopping must not surface as KeyboardInterrupt afterwards
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)

"""Which registry a reference's host means: the engine's registry settings and their resolver.

:class:`RegistryConfig` holds what Docker keeps in ``daemon.json`` and its
config folder: ``registry-mirrors`` (tried first, for Docker Hub pulls only,
as Docker does), endpoints (this project's way to say where a host really is:
``{"docker.io": "http://127.0.0.1:5000"}`` is the offline setup), the model
registries a notebook made (engines given the same object share them), and the
folder with ``config.json`` (logins) and ``certs.d/<host>/ca.crt`` (trusted
CAs, as ``/etc/docker/certs.d``).

:class:`Registries` turns a host into a session.  ``docker.io`` is the model
hub (seeded with the base images) unless an endpoint maps it elsewhere; a
model registry is found by its name; a loopback host (``localhost:5000``,
``127.0.0.1:5000``) is a real server reached over HTTP, or HTTPS when
``certs.d`` holds its CA.  Any other host is refused: this project talks to no
registry beyond this machine.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sim.digest import Digest
from sim.errors import BackendUnavailableError, RegistryConfigError
from sim.images._durable import atomic_write
from sim.images.reference import DEFAULT_DOMAIN
from sim.registries.api import RegistryClient
from sim.registries.auth import Credentials, CredentialStore
from sim.registries.model import ModelRegistry

__all__ = ["RegistryConfig", "Registries", "is_loopback_host", "check_registry_url", "http_client", "HTTP_TRANSPORT"]

#: Where the client for real servers lives: imported on first use, as sim.backends does with
#: engines, so the model never needs httpx's TLS stack or the real backend.
HTTP_TRANSPORT = ("realrt.registries.client", "HttpRegistry")


def http_client(url: str, **options: Any) -> RegistryClient:
    """A session with the real server at ``url`` (see :class:`realrt.registries.client.HttpRegistry`)."""
    module_name, factory = HTTP_TRANSPORT
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailableError(f"talking to {url} needs the 'real' extra (pip install 'layerlab[real]'): {exc}") from exc
    client: RegistryClient = getattr(module, factory)(check_registry_url(url), **options)
    return client


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (``name[:port]``, ``[v6]:port``) names this machine."""
    name = host
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_registry_url(url: str) -> str:
    """``url`` if it is ``http(s)://<loopback host>[:port]`` with nothing after it; else a typed error."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/") or parts.query:
        raise RegistryConfigError(f"{url!r} is not a registry URL (http[s]://host[:port])")
    if not is_loopback_host(parts.netloc):
        raise RegistryConfigError(f"{url!r}: layerlab talks only to registries on this machine (a loopback address)")
    return url.rstrip("/")


@dataclass(frozen=True)
class RegistryConfig:
    """An engine's registry settings (see the module docstring); validated when made."""

    mirrors: tuple[str, ...] = ()  # URLs or model registry names, for docker.io pulls
    endpoints: Mapping[str, str] = field(default_factory=dict)  # host -> URL or model registry name
    models: tuple[ModelRegistry, ...] = ()
    config_dir: Path | None = None  # config.json and certs.d; None: logins kept in memory

    def __post_init__(self) -> None:
        object.__setattr__(self, "mirrors", tuple(self.mirrors))
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "endpoints", dict(self.endpoints))
        names = {m.name for m in self.models}
        for value in (*self.mirrors, *self.endpoints.values()):
            if not isinstance(value, str):
                raise RegistryConfigError(f"a mirror or endpoint is a URL or a model registry's name, not {value!r}")
            if "://" in value:
                check_registry_url(value)
            elif value not in names:
                raise RegistryConfigError(f"{value!r} is neither a registry URL nor one of the model registries {sorted(names)}")

    @classmethod
    def load(cls, config_dir: str | os.PathLike[str], *, models: Sequence[ModelRegistry] = ()) -> RegistryConfig:
        """Read ``daemon.json`` in ``config_dir`` (``registry-mirrors``, ``registry-endpoints``) if there is one."""
        folder = Path(config_dir)
        doc: object = {}
        try:
            doc = json.loads((folder / "daemon.json").read_bytes())
        except FileNotFoundError:
            pass
        except ValueError as exc:
            raise RegistryConfigError(f"{folder / 'daemon.json'} is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise RegistryConfigError(f"{folder / 'daemon.json'} must hold a JSON object")
        mirrors, endpoints = doc.get("registry-mirrors", []), doc.get("registry-endpoints", {})
        if not isinstance(mirrors, list) or not isinstance(endpoints, dict):
            raise RegistryConfigError("daemon.json: registry-mirrors is a list, registry-endpoints an object")
        return cls(tuple(mirrors), endpoints, tuple(models), folder)


class Registries:
    """The sessions an engine opens, by host; the logins it keeps; where each blob was seen.

    ``hub``: makes the model Docker Hub the first time it is needed (``seed``
    fills it with the base images).  ``root``: a folder for the hub and for
    the record of which repositories hold which blobs (what makes a later
    push mount instead of upload), so both outlive the process.
    """

    def __init__(self, config: RegistryConfig | None = None, *, root: Path | None = None,
                 seed: Callable[[ModelRegistry], None] | None = None) -> None:
        self.config = config or RegistryConfig()
        self._root = root
        self._seed = seed
        self._models: dict[str, ModelRegistry] = {m.name: m for m in self.config.models}
        self._memory_logins: dict[str, Credentials] = {}
        self._lock = threading.Lock()
        self._sources: dict[str, dict[str, list[str]]] = {}  # host -> digest -> repositories
        if root is not None and (root / "sources.json").exists():
            self._sources = json.loads((root / "sources.json").read_bytes())

    # -- model registries

    @property
    def hub(self) -> ModelRegistry:
        """The model ``docker.io`` (made and seeded on first use)."""
        with self._lock:
            hub = self._models.get(DEFAULT_DOMAIN)
            if hub is None:
                hub = ModelRegistry(DEFAULT_DOMAIN, root=self._root / DEFAULT_DOMAIN if self._root else None)
                if self._seed is not None and not hub.repositories():
                    self._seed(hub)
                self._models[DEFAULT_DOMAIN] = hub
            return hub

    def add(self, registry: ModelRegistry) -> ModelRegistry:
        """Make a model registry reachable by its name (``localhost:5000/app`` then means it)."""
        with self._lock:
            if registry.name in self._models and self._models[registry.name] is not registry:
                raise RegistryConfigError(f"a different registry is already named {registry.name}")
            self._models[registry.name] = registry
        return registry

    def model(self, name: str) -> ModelRegistry | None:
        if name == DEFAULT_DOMAIN and name not in self.config.endpoints:
            return self.hub
        return self._models.get(name)

    # -- logins (docker login / logout)

    @property
    def credential_store(self) -> CredentialStore | None:
        return CredentialStore(self.config.config_dir / "config.json") if self.config.config_dir else None

    def credentials(self, host: str) -> Credentials | None:
        store = self.credential_store
        return store.get(host) if store is not None else self._memory_logins.get(host)

    def save_login(self, host: str, credentials: Credentials) -> None:
        store = self.credential_store
        if store is not None:
            store.save(host, credentials)
        else:
            self._memory_logins[host] = credentials

    def forget_login(self, host: str) -> bool:
        store = self.credential_store
        if store is not None:
            return store.remove(host)
        return self._memory_logins.pop(host, None) is not None

    # -- sessions

    def _open(self, target: str, host: str, credentials: Credentials | None, *, kind: str = "registry") -> RegistryClient:
        if "://" in target:
            ca = self.config.config_dir / "certs.d" / host / "ca.crt" if self.config.config_dir else None
            return http_client(target, name=host, credentials=credentials,
                               ca_file=ca if ca is not None and ca.exists() else None, kind=kind)
        model = self.model(target)
        if model is None:
            raise RegistryConfigError(f"no model registry is named {target!r}")
        return model.client(credentials)

    def _target(self, host: str) -> str:
        if host in self.config.endpoints:
            return self.config.endpoints[host]
        if host == DEFAULT_DOMAIN or host in self._models:
            return host
        if is_loopback_host(host):
            ca = self.config.config_dir / "certs.d" / host / "ca.crt" if self.config.config_dir else None
            return f"{'https' if ca is not None and ca.exists() else 'http'}://{host}"
        raise RegistryConfigError(
            f"no route to registry {host}: layerlab reaches only the model registries and servers on this machine "
            "(map the host to one in the engine's registry endpoints)")

    def client(self, host: str, credentials: Credentials | None = None) -> RegistryClient:
        """A session with ``host`` (a push, a login, a search), with the saved login unless one is given."""
        return self._open(self._target(host), host, credentials or self.credentials(host))

    def pull_clients(self, host: str) -> list[RegistryClient]:
        """Where a pull from ``host`` asks, in order: the mirrors (Docker Hub only), then the registry itself."""
        clients = []
        if host == DEFAULT_DOMAIN:
            clients = [self._open(m, m.split("://")[-1], None, kind="mirror") for m in self.config.mirrors]
        return [*clients, self.client(host)]

    # -- where blobs were seen (for cross-repository mounts)

    def remember(self, host: str, repository: str, digests: Sequence[Digest]) -> None:
        with self._lock:
            seen = self._sources.setdefault(host, {})
            for digest in digests:
                repos = seen.setdefault(str(digest), [])
                if repository not in repos:
                    repos.append(repository)
            if self._root is not None:
                self._root.mkdir(parents=True, exist_ok=True)
                atomic_write(self._root / "sources.json", json.dumps(self._sources, sort_keys=True).encode())

    def sources(self, host: str, digests: Sequence[Digest]) -> dict[Digest, list[str]]:
        """The repositories of ``host`` each blob was pushed to or pulled from."""
        seen = self._sources.get(host, {})
        return {d: list(seen.get(str(d), [])) for d in digests}

"""The engine's registry commands: ``pull``, ``push``, ``login``, ``logout``, ``search``.

Both backends share them (the image store is the same format in both); what
differs is only where a host leads, which :class:`~sim.registries.config.Registries`
decides.  Docker's behaviour kept here: ``docker.io`` pulls try each mirror
first and fall back to the hub when a mirror is down or lacks the image; a
push goes to the registry itself, never a mirror; a login is checked against
the registry before it is saved.
"""

from __future__ import annotations

from sim.errors import ImageNotFoundError, InvalidReferenceError, RegistryError, RegistryUnavailableError
from sim.images._sha256 import as_sha256
from sim.images.oci import Platform
from sim.images.reference import DEFAULT_DOMAIN, DEFAULT_TAG, Reference, parse_reference
from sim.images.store import ImageStore
from sim.registries.api import RegistryClient
from sim.registries.auth import Credentials
from sim.registries.config import Registries
from sim.registries.model import ModelRegistry
from sim.registries.progress import TransferProgress
from sim.registries.transfer import PullResult, PushResult, pull, push

__all__ = ["RegistryCommands", "seed_hub", "registry_host"]


def seed_hub(hub: ModelRegistry) -> None:
    """Fill a model Docker Hub with the project's base image (``library/busybox:latest``)."""
    from sim.containers._images import base_image_config
    from sim.images.base import busybox_layer

    store = ImageStore()
    layer = busybox_layer()
    record = store.add([layer], base_image_config(layer), tags=["busybox:latest"])
    push(store, record, hub.client(), "library/busybox", DEFAULT_TAG)


def registry_host(server: str | None) -> str:
    """``docker login [SERVER]``'s host: Docker Hub when none is given; a URL's host:port."""
    if not server:
        return DEFAULT_DOMAIN
    host = server.split("://", 1)[-1].rstrip("/")
    if not host or "/" in host:
        raise InvalidReferenceError(f"{server!r} is not a registry host[:port]")
    return DEFAULT_DOMAIN if host in ("index.docker.io", "registry-1.docker.io") else host


class RegistryCommands:
    """Mixed into :class:`~sim.containers.core.EngineCore`: needs ``store`` and ``registries``."""

    store: ImageStore
    registries: Registries

    def pull(self, ref: str, *, platform: Platform | None = None, progress: TransferProgress | None = None) -> PullResult:
        """``docker pull REF``: by tag (``latest`` when none) or digest; tags the image when a tag was named."""
        reference = parse_reference(ref)
        wanted = reference.digest or reference.tag or DEFAULT_TAG
        tags = [str(reference)] if reference.digest is None else []
        *mirrors, registry = self.registries.pull_clients(reference.domain)

        def pull_from(client: RegistryClient) -> PullResult:
            with client:
                return pull(self.store, client, reference.path, wanted, tags=tags, platform=platform, progress=progress)

        for mirror in mirrors:
            try:
                result = pull_from(mirror)
                break
            except (RegistryUnavailableError, ImageNotFoundError):
                continue  # a mirror that is down or lacks the image is skipped, as Docker does
        else:
            result = pull_from(registry)
        self.registries.remember(reference.domain, reference.path, [b.digest for b in result.blobs])
        return result

    def push(self, ref: str, *, chunk_size: int | None = None, progress: TransferProgress | None = None) -> PushResult:
        """``docker push REF``: the image tagged ``REF`` to its registry (``latest`` when no tag is named)."""
        reference = parse_reference(ref)
        if reference.digest is not None:
            raise InvalidReferenceError("cannot push a digest reference: push a tag")
        record = self.store.resolve(str(reference))
        digests = [as_sha256(record.manifest.config.digest), *(as_sha256(d.digest) for d in record.manifest.layers)]
        sources = self.registries.sources(reference.domain, digests)
        with self.registries.client(reference.domain) as client:
            result = push(self.store, record, client, reference.path, reference.tag or DEFAULT_TAG,
                          mount_from=sources, chunk_size=chunk_size, progress=progress)
        self.registries.remember(reference.domain, reference.path, [b.digest for b in result.blobs])
        return result

    def login(self, server: str | None, username: str, password: str) -> str:
        """``docker login``: check the credentials against the registry, then keep them (0600)."""
        host = registry_host(server)
        credentials = Credentials(username, password)
        with self.registries.client(host, credentials) as client:
            client.ping()
        self.registries.save_login(host, credentials)
        return "Login Succeeded"

    def logout(self, server: str | None = None) -> bool:
        """``docker logout``: forget the saved login; ``False`` when there was none."""
        return self.registries.forget_login(registry_host(server))

    def search(self, term: str = "", *, server: str | None = None) -> list[str]:
        """The registry's catalog (``GET /v2/_catalog``), the repositories whose name contains ``term``."""
        host = registry_host(server)
        with self.registries.client(host) as client:
            try:
                names = client.catalog()
            except RegistryError as exc:
                raise RegistryError(f"{host} does not list its repositories: {exc}", code=exc.code, status=exc.status) from exc
        return [n for n in names if term in n]

    def registry_tags(self, repository: str) -> list[str]:
        """Every tag of a repository in its registry (``GET /v2/<name>/tags/list``, all pages)."""
        reference: Reference = parse_reference(repository, default_tag=None)
        with self.registries.client(reference.domain) as client:
            return client.tags(reference.path)

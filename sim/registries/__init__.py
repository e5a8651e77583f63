"""仓库 (registries): repositories, tags, manifests and blobs by digest; push, pull and mirrors.

A registry holds repositories; a repository holds tags, and a tag names one
manifest (``<repository>:<tag>``, ``latest`` when no tag is given).
:class:`RegistryClient` is the distribution API, one method per call; the
model's :class:`ModelRegistry` and :class:`ModelMirror` implement it, and so
does the HTTP client for real servers (:mod:`realrt.registries`).
:func:`push` and :func:`pull` are written once over that interface.
"""

from __future__ import annotations

from sim.registries.api import BlobReader, ManifestResponse, RegistryClient
from sim.registries.auth import Credentials, CredentialStore
from sim.registries.model import ModelMirror, ModelRegistry, RegistryStats, Repository
from sim.registries.transfer import BlobTransfer, PullResult, PushResult, pull, push

__all__ = [
    "RegistryClient", "BlobReader", "ManifestResponse",
    "ModelRegistry", "ModelMirror", "RegistryStats", "Repository",
    "Credentials", "CredentialStore",
    "push", "pull", "PushResult", "PullResult", "BlobTransfer",
]

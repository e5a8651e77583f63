"""仓库 on the real machine: Debian's ``docker-registry`` on 127.0.0.1 and an httpx client for it.

:class:`RegistryServer` runs the CNCF distribution registry with a generated
config (a private registry, htpasswd logins over TLS with a generated
:class:`CertificateAuthority`, or a pull-through mirror); :class:`HttpRegistry`
speaks the distribution HTTP API and implements
:class:`sim.registries.api.RegistryClient`, so the model's push and pull run
against it unchanged.
"""

from __future__ import annotations

from realrt.registries._certs import CertificateAuthority
from realrt.registries.client import HttpRegistry
from realrt.registries.server import RegistryServer, serve

__all__ = ["RegistryServer", "CertificateAuthority", "HttpRegistry", "serve"]

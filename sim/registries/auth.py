"""Registry credentials and where ``login`` keeps them: a Docker-style ``config.json``.

The file has Docker's shape, ``{"auths": {"<host>": {"auth": base64("user:password")}}}``
(Docker Hub under its historical key ``https://index.docker.io/v1/``), so a user's
Docker tools and this project read each other's logins.  It is written
atomically with mode 0600, keys it does not know are kept, and no function
here prints or logs a password: :class:`Credentials` hides it from ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import RegistryConfigError

__all__ = ["Credentials", "CredentialStore", "HUB_HOST", "HUB_CONFIG_KEY", "config_key"]

#: How references name Docker Hub, and the key Docker's config.json keeps its login under.
HUB_HOST = "docker.io"
HUB_CONFIG_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Credentials:
    """A username and password (or token); ``repr`` never shows the password."""

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.username or ":" in self.username:
            raise RegistryConfigError("a registry username must be non-empty and contain no ':'")
        if not self.password:
            raise RegistryConfigError("a registry password must not be empty")


def config_key(host: str) -> str:
    """The ``auths`` key Docker uses for ``host``."""
    return HUB_CONFIG_KEY if host in (HUB_HOST, "index.docker.io", "registry-1.docker.io") else host


class CredentialStore:
    """``config.json`` at ``path``: ``get``/``save``/``remove`` one host's login."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise RegistryConfigError(f"{self.path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise RegistryConfigError(f"{self.path} must hold a JSON object")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        # 0600 from the first byte: the file is never readable by others, not even briefly
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(data, indent="\t", sort_keys=True).encode() + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            os.unlink(tmp)
            raise
        os.rename(tmp, self.path)

    def get(self, host: str) -> Credentials | None:
        """The login saved for ``host``, or ``None``."""
        entry = self._read().get("auths", {}).get(config_key(host))
        if not isinstance(entry, dict) or not isinstance(entry.get("auth"), str):
            return None
        try:
            user, _, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise RegistryConfigError(f"{self.path}: the saved login for {host} is not base64 'user:password'") from exc
        return Credentials(user, password) if user and password else None

    def save(self, host: str, credentials: Credentials) -> None:
        data = self._read()
        auths = data.setdefault("auths", {})
        if not isinstance(auths, dict):
            raise RegistryConfigError(f"{self.path}: 'auths' must be an object")
        token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
        auths[config_key(host)] = {"auth": token}
        self._write(data)

    def remove(self, host: str) -> bool:
        """Forget ``host``'s login; ``False`` if there was none."""
        data = self._read()
        auths = data.get("auths")
        if not isinstance(auths, dict) or config_key(host) not in auths:
            return False
        del auths[config_key(host)]
        self._write(data)
        return True

    def hosts(self) -> list[str]:
        auths = self._read().get("auths")
        return sorted(auths) if isinstance(auths, dict) else []

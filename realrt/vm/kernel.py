"""The VMs' kernel (内核): Debian's cloud kernel, downloaded as a package and unpacked, never installed.

:func:`fetch_kernel` puts ``vmlinuz-<version>`` in :func:`default_cache_dir` (shared and
world-readable: ``./dev`` runs it as root, ``python -m realrt.vm fetch``);
:func:`find_kernel` finds the newest one there.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import BackendUnavailableError

__all__ = ["Kernel", "find_kernel", "fetch_kernel", "default_cache_dir", "CLOUD_KERNEL_PACKAGE"]

#: Debian's metapackage that depends on the current cloud kernel image package.
CLOUD_KERNEL_PACKAGE = "linux-image-cloud-amd64"

_DEFAULT_CACHE = "/var/cache/layerlab/vm"
_FETCH_HINT = "run ./dev as root once (or, as root: python -m realrt.vm fetch)"


def default_cache_dir() -> Path:
    """``$LAYERLAB_VM_CACHE``, else ``/var/cache/layerlab/vm``: where the unpacked kernel lives."""
    return Path(os.environ.get("LAYERLAB_VM_CACHE") or _DEFAULT_CACHE)


@dataclass(frozen=True)
class Kernel:
    """An unpacked kernel image: ``path`` (``vmlinuz-<version>``) and the package's ``version``."""

    path: Path
    version: str


def _version_key(version: str) -> list[tuple[int, object]]:
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", version) if p]


def find_kernel(cache_dir: str | os.PathLike[str] | None = None) -> Kernel:
    """The newest ``vmlinuz-*`` in the cache; :class:`BackendUnavailableError` saying how to
    fetch it when there is none, or when this user cannot read it."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        names = [n for n in os.listdir(cache) if n.startswith("vmlinuz-") and len(n) > 8]
    except OSError:
        names = []
    if not names:
        raise BackendUnavailableError(f"no VM kernel in {cache}: {_FETCH_HINT}")
    name = max(names, key=lambda n: _version_key(n[8:]))
    path = cache / name
    if not os.access(path, os.R_OK):
        raise BackendUnavailableError(f"{path} is not readable by this user (Debian ships kernels 0600); "
                                      f"{_FETCH_HINT}, which makes it 0644")
    return Kernel(path, name[8:])


def _run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=600, **kwargs)
    except subprocess.CalledProcessError as exc:
        raise BackendUnavailableError(f"{' '.join(argv)} failed ({exc.returncode}): "
                                      f"{(exc.stderr or exc.stdout or '').strip()[-500:]}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendUnavailableError(f"{' '.join(argv)} failed: {exc}") from exc


def _versioned_package(meta: str) -> str | None:
    """``linux-image-<abi>-cloud-amd64``, the package ``meta`` depends on, per ``apt-cache``."""
    try:
        out = subprocess.run(["apt-cache", "depends", meta], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.findall(r"^\s*Depends:\s*(linux-image-\S+-cloud-amd64)\s*$", out, re.MULTILINE)
    return found[0] if found else None


def fetch_kernel(cache_dir: str | os.PathLike[str] | None = None, *, package: str | None = None) -> Kernel:
    """Download the cloud kernel package into the cache, unpack it, keep only ``vmlinuz-*``
    (made 0644, so every user can boot it) and return it.  Idempotent: with a kernel already in
    the cache this only returns it.  Runs ``apt-get update`` only when ``apt-cache`` does not
    know the package.  Needs ``apt-get`` and ``dpkg-deb``, and root to update the package lists
    or write the default cache; :class:`BackendUnavailableError` otherwise."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        return find_kernel(cache)
    except BackendUnavailableError:
        pass
    if platform.machine() not in ("x86_64", "amd64"):
        raise BackendUnavailableError(f"the cloud kernel package is for amd64; this host is {platform.machine()}")
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise BackendUnavailableError(f"fetching the VM kernel needs {tool} (a Debian host)")
    name = package or _versioned_package(CLOUD_KERNEL_PACKAGE)
    if name is None and os.geteuid() == 0:
        _run(["apt-get", "update", "-qq"])  # fresh machines ship without package lists
        name = _versioned_package(CLOUD_KERNEL_PACKAGE)
    if name is None:
        raise BackendUnavailableError(f"apt-cache knows no {CLOUD_KERNEL_PACKAGE}; {_FETCH_HINT}")
    cache.mkdir(parents=True, exist_ok=True)
    os.chmod(cache, 0o755)  # the unprivileged test user boots the same kernel
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        os.chmod(tmp, 0o755)
        if os.geteuid() == 0:
            try:  # apt downloads as its sandbox user, which must be able to write here
                shutil.chown(tmp, user="_apt")
            except (LookupError, OSError):
                pass
        _run(["apt-get", "download", "-q", name], cwd=tmp)
        debs = sorted(Path(tmp).glob("*.deb"))
        if len(debs) != 1:
            raise BackendUnavailableError(f"apt-get download {name} gave {[d.name for d in debs]}, not one package")
        unpacked = Path(tmp) / "root"
        _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)])
        images = sorted((unpacked / "boot").glob("vmlinuz-*"))
        if len(images) != 1:
            raise BackendUnavailableError(f"{debs[0].name} holds {[i.name for i in images]}, not one boot/vmlinuz-*")
        staged = cache / f".{images[0].name}.tmp"
        shutil.copyfile(images[0], staged)
        os.chmod(staged, 0o644)  # Debian ships it 0600
        os.replace(staged, cache / images[0].name)
    return find_kernel(cache)

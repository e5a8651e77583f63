"""The VMs' kernel (内核): Debian's cloud kernel, downloaded as a package and unpacked, never installed.

:func:`fetch_kernel` puts ``vmlinuz-<version>`` in :func:`default_cache_dir` (shared and
world-readable: ``./dev`` runs it as root, ``python -m realrt.vm fetch``);
:func:`find_kernel` finds the newest one there.  :func:`fetch_share_kernel` /
:func:`find_share_kernel` do the same for the guest that mounts the host's root over virtio-9p
(:mod:`realrt.vm.limits`): Debian's generic kernel and a few of its modules, in ``share/``.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from realrt.vm._modules import load_order, module_name
from sim.errors import BackendUnavailableError

__all__ = ["Kernel", "find_kernel", "fetch_kernel", "find_share_kernel", "fetch_share_kernel", "default_cache_dir",
           "CLOUD_KERNEL_PACKAGE", "SHARE_KERNEL_PACKAGE", "SHARE_MODULES"]

#: Debian's metapackage that depends on the current cloud kernel image package.
CLOUD_KERNEL_PACKAGE = "linux-image-cloud-amd64"
#: Debian's metapackage of the generic kernel: built with virtio-9p, which the cloud kernel is not.
SHARE_KERNEL_PACKAGE = "linux-image-amd64"
#: What a guest that mounts the host's root loads (the rest of what they need comes with them):
#: the PCI transport of virtio, the 9p file system over it, overlayfs for the containers' roots.
SHARE_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
#: The cache's subfolder for that kernel and its modules, and the modules folder's load-order file.
SHARE_DIR = "share"
MODULE_ORDER = "order"

_DEFAULT_CACHE = "/var/cache/layerlab/vm"
_FETCH_HINT = "run ./dev as root once (or, as root: python -m realrt.vm fetch)"


def default_cache_dir() -> Path:
    """``$LAYERLAB_VM_CACHE``, else ``/var/cache/layerlab/vm``: where the unpacked kernel lives."""
    return Path(os.environ.get("LAYERLAB_VM_CACHE") or _DEFAULT_CACHE)


@dataclass(frozen=True)
class Kernel:
    """An unpacked kernel image: ``path`` (``vmlinuz-<version>``) and the package's ``version``;
    ``modules``: the folder of the ``.ko`` files kept with it (see :func:`fetch_share_kernel`),
    None for a kernel that boots without any."""

    path: Path
    version: str
    modules: Path | None = None


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


def _check_fetch_tools() -> None:
    if platform.machine() not in ("x86_64", "amd64"):
        raise BackendUnavailableError(f"the kernel packages are for amd64; this host is {platform.machine()}")
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise BackendUnavailableError(f"fetching the VM kernel needs {tool} (a Debian host)")


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
    _check_fetch_tools()
    name = package or _versioned_package(CLOUD_KERNEL_PACKAGE)
    if name is None and os.geteuid() == 0:
        _run(["apt-get", "update", "-qq"])  # fresh machines ship without package lists
        name = _versioned_package(CLOUD_KERNEL_PACKAGE)
    if name is None:
        raise BackendUnavailableError(f"apt-cache knows no {CLOUD_KERNEL_PACKAGE}; {_FETCH_HINT}")
    cache.mkdir(parents=True, exist_ok=True)
    os.chmod(cache, 0o755)  # the unprivileged test user boots the same kernel
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        image = _unpack(name, Path(tmp))
        staged = cache / f".{image.name}.tmp"
        shutil.copyfile(image, staged)
        os.chmod(staged, 0o644)  # Debian ships it 0600
        os.replace(staged, cache / image.name)
    return find_kernel(cache)


def _unpack(name: str, tmp: Path) -> Path:
    """``apt-get download`` the package ``name`` into ``tmp``, ``dpkg-deb -x`` it into
    ``tmp/root`` and return its one ``boot/vmlinuz-*``."""
    os.chmod(tmp, 0o755)
    if os.geteuid() == 0:
        try:  # apt downloads as its sandbox user, which must be able to write here
            shutil.chown(tmp, user="_apt")
        except (LookupError, OSError):
            pass
    _run(["apt-get", "download", "-q", name], cwd=tmp)
    debs = sorted(tmp.glob("*.deb"))
    if len(debs) != 1:
        raise BackendUnavailableError(f"apt-get download {name} gave {[d.name for d in debs]}, not one package")
    unpacked = tmp / "root"
    _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)])
    images = sorted((unpacked / "boot").glob("vmlinuz-*"))
    if len(images) != 1:
        raise BackendUnavailableError(f"{debs[0].name} holds {[i.name for i in images]}, not one boot/vmlinuz-*")
    return images[0]


# -- the kernel that mounts the host's root over virtio-9p --------------------------------------------


def find_share_kernel(cache_dir: str | os.PathLike[str] | None = None) -> Kernel:
    """The newest kernel in ``<cache>/share/`` whose modules folder is complete (it holds the
    load order :func:`fetch_share_kernel` writes last); :class:`BackendUnavailableError` saying
    how to fetch it when there is none, or when this user cannot read it."""
    folder = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / SHARE_DIR
    try:
        versions = [n[8:] for n in os.listdir(folder) if n.startswith("vmlinuz-") and len(n) > 8
                    and (folder / f"modules-{n[8:]}" / MODULE_ORDER).is_file()]
    except OSError:
        versions = []
    if not versions:
        raise BackendUnavailableError(f"no VM kernel with the virtio-9p modules in {folder}: {_FETCH_HINT}")
    version = max(versions, key=_version_key)
    path = folder / f"vmlinuz-{version}"
    if not os.access(path, os.R_OK):
        raise BackendUnavailableError(f"{path} is not readable by this user; {_FETCH_HINT}, which makes it 0644")
    return Kernel(path, version, folder / f"modules-{version}")


def _share_package() -> str | None:
    """Debian's generic kernel of the cloud kernel's ABI when apt knows it (the same sources,
    built with 9p), else the one :data:`SHARE_KERNEL_PACKAGE` depends on now."""
    cloud = _versioned_package(CLOUD_KERNEL_PACKAGE)
    if cloud is not None:
        generic = cloud.replace("-cloud-amd64", "-amd64")
        try:
            known = subprocess.run(["apt-cache", "show", "--no-all-versions", generic], capture_output=True,
                                   text=True, timeout=60).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            known = False
        if known:
            return generic
    return _versioned_package(SHARE_KERNEL_PACKAGE)


def fetch_share_kernel(cache_dir: str | os.PathLike[str] | None = None, *, package: str | None = None) -> Kernel:
    """The kernel a guest mounts the host's root with (virtio-9p): Debian's generic
    ``linux-image-<abi>-amd64``, since the cloud kernel is built without 9p
    (``# CONFIG_NET_9P is not set``).  Downloaded and unpacked like :func:`fetch_kernel`; kept:
    ``<cache>/share/vmlinuz-<version>`` and, in ``modules-<version>/``, the ``.ko`` files of
    :data:`SHARE_MODULES` and everything they depend on (read from each module's ``.modinfo``:
    the package has no ``modules.dep``), with ``order``: their names, one a line, in the order
    to ``insmod`` them.  Idempotent: with a complete kernel in the cache it only returns it.
    Needs ``apt-get`` and ``dpkg-deb`` (and root to update the package lists or write the
    default cache); :class:`BackendUnavailableError` otherwise."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        return find_share_kernel(cache)
    except BackendUnavailableError:
        pass
    _check_fetch_tools()
    name = package or _share_package()
    if name is None and os.geteuid() == 0:
        _run(["apt-get", "update", "-qq"])
        name = _share_package()
    if name is None:
        raise BackendUnavailableError(f"apt-cache knows no {SHARE_KERNEL_PACKAGE}; {_FETCH_HINT}")
    folder = cache / SHARE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(cache, 0o755)
    os.chmod(folder, 0o755)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".fetch-") as tmp:
        image = _unpack(name, Path(tmp))
        version = image.name[8:]
        tree = Path(tmp) / "root" / "lib" / "modules" / version / "kernel"
        found = {module_name(p.name): p for p in sorted(tree.rglob("*.ko"))}
        order = load_order(_LazyBytes(found), SHARE_MODULES)
        staged = Path(tmp) / f"modules-{version}"
        staged.mkdir(mode=0o755)
        for name_ in order:
            shutil.copyfile(found[name_], staged / f"{name_}.ko")
            os.chmod(staged / f"{name_}.ko", 0o644)
        (staged / MODULE_ORDER).write_text("".join(f"{m}\n" for m in order))
        os.chmod(staged / MODULE_ORDER, 0o644)
        modules = folder / f"modules-{version}"
        shutil.rmtree(modules, ignore_errors=True)  # an earlier fetch killed before its order file
        os.replace(staged, modules)
        staged_image = folder / f".{image.name}.tmp"
        shutil.copyfile(image, staged_image)
        os.chmod(staged_image, 0o644)
        os.replace(staged_image, folder / image.name)
    return find_share_kernel(cache)


class _LazyBytes(Mapping[str, bytes]):
    """Module name -> the ``.ko`` bytes, read when asked: a kernel package holds ~4,000 modules
    and :func:`load_order` reads only the few it needs."""

    def __init__(self, paths: Mapping[str, Path]) -> None:
        self._paths = paths

    def __getitem__(self, name: str) -> bytes:
        return self._paths[name].read_bytes()

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

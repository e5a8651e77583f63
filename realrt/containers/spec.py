"""What a container runs and how (容器规格): :class:`ContainerSpec` and its :class:`BindMount` values.

Every field is checked here, when the spec is made, so nothing invalid reaches the fork;
:mod:`realrt.containers.runtime` runs a spec (and re-exports these names).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from sim.containers.limits import Limits

__all__ = ["BindMount", "ContainerSpec", "DEFAULT_PATH"]

#: ``PATH`` when the spec's environment sets none (Docker's default).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _no_nul(value: str, what: str) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError(f"{what} must be a string without NUL bytes, got {value!r}")
    return value


def _container_path(path: str, what: str) -> str:
    """A canonical absolute path (``/a/b``): no ``..``, no empty or ``.`` components."""
    _no_nul(path, what)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not path.startswith("/") or ".." in parts:
        raise ValueError(f"{what} {path!r} must be an absolute path without '..'")
    return "/" + "/".join(parts)


@dataclass(frozen=True)
class BindMount:
    """A host folder or file (``source``) seen at ``target`` inside the container (``docker run -v``)."""

    source: str
    target: str
    readonly: bool = False

    def __post_init__(self) -> None:
        source = _no_nul(os.fspath(self.source), "bind source")
        if not os.path.isabs(source):
            raise ValueError(f"bind source {source!r} must be an absolute host path")
        object.__setattr__(self, "source", source)
        target = _container_path(self.target, "bind target")
        if target == "/" or target == "/proc" or target.startswith("/proc/"):
            raise ValueError(f"bind target {target!r} is not allowed (/ and /proc belong to the runtime)")
        object.__setattr__(self, "target", target)


@dataclass(frozen=True)
class ContainerSpec:
    """What to run and how (the runtime part of an OCI ``config.json``).

    ``env`` takes ``"KEY=VALUE"`` strings or a mapping; the process also gets
    ``PATH`` (Docker's default) when unset, ``HOSTNAME``, and ``HOME`` from the
    image's ``/etc/passwd`` (else ``/``).  ``cwd`` is created when missing, as
    Docker does for ``WORKDIR``.  ``network=False`` gives a new network
    namespace holding only ``lo`` (``docker run --network none``);
    ``network=True`` shares the host's (``--network host``); ``netns``, a named
    namespace's path (``/run/netns/...``, made by :mod:`realrt.network`), is joined
    instead of a new one (``--network NAME``; root only).  ``stdin`` is fed to
    the process and then closed; ``None`` reads ``/dev/null``.  ``limits``
    (:class:`sim.containers.limits.Limits`, from :func:`sim.containers.limits.parse_limits`) puts the
    container in a cgroup of its own with those limits (``docker run --memory ...``).
    ``groups`` are the process's supplementary groups (Docker gives the primary gid first, then the
    user's groups in ``/etc/group``); ``()`` clears them.  A rootless container without a subordinate
    range keeps what the kernel leaves it (its namespace may not call ``setgroups``).
    ``seccomp`` loads Docker's default seccomp filter (:mod:`realrt.containers._seccomp`) just before
    the exec; ``False`` runs the process unconfined (``docker run --security-opt seccomp=unconfined``).
    """

    argv: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    hostname: str = "layerlab"
    mounts: tuple[BindMount, ...] = ()
    network: bool = False
    netns: str | None = None
    stdin: bytes | None = None
    limits: Limits | None = None
    groups: tuple[int, ...] = ()
    seccomp: bool = True

    def __post_init__(self) -> None:
        if isinstance(cast(object, self.argv), str):  # the type forbids it; callers pass one all the same
            raise ValueError("argv must be a sequence of strings, not one string (use ('sh', '-c', ...))")
        argv = tuple(_no_nul(a, "argv entry") for a in self.argv)
        if not argv or not argv[0]:
            raise ValueError("argv must name a program")
        object.__setattr__(self, "argv", argv)
        items = self.env.items() if isinstance(self.env, Mapping) else (
            tuple(e.split("=", 1)) if isinstance(e, str) and "=" in e else (e, None) for e in self.env)
        env = []
        for key, value in items:
            if not isinstance(key, str) or not key or "=" in key or value is None:
                raise ValueError(f"environment entries are KEY=VALUE strings; got {key!r}")
            env.append(f"{_no_nul(key, 'env name')}={_no_nul(value, 'env value')}")
        object.__setattr__(self, "env", tuple(env))
        object.__setattr__(self, "cwd", _container_path(self.cwd, "cwd"))
        for name in ("uid", "gid"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32 - 1:
                raise ValueError(f"{name} must be an integer from 0 to 4294967294, got {value!r}")
        groups = tuple(self.groups)
        if any(not isinstance(g, int) or isinstance(g, bool) or not 0 <= g < 2**32 - 1 for g in groups) \
                or len(groups) > 65536:
            raise ValueError(f"groups must be at most 65536 integers from 0 to 4294967294, got {self.groups!r}")
        object.__setattr__(self, "groups", groups)
        host = _no_nul(self.hostname, "hostname")
        if not host or len(host.encode()) > 64:
            raise ValueError(f"hostname must be 1 to 64 bytes, got {host!r}")
        mounts = tuple(self.mounts)
        if not all(isinstance(m, BindMount) for m in mounts):
            raise ValueError("mounts must be BindMount values")
        targets = [m.target for m in mounts]
        if len(set(targets)) != len(targets):
            raise ValueError(f"duplicate mount target in {targets}")
        object.__setattr__(self, "mounts", mounts)
        if self.netns is not None:
            if self.network:
                raise ValueError("netns names a namespace to join: it cannot go with network=True (the host's)")
            if not isinstance(self.netns, str) or not self.netns.startswith("/run/netns/") or "/.." in self.netns:
                raise ValueError(f"netns must be a path under /run/netns, got {self.netns!r}")
        if self.stdin is not None and not isinstance(self.stdin, (bytes, bytearray)):
            raise ValueError("stdin must be bytes or None")
        if self.limits is not None and not isinstance(self.limits, Limits):
            raise ValueError("limits must be a sim.containers.limits.Limits (see sim.containers.limits.parse_limits) or None")
        if not isinstance(self.seccomp, bool):
            raise ValueError(f"seccomp must be True (Docker's default filter) or False (unconfined), got {self.seccomp!r}")

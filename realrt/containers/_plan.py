"""What the parent and the container's first process share: the :class:`Plan` and the pipes.

The parent prepares everything in the plan (the child must not import or allocate much);
the pipes named in :func:`pipes` carry the parent's "go", the child's stdio and, on the
``err`` pipe, a pickled exception should the set-up fail (EOF at the ``execve``: it is
close-on-exec).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field

from realrt.containers.spec import ContainerSpec
from sim.containers.userns import HOST_MAPS, IdMaps

__all__ = ["Plan", "pipes", "CHILD_ENDS", "PARENT_ENDS", "close_parent_ends", "write_all", "report_and_exit",
           "read_all"]


@dataclass
class Plan:
    """What the child needs, prepared in the parent (the child must not import or allocate much)."""

    rootfs: str
    spec: ContainerSpec
    rootless: bool
    join_pid: int  # rootless: the helper whose user and mount namespaces hold rootfs (0: make our own)
    uid_map: str
    gid_map: str
    capabilities: int
    last_cap: int
    source_kinds: tuple[bool, ...] = ()  # per bind mount: is the source a directory
    id_maps: IdMaps = HOST_MAPS  # the user namespace's maps; "subordinate": the parent writes them (newuidmap)
    seccomp_filter: bytes = b""  # the BPF program loaded just before execve (realrt.containers._seccomp); b"": none
    fds: dict[str, int] = field(default_factory=dict)


def pipes(spec: ContainerSpec) -> dict[str, int]:
    """The pipes between parent and child, by name (``*_r``/``*_w`` ends; ``stdin`` the child's end)."""
    fds: dict[str, int] = {}
    fds["go_r"], fds["go_w"] = os.pipe2(os.O_CLOEXEC)
    fds["err_r"], fds["err_w"] = os.pipe2(os.O_CLOEXEC)
    fds["out_r"], fds["out_w"] = os.pipe2(os.O_CLOEXEC)
    fds["errout_r"], fds["errout_w"] = os.pipe2(os.O_CLOEXEC)
    if spec.stdin is None:
        fds["stdin"] = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    else:
        fds["stdin"], fds["stdin_w"] = os.pipe2(os.O_CLOEXEC)
    return fds


#: The pipe ends the child uses: the parent closes its copies once the child is forked.
CHILD_ENDS = ("go_r", "err_w", "out_w", "errout_w", "stdin", "pid_w")
#: The pipe ends the parent keeps: the child closes its copies first thing.
PARENT_ENDS = ("go_w", "err_r", "out_r", "errout_r", "stdin_w", "pid_r")


def close_parent_ends(fds: dict[str, int]) -> None:  # pragma: no cover - child
    for name in PARENT_ENDS:
        if name in fds:
            os.close(fds[name])


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def report_and_exit(err_fd: int, exc: BaseException) -> None:  # pragma: no cover - child
    try:
        try:
            payload = pickle.dumps(exc)
        except Exception:
            payload = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
        write_all(err_fd, payload)
    finally:
        os._exit(255)


def read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)

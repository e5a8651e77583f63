"""Named network namespaces (``/run/netns/<name>``, where ``ip netns`` keeps them) and entering one.

Every function that needs to be *inside* a namespace runs its body in a short-lived thread that
``setns``\\ es (or ``unshare``\\ s) and then ends: a thread's network namespace is its own, so the
calling thread never changes namespace, even when the body raises; the mount table, the file
descriptors and the memory are the process's, so what the thread made (a bind mount, a socket)
stays usable after it ends.  A socket keeps the namespace it was created in for its whole life.

The namespace file is a bind mount of ``/proc/thread-self/ns/net`` over an empty file.  Unlike
``ip netns add``, :func:`create` does not turn ``/run/netns`` into a shared bind mount of itself:
that mount would outlive every namespace (a change to the host's mount table that no cleanup
undoes), and removing a namespace still works from any mount namespace, since unlinking a mount
point detaches its mounts everywhere (Linux >= 3.18).
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final, TypeVar

from realrt import _syscalls
from sim.errors import ConflictError, InvalidNetworkError, NotFoundError
from sim.network.names import netns_name

__all__ = ["NETNS_DIR", "path_of", "check_own_path", "create", "remove", "run_inside", "open_netns", "host_lock"]

#: Where named network namespaces live (``ip netns list`` reads this folder).
NETNS_DIR: Final = "/run/netns"
_T = TypeVar("_T")
# A namespace stacked under more mounts than this was not made by layerlab: stop unmounting.
_MAX_UNMOUNTS = 16


def path_of(container_id: str) -> str:
    """``/run/netns/ll-<first 12 characters of the id>``: the container's named namespace."""
    return f"{NETNS_DIR}/{netns_name(container_id)}"


def check_own_path(path: object) -> str:
    """Return ``path`` if it names one of layerlab's namespaces (``/run/netns/ll-...``, no other
    folder, no ``..``); else :class:`~sim.errors.InvalidNetworkError`.  Guards every unmount and
    unlink, so a damaged journal record cannot make a sweep unmount anything else."""
    if not isinstance(path, str) or os.path.dirname(path) != NETNS_DIR or not os.path.basename(path).startswith("ll-"):
        raise InvalidNetworkError(f"{path!r} is not one of layerlab's network namespaces ({NETNS_DIR}/ll-...)")
    if "\0" in path or os.path.basename(path) in (".", ".."):
        raise InvalidNetworkError(f"{path!r} is not one of layerlab's network namespaces")
    return path


def open_netns(path: str) -> int:
    """An ``O_RDONLY | O_CLOEXEC`` descriptor of the namespace file ``path`` (any netns file:
    ``/run/netns/X`` or ``/proc/<pid>/ns/net``); :class:`~sim.errors.NotFoundError` if there is none."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFoundError(f"no network namespace at {path}") from None


def run_inside(fd: int, body: Callable[[], _T]) -> _T:
    """Run ``body`` in a thread that first joins the network namespace ``fd`` refers to; return
    what it returns or raise what it raised.  ``setns`` refusing ``fd`` (not a network
    namespace) raises :class:`~sim.errors.InvalidNetworkError`."""

    def inside() -> _T:
        try:
            _syscalls.setns(fd, _syscalls.CLONE_NEWNET)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise InvalidNetworkError("not a network namespace (setns refused it)") from exc
            raise
        return body()

    return _in_thread(inside)


def create(path: str) -> None:
    """Make a new, empty network namespace and keep it at ``path`` (``/run/netns/ll-...``).

    The caller records ``path`` in the journal first.  Refused with
    :class:`~sim.errors.ConflictError` if ``path`` exists already (nothing is changed then).  On
    failure after the file was made, the file is removed again."""
    check_own_path(path)
    os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    except FileExistsError:
        raise ConflictError(f"network namespace {path} exists already") from None

    def bind() -> None:
        _syscalls.unshare(_syscalls.CLONE_NEWNET)
        _syscalls.mount("/proc/thread-self/ns/net", path, None, _syscalls.MS_BIND)

    try:
        _in_thread(bind)
    except BaseException:
        os.unlink(path)
        raise


def remove(path: str) -> None:
    """Unmount and unlink the namespace file ``path``; nothing to do if it is gone.  The
    namespace itself ends once no process is in it and no descriptor refers to it."""
    check_own_path(path)
    for _ in range(_MAX_UNMOUNTS):
        try:
            _syscalls.umount2(path, _syscalls.MNT_DETACH)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOENT):  # not (or no longer) a mount point
                break
            raise
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@contextmanager
def host_lock() -> Iterator[None]:
    """Serialise, across every layerlab process on the host, the steps that decide whether the
    isolation table is still needed (see :mod:`realrt.network._nft`).  The lock is ``flock`` on
    the ``/run/netns`` folder itself: every such process uses that folder anyway, so no lock
    file of its own is left behind."""
    os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
    fd = os.open(NETNS_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _in_thread(body: Callable[[], _T]) -> _T:
    results: list[_T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(body())
        except BaseException as exc:  # handed to the calling thread below
            errors.append(exc)

    worker = threading.Thread(target=run, name="layerlab-netns", daemon=True)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return results[0]

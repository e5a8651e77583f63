"""容器 (container): a process in its own 命名空间 (namespaces) over a prepared root file system.

:func:`start` runs ``spec.argv`` as PID 1 of new PID, mount, UTS, IPC and
network namespaces, with the root directory switched by ``pivot_root`` to
``rootfs`` (an overlay mount point from :class:`~realrt.layers.overlay.KernelUnionFS`),
``/proc``, a minimal ``/dev`` and a read-only ``/sys`` mounted, Docker's masked
and read-only paths applied, every descriptor but 0-2 closed, the user set,
capabilities cut to Docker's default set, ``no_new_privs`` on and Docker's default
seccomp filter loaded (unless ``spec.seccomp`` is False).  The
parent keeps pipes to the process's stdout and stderr.  See ``docs/runtime.md``
for the steps in order and what is left out (AppArmor).  With
``spec.limits`` the container gets a 控制组 (cgroup, :mod:`realrt.containers.cgroups`)
before it creates anything; see ``docs/limits.md``.

Root mode forks once: the calling thread ``unshare(CLONE_NEWPID)``\\ s (which
only changes where *its* next child goes), forks, and restores its own PID
namespace with ``setns``; the child is PID 1 of the new namespace and a
direct child of the caller, who reaps it.  Rootless mode cannot create a PID
namespace before it has a user namespace, so a first child enters (or makes)
the user namespace, unshares the rest and forks PID 1; it waits for it and
exits with its status.

Every container is recorded in the journal as a "process" before any of its
namespaces or mounts exist (the child waits for the parent's "go" after the
record is written), so :meth:`Journal.sweep` kills what a killed run left;
the container's mounts live only in its own mount namespace and vanish with
its last process.

This module is the lifecycle (start, run, and the names importers use); the steps live in
:mod:`realrt.containers.spec` and the private ``_plan``, ``_namespaces``, ``_mounts``,
``_process`` and ``_exec``.
"""

from __future__ import annotations

import errno
import os
import pickle
import signal
import stat
import struct
import threading
import uuid
from typing import Any

from realrt import _idmap, _syscalls
from realrt.containers import _caps, _seccomp, cgroups
from realrt.containers._exec import exec, join_namespaces, open_namespaces
from realrt.containers._mounts import DEVICES, MASKED_PATHS, READONLY_PATHS
from realrt.containers._namespaces import container_main, fork_child, fork_in_pid_ns, rootless_main
from realrt.containers._plan import CHILD_ENDS, Plan, pipes, read_all
from realrt.containers._process import Output, Process, exit_code, pump_output
from realrt.containers.spec import DEFAULT_PATH, BindMount, ContainerSpec
from realrt.journal import Journal, Record
from sim.containers.userns import IdMaps
from sim.errors import BackendUnavailableError
from sim.results import ExecResult

__all__ = [
    "BindMount",
    "ContainerSpec",
    "Process",
    "start",
    "run",
    "exec",
    "start_on",
    "run_on",
    "rootfs_of",
    "join_namespaces",
    "open_namespaces",
    "DEFAULT_PATH",
    "MASKED_PATHS",
    "READONLY_PATHS",
    "DEVICES",
]


def _check_host(rootless: bool) -> None:
    if not rootless and os.geteuid() != 0:
        raise BackendUnavailableError("containers in root mode need root; pass rootless=True")
    if not hasattr(os, "pidfd_open"):
        raise BackendUnavailableError("the runtime needs pidfd_open (Linux 5.3+, Python 3.9+)")


def start(rootfs: str | os.PathLike[str], spec: ContainerSpec, *, journal: Journal, rootless: bool | None = None,
          join_pid: int = 0, cgroup_name: str | None = None, id_maps: IdMaps | None = None) -> Process:
    """Run ``spec`` as a container over the directory ``rootfs``; returns once it has exec'd.

    Errors of the set-up (a symlinked ``/proc``, a bind target escaping the
    root, a refused mount) are raised here, with nothing left behind; a
    program that does not exist is not an error here: the process exits 127
    and says so on stderr, as ``docker run`` does.

    ``rootless`` (default: not root) builds a user namespace first, mapped by
    ``id_maps`` (default :func:`realrt._idmap.detect`: the caller's
    subordinate ranges through newuidmap when it has some, else 0 to the caller
    only); a uid or gid it does not map is refused here
    (:class:`~sim.errors.BackendUnavailableError`).  ``join_pid`` names a process
    whose user and mount namespaces hold ``rootfs`` (the rootless overlay
    helper), to start from there: ``id_maps`` must then be the maps that
    namespace has (:attr:`KernelUnionFS.id_maps`).

    ``spec.limits`` are applied in the cgroup ``layerlab/<cgroup_name>`` (a
    random name by default), which PID 1 enters before it creates anything;
    limits this host cannot apply (rootless on cgroup v1) are refused here,
    before the fork.
    """
    rootfs = os.path.realpath(os.fspath(rootfs)) if not join_pid else os.fspath(rootfs)
    rootless = os.geteuid() != 0 if rootless is None else rootless
    _check_host(rootless)
    if not join_pid and not os.path.isdir(rootfs):
        raise NotADirectoryError(errno.ENOTDIR, "the container's root file system must be a directory", rootfs)
    maps = (id_maps or _idmap.detect(rootless=True)) if rootless else _idmap.detect(rootless=False)
    maps.require(spec.uid, spec.gid)
    if spec.netns is not None:
        if rootless:
            raise BackendUnavailableError("joining a network's namespace needs root (rootless: --network none or host)")
        if not os.path.exists(spec.netns):
            raise FileNotFoundError(errno.ENOENT, "no such network namespace", spec.netns)
    kinds = []
    for mount in spec.mounts:
        try:
            kinds.append(stat.S_ISDIR(os.stat(mount.source).st_mode))
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "bind source path does not exist", mount.source) from None
    hierarchy = cgroups.plan(spec.limits, rootless=rootless)  # refused here, before anything exists
    plan = Plan(rootfs=rootfs, spec=spec, rootless=rootless, join_pid=join_pid,
                 uid_map=_idmap.map_text(maps.uids), gid_map=_idmap.map_text(maps.gids),
                 capabilities=_caps.mask(_caps.DEFAULT_CAPABILITIES), last_cap=_syscalls.last_cap(),
                 source_kinds=tuple(kinds), id_maps=maps)
    if spec.seccomp:  # compiled here: the child, in the container's root, has no libseccomp to call
        plan.seccomp_filter = _seccomp.compile_filter(plan.capabilities)
    fds = pipes(spec)
    if rootless:
        fds["pid_r"], fds["pid_w"] = os.pipe2(os.O_CLOEXEC)
    plan.fds = fds
    records: list[Record] = []
    child = 0
    cgroup: cgroups.Cgroup | None = None
    try:
        child = _fork(plan, rootless)
        for name in CHILD_ENDS:
            if name in fds:
                os.close(fds.pop(name))
        records.append(journal.record("process", pid=child))  # before the child creates anything
        if hierarchy is not None and spec.limits:
            cgroup = cgroups.create(spec.limits, cgroup_name or uuid.uuid4().hex, journal=journal,
                                    rootless=rootless, hierarchy=hierarchy)
            if cgroup is not None:
                cgroup.add(child)  # it still waits for "go": all it runs is limited and counted
        os.write(fds["go_w"], b"g")
        if rootless and not join_pid and maps.kind == "subordinate":
            _idmap.map_child(child, maps, fds["pid_r"], fds["go_w"])  # newuidmap on the child, once it unshared
        os.close(fds.pop("go_w"))
        pid = child
        if rootless:
            raw = b""
            while len(raw) < 4:
                chunk = os.read(fds["pid_r"], 4 - len(raw))
                if not chunk:
                    break
                raw += chunk
            os.close(fds.pop("pid_r"))
            if len(raw) == 4:
                pid = struct.unpack("!i", raw)[0]
                records.append(journal.record("process", pid=pid))
        failure = read_all(fds["err_r"])  # EOF at the execve (close-on-exec) or the child's death
        os.close(fds.pop("err_r"))
        if failure or (rootless and pid == child):
            _, status = os.waitpid(child, 0)
            child = 0
            for rec in records:
                journal.forget(rec)
            if failure:
                exc = pickle.loads(failure)
                raise exc
            raise RuntimeError(f"the container's first process died before starting (exit {exit_code(status)})")
    except BaseException:
        if child:
            try:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
            except OSError:
                pass
            for rec in records:
                journal.forget(rec)
        for fd in fds.values():
            os.close(fd)
        if cgroup is not None:
            cgroup.remove()  # the child is reaped: the folders can go
        raise
    output = Output()
    pump = threading.Thread(target=pump_output, name=f"layerlab-io-{pid}", daemon=True,
                            args=(output, {fds.pop("out_r"): 1, fds.pop("errout_r"): 2}, fds.pop("stdin_w", None),
                                  bytes(spec.stdin or b"")))
    pump.start()
    return Process(pid=pid, child=child, spec=spec, rootfs=rootfs, journal=journal, records=records, output=output,
                   pump=pump, rootless=rootless, plan=plan, cgroup=cgroup)


def _fork(plan: Plan, rootless: bool) -> int:
    """Fork the child; in root mode straight into a new PID namespace (this thread's own is restored)."""
    if rootless:
        return fork_child(lambda: rootless_main(plan))
    # unshare affects only this thread's next child
    return fork_in_pid_ns(lambda: _syscalls.unshare(_syscalls.CLONE_NEWPID), lambda: container_main(plan))


def rootfs_of(union: Any) -> tuple[str, int]:
    """``(rootfs, join_pid)`` for a :class:`~realrt.layers.overlay.KernelUnionFS`: its mount point and, when it
    is rootless, the helper process whose user and mount namespaces hold that mount (0 as root)."""
    return union.mountpoint, int(union.helper_pid or 0)


def start_on(union: Any, spec: ContainerSpec, *, journal: Journal, cgroup_name: str | None = None) -> Process:
    """:func:`start` over a mounted :class:`~realrt.layers.overlay.KernelUnionFS`, root or rootless."""
    rootfs, join_pid = rootfs_of(union)
    return start(rootfs, spec, journal=journal, rootless=bool(getattr(union, "rootless", False)), join_pid=join_pid,
                 cgroup_name=cgroup_name, id_maps=getattr(union, "id_maps", None))


def run_on(union: Any, spec: ContainerSpec, *, journal: Journal, timeout: float | None = None,
           cgroup_name: str | None = None) -> ExecResult:
    """:func:`run` over a mounted :class:`~realrt.layers.overlay.KernelUnionFS`, root or rootless."""
    rootfs, join_pid = rootfs_of(union)
    return run(rootfs, spec, journal=journal, timeout=timeout, rootless=bool(getattr(union, "rootless", False)),
               join_pid=join_pid, cgroup_name=cgroup_name, id_maps=getattr(union, "id_maps", None))


def run(rootfs: str | os.PathLike[str], spec: ContainerSpec, *, journal: Journal, timeout: float | None = None,
        **options: Any) -> ExecResult:
    """:func:`start` then :meth:`Process.wait`; on timeout the container is killed and TimeoutError raised."""
    with start(rootfs, spec, journal=journal, **options) as process:
        try:
            code = process.wait(timeout)
        except TimeoutError:
            process.close()
            raise
        return ExecResult(code, process.stdout, process.stderr)

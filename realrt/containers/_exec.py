"""A second process in a running container (``docker exec``): :func:`exec`.

The new process joins the container's namespaces and root instead of making its own
(:func:`open_namespaces`, :func:`join_namespaces`), is forked straight into its PID
namespace, enters its cgroup before it runs anything, and gets the same capabilities,
``no_new_privs`` and masked paths (they belong to the mount namespace).
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
from collections.abc import Iterable, Mapping

from realrt import _syscalls
from realrt.containers._namespaces import child_stdio, finish_and_exec, fork_child, fork_in_pid_ns
from realrt.containers._plan import Plan, close_parent_ends, pipes, read_all, report_and_exit
from realrt.containers._process import Output, Process, exit_code, pump_output, wait_pidfd
from realrt.containers.spec import ContainerSpec
from sim.errors import ContainerStateError
from sim.results import ExecResult

__all__ = ["exec", "open_namespaces", "join_namespaces"]

_JOIN_ORDER = (("ipc", _syscalls.CLONE_NEWIPC), ("uts", _syscalls.CLONE_NEWUTS), ("net", _syscalls.CLONE_NEWNET),
               ("mnt", _syscalls.CLONE_NEWNS))


def open_namespaces(pid: int) -> dict[str, int]:
    """``/proc/<pid>/ns/{user,ipc,uts,net,mnt,pid}`` and ``root``, opened for :func:`join_namespaces`."""
    fds = {}
    try:
        for name in ("user", "ipc", "uts", "net", "mnt", "pid"):
            fds[name] = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        fds["root"] = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds


def join_namespaces(ns: Mapping[str, int], *, user: bool = False) -> None:
    """In a fresh single-threaded child: enter the IPC, UTS, network and mount namespaces in ``ns``
    (fds from ``/proc/<pid>/ns/*``, plus ``root`` from ``/proc/<pid>/root``), then chroot into the
    container's root.  The PID namespace applies to *children* only: fork after this (or before,
    as :func:`exec` does by forking straight into it)."""
    if user:
        _syscalls.setns(ns["user"], _syscalls.CLONE_NEWUSER)
    for name, flag in _JOIN_ORDER:
        _syscalls.setns(ns[name], flag)
    os.fchdir(ns["root"])  # setns(mnt) already put us at the namespace's root; make it explicit
    os.chroot(".")
    os.chdir("/")


def _split_env(env: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(key, value) for key, _, value in (e.partition("=") for e in env)]


def exec(process: Process, argv: Iterable[str], *, env: Iterable[str] | Mapping[str, str] | None = None,
         cwd: str | None = None, uid: int | None = None, gid: int | None = None, stdin: bytes | None = None,
         timeout: float | None = None, groups: Iterable[int] | None = None) -> ExecResult:
    """Run ``argv`` inside ``process``'s namespaces and root (``docker exec``), wait, return its result.

    ``env`` is added to the container's environment; ``cwd``, ``uid``,
    ``gid`` and ``groups`` default to the container's (``groups``: when neither
    ``uid`` nor ``gid`` is given, else just ``gid``).  A uid or gid the
    container's user namespace does not map is refused before anything starts
    (:class:`~sim.errors.BackendUnavailableError`).  The process gets the same
    capabilities, ``no_new_privs``, seccomp filter and masked paths (they belong to the mount
    namespace) as the container.  A missing program exits 127.
    """
    if not process.running:
        raise ContainerStateError(f"container pid {process.pid} is not running")
    base = dict(_split_env(process.spec.env))
    base.update(_split_env(ContainerSpec(("x",), env=env or ()).env))  # type: ignore[arg-type]  # validated
    new_gid = process.spec.gid if gid is None else gid
    if groups is None:
        groups = process.spec.groups if uid is None and gid is None else (new_gid,)
    spec = ContainerSpec(tuple(argv), env=tuple(f"{k}={v}" for k, v in base.items()),
                         cwd=process.spec.cwd if cwd is None else cwd,
                         uid=process.spec.uid if uid is None else uid, gid=new_gid,
                         hostname=process.spec.hostname, network=process.spec.network, stdin=stdin,
                         groups=tuple(groups))
    process._plan.id_maps.require(spec.uid, spec.gid)  # the namespace it joins maps only these
    plan = Plan(rootfs="/", spec=spec, rootless=process.rootless, join_pid=0, uid_map="", gid_map="",
                 capabilities=process._plan.capabilities, last_cap=process._plan.last_cap,
                 id_maps=process._plan.id_maps, seccomp_filter=process._plan.seccomp_filter)
    fds = pipes(spec)
    group = process.cgroup if process.cgroup is not None and process.running else None
    if group is None:  # with a cgroup, the child waits for "go" until it is in it (as docker exec's are)
        os.close(fds.pop("go_r"))
        os.close(fds.pop("go_w"))
    try:
        ns = open_namespaces(process.pid)
    except FileNotFoundError:
        for fd in fds.values():
            os.close(fd)
        raise ContainerStateError(f"container pid {process.pid} is not running") from None
    plan.fds = fds
    child = 0
    try:
        child = _fork_into(ns, plan)
        for name in ("err_w", "out_w", "errout_w", "stdin", "go_r"):
            if name in fds:
                os.close(fds.pop(name))
        if group is not None:
            group.add(child)
            os.write(fds["go_w"], b"g")
            os.close(fds.pop("go_w"))
        pidfd = os.pidfd_open(child)
        failure = read_all(fds["err_r"])
        os.close(fds.pop("err_r"))
        if failure:
            os.waitpid(child, 0)
            child = 0
            raise pickle.loads(failure)
        out = Output()
        pump = threading.Thread(target=pump_output, daemon=True,
                                args=(out, {fds.pop("out_r"): 1, fds.pop("errout_r"): 2}, fds.pop("stdin_w", None),
                                      bytes(stdin or b"")))
        pump.start()
        try:
            if not wait_pidfd(pidfd, timeout):
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                child = 0
                raise TimeoutError(f"exec {list(spec.argv)!r} still running after {timeout} s; killed")
            _, status = os.waitpid(child, 0)
            child = 0
        finally:
            os.close(pidfd)
            pump.join(5)
        return ExecResult(exit_code(status), out.stream(1), out.stream(2))
    finally:
        if child:
            try:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
            except OSError:
                pass
        for fd in list(ns.values()) + list(fds.values()):
            try:
                os.close(fd)
            except OSError:
                pass


def _fork_into(ns: dict[str, int], plan: Plan) -> int:
    """Fork a child that is already in the container's PID namespace, then joins the rest and execs."""
    rootless = plan.rootless
    if rootless:
        # An unprivileged thread cannot setns into a PID namespace; the child enters the user
        # namespace first and forks once more into the PID namespace.
        return fork_child(lambda: _exec_rootless(ns, plan))
    return fork_in_pid_ns(lambda: _syscalls.setns(ns["pid"], _syscalls.CLONE_NEWPID), lambda: _exec_main(ns, plan))


def _exec_main(ns: dict[str, int], plan: Plan) -> None:  # pragma: no cover - child
    fds = plan.fds
    try:
        close_parent_ends(fds)
        if "go_r" in fds and os.read(fds["go_r"], 1) != b"g":  # not yet in the container's cgroup
            os._exit(1)
        child_stdio(fds)
        join_namespaces(ns)  # rootless: the user namespace was entered by the parent of this child
        spec = plan.spec
        finish_and_exec(plan, fds["err_w"], spec.argv, spec.env, spec.cwd, spec.uid, spec.gid)
    except BaseException as exc:
        report_and_exit(fds["err_w"], exc)


def _exec_rootless(ns: dict[str, int], plan: Plan) -> None:  # pragma: no cover - child
    fds = plan.fds
    try:
        if "go_r" in fds:  # wait until the parent has put us in the container's cgroup; the fork follows
            os.close(fds.pop("go_w"))
            if os.read(fds.pop("go_r"), 1) != b"g":
                os._exit(1)
        _syscalls.setns(ns["user"], _syscalls.CLONE_NEWUSER)
        _syscalls.setns(ns["pid"], _syscalls.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            _exec_main(ns, plan)
        _syscalls.close_range(0)  # never execs: hold no pipe open (see rootless_main)
        _, status = os.waitpid(pid, 0)
        os._exit(exit_code(status))
    except BaseException as exc:
        report_and_exit(fds["err_w"], exc)

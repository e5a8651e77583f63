"""The container's first process, from the fork to ``execve`` (命名空间, namespaces).

Everything here but the two fork helpers runs in the child: unshare the namespaces (rootless:
the user namespace first, then PID 1 is forked), bring ``lo`` up, prepare the root
(:func:`realrt.containers._mounts.prepare_root`), close every descriptor of the host, cut the
capabilities, set the user, and exec.  A failure before the exec is pickled to the parent
over the ``err`` pipe (:func:`realrt.containers._plan.report_and_exit`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import socket
import struct
from collections.abc import Callable

from realrt import _syscalls
from realrt.containers import _seccomp
from realrt.containers._mounts import prepare_root
from realrt.containers._plan import Plan, close_parent_ends, report_and_exit, write_all
from realrt.containers.spec import DEFAULT_PATH

__all__ = ["container_main", "rootless_main", "finish_and_exec", "child_stdio", "fork_child", "fork_in_pid_ns"]

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def _lo_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _passwd_home(uid: int) -> str:
    try:
        with open("/etc/passwd", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid) and fields[5]:
                    return fields[5]
    except OSError:
        pass
    return "/"


def finish_and_exec(plan: Plan, err_fd: int, argv: tuple[str, ...], env: tuple[str, ...], cwd: str,
                     uid: int, gid: int) -> None:  # pragma: no cover - child
    """After the root is in place: close fds, user, caps, cwd, no_new_privs, seccomp, execve.  Never returns."""
    # CVE-2024-21626: no descriptor of the host may survive into the container (a WORKDIR of
    # /proc/self/fd/N would otherwise reach the host's tree).  Keep 0-2 and the error pipe (close-on-exec).
    if err_fd != 3:
        os.dup2(err_fd, 3, inheritable=False)
    _syscalls.close_range(4)
    try:
        _credentials_and_exec(plan, argv, env, cwd, uid, gid)
    except BaseException as exc:
        report_and_exit(3, exc)


def _credentials_and_exec(plan: Plan, argv: tuple[str, ...], env: tuple[str, ...], cwd: str,
                          uid: int, gid: int) -> None:  # pragma: no cover - child
    variables = dict(e.split("=", 1) for e in env)
    variables.setdefault("PATH", DEFAULT_PATH)
    variables.setdefault("HOSTNAME", plan.spec.hostname)
    variables.setdefault("HOME", _passwd_home(uid))
    try:
        os.makedirs(cwd, 0o755, exist_ok=True)  # as root, inside the new root: Docker creates WORKDIR
    except OSError:
        pass  # reported below by chdir, as the user would see it
    # Capabilities: the bounding set first (dropping needs CAP_SETPCAP), ambient cleared.
    for cap in range(plan.last_cap + 1):
        if not plan.capabilities >> cap & 1:
            try:
                _syscalls.prctl(_syscalls.PR_CAPBSET_DROP, cap)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
    _syscalls.prctl(_syscalls.PR_CAP_AMBIENT, _syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
    if not plan.rootless or plan.id_maps.kind == "subordinate":
        # Docker's groups (the primary first, then the user's in /etc/group).  The single mapping's
        # namespace has setgroups "deny" and refuses this; newgidmap allowed it for a subordinate one.
        os.setgroups(list(plan.spec.groups))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # from uid 0 to another this clears the permitted and effective sets
    os.chdir(cwd)  # after setuid, so the user's permissions apply
    try:
        here = os.getcwd()
    except OSError:
        here = "(unreachable)"
    if not here.startswith("/"):
        raise PermissionError(errno.EACCES, "the working directory is outside the container root", cwd)
    keep = plan.capabilities if uid == 0 else 0
    _syscalls.capset(keep, keep, 0)
    _syscalls.prctl(_syscalls.PR_SET_NO_NEW_PRIVS, 1)
    _syscalls.default_signals()  # Python ignores SIGPIPE and SIGXFSZ; an exec'd program must not
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    if plan.seccomp_filter:  # last: the runtime's own steps above are not filtered, the program is
        _seccomp.load(plan.seccomp_filter)
    program = argv[0]
    search = [program] if "/" in program else [f"{d or '.'}/{program}" for d in variables["PATH"].split(":")]
    denied: OSError | None = None
    for candidate in search:
        try:
            os.execve(candidate, list(argv), variables)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG):
                continue
            denied = denied or exc
    # Reached only when no exec worked: report like Docker (127 not found, 126 found but not runnable).
    if denied is not None:
        message, code = f'exec: "{program}": {os.strerror(denied.errno or errno.EACCES).lower()}', 126
    elif "/" in program:
        message, code = f'exec: "{program}": stat {program}: no such file or directory', 127
    else:
        message, code = f'exec: "{program}": executable file not found in $PATH', 127
    try:
        write_all(2, f"layerlab: {message}\n".encode())
    finally:
        os._exit(code)


def container_main(plan: Plan) -> None:  # pragma: no cover - child
    """The container's PID 1 before execve (root mode: forked straight into the new PID namespace)."""
    fds = plan.fds
    err_fd = fds["err_w"]
    try:
        close_parent_ends(fds)
        if os.read(fds["go_r"], 1) != b"g":  # the parent died or gave up before recording us
            os._exit(1)
        child_stdio(fds)
        flags = _syscalls.CLONE_NEWNS | _syscalls.CLONE_NEWUTS | _syscalls.CLONE_NEWIPC
        if plan.spec.netns is not None:
            _join_netns(plan.spec.netns)  # a network's namespace, made and wired before the fork
        elif not plan.spec.network:
            flags |= _syscalls.CLONE_NEWNET
        _syscalls.unshare(flags)
        _in_namespaces(plan, err_fd)
    except BaseException as exc:
        report_and_exit(err_fd, exc)
    os._exit(255)


def child_stdio(fds: dict[str, int]) -> None:  # pragma: no cover - child
    os.dup2(fds["stdin"], 0)
    os.dup2(fds["out_w"], 1)
    os.dup2(fds["errout_w"], 2)
    os.setsid()


def _join_netns(path: str) -> None:  # pragma: no cover - child
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _syscalls.setns(fd, _syscalls.CLONE_NEWNET)
    finally:
        os.close(fd)


def _in_namespaces(plan: Plan, err_fd: int) -> None:  # pragma: no cover - child
    if not plan.spec.network and plan.spec.netns is None:
        _lo_up()
    prepare_root(plan)
    _syscalls.sethostname(plan.spec.hostname)
    spec = plan.spec
    finish_and_exec(plan, err_fd, spec.argv, spec.env, spec.cwd, spec.uid, spec.gid)


def rootless_main(plan: Plan) -> None:  # pragma: no cover - child
    """Rootless: enter (or make) the user namespace, unshare the rest, fork PID 1, wait for it."""
    fds = plan.fds
    err_fd = fds["err_w"]
    try:
        close_parent_ends(fds)
        if os.read(fds["go_r"], 1) != b"g":
            os._exit(1)
        if plan.join_pid:
            # The overlay is mounted in the helper's user + mount namespaces: start from there.
            for ns, flag in (("user", _syscalls.CLONE_NEWUSER), ("mnt", _syscalls.CLONE_NEWNS)):
                nsfd = os.open(f"/proc/{plan.join_pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
                _syscalls.setns(nsfd, flag)
                os.close(nsfd)
        elif plan.id_maps.kind == "subordinate":
            # newuidmap/newgidmap (setuid, on the host) map us: say we unshared, wait until they ran.
            _syscalls.unshare(_syscalls.CLONE_NEWUSER)
            write_all(fds["pid_w"], b"u")
            if os.read(fds["go_r"], 1) != b"m":
                os._exit(1)
        else:
            _syscalls.unshare(_syscalls.CLONE_NEWUSER)
            with open("/proc/self/setgroups", "w") as fh:
                fh.write("deny")
            with open("/proc/self/uid_map", "w") as fh:
                fh.write(plan.uid_map)
            with open("/proc/self/gid_map", "w") as fh:
                fh.write(plan.gid_map)
        flags = (_syscalls.CLONE_NEWNS | _syscalls.CLONE_NEWUTS | _syscalls.CLONE_NEWIPC | _syscalls.CLONE_NEWPID)
        if not plan.spec.network:
            flags |= _syscalls.CLONE_NEWNET
        _syscalls.unshare(flags)
        alive_r, alive_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(alive_w)
                _syscalls.prctl(_syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
                os.set_blocking(alive_r, False)
                try:
                    if os.read(alive_r, 1) == b"":  # the intermediate died before PDEATHSIG was armed
                        os._exit(1)
                except BlockingIOError:
                    pass
                os.close(alive_r)
                child_stdio(fds)
                _in_namespaces(plan, err_fd)
            except BaseException as exc:
                report_and_exit(err_fd, exc)
            os._exit(255)
        write_all(fds["pid_w"], struct.pack("!i", pid))
        # This process never execs: close-on-exec does not apply, so close every descriptor it
        # holds (a pipe of another container kept open here would never reach EOF).  alive_w stays.
        os.dup2(alive_w, 0)
        _syscalls.close_range(1)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        os._exit(128 - code if code < 0 else code)
    except BaseException as exc:
        report_and_exit(err_fd, exc)
    os._exit(255)


def fork_child(main: Callable[[], None]) -> int:
    """Fork a child that runs ``main`` and then exits (255 should ``main`` return or raise); the parent gets its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            main()
        finally:
            os._exit(255)
    return pid


def fork_in_pid_ns(enter: Callable[[], None], main: Callable[[], None]) -> int:
    """:func:`fork_child` after ``enter`` has moved this thread's next child into another PID namespace;
    the caller's own PID namespace is restored with setns before returning (or raising)."""
    own = os.open("/proc/thread-self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    pid = -1
    try:
        enter()
        try:
            pid = fork_child(main)
        finally:
            if pid != 0:
                _syscalls.setns(own, _syscalls.CLONE_NEWPID)
    finally:
        os.close(own)
    return pid

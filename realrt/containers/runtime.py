"""容器 (container): a process in its own 命名空间 (namespaces) over a prepared root file system.

:func:`start` runs ``spec.argv`` as PID 1 of new PID, mount, UTS, IPC and
network namespaces, with the root directory switched by ``pivot_root`` to
``rootfs`` (an overlay mount point from :class:`~realrt.layers.overlay.KernelUnionFS`),
``/proc``, a minimal ``/dev`` and a read-only ``/sys`` mounted, Docker's masked
and read-only paths applied, every descriptor but 0-2 closed, the user set,
capabilities cut to Docker's default set and ``no_new_privs`` on.  The
parent keeps pipes to the process's stdout and stderr.  See ``docs/runtime.md``
for the steps in order and what is left out (seccomp, AppArmor).  With
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
"""

from __future__ import annotations

import errno
import fcntl
import os
import pickle
import select
import signal
import socket
import stat
import struct
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from realrt import _syscalls
from realrt._syscalls import (
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SLAVE,
    MS_STRICTATIME,
    RESOLVE_BENEATH,
    RESOLVE_IN_ROOT,
    RESOLVE_NO_MAGICLINKS,
    RESOLVE_NO_SYMLINKS,
)
from realrt.containers import _caps, cgroups
from realrt.journal import Journal, Record
from sim.containers.limits import Limits
from sim.errors import BackendUnavailableError, ContainerStateError, UnsafeLayerError
from sim.results import ExecResult

__all__ = [
    "BindMount",
    "ContainerSpec",
    "Process",
    "start",
    "run",
    "exec",
    "start_on",
    "rootfs_of",
    "join_namespaces",
    "open_namespaces",
    "DEFAULT_PATH",
    "MASKED_PATHS",
    "READONLY_PATHS",
    "DEVICES",
]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Reading these gives nothing (files: /dev/null bound over them; folders: an empty read-only tmpfs).
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
#: Bound onto themselves read-only.
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
#: Host device nodes bound into the container's /dev (a tmpfs), as rootless runc does.
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
              ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"), ("core", "/proc/kcore"))

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_ST_TO_MS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
             (os.ST_NOATIME, 1 << 10), (os.ST_NODIRATIME, 1 << 11), (os.ST_RELATIME, 1 << 21))


# -- the specification -------------------------------------------------------------------


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
    ``network=True`` shares the host's (``--network host``).  ``stdin`` is fed to
    the process and then closed; ``None`` reads ``/dev/null``.  ``limits``
    (:class:`sim.containers.limits.Limits`, from :func:`sim.containers.limits.parse_limits`) puts the
    container in a cgroup of its own with those limits (``docker run --memory ...``).
    """

    argv: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    hostname: str = "layerlab"
    mounts: tuple[BindMount, ...] = ()
    network: bool = False
    stdin: bytes | None = None
    limits: Limits | None = None

    def __post_init__(self) -> None:
        if isinstance(self.argv, str):
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
        if self.stdin is not None and not isinstance(self.stdin, (bytes, bytearray)):
            raise ValueError("stdin must be bytes or None")
        if self.limits is not None and not isinstance(self.limits, Limits):
            raise ValueError("limits must be a sim.containers.limits.Limits (see sim.containers.limits.parse_limits) or None")


# -- output capture ----------------------------------------------------------------------


class _Output:
    """Chunks in arrival order, each tagged 1 (stdout) or 2 (stderr)."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, bytes]] = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def stream(self, which: int) -> bytes:
        with self.lock:
            return b"".join(data for tag, data in self.chunks if tag == which)

    def both(self) -> bytes:
        with self.lock:
            return b"".join(data for _, data in self.chunks)


def _pump(out: _Output, outputs: dict[int, int], stdin_fd: int | None, data: bytes) -> None:
    """Copy ``data`` into ``stdin_fd`` and the output pipes into ``out`` until every pipe closes."""
    poller = select.poll()
    for fd in outputs:
        poller.register(fd, select.POLLIN)
    view = memoryview(data)
    if stdin_fd is not None and not view:
        os.close(stdin_fd)
        stdin_fd = None
    if stdin_fd is not None:
        os.set_blocking(stdin_fd, False)
        poller.register(stdin_fd, select.POLLOUT)
    live = dict(outputs)
    try:
        while live or stdin_fd is not None:
            for fd, event in poller.poll():
                if fd == stdin_fd:
                    done = bool(event & (select.POLLERR | select.POLLHUP))
                    if not done:
                        try:
                            view = view[os.write(fd, view[:65536]):]
                        except BlockingIOError:
                            pass
                        except OSError:  # EPIPE: the process closed its stdin
                            done = True
                    if done or not view:
                        poller.unregister(fd)
                        os.close(fd)
                        stdin_fd = None
                    continue
                chunk = os.read(fd, 65536)
                if chunk:
                    with out.lock:
                        out.chunks.append((live[fd], chunk))
                else:
                    poller.unregister(fd)
                    os.close(fd)
                    del live[fd]
    finally:
        for fd in live:
            os.close(fd)
        if stdin_fd is not None:
            os.close(stdin_fd)
        out.done.set()


# -- the child side: everything from here to _exec runs in the new namespaces ----------------


@dataclass
class _Plan:
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
    fds: dict[str, int] = field(default_factory=dict)



def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _report_and_exit(err_fd: int, exc: BaseException) -> None:  # pragma: no cover - child
    try:
        try:
            payload = pickle.dumps(exc)
        except Exception:
            payload = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
        _write_all(err_fd, payload)
    finally:
        os._exit(255)


def _fdpath(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _open_in(root: int, path: str, flags: int = os.O_PATH, resolve: int = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
             mode: int = 0) -> int:
    return _syscalls.openat2(root, path.lstrip("/") or ".", flags, mode, resolve)


def _system_dir(root: int, name: str) -> int:
    """``/proc``, ``/dev`` or ``/sys`` of the image as an O_PATH fd; refuses a symlink, creates a missing one."""
    try:
        st = os.stat(name, dir_fd=root, follow_symlinks=False)
    except FileNotFoundError:
        os.mkdir(name, 0o755, dir_fd=root)
        st = os.stat(name, dir_fd=root, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeLayerError(f"the image's /{name} is a symlink; a runtime mounts /{name} itself and refuses to "
                               "follow it (it could point at a host path)")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeLayerError(f"the image's /{name} is not a directory")
    return _open_in(root, name, os.O_PATH | os.O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)


def _mount_flags(path: str) -> int:
    """The flags a bind remount must repeat (the kernel refuses to clear locked nosuid/nodev/...)."""
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in _ST_TO_MS if f_flag & st)


def _remount_ro(path: str) -> None:
    _syscalls.mount("none", path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | _mount_flags(path))


def _mount_dev(root: int, plan: _Plan) -> None:
    fd = _system_dir(root, "dev")
    _syscalls.mount("tmpfs", _fdpath(fd), "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k")
    os.close(fd)
    dev = _open_in(root, "dev", os.O_PATH | os.O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)  # the tmpfs now
    for name in DEVICES:
        os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666, dir_fd=dev))
        node = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dev)
        _syscalls.mount(f"/dev/{name}", _fdpath(node), None, MS_BIND)
        os.close(node)
    for name, target in _DEV_LINKS:
        os.symlink(target, name, dir_fd=dev)
    for name, fstype, flags, data in (
        ("pts", "devpts", MS_NOSUID | MS_NOEXEC,
         "newinstance,ptmxmode=0666,mode=0620" + ("" if plan.rootless else ",gid=5")),
        ("shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k"),
        ("mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, None),
    ):
        os.mkdir(name, 0o755, dir_fd=dev)
        sub = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dev)
        try:
            _syscalls.mount(name, _fdpath(sub), fstype, flags, data)
        except OSError:
            if name != "mqueue":  # mqueue needs an IPC namespace the user namespace owns; optional
                raise
        os.close(sub)
    os.close(dev)


def _mount_sys(root: int) -> None:
    fd = _system_dir(root, "sys")
    try:
        _syscalls.mount("sysfs", _fdpath(fd), "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except PermissionError:
        # sysfs needs a network namespace we own (rootless with the host's network): bind the host's /sys.
        _syscalls.mount("/sys", _fdpath(fd), None, MS_BIND | MS_REC)
        os.close(fd)
        fd = _open_in(root, "sys", os.O_PATH | os.O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
        _remount_ro(_fdpath(fd))
    os.close(fd)


def _bind_target(root: int, mount: BindMount, is_dir: bool) -> int:
    """An O_PATH fd on the mount point inside the root, created if missing; refuses escaping symlinks."""
    rel = mount.target.lstrip("/")
    resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS
    try:
        return _open_in(root, rel, os.O_PATH, resolve)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            raise UnsafeLayerError(f"bind target {mount.target!r} resolves through a symlink that leaves the "
                                   "container root; refusing it") from None
        raise
    parts = rel.split("/")
    cur = os.dup(root)
    try:
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            try:
                nxt = _syscalls.openat2(cur, name, os.O_PATH, 0, resolve)
            except FileNotFoundError:
                if last and not is_dir:
                    os.close(_syscalls.openat2(cur, name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644, resolve))
                else:
                    os.mkdir(name, 0o755, dir_fd=cur)
                nxt = _syscalls.openat2(cur, name, os.O_PATH, 0, resolve)
            except OSError as exc:
                if exc.errno == errno.EXDEV:
                    raise UnsafeLayerError(f"bind target {mount.target!r} resolves through a symlink that leaves "
                                           "the container root; refusing it") from None
                raise
            os.close(cur)
            cur = nxt
        return cur
    except BaseException:
        os.close(cur)
        raise


def _lo_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _prepare_root(plan: _Plan) -> None:
    """In the new mount namespace: mounts, pivot_root, masks.  Afterwards "/" is the container's root."""
    spec = plan.spec
    _syscalls.mount("none", "/", None, MS_REC | MS_PRIVATE)  # nothing we mount propagates to the host
    _syscalls.mount(plan.rootfs, plan.rootfs, None, MS_BIND | MS_REC)  # pivot_root needs a mount point
    root = os.open(plan.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # the bind, opened after it exists
    for name in ("proc", "dev"):  # refuse before mounting anything in the image
        os.close(_system_dir(root, name))
    fd = _system_dir(root, "proc")
    _syscalls.mount("proc", _fdpath(fd), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.close(fd)
    _mount_dev(root, plan)
    _mount_sys(root)
    for mount, is_dir in zip(spec.mounts, plan.source_kinds):
        fd = _bind_target(root, mount, is_dir)
        if stat.S_ISDIR(os.fstat(fd).st_mode) != is_dir:
            raise NotADirectoryError(errno.ENOTDIR, f"bind mount {mount.source} -> {mount.target}: one is a "
                                     "directory and the other is not", mount.target)
        _syscalls.mount(mount.source, _fdpath(fd), None, MS_BIND | MS_REC)
        os.close(fd)
        if mount.readonly:
            fd = _open_in(root, mount.target, os.O_PATH, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)  # the new mount
            _remount_ro(_fdpath(fd))
            os.close(fd)
    # pivot_root(".", "."): the old root ends up stacked on the new one; detach it (runc's way, no put_old dir).
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    os.fchdir(root)
    _syscalls.pivot_root(".", ".")
    os.fchdir(old_root)
    _syscalls.mount("none", ".", None, MS_SLAVE | MS_REC)
    _syscalls.umount2(".", MNT_DETACH)
    os.chdir("/")
    os.close(old_root)
    os.close(root)
    for path in MASKED_PATHS:
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            _syscalls.mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0")
        else:
            _syscalls.mount("/dev/null", path, None, MS_BIND)
    for path in READONLY_PATHS:
        if os.path.lexists(path):
            _syscalls.mount(path, path, None, MS_BIND | MS_REC)
            _remount_ro(path)


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


def _finish_and_exec(plan: _Plan, err_fd: int, argv: tuple[str, ...], env: tuple[str, ...], cwd: str,
                     uid: int, gid: int) -> None:  # pragma: no cover - child
    """After the root is in place: close fds, user, caps, cwd, no_new_privs, execve.  Never returns."""
    # CVE-2024-21626: no descriptor of the host may survive into the container (a WORKDIR of
    # /proc/self/fd/N would otherwise reach the host's tree).  Keep 0-2 and the error pipe (close-on-exec).
    if err_fd != 3:
        os.dup2(err_fd, 3, inheritable=False)
    _syscalls.close_range(4)
    try:
        _credentials_and_exec(plan, argv, env, cwd, uid, gid)
    except BaseException as exc:
        _report_and_exit(3, exc)


def _credentials_and_exec(plan: _Plan, argv: tuple[str, ...], env: tuple[str, ...], cwd: str,
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
    if not plan.rootless:
        os.setgroups([])  # a user namespace with setgroups "deny" refuses this; it has no extra groups anyway
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
        _write_all(2, f"layerlab: {message}\n".encode())
    finally:
        os._exit(code)


_PARENT_ENDS = ("go_w", "err_r", "out_r", "errout_r", "stdin_w", "pid_r")


def _close_parent_ends(fds: dict[str, int]) -> None:  # pragma: no cover - child
    for name in _PARENT_ENDS:
        if name in fds:
            os.close(fds[name])


def _container_main(plan: _Plan) -> None:  # pragma: no cover - child
    """The container's PID 1 before execve (root mode: forked straight into the new PID namespace)."""
    fds = plan.fds
    err_fd = fds["err_w"]
    try:
        _close_parent_ends(fds)
        if os.read(fds["go_r"], 1) != b"g":  # the parent died or gave up before recording us
            os._exit(1)
        _child_stdio(fds)
        flags = _syscalls.CLONE_NEWNS | _syscalls.CLONE_NEWUTS | _syscalls.CLONE_NEWIPC
        if not plan.spec.network:
            flags |= _syscalls.CLONE_NEWNET
        _syscalls.unshare(flags)
        _in_namespaces(plan, err_fd)
    except BaseException as exc:
        _report_and_exit(err_fd, exc)
    os._exit(255)


def _child_stdio(fds: dict[str, int]) -> None:  # pragma: no cover - child
    os.dup2(fds["stdin"], 0)
    os.dup2(fds["out_w"], 1)
    os.dup2(fds["errout_w"], 2)
    os.setsid()


def _in_namespaces(plan: _Plan, err_fd: int) -> None:  # pragma: no cover - child
    if not plan.spec.network:
        _lo_up()
    _prepare_root(plan)
    _syscalls.sethostname(plan.spec.hostname)
    spec = plan.spec
    _finish_and_exec(plan, err_fd, spec.argv, spec.env, spec.cwd, spec.uid, spec.gid)


def _rootless_main(plan: _Plan) -> None:  # pragma: no cover - child
    """Rootless: enter (or make) the user namespace, unshare the rest, fork PID 1, wait for it."""
    fds = plan.fds
    err_fd = fds["err_w"]
    try:
        _close_parent_ends(fds)
        if os.read(fds["go_r"], 1) != b"g":
            os._exit(1)
        if plan.join_pid:
            # The overlay is mounted in the helper's user + mount namespaces: start from there.
            for ns, flag in (("user", _syscalls.CLONE_NEWUSER), ("mnt", _syscalls.CLONE_NEWNS)):
                nsfd = os.open(f"/proc/{plan.join_pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
                _syscalls.setns(nsfd, flag)
                os.close(nsfd)
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
                _child_stdio(fds)
                _in_namespaces(plan, err_fd)
            except BaseException as exc:
                _report_and_exit(err_fd, exc)
            os._exit(255)
        _write_all(fds["pid_w"], struct.pack("!i", pid))
        # This process never execs: close-on-exec does not apply, so close every descriptor it
        # holds (a pipe of another container kept open here would never reach EOF).  alive_w stays.
        os.dup2(alive_w, 0)
        _syscalls.close_range(1)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        os._exit(128 - code if code < 0 else code)
    except BaseException as exc:
        _report_and_exit(err_fd, exc)
    os._exit(255)


# -- the parent side ----------------------------------------------------------------------


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by signal N: 128+N, as Docker reports


def _wait_pidfd(pidfd: int, timeout: float | None) -> bool:
    ready, _, _ = select.select([pidfd], [], [], timeout)
    return bool(ready)


def _split_env(env: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(key, value) for key, _, value in (e.partition("=") for e in env)]


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


class Process:
    """A running (or finished) container: its PID 1 as seen from the host.

    ``wait()`` reaps it and returns the exit code (128+N for signal N);
    ``stdout``/``stderr`` are what it wrote so far; ``stop()`` sends SIGTERM,
    then SIGKILL after ``grace`` seconds.  A Process that is dropped while
    its container runs kills and reaps it (there is no daemon to keep it).
    """

    def __init__(self, *, pid: int, child: int, spec: ContainerSpec, rootfs: str, journal: Journal,
                 records: list[Record], output: _Output, pump: threading.Thread, rootless: bool,
                 plan: _Plan, cgroup: cgroups.Cgroup | None = None) -> None:
        self.pid = pid
        self.spec = spec
        self.rootfs = rootfs
        self.rootless = rootless
        self._child = child
        self._plan = plan
        self._pidfd = os.pidfd_open(child)
        self._journal = journal
        self._records = records
        self._output = output
        self._pump = pump
        self._returncode: int | None = None
        self._lock = threading.RLock()
        self.cgroup = cgroup  # the container's cgroup (spec.limits), removed once it is reaped
        self._final_usage: cgroups.Usage | None = None
        self._finalizer = weakref.finalize(self, _abandon, child, self._pidfd, pid, journal, records, cgroup)

    @property
    def returncode(self) -> int | None:
        """The exit code once reaped, else ``None``."""
        return self._returncode

    @property
    def running(self) -> bool:
        if self._returncode is not None:
            return False
        return not _wait_pidfd(self._pidfd, 0)

    @property
    def stdout(self) -> bytes:
        return self._output.stream(1)

    @property
    def stderr(self) -> bytes:
        return self._output.stream(2)

    def logs(self) -> bytes:
        """stdout and stderr interleaved in the order they arrived (``docker logs``)."""
        return self._output.both()

    def usage(self) -> cgroups.Usage | None:
        """The cgroup's counters (``docker stats``): now while it runs, the last reading (taken
        just before the cgroup was removed) once it is reaped; ``None`` without limits."""
        with self._lock:
            if self.cgroup is not None and self._returncode is None:
                return self.cgroup.usage()
            return self._final_usage

    def wait(self, timeout: float | None = None) -> int:
        """Reap the container and return its exit code; :class:`TimeoutError` if it outlives ``timeout``."""
        with self._lock:
            if self._returncode is None:
                if not _wait_pidfd(self._pidfd, timeout):
                    raise TimeoutError(f"container pid {self.pid} still running after {timeout} s")
                _, status = os.waitpid(self._child, 0)
                self._returncode = _exit_code(status)
                self._release()
            self._pump.join(5)  # every writer is gone with the PID namespace; the pipes hit EOF
            return self._returncode

    def _release(self) -> None:
        self._finalizer.detach()
        os.close(self._pidfd)
        self._pidfd = -1
        for rec in reversed(self._records):
            self._journal.forget(rec)  # the processes are gone: nothing left to undo
        self._records.clear()
        if self.cgroup is not None:
            self._final_usage = self.cgroup.usage()
            self.cgroup.remove()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to PID 1 (it ignores signals it has no handler for, except SIGKILL)."""
        with self._lock:
            if self._returncode is not None:
                raise ContainerStateError(f"container pid {self.pid} is not running (exit code {self._returncode})")
            try:
                if self.rootless:
                    os.kill(self.pid, sig)  # PID 1 is a grandchild; the pidfd is the middle process's
                else:
                    signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass  # exited, not yet reaped: wait() will tell

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it is still running after ``grace`` seconds; returns the exit code."""
        if self._returncode is not None:
            return self._returncode
        try:
            self.kill(signal.SIGTERM)
            return self.wait(grace)
        except TimeoutError:
            self.kill(signal.SIGKILL)
        except ContainerStateError:
            pass
        return self.wait()

    def close(self) -> None:
        """Kill (if running) and reap; idempotent."""
        if self._returncode is None:
            try:
                self.kill(signal.SIGKILL)
            except ContainerStateError:
                pass
            self.wait()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self._returncode is None else f"exited {self._returncode}"
        return f"<Process pid={self.pid} {state} {list(self.spec.argv)!r}>"


def _abandon(child: int, pidfd: int, pid: int, journal: Journal, records: list[Record],
             cgroup: cgroups.Cgroup | None = None) -> None:
    """A dropped Process: kill its container, reap it, forget the records."""
    try:
        os.kill(pid, signal.SIGKILL)  # rootless: the intermediate reaps it and exits; killing that first
    except OSError:                   # would leave PID 1 to the host's init, unreaped for a while
        pass
    try:
        os.waitpid(child, 0)
    except ChildProcessError:
        pass
    if pidfd >= 0:
        os.close(pidfd)
    for rec in records:
        journal.forget(rec)
    if cgroup is not None:
        cgroup.remove()


def _check_host(rootless: bool) -> None:
    if not rootless and os.geteuid() != 0:
        raise BackendUnavailableError("containers in root mode need root; pass rootless=True")
    if not hasattr(os, "pidfd_open"):
        raise BackendUnavailableError("the runtime needs pidfd_open (Linux 5.3+, Python 3.9+)")


def _pipes(spec: ContainerSpec) -> dict[str, int]:
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


_CHILD_ENDS = ("go_r", "err_w", "out_w", "errout_w", "stdin", "pid_w")


def start(rootfs: str | os.PathLike[str], spec: ContainerSpec, *, journal: Journal, rootless: bool | None = None,
          join_pid: int = 0, cgroup_name: str | None = None) -> Process:
    """Run ``spec`` as a container over the directory ``rootfs``; returns once it has exec'd.

    Errors of the set-up (a symlinked ``/proc``, a bind target escaping the
    root, a refused mount) are raised here, with nothing left behind; a
    program that does not exist is not an error here: the process exits 127
    and says so on stderr, as ``docker run`` does.

    ``rootless`` (default: not root) builds a user namespace mapping 0 to the
    caller first; ``join_pid`` names a process whose user and mount namespaces
    hold ``rootfs`` (the rootless overlay helper), to start from there.

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
    if rootless and (spec.uid != 0 or spec.gid != 0):
        raise BackendUnavailableError(
            f"rootless containers map only root (uid 0) to your uid; uid {spec.uid}/gid {spec.gid} would need "
            "newuidmap and /etc/subuid ranges, which layerlab does not use (run as root for other users)")
    kinds = []
    for mount in spec.mounts:
        try:
            kinds.append(stat.S_ISDIR(os.stat(mount.source).st_mode))
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "bind source path does not exist", mount.source) from None
    hierarchy = cgroups.plan(spec.limits, rootless=rootless)  # refused here, before anything exists
    plan = _Plan(rootfs=rootfs, spec=spec, rootless=rootless, join_pid=join_pid,
                 uid_map=f"0 {os.geteuid()} 1", gid_map=f"0 {os.getegid()} 1",
                 capabilities=_caps.mask(_caps.DEFAULT_CAPABILITIES), last_cap=_syscalls.last_cap(),
                 source_kinds=tuple(kinds))
    fds = _pipes(spec)
    if rootless:
        fds["pid_r"], fds["pid_w"] = os.pipe2(os.O_CLOEXEC)
    plan.fds = fds
    records: list[Record] = []
    child = 0
    cgroup: cgroups.Cgroup | None = None
    try:
        child = _fork(plan, rootless)
        for name in _CHILD_ENDS:
            if name in fds:
                os.close(fds.pop(name))
        records.append(journal.record("process", pid=child))  # before the child creates anything
        if hierarchy is not None and spec.limits:
            cgroup = cgroups.create(spec.limits, cgroup_name or uuid.uuid4().hex, journal=journal,
                                    rootless=rootless, hierarchy=hierarchy)
            if cgroup is not None:
                cgroup.add(child)  # it still waits for "go": all it runs is limited and counted
        os.write(fds["go_w"], b"g")
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
        failure = _read_all(fds["err_r"])  # EOF at the execve (close-on-exec) or the child's death
        os.close(fds.pop("err_r"))
        if failure or (rootless and pid == child):
            _, status = os.waitpid(child, 0)
            child = 0
            for rec in records:
                journal.forget(rec)
            if failure:
                exc = pickle.loads(failure)
                raise exc
            raise RuntimeError(f"the container's first process died before starting (exit {_exit_code(status)})")
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
    output = _Output()
    pump = threading.Thread(target=_pump, name=f"layerlab-io-{pid}", daemon=True,
                            args=(output, {fds.pop("out_r"): 1, fds.pop("errout_r"): 2}, fds.pop("stdin_w", None),
                                  bytes(spec.stdin or b"")))
    pump.start()
    return Process(pid=pid, child=child, spec=spec, rootfs=rootfs, journal=journal, records=records, output=output,
                   pump=pump, rootless=rootless, plan=plan, cgroup=cgroup)


def _fork(plan: _Plan, rootless: bool) -> int:
    """Fork the child; in root mode straight into a new PID namespace (this thread's own is restored)."""
    if rootless:
        return _fork_child(lambda: _rootless_main(plan))
    # unshare affects only this thread's next child
    return _fork_in_pid_ns(lambda: _syscalls.unshare(_syscalls.CLONE_NEWPID), lambda: _container_main(plan))


def _fork_child(main: Callable[[], None]) -> int:
    """Fork a child that runs ``main`` and then exits (255 should ``main`` return or raise); the parent gets its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            main()
        finally:
            os._exit(255)
    return pid


def _fork_in_pid_ns(enter: Callable[[], None], main: Callable[[], None]) -> int:
    """:func:`_fork_child` after ``enter`` has moved this thread's next child into another PID namespace;
    the caller's own PID namespace is restored with setns before returning (or raising)."""
    own = os.open("/proc/thread-self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    pid = -1
    try:
        enter()
        try:
            pid = _fork_child(main)
        finally:
            if pid != 0:
                _syscalls.setns(own, _syscalls.CLONE_NEWPID)
    finally:
        os.close(own)
    return pid


def rootfs_of(union: Any) -> tuple[str, int]:
    """``(rootfs, join_pid)`` for a :class:`~realrt.layers.overlay.KernelUnionFS`: its mount point and, when it
    is rootless, the helper process whose user and mount namespaces hold that mount (0 as root)."""
    return union.mountpoint, int(union.helper_pid or 0)


def start_on(union: Any, spec: ContainerSpec, *, journal: Journal, cgroup_name: str | None = None) -> Process:
    """:func:`start` over a mounted :class:`~realrt.layers.overlay.KernelUnionFS`, root or rootless."""
    rootfs, join_pid = rootfs_of(union)
    return start(rootfs, spec, journal=journal, rootless=bool(getattr(union, "rootless", False)), join_pid=join_pid,
                 cgroup_name=cgroup_name)


def run_on(union: Any, spec: ContainerSpec, *, journal: Journal, timeout: float | None = None,
           cgroup_name: str | None = None) -> ExecResult:
    """:func:`run` over a mounted :class:`~realrt.layers.overlay.KernelUnionFS`, root or rootless."""
    rootfs, join_pid = rootfs_of(union)
    return run(rootfs, spec, journal=journal, timeout=timeout, rootless=bool(getattr(union, "rootless", False)),
               join_pid=join_pid, cgroup_name=cgroup_name)


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


# -- exec: a second process in a running container ----------------------------------------

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


def exec(process: Process, argv: Iterable[str], *, env: Iterable[str] | Mapping[str, str] | None = None,
         cwd: str | None = None, uid: int | None = None, gid: int | None = None, stdin: bytes | None = None,
         timeout: float | None = None) -> ExecResult:
    """Run ``argv`` inside ``process``'s namespaces and root (``docker exec``), wait, return its result.

    ``env`` is added to the container's environment; ``cwd``, ``uid`` and
    ``gid`` default to the container's.  The process gets the same
    capabilities, ``no_new_privs`` and masked paths (they belong to the mount
    namespace) as the container.  A missing program exits 127.
    """
    if not process.running:
        raise ContainerStateError(f"container pid {process.pid} is not running")
    base = dict(_split_env(process.spec.env))
    base.update(_split_env(ContainerSpec(("x",), env=env or ()).env))  # type: ignore[arg-type]  # validated
    spec = ContainerSpec(tuple(argv), env=tuple(f"{k}={v}" for k, v in base.items()),
                         cwd=process.spec.cwd if cwd is None else cwd,
                         uid=process.spec.uid if uid is None else uid, gid=process.spec.gid if gid is None else gid,
                         hostname=process.spec.hostname, network=process.spec.network, stdin=stdin)
    if process.rootless and (spec.uid or spec.gid):
        raise BackendUnavailableError("rootless containers map only uid 0")
    plan = _Plan(rootfs="/", spec=spec, rootless=process.rootless, join_pid=0, uid_map="", gid_map="",
                 capabilities=process._plan.capabilities, last_cap=process._plan.last_cap)
    fds = _pipes(spec)
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
        failure = _read_all(fds["err_r"])
        os.close(fds.pop("err_r"))
        if failure:
            os.waitpid(child, 0)
            child = 0
            raise pickle.loads(failure)
        out = _Output()
        pump = threading.Thread(target=_pump, daemon=True,
                                args=(out, {fds.pop("out_r"): 1, fds.pop("errout_r"): 2}, fds.pop("stdin_w", None),
                                      bytes(stdin or b"")))
        pump.start()
        try:
            if not _wait_pidfd(pidfd, timeout):
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                child = 0
                raise TimeoutError(f"exec {list(spec.argv)!r} still running after {timeout} s; killed")
            _, status = os.waitpid(child, 0)
            child = 0
        finally:
            os.close(pidfd)
            pump.join(5)
        return ExecResult(_exit_code(status), out.stream(1), out.stream(2))
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


def _fork_into(ns: dict[str, int], plan: _Plan) -> int:
    """Fork a child that is already in the container's PID namespace, then joins the rest and execs."""
    rootless = plan.rootless
    if rootless:
        # An unprivileged thread cannot setns into a PID namespace; the child enters the user
        # namespace first and forks once more into the PID namespace.
        return _fork_child(lambda: _exec_rootless(ns, plan))
    return _fork_in_pid_ns(lambda: _syscalls.setns(ns["pid"], _syscalls.CLONE_NEWPID), lambda: _exec_main(ns, plan))


def _exec_main(ns: dict[str, int], plan: _Plan) -> None:  # pragma: no cover - child
    fds = plan.fds
    try:
        _close_parent_ends(fds)
        if "go_r" in fds and os.read(fds["go_r"], 1) != b"g":  # not yet in the container's cgroup
            os._exit(1)
        _child_stdio(fds)
        join_namespaces(ns)  # rootless: the user namespace was entered by the parent of this child
        spec = plan.spec
        _finish_and_exec(plan, fds["err_w"], spec.argv, spec.env, spec.cwd, spec.uid, spec.gid)
    except BaseException as exc:
        _report_and_exit(fds["err_w"], exc)


def _exec_rootless(ns: dict[str, int], plan: _Plan) -> None:  # pragma: no cover - child
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
        _syscalls.close_range(0)  # never execs: hold no pipe open (see _rootless_main)
        _, status = os.waitpid(pid, 0)
        os._exit(_exit_code(status))
    except BaseException as exc:
        _report_and_exit(fds["err_w"], exc)

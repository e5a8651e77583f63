"""The container's root file system, prepared in its new mount namespace (挂载, mounts).

:func:`prepare_root` runs in the child, before ``execve``: the root made private (nothing
propagates to the host), ``/proc``, a minimal ``/dev`` (a tmpfs with the host's harmless
device nodes bound in) and a read-only ``/sys`` mounted, the bind mounts placed, then
``pivot_root`` and Docker's masked and read-only paths.  Every path inside the image is
opened with ``openat2`` confined to the root, so a symlink in a layer cannot point a mount at
the host.
"""

from __future__ import annotations

import errno
import os
import stat

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
from realrt.containers._plan import Plan
from realrt.containers.spec import BindMount
from sim.errors import UnsafeLayerError

__all__ = ["prepare_root", "MASKED_PATHS", "READONLY_PATHS", "DEVICES"]

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

_ST_TO_MS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
             (os.ST_NOATIME, 1 << 10), (os.ST_NODIRATIME, 1 << 11), (os.ST_RELATIME, 1 << 21))


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


def _mount_dev(root: int, plan: Plan) -> None:
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


def prepare_root(plan: Plan) -> None:
    """In the new mount namespace: mounts, pivot_root, masks.  Afterwards "/" is the container's root."""
    spec = plan.spec
    _syscalls.mount("none", "/", None, MS_REC | MS_PRIVATE)  # nothing we mount propagates to the host
    _syscalls.mount(plan.rootfs, plan.rootfs, None, MS_BIND | MS_REC)  # pivot_root needs a mount point
    # nodev: a device node made in the image or the container layer (CAP_MKNOD is in the default set)
    # cannot be opened, so a container cannot reach a host disk through one; Docker's device cgroup
    # allow-list does the same job.  /dev is a mount of its own below, with the few nodes it needs.
    _syscalls.mount("none", plan.rootfs, None, MS_BIND | MS_REMOUNT | MS_NODEV | _mount_flags(plan.rootfs))
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

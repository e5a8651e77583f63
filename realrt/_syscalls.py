"""The few Linux system calls Python's ``os`` module lacks: mount, umount2, openat2, unshare."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import math
import os
import select

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]

_EAGAIN_RETRIES = 64
SYS_OPENAT2 = 437  # x86_64 and aarch64 share these numbers
SYS_MOVE_MOUNT = 429
SYS_FSOPEN = 430
SYS_FSCONFIG = 431
SYS_FSMOUNT = 432
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10

MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _check(result: int, what: str, path: str | None = None) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}", path)
    return result


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = RESOLVE_IN_ROOT) -> int:
    """``openat2(2)``: with ``RESOLVE_IN_ROOT`` the walk treats ``dirfd`` as ``/``."""
    tmpfile = getattr(os, "O_TMPFILE", 0)
    takes_mode = flags & os.O_CREAT or (tmpfile and flags & tmpfile == tmpfile)
    how = _OpenHow(flags | os.O_CLOEXEC, mode if takes_mode else 0, resolve)  # openat2 refuses a stray mode
    encoded = os.fsencode(path)
    for _ in range(_EAGAIN_RETRIES):
        result = _libc.syscall(SYS_OPENAT2, ctypes.c_int(dirfd), encoded, ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if result >= 0:
            return int(result)
        code = ctypes.get_errno()
        # With RESOLVE_IN_ROOT the kernel answers EAGAIN when a rename or mount anywhere on the
        # system raced with a ".." step of the walk; openat2(2) says to simply try again.
        if code != errno.EAGAIN:
            break
    raise OSError(code, os.strerror(code), path)


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(
        _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags, data.encode() if data else None),
        "mount",
        target,
    )


def _sys(number: int, *args: object) -> int:
    result = _libc.syscall(number, *args)
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(result)


def fsmount_overlay(target: str, settings: list[tuple[str, str | None]]) -> None:
    """Mount an overlay with the new mount API (fsopen/fsconfig/fsmount/move_mount).

    Each ``(key, value)`` is one fsconfig call (``value=None`` sets a flag), so
    ``lowerdir+`` can add any number of layers: the one-page limit of the
    ``mount(2)`` option string does not apply.
    """
    fs = _sys(SYS_FSOPEN, b"overlay", ctypes.c_uint(1))  # FSOPEN_CLOEXEC
    try:
        for key, value in settings:
            if value is None:
                _sys(SYS_FSCONFIG, ctypes.c_int(fs), ctypes.c_uint(FSCONFIG_SET_FLAG), key.encode(), None, ctypes.c_int(0))
            else:
                _sys(SYS_FSCONFIG, ctypes.c_int(fs), ctypes.c_uint(FSCONFIG_SET_STRING), key.encode(), value.encode(),
                     ctypes.c_int(0))
        _sys(SYS_FSCONFIG, ctypes.c_int(fs), ctypes.c_uint(FSCONFIG_CMD_CREATE), None, None, ctypes.c_int(0))
        mnt = _sys(SYS_FSMOUNT, ctypes.c_int(fs), ctypes.c_uint(1), ctypes.c_uint(0))  # FSMOUNT_CLOEXEC
        try:
            _sys(SYS_MOVE_MOUNT, ctypes.c_int(mnt), b"", ctypes.c_int(AT_FDCWD), target.encode(),
                 ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH))
        finally:
            os.close(mnt)
    finally:
        os.close(fs)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(target.encode(), flags), "umount", target)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def readable(fd: int, timeout: float | None) -> bool:
    """``fd`` (a pipe, a socket, a pidfd: readable once its process exits) is readable within
    ``timeout`` seconds (None or infinity: however long it takes).  poll(2), not select(2): a
    long-lived engine's descriptors pass select's limit of 1024."""
    wait_ms = -1 if timeout is None or math.isinf(timeout) else max(0, math.ceil(timeout * 1000))
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(wait_ms))


def openat2_supported() -> bool:
    root = os.open("/", os.O_PATH | os.O_CLOEXEC)
    try:
        os.close(openat2(root, ".", os.O_PATH))
    except OSError:
        return False
    finally:
        os.close(root)
    return True


# -- added for the container runtime (realrt/containers/) ---------------------------------

import platform as _platform  # noqa: E402

_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

#: pivot_root(2) has no wrapper in older glibc; the number differs per architecture.
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}.get(
    _platform.machine(), 155)

CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24

PR_SET_PDEATHSIG = 1
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
RESOLVE_BENEATH = 0x08
RESOLVE_NO_SYMLINKS = 0x04

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def setns(fd: int, nstype: int = 0) -> None:
    """``setns(2)``: join the namespace ``fd`` refers to (an open ``/proc/<pid>/ns/*``)."""
    _check(_libc.setns(fd, nstype), "setns")


def sethostname(name: str) -> None:
    data = name.encode()
    _check(_libc.sethostname(data, len(data)), "sethostname")


def pivot_root(new_root: str, put_old: str) -> None:
    _sys(SYS_PIVOT_ROOT, new_root.encode(), put_old.encode())


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), "prctl")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """``capset(2)`` on the calling thread; each set is a 64-bit mask (bit N = capability N)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def last_cap() -> int:
    """The highest capability number this kernel knows (``/proc/sys/kernel/cap_last_cap``)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return 40

SYS_CLOSE_RANGE = 436  # the same number on every architecture (added after the syscall table unification)


def close_range(first: int, last: int = 0xFFFFFFFF) -> None:
    """Close every descriptor from ``first`` to ``last``; falls back to walking ``/proc/self/fd``."""
    if _libc.syscall(SYS_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(0)) == 0:
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if first <= fd <= last:
            try:
                os.close(fd)
            except OSError:
                pass


def default_signals() -> None:
    """Every signal back to its default action (an ignored signal stays ignored across execve)."""
    _libc.signal.restype = ctypes.c_void_p
    _libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
    for sig in range(1, 65):
        if sig not in (9, 19):  # SIGKILL and SIGSTOP cannot be changed
            _libc.signal(sig, None)  # SIG_DFL is 0

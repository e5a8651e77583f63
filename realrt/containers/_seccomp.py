"""Docker's default seccomp filter, compiled by libseccomp in the parent, loaded by the child (系统调用过滤).

:func:`compile_filter` turns the profile of :mod:`realrt.containers._seccomp_profile` into a
classic-BPF program for this machine through ``libseccomp.so.2`` (ctypes; Debian's
``libseccomp2``), choosing the rules as moby's ``setupSeccomp`` does: a rule that needs
capabilities applies only when the container has them all, one with ``excludes`` only when it
has none of them, per architecture and kernel version.  It runs in the parent, before the fork,
because the child has already switched to the container's root when it loads the filter (the
host's libseccomp is not there) and must not allocate much.  :func:`load` is the child's half:
``prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)`` with the bytes, after ``no_new_privs`` and
just before ``execve``, so the runtime's own set-up (mounts, ``pivot_root``, ``sethostname``)
is not filtered and everything the program does is.

Left out, unlike runc: the stub that answers ``ENOSYS`` (not ``EPERM``) for system calls newer
than any the profile names; such a call gets ``EPERM`` here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

from realrt import _syscalls
from realrt.containers._caps import CAPABILITIES
from realrt.containers._seccomp_profile import ARCH_MAP, DEFAULT_ERRNO, RULES, Rule
from sim.errors import BackendUnavailableError

__all__ = ["compile_filter", "selected_rules", "load", "available", "PROFILE_NAME", "UNCONFINED"]

#: How ``docker inspect`` names the two settings layerlab supports.
PROFILE_NAME = "docker-default"
UNCONFINED = "unconfined"

_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_ACT_ERRNO = 0x00050000
_NR_SCMP_ERROR = -1
_OPS = {"NE": 1, "LT": 2, "LE": 3, "EQ": 4, "GE": 5, "GT": 6, "MASKED_EQ": 7}
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_SOCK_FILTER_SIZE = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k
#: platform.machine() -> the architecture names Docker's profile uses in includes/excludes.
_DOCKER_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "s390x": "s390x", "riscv64": "riscv64", "ppc64le": "ppc64le"}


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp")
    if name is None:
        raise BackendUnavailableError("the default seccomp filter needs libseccomp.so.2 (Debian: apt-get install "
                                      "libseccomp2); or run with --security-opt seccomp=unconfined")
    lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def available() -> bool:
    """Whether libseccomp can be found (the filter can be compiled on this host)."""
    return ctypes.util.find_library("seccomp") is not None


def _kernel_at_least(minimum: str) -> bool:
    def numbers(text: str) -> tuple[int, ...]:
        out = []
        for part in text.split("-")[0].split(".")[:3]:
            digits = "".join(ch for ch in part if ch.isdigit())
            out.append(int(digits or 0))
        return tuple(out)

    return numbers(os.uname().release) >= numbers(minimum)


def _applies(rule: Rule, arch: str, caps: frozenset[str]) -> bool:
    """moby's ``includes``/``excludes`` test for one rule (profiles/seccomp/seccomp_linux.go)."""
    if rule.arches and arch not in rule.arches:
        return False
    if rule.caps and not all(cap in caps for cap in rule.caps):
        return False
    if rule.min_kernel and not _kernel_at_least(rule.min_kernel):
        return False
    if arch in rule.not_arches:
        return False
    return not any(cap in caps for cap in rule.not_caps)


def selected_rules(capabilities: int, machine: str | None = None) -> list[Rule]:
    """The profile's rules that apply to a container with the ``capabilities`` bit mask on ``machine``."""
    caps = frozenset(name for name, bit in CAPABILITIES.items() if capabilities >> bit & 1)
    arch = _DOCKER_ARCH.get(machine or platform.machine(), machine or platform.machine())
    return [rule for rule in RULES if _applies(rule, arch, caps)]


def compile_filter(capabilities: int) -> bytes:
    """The default profile as a BPF program (``struct sock_filter`` array) for a container with ``capabilities``.

    Calls no rule allows get ``EPERM``; a name this libseccomp does not know is left out (the
    call then gets ``EPERM`` too, as under Docker with the same library).  Raises
    :class:`~sim.errors.BackendUnavailableError` when libseccomp is missing or refuses a rule."""
    lib = _library()
    ctx = lib.seccomp_init(_SCMP_ACT_ERRNO | DEFAULT_ERRNO)
    if not ctx:
        raise BackendUnavailableError("libseccomp could not make a filter (seccomp_init failed)")
    try:
        for sub in ARCH_MAP.get(platform.machine(), ()):
            token = lib.seccomp_arch_resolve_name(sub.encode())
            result = lib.seccomp_arch_add(ctx, token) if token else 0
            if result < 0 and -result != 17:  # EEXIST: already there
                raise BackendUnavailableError(f"libseccomp refused the architecture {sub}: {os.strerror(-result)}")
        for rule in selected_rules(capabilities):
            _add(lib, ctx, rule)
        return _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


def _add(lib: ctypes.CDLL, ctx: int, rule: Rule) -> None:
    action = _SCMP_ACT_ALLOW if rule.action == "allow" else _SCMP_ACT_ERRNO | (rule.errno_ret & 0xFFFF)
    array = (_ArgCmp * max(1, len(rule.args)))()
    for i, arg in enumerate(rule.args):
        array[i] = _ArgCmp(arg.index, _OPS[arg.op], arg.value, arg.value_two)
    for name in rule.names:
        number = lib.seccomp_syscall_resolve_name(name.encode())
        if number == _NR_SCMP_ERROR:
            continue  # unknown to this libseccomp (runc skips these too)
        result = lib.seccomp_rule_add_array(ctx, action, number, len(rule.args), array)
        if result < 0:
            raise BackendUnavailableError(f"libseccomp refused the rule for {name}: {os.strerror(-result)}")


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    fd = os.memfd_create("layerlab-seccomp", os.MFD_CLOEXEC)
    try:
        result = lib.seccomp_export_bpf(ctx, fd)
        if result < 0:
            raise BackendUnavailableError(f"libseccomp could not export the filter: {os.strerror(-result)}")
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def load(program: bytes) -> None:  # pragma: no cover - child
    """Install ``program`` (from :func:`compile_filter`) on the calling thread; needs ``no_new_privs``
    (or CAP_SYS_ADMIN).  From here every system call is filtered, ``execve`` included."""
    if not program or len(program) % _SOCK_FILTER_SIZE:
        raise ValueError("a seccomp program is a non-empty array of 8-byte instructions")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // _SOCK_FILTER_SIZE, ctypes.addressof(buffer))
    _syscalls.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog))


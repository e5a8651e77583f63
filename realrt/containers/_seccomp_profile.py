"""Docker's default seccomp profile as data (默认 seccomp 配置): what :mod:`realrt.containers._seccomp` compiles.

Transcribed from moby's ``profiles/seccomp/default.json`` at commit
``00f3d189e420d485e42d15fe494f96d272284e0e`` of github.com/moby/moby.  By its contents it is
the profile of Docker Engine 25 and later (it blocks ``socket(AF_VSOCK, ...)``, allows
``name_to_handle_at`` and ``pkey_*`` to everyone and has the ``CAP_BPF``/``CAP_PERFMON`` rules);
that was read from the file, not checked against a release tag.  Every entry of the file's
``syscalls`` array is one :class:`Rule` below, in the file's order, with the same names, action,
argument conditions and ``includes``/``excludes``; the default action is ``SCMP_ACT_ERRNO`` with
``defaultErrnoRet`` 1 (``EPERM``), and ``ARCH_MAP`` is the file's ``archMap`` (libseccomp's
lower-case architecture names).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rule", "Arg", "RULES", "DEFAULT_ERRNO", "ARCH_MAP", "SOURCE"]

#: Where the data comes from (shown by the model and in the docs).
SOURCE = "moby/moby profiles/seccomp/default.json @ 00f3d189e420d485e42d15fe494f96d272284e0e"

#: ``defaultErrnoRet``: a call no rule allows fails with EPERM.
DEFAULT_ERRNO = 1

#: ``archMap`` for the architectures layerlab runs on: the native one and the sub-architectures
#: whose system calls the filter also covers (a 32-bit x86 program on x86_64 is filtered too).
ARCH_MAP: dict[str, tuple[str, ...]] = {
    "x86_64": ("x86", "x32"),
    "aarch64": ("arm",),
    "s390x": ("s390",),
    "riscv64": (),
}


@dataclass(frozen=True)
class Arg:
    """One argument condition (moby's ``args`` entry): ``op`` is libseccomp's name without ``SCMP_CMP_``.

    For ``MASKED_EQ`` the argument matches when ``arg & value == value_two`` (libseccomp's datum_a, datum_b)."""

    index: int
    op: str
    value: int
    value_two: int = 0


@dataclass(frozen=True)
class Rule:
    """One entry of the profile's ``syscalls`` array.

    ``action`` is ``"allow"`` or ``"errno"`` (then ``errno_ret``); all ``args`` must hold.
    The rule applies when the architecture is in ``arches`` (if any), the container has every
    capability of ``caps`` (if any), the kernel is at least ``min_kernel`` (if any), the
    architecture is not in ``not_arches`` and the container has none of ``not_caps``.
    Architectures use Docker's names (``amd64``, ``arm64``, ``x86`` ...)."""

    names: tuple[str, ...]
    action: str = "allow"
    errno_ret: int = 0
    args: tuple[Arg, ...] = ()
    arches: tuple[str, ...] = ()
    caps: tuple[str, ...] = ()
    min_kernel: str = ""
    not_arches: tuple[str, ...] = ()
    not_caps: tuple[str, ...] = ()


_ALLOWED = """
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime
clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create
epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2
execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32
getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority
getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid
getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch
inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter io_uring_register
io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32
lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall
mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal
pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2
prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename
renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send
sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area
set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd
signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx symlink
symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask
uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write
writev
"""

#: CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET:
#: without CAP_SYS_ADMIN, clone may make no namespace.
_CLONE_NAMESPACE_FLAGS = 2114060288


def _personality(value: int) -> Rule:
    return Rule(("personality",), args=(Arg(0, "EQ", value),))


RULES: tuple[Rule, ...] = (
    Rule(tuple(_ALLOWED.split())),
    Rule(("process_vm_readv", "process_vm_writev", "ptrace"), min_kernel="4.8"),
    Rule(("socket",), args=(Arg(0, "NE", 40),)),  # anything but AF_VSOCK
    _personality(0),  # PER_LINUX
    _personality(8),  # PER_LINUX32
    _personality(131072),  # PER_LINUX | UNAME26
    _personality(131080),  # PER_LINUX32 | UNAME26
    _personality(4294967295),  # a query: 0xffffffff changes nothing
    Rule(("sync_file_range2", "swapcontext"), arches=("ppc64le",)),
    Rule(("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"),
         arches=("arm", "arm64")),
    Rule(("arch_prctl",), arches=("amd64", "x32")),
    Rule(("modify_ldt",), arches=("amd64", "x32", "x86")),
    Rule(("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"), arches=("s390", "s390x")),
    Rule(("riscv_flush_icache",), arches=("riscv64",)),
    Rule(("open_by_handle_at",), caps=("CAP_DAC_READ_SEARCH",)),
    Rule(("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
          "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
          "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare"),
         caps=("CAP_SYS_ADMIN",)),
    Rule(("clone",), args=(Arg(0, "MASKED_EQ", _CLONE_NAMESPACE_FLAGS),), not_caps=("CAP_SYS_ADMIN",),
         not_arches=("s390", "s390x")),
    Rule(("clone",), args=(Arg(1, "MASKED_EQ", _CLONE_NAMESPACE_FLAGS),), arches=("s390", "s390x"),
         not_caps=("CAP_SYS_ADMIN",)),  # s390's clone takes the flags second
    # glibc falls back to clone when clone3 says ENOSYS; clone3's flags are in memory, out of the filter's reach.
    Rule(("clone3",), action="errno", errno_ret=38, not_caps=("CAP_SYS_ADMIN",)),
    Rule(("reboot",), caps=("CAP_SYS_BOOT",)),
    Rule(("chroot",), caps=("CAP_SYS_CHROOT",)),
    Rule(("delete_module", "init_module", "finit_module"), caps=("CAP_SYS_MODULE",)),
    Rule(("acct",), caps=("CAP_SYS_PACCT",)),
    Rule(("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"),
         caps=("CAP_SYS_PTRACE",)),
    Rule(("iopl", "ioperm"), caps=("CAP_SYS_RAWIO",)),
    Rule(("settimeofday", "stime", "clock_settime", "clock_settime64"), caps=("CAP_SYS_TIME",)),
    Rule(("vhangup",), caps=("CAP_SYS_TTY_CONFIG",)),
    Rule(("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"), caps=("CAP_SYS_NICE",)),
    Rule(("syslog",), caps=("CAP_SYSLOG",)),
    Rule(("bpf",), caps=("CAP_BPF",)),
    Rule(("perf_event_open",), caps=("CAP_PERFMON",)),
)

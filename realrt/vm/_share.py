"""A guest that runs the host's own programs (共享主机根目录, the host's root shared read-only).

:func:`run_in_guest` boots Debian's generic kernel (:func:`realrt.vm.kernel.find_share_kernel`:
the cloud kernel has no 9p) with a busybox initramfs that holds the 9p and overlay modules, and
runs one command of the host's (e.g. the host's Python with this checkout) in the guest:

1. ``/init`` prints the marker line (:data:`realrt.vm._console.MARKER_SCRIPT`), mounts ``/proc``,
   ``/sys``, ``/dev`` and ``insmod``\\ s the modules in the order the kernel folder's ``order``
   file gives (dependencies first: no ``modprobe``, no ``modules.dep``);
2. it mounts the host's ``/`` (QEMU ``-fsdev local,readonly=on``: the guest cannot write one
   byte of the host) over ``virtio-9p`` and an overlay on it whose upper layer is guest memory,
   so the guest's root is the host's files and writable (every write stays in the guest); over
   that: ``/proc``, ``/sys``, the **cgroup v2** hierarchy at ``/sys/fs/cgroup`` (``nsdelegate``,
   as systemd mounts it), ``/dev``, a plain tmpfs at :data:`GUEST_SCRATCH` (overlayfs cannot be
   an upper layer: the real backend's state folder goes there) and, at :data:`GUEST_OUT`, a
   second 9p export: a folder of the host's, the only thing the guest can write to;
3. it runs the command there (``chroot``, a clean environment), prints ``LAYERLAB-EXIT <status>``
   and powers off.

The host reads what the command wrote to :data:`GUEST_OUT` (:attr:`GuestRun.files`) once QEMU
has exited; the console (kernel messages may land in the middle of a line) is kept for errors.
QEMU is a :class:`realrt.vm._guest.Guest`: recorded in the journal, killed with its owner, its
folder (the writable export included) removed afterwards.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shlex
import shutil
import stat
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from realrt.journal import Journal, default_state_dir
from realrt.vm import _initramfs
from realrt.vm._console import MARKER_SCRIPT, BootTimeoutError
from realrt.vm._guest import Guest
from realrt.vm.kernel import MODULE_ORDER, Kernel, find_share_kernel
from sim.errors import BackendUnavailableError, InvalidLimitError, InvalidSpecError

__all__ = ["GuestRun", "run_in_guest", "share_init_script", "share_argv", "GUEST_OUT", "GUEST_SCRATCH",
           "EXIT_LINE", "CPU_MODEL"]

#: Where the guest's command writes what the host reads back (a writable 9p export).
GUEST_OUT = "/run/layerlab-out"
#: A tmpfs of the guest's own: the real backend's overlay upper layers cannot live on an overlay.
GUEST_SCRATCH = "/run/layerlab-scratch"
EXIT_LINE = re.compile(rb"LAYERLAB-EXIT (\d+)\s*$", re.MULTILINE)
FAIL_LINE = re.compile(rb"LAYERLAB-FAIL ([^\r\n]*)")
PANIC_LINE = re.compile(rb"(Kernel panic[^\r\n]*)")
#: x86-64-v2 (SSE4.2, POPCNT): what the host's numpy wheels need at least (QEMU's default qemu64
#: gives "Illegal instruction"); "max" and "host" abort on this project's nested KVM ("failed to
#: set MSR"), and under TCG Nehalem ran the same workload faster than "max".
CPU_MODEL = "Nehalem"
_MODULES_DIR = "lib/modules"
_NINEP = "trans=virtio,version=9p2000.L,msize=512000"


@dataclass(frozen=True)
class GuestRun:
    """One command run in a guest.  ``exit_code``: the command's status (None when the guest
    stopped before it ended); ``files``: what it left in :data:`GUEST_OUT` (name -> bytes, top
    level only); ``boot_s``: QEMU's launch to the marker line of ``/init``; ``wall_s``: launch to
    QEMU's exit; ``accelerator``: "kvm" or "tcg", the one that ran it (``kvm_failure`` says why
    a KVM attempt was given up); ``console``: the tail of the serial console."""

    exit_code: int | None
    files: Mapping[str, bytes]
    accelerator: str
    boot_s: float
    wall_s: float
    kernel_version: str
    console: str
    qemu_argv: tuple[str, ...]
    kvm_failure: str = ""
    details: Mapping[str, object] = field(default_factory=dict)


def share_init_script(argv: Sequence[str], *, env: Mapping[str, str], cwd: str, modules: Sequence[str]) -> str:
    """The guest's ``/init`` (see the module's docstring) running ``argv`` in ``cwd`` with exactly
    ``env``.  :class:`InvalidSpecError` for an empty ``argv``, a relative ``cwd``, a bad
    variable name or a module name that is not a plain word."""
    if not argv or not all(isinstance(a, str) and a and "\x00" not in a for a in argv):
        raise InvalidSpecError(f"argv must be non-empty strings without NUL, got {list(argv)!r}")
    if not cwd.startswith("/"):
        raise InvalidSpecError(f"cwd must be an absolute path, got {cwd!r}")
    for key, value in env.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or "\x00" in value:
            raise InvalidSpecError(f"bad environment variable {key!r}")
    for name in modules:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise InvalidSpecError(f"bad module name {name!r}")
    command = " ".join(shlex.quote(a) for a in ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv])
    inner = f"cd {shlex.quote(cwd)} && exec {command}"
    fail = 'fail() { echo "LAYERLAB-FAIL $*"; poweroff -f; }'
    return "\n".join([
        "#!/bin/sh",
        MARKER_SCRIPT.rstrip("\n"),
        fail,
        "mount -t sysfs sysfs /sys && mount -t devtmpfs devtmpfs /dev || fail mounting /sys and /dev",
        *(f"insmod /{_MODULES_DIR}/{m}.ko || fail insmod {m}" for m in modules),
        "mkdir -p /host /upper /root",
        f"mount -t 9p -o {_NINEP},ro,cache=loose hostroot /host || fail mounting the host root over 9p",
        "mount -t tmpfs -o mode=0755 upper /upper && mkdir /upper/data /upper/work || fail the tmpfs of the overlay",
        "mount -t overlay -o lowerdir=/host,upperdir=/upper/data,workdir=/upper/work overlay /root"
        " || fail the overlay over the host root",
        "mount -t proc proc /root/proc && mount -t sysfs sysfs /root/sys || fail mounting /proc and /sys",
        # cgroup v2 alone, as a systemd host mounts it (the kernel has v1 too: nothing mounts it).
        "mount -t cgroup2 -o nsdelegate cgroup2 /root/sys/fs/cgroup || fail mounting cgroup2",
        "mount -t devtmpfs devtmpfs /root/dev || fail mounting /root/dev",
        "mkdir -p /root/dev/shm /root/dev/pts && mount -t tmpfs -o mode=1777 shm /root/dev/shm"
        " && mount -t devpts devpts /root/dev/pts || fail mounting /dev/shm and /dev/pts",
        f"mkdir -p /root{GUEST_SCRATCH} /root{GUEST_OUT}",
        f"mount -t tmpfs -o mode=0755 scratch /root{GUEST_SCRATCH} || fail the scratch tmpfs",
        f"mount -t 9p -o {_NINEP} out /root{GUEST_OUT} || fail mounting the output folder",
        'read up idle < /proc/uptime; echo "LAYERLAB-RUN $up"',  # the guest's uptime when the command starts
        f"chroot /root /bin/sh -c {shlex.quote(inner)}",
        'echo "LAYERLAB-EXIT $?"',
        "poweroff -f",
        "",
    ])


def _share_initramfs(cache_dir: Path, kernel: Kernel, script: str) -> Path:
    """The busybox initramfs (:mod:`realrt.vm._initramfs`) plus the kernel's modules in
    ``/lib/modules``, built once per content into ``cache_dir``."""
    from sim.images.base import busybox_layer  # BackendUnavailableError without a static busybox

    assert kernel.modules is not None
    names = _module_names(kernel)
    blobs = {n: (kernel.modules / f"{n}.ko").read_bytes() for n in names}
    digest = hashlib.sha256(b"".join(hashlib.sha256(blobs[n]).digest() for n in names)).hexdigest()
    key = hashlib.sha256("\x00".join((busybox_layer().diff_id, script, kernel.version, digest)).encode()).hexdigest()
    target = cache_dir / f"initramfs-share-{key[:24]}.cpio.gz"
    if target.is_file():
        return target
    entries = _initramfs.initramfs_entries(busybox_layer(), script)
    have = {e.name for e in entries}
    for folder in ("lib", _MODULES_DIR):
        if folder not in have:
            entries.append(_initramfs.CpioEntry(folder, stat.S_IFDIR | 0o755))
    entries += [_initramfs.CpioEntry(f"{_MODULES_DIR}/{n}.ko", stat.S_IFREG | 0o644, blobs[n]) for n in names]
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        # Level 1: the guest's decompressor runs under TCG too; the bytes are mostly modules.
        tmp.write_bytes(gzip.compress(_initramfs.newc_archive(entries), compresslevel=1, mtime=0))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _module_names(kernel: Kernel) -> list[str]:
    assert kernel.modules is not None
    try:
        names = (kernel.modules / MODULE_ORDER).read_text().split()
    except OSError as exc:
        raise BackendUnavailableError(f"cannot read the module order of {kernel.modules}: {exc}") from exc
    return names


def share_argv(accelerator: str, kernel: Kernel, initrd: Path, out_dir: Path, *, memory_mib: int, smp: int,
               qemu: str = "qemu-system-x86_64") -> list[str]:
    """QEMU's command line: no network, no disk, no display; the serial port on stdio; the host's
    ``/`` exported read-only (``multidevs=remap``: the host's mounts keep distinct inode numbers)
    and ``out_dir`` exported writable, both with ``security_model=none`` (QEMU runs as root and
    passes ownership and modes through: the guest's root sees the host's files as they are)."""
    return [qemu, "-machine", "q35", "-cpu", CPU_MODEL, "-accel", accelerator, "-m", str(memory_mib),
            "-smp", str(smp), "-nodefaults", "-nographic", "-no-reboot", "-serial", "stdio",
            "-kernel", str(kernel.path), "-initrd", str(initrd),
            "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
            "-fsdev", f"local,id=out,path={out_dir},security_model=none",
            "-device", "virtio-9p-pci,fsdev=out,mount_tag=out",
            "-append", "console=ttyS0 panic=-1 quiet loglevel=3"]


def _read_out(folder: Path, limit: int = 64 << 20) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_size <= limit:
                out[entry.name] = Path(entry.path).read_bytes()
    except OSError:
        pass
    return out


def run_in_guest(argv: Sequence[str], *, memory_mib: int = 1024, smp: int = 2, accel: str = "auto",
                 timeout: float = 240.0, kvm_deadline: float = 10.0, env: Mapping[str, str] | None = None,
                 cwd: str = "/", kernel: Kernel | None = None, cache_dir: str | os.PathLike[str] | None = None,
                 state_dir: str | os.PathLike[str] | None = None, qemu: str = "qemu-system-x86_64") -> GuestRun:
    """Boot a guest on the host's root (see the module's docstring), run ``argv`` there, wait
    until the guest powers off (at most ``timeout`` seconds from launch; then it is killed and
    :class:`BootTimeoutError` raised) and return the :class:`GuestRun`.

    ``accel`` "auto" tries KVM (when ``/dev/kvm`` is usable) until ``kvm_deadline`` seconds for
    the marker, then boots again with TCG, as :class:`realrt.vm.VM` does.  Root only (QEMU must
    read every file the command opens): :class:`BackendUnavailableError` otherwise, or without
    QEMU, the kernel (``./dev`` fetches it) or busybox; :class:`InvalidLimitError` /
    :class:`InvalidSpecError` for bad sizes, times or arguments, all before anything starts.
    The guest's failures (a module, a mount) raise :class:`BackendUnavailableError` with the
    step that failed."""
    from realrt.vm.machine import MIN_MEMORY_MIB, _positive, kvm_usable

    if isinstance(memory_mib, bool) or not isinstance(memory_mib, int) or not MIN_MEMORY_MIB <= memory_mib <= 1 << 20:
        raise InvalidLimitError(f"memory_mib must be an integer from {MIN_MEMORY_MIB} MiB, got {memory_mib!r}")
    if isinstance(smp, bool) or not isinstance(smp, int) or not 1 <= smp <= 255:
        raise InvalidLimitError(f"smp must be an integer from 1 to 255, got {smp!r}")
    if accel not in ("auto", "kvm", "tcg"):
        raise InvalidSpecError(f"accel must be 'auto', 'kvm' or 'tcg', not {accel!r}")
    timeout, kvm_deadline = _positive(timeout, "timeout"), _positive(kvm_deadline, "kvm_deadline")
    environment = dict(env) if env is not None else {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                                                     "LC_ALL": "C.UTF-8"}
    if os.geteuid() != 0:
        raise BackendUnavailableError("a guest on the host's root needs root: QEMU exports / and must read every "
                                      "file the guest opens (security_model=none)")
    found = shutil.which(qemu)
    if found is None:
        raise BackendUnavailableError(f"{qemu} not found: install Debian's qemu-system-x86 (./dev as root does)")
    kernel = kernel or find_share_kernel(cache_dir)
    if kernel.modules is None:
        raise InvalidSpecError(f"{kernel.path} comes without modules: use find_share_kernel()")
    script = share_init_script(argv, env=environment, cwd=cwd, modules=_module_names(kernel))
    state = Path(state_dir) if state_dir is not None else default_state_dir()
    initrd = _share_initramfs(state / "vm", kernel, script)
    journal = Journal(state)
    plan = [accel] if accel != "auto" else (["kvm", "tcg"] if kvm_usable() else ["tcg"])
    kvm_failure = ""
    for accelerator in plan:
        workdir = state / "vm" / f"share-{uuid.uuid4().hex[:12]}"
        qemu_argv = share_argv(accelerator, kernel, initrd, workdir / "out", memory_mib=memory_mib, smp=smp,
                               qemu=found)
        guest = Guest(qemu_argv, accelerator=accelerator, journal=journal, workdir=workdir, subdirs=("out",))
        try:
            fallback = accelerator == "kvm" and len(plan) > 1
            if fallback and not guest.wait_for_marker(guest.launched + kvm_deadline):
                said = " | ".join(guest.stderr_text().strip().splitlines()[-3:])
                kvm_failure = (f"no marker after {time.monotonic() - guest.launched:.1f} s with KVM"
                               + (f"; QEMU said: {said}" if said else ""))
                continue
            try:
                code = guest.proc.wait(max(0.0, guest.launched + timeout - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise BootTimeoutError(f"the guest ({accelerator}) did not finish in {timeout:.0f} s",
                                       console=guest.console.text()) from None
            wall = time.monotonic() - guest.launched
            guest.console.join(5)
            console = guest.console.text(1 << 20).encode()
            failed = FAIL_LINE.search(console) or PANIC_LINE.search(console)
            if failed:
                raise BackendUnavailableError(f"the guest's init failed: {failed.group(1).decode(errors='replace')} "
                                              f"(kernel {kernel.version})")
            if not guest.console.marker.is_set():
                raise BootTimeoutError(f"the guest ({accelerator}) never reached init (QEMU exited {code}): "
                                       f"{guest.stderr_text().strip()[-500:]}", console=console.decode(errors="replace"))
            ended = EXIT_LINE.search(console)
            return GuestRun(exit_code=int(ended.group(1)) if ended else None, files=_read_out(workdir / "out"),
                            accelerator=accelerator, boot_s=guest.console.marker_time - guest.launched, wall_s=wall,
                            kernel_version=kernel.version, console=console[-8000:].decode(errors="replace"),
                            qemu_argv=tuple(qemu_argv), kvm_failure=kvm_failure,
                            details={"qemu_exit": code, "memory_mib": memory_mib, "smp": smp})
        finally:
            guest.stop(grace=0)
    raise AssertionError("unreachable: the last accelerator returns or raises")

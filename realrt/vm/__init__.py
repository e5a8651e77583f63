"""容器和虚拟机 (containers vs VMs), measured: a real VM booted next to a real container.

A VM here is QEMU booting Debian's cloud kernel (downloaded as a package and unpacked, never
installed: :func:`fetch_kernel`) with an initramfs holding the base image's busybox tree and an
``/init`` script (:mod:`realrt.vm._initramfs`).  ``/init`` mounts ``/proc``, prints the marker line
``LAYERLAB-INIT <guest uptime>`` on the serial console and waits until the host lets it go
(a line on the console) or its hold time ends, then powers off.  The container runs the same
marker script (:data:`MARKER_SCRIPT`) from the same busybox files, so the two numbers compare
like for like: :func:`boot_and_measure` / :class:`VM` and :func:`measure_container_start` both
return a :class:`~sim.capacity.series.StartMeasurement`.

Accelerator policy, "KVM where it works, TCG otherwise": with ``accel="auto"`` a VM tries KVM
(when ``/dev/kvm`` is readable and writable by this user) with a short deadline for the marker;
if the guest does not get there in time (some hosts' KVM hangs early in boot) the attempt is
killed and the boot is done again with software emulation (TCG).  The verdict is kept on the
:class:`VM` instance, so its later boots go straight to what worked.

Cleanup, even when the owner is killed: QEMU gets ``PR_SET_PDEATHSIG=SIGKILL`` (it dies with the
thread that started it), it is recorded in the journal as a "process" (with its start time, so
:meth:`~realrt.journal.Journal.sweep` never kills a process that reused the pid), and its
temporary files live in a folder recorded as a "tree".

Files: the kernel in :func:`default_cache_dir` (shared, world-readable; written by root through
``./dev``); the initramfs, built per content hash, in ``<state dir>/vm`` (per user).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from realrt.journal import Journal, Record, default_state_dir
from realrt.vm import _initramfs
from sim.capacity.series import StartMeasurement
from sim.errors import (
    BackendUnavailableError,
    ConflictError,
    InvalidLimitError,
    InvalidSpecError,
    LayerlabError,
)

__all__ = [
    "VM",
    "Kernel",
    "BootTimeoutError",
    "boot_and_measure",
    "measure_container_start",
    "fetch_kernel",
    "find_kernel",
    "default_cache_dir",
    "kvm_usable",
    "vm_init_script",
    "MARKER",
    "MARKER_SCRIPT",
    "MIN_MEMORY_MIB",
    "CLOUD_KERNEL_PACKAGE",
]

MiB = 1 << 20
#: With 64 MiB the cloud kernel's decompressor gives up and the guest resets before printing
#: anything (80 MiB boots; measured with 6.1 cloud-amd64): keep a margin above that.
MIN_MEMORY_MIB = 96
_MAX_MEMORY_MIB = 1 << 20  # 1 TiB: a typo guard, not a host limit
_MAX_SMP = 255
#: Debian's metapackage that depends on the current cloud kernel image package.
CLOUD_KERNEL_PACKAGE = "linux-image-cloud-amd64"
_DEFAULT_CACHE = "/var/cache/layerlab/vm"
_FETCH_HINT = "run ./dev as root once (or, as root: python -m realrt.vm fetch)"

#: The first word of the line the guest's init (or the container's command) prints.
MARKER = "LAYERLAB-INIT"
_MARKER_LINE = re.compile(rb"LAYERLAB-INIT (\d+(?:\.\d+)?)\s*$", re.MULTILINE)

#: What the VM's ``/init`` and the container's command both run first: mount ``/proc`` unless the
#: runtime already did (a container has it; its capabilities would refuse a second mount), then
#: print the marker with the uptime the kernel reports.
MARKER_SCRIPT = (
    "[ -r /proc/uptime ] || mount -t proc proc /proc\n"
    "read up idle < /proc/uptime\n"
    f'echo "{MARKER} $up"\n'
)


def vm_init_script() -> str:
    """The guest's ``/init``: :data:`MARKER_SCRIPT`, then wait for a line on the console (the host
    sends one to stop it) or ``LAYERLAB_WAIT`` seconds (the kernel passes unknown ``KEY=value``
    boot parameters to init as environment), then power off at once."""
    return ("#!/bin/sh\n" + MARKER_SCRIPT
            + 'read -t "${LAYERLAB_WAIT:-60}" line\n'
            + "poweroff -f\n")


class BootTimeoutError(LayerlabError, TimeoutError):
    """The guest's init did not print its marker in time (or QEMU ended before it did).
    ``console`` holds the tail of what the guest printed, to see where it stopped."""

    def __init__(self, message: str, *, console: str = "") -> None:
        super().__init__(message)
        self.console = console

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_timeout, (str(self), self.console))


def _rebuild_timeout(message: str, console: str) -> BootTimeoutError:
    return BootTimeoutError(message, console=console)


# -- the kernel ----------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$LAYERLAB_VM_CACHE``, else ``/var/cache/layerlab/vm``: where the unpacked kernel lives."""
    return Path(os.environ.get("LAYERLAB_VM_CACHE") or _DEFAULT_CACHE)


@dataclass(frozen=True)
class Kernel:
    """An unpacked kernel image: ``path`` (``vmlinuz-<version>``) and the package's ``version``."""

    path: Path
    version: str


def _version_key(version: str) -> list[tuple[int, object]]:
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", version) if p]


def find_kernel(cache_dir: str | os.PathLike[str] | None = None) -> Kernel:
    """The newest ``vmlinuz-*`` in the cache; :class:`BackendUnavailableError` saying how to
    fetch it when there is none, or when this user cannot read it."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        names = [n for n in os.listdir(cache) if n.startswith("vmlinuz-") and len(n) > 8]
    except OSError:
        names = []
    if not names:
        raise BackendUnavailableError(f"no VM kernel in {cache}: {_FETCH_HINT}")
    name = max(names, key=lambda n: _version_key(n[8:]))
    path = cache / name
    if not os.access(path, os.R_OK):
        raise BackendUnavailableError(f"{path} is not readable by this user (Debian ships kernels 0600); "
                                      f"{_FETCH_HINT}, which makes it 0644")
    return Kernel(path, name[8:])


def _run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=600, **kwargs)
    except subprocess.CalledProcessError as exc:
        raise BackendUnavailableError(f"{' '.join(argv)} failed ({exc.returncode}): "
                                      f"{(exc.stderr or exc.stdout or '').strip()[-500:]}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendUnavailableError(f"{' '.join(argv)} failed: {exc}") from exc


def _versioned_package(meta: str) -> str | None:
    """``linux-image-<abi>-cloud-amd64``, the package ``meta`` depends on, per ``apt-cache``."""
    try:
        out = subprocess.run(["apt-cache", "depends", meta], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.findall(r"^\s*Depends:\s*(linux-image-\S+-cloud-amd64)\s*$", out, re.MULTILINE)
    return found[0] if found else None


def fetch_kernel(cache_dir: str | os.PathLike[str] | None = None, *, package: str | None = None) -> Kernel:
    """Download the cloud kernel package into the cache, unpack it, keep only ``vmlinuz-*``
    (made 0644, so every user can boot it) and return it.  Idempotent: with a kernel already in
    the cache this only returns it.  Runs ``apt-get update`` only when ``apt-cache`` does not
    know the package.  Needs ``apt-get`` and ``dpkg-deb``, and root to update the package lists
    or write the default cache; :class:`BackendUnavailableError` otherwise."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        return find_kernel(cache)
    except BackendUnavailableError:
        pass
    if platform.machine() not in ("x86_64", "amd64"):
        raise BackendUnavailableError(f"the cloud kernel package is for amd64; this host is {platform.machine()}")
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise BackendUnavailableError(f"fetching the VM kernel needs {tool} (a Debian host)")
    name = package or _versioned_package(CLOUD_KERNEL_PACKAGE)
    if name is None and os.geteuid() == 0:
        _run(["apt-get", "update", "-qq"])  # fresh machines ship without package lists
        name = _versioned_package(CLOUD_KERNEL_PACKAGE)
    if name is None:
        raise BackendUnavailableError(f"apt-cache knows no {CLOUD_KERNEL_PACKAGE}; {_FETCH_HINT}")
    cache.mkdir(parents=True, exist_ok=True)
    os.chmod(cache, 0o755)  # the unprivileged test user boots the same kernel
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        os.chmod(tmp, 0o755)
        if os.geteuid() == 0:
            try:  # apt downloads as its sandbox user, which must be able to write here
                shutil.chown(tmp, user="_apt")
            except (LookupError, OSError):
                pass
        _run(["apt-get", "download", "-q", name], cwd=tmp)
        debs = sorted(Path(tmp).glob("*.deb"))
        if len(debs) != 1:
            raise BackendUnavailableError(f"apt-get download {name} gave {[d.name for d in debs]}, not one package")
        unpacked = Path(tmp) / "root"
        _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)])
        images = sorted((unpacked / "boot").glob("vmlinuz-*"))
        if len(images) != 1:
            raise BackendUnavailableError(f"{debs[0].name} holds {[i.name for i in images]}, not one boot/vmlinuz-*")
        staged = cache / f".{images[0].name}.tmp"
        shutil.copyfile(images[0], staged)
        os.chmod(staged, 0o644)  # Debian ships it 0600
        os.replace(staged, cache / images[0].name)
    return find_kernel(cache)


# -- QEMU ----------------------------------------------------------------------------------------


def kvm_usable(device: str = "/dev/kvm") -> bool:
    """``/dev/kvm`` exists and this user may open it read-write (whether KVM then *boots* is
    what :class:`VM` finds out)."""
    return os.path.exists(device) and os.access(device, os.R_OK | os.W_OK)


def _pdeathsig_setter(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: in the forked child, ask for SIGKILL when the parent thread ends, and
    die now if the parent already did (then the request came too late to fire)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    prctl = libc.prctl  # resolved here: the child should do as little as possible before exec

    def setter() -> None:  # pragma: no cover - runs in the child
        prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return setter


def _status_bytes(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of ``/proc/<pid>/status``, and ``Pss`` of ``smaps_rollup``, in bytes."""
    out: dict[str, int] = {}
    for path, keys in ((f"/proc/{pid}/status", ("VmRSS", "VmHWM")), (f"/proc/{pid}/smaps_rollup", ("Pss",))):
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                for line in fh:
                    key, _, rest = line.partition(":")
                    if key in keys and rest.split():
                        out[key] = int(rest.split()[0]) * 1024  # the kernel writes kB
        except OSError:
            pass  # smaps_rollup may be unreadable (ptrace rules); status of a gone process too
    return out


class _Console:
    """Drains QEMU's stdout (the guest's serial port) on a thread, keeping it all, and notes
    ``time.monotonic()`` when the marker line first arrives."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._data = bytearray()
        self._lock = threading.Lock()
        self.marker = threading.Event()
        self.closed = threading.Event()
        self.marker_time = 0.0
        self.uptime = 0.0
        self._thread = threading.Thread(target=self._pump, name="vm-console", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            while chunk := os.read(self._fd, 65536):
                now = time.monotonic()
                with self._lock:
                    scan_from = max(0, len(self._data) - 64)  # a marker may straddle two reads
                    self._data += chunk
                    if not self.marker.is_set():
                        found = _MARKER_LINE.search(self._data, scan_from)
                        if found:
                            self.marker_time, self.uptime = now, float(found.group(1))
                            self.marker.set()
        except OSError:
            pass
        finally:
            self.closed.set()

    def text(self, tail: int = 4000) -> str:
        with self._lock:
            return bytes(self._data[-tail:]).decode("utf-8", "replace")

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def done(self) -> bool:
        """The thread ended: it reads the fd no more, which may now be closed."""
        return not self._thread.is_alive()


class _Guest:
    """One QEMU process and what it owns: its journal records, temporary folder and console."""

    def __init__(self, argv: list[str], *, accelerator: str, journal: Journal, workdir: Path) -> None:
        self.accelerator = accelerator
        self.argv = argv
        self._journal = journal
        self._records: list[Record] = []
        self.workdir = workdir
        stderr = None
        try:
            self._records.append(journal.record("tree", str(workdir)))  # before the mkdir
            workdir.mkdir(parents=True, mode=0o700)
            stderr = open(workdir / "qemu.stderr", "wb")
            self.launched = time.monotonic()
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                         close_fds=True, preexec_fn=_pdeathsig_setter(os.getpid()),
                                         cwd=workdir, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                           "LC_ALL": "C"})
        except BaseException as exc:
            # Nothing runs yet: the folder (if made) and its record go, whatever stopped us.
            self._drop_records()
            if isinstance(exc, OSError):
                raise BackendUnavailableError(f"cannot start {argv[0]}: {exc}") from exc
            raise
        finally:
            if stderr is not None:
                stderr.close()
        try:
            # The pid is only known once it runs; if this process dies before the record is
            # written, PDEATHSIG already takes QEMU with it, so nothing is left unrecorded.
            self._records.append(journal.record("process", str(workdir), pid=self.proc.pid))
            assert self.proc.stdout is not None
            self.console = _Console(self.proc.stdout.fileno())
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            self._drop_records()
            raise

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stderr_text(self) -> str:
        try:
            return (self.workdir / "qemu.stderr").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def wait_for_marker(self, deadline: float) -> bool:
        """True once the marker arrived; False when ``deadline`` (monotonic) passed or QEMU ended."""
        while not self.console.marker.wait(0.02):
            if time.monotonic() > deadline or (not self.running and self.console.closed.is_set()):
                return self.console.marker.is_set()
        return True

    def stop(self, grace: float = 5.0) -> int | None:
        """Let the guest go (a line on its console: init powers off), SIGKILL after ``grace``
        seconds, reap, delete the folder, forget the records.  Idempotent; returns QEMU's status."""
        proc = self.proc
        if proc.poll() is None and grace > 0:
            try:
                assert proc.stdin is not None
                proc.stdin.write(b"\n")
                proc.stdin.flush()
            except (OSError, ValueError):
                pass
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        # QEMU is gone, so the console thread reads EOF and ends; only then is its fd closed
        # (closed earlier, the number could be reused by another open() between two reads and
        # the thread would read someone else's file).  QEMU's children would keep the pipe
        # open: it has none, but the join is bounded all the same, and a thread still reading
        # keeps the fd (the pipe is only closed with the Popen object then).
        self.console.join(5)
        streams = [proc.stdin] + ([proc.stdout] if self.console.done else [])
        for stream in streams:
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self._drop_records()
        return code

    def _drop_records(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        for rec in reversed(self._records):
            self._journal.forget(rec)
        self._records.clear()


def _kill_guest(guest: _Guest) -> None:
    """A dropped :class:`VM` that still ran one: no grace, just kill and clean up."""
    try:
        guest.stop(grace=0)
    except Exception:
        pass


def _positive(value: object, what: str) -> float:
    """A finite number > 0 (not a bool), or :class:`InvalidSpecError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidSpecError(f"{what} must be a positive finite number of seconds, got {value!r}")
    return float(value)


def _memory_mib(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidLimitError(f"memory_mib must be an integer number of MiB, got {value!r}")
    if not MIN_MEMORY_MIB <= value <= _MAX_MEMORY_MIB:
        raise InvalidLimitError(f"memory_mib must be from {MIN_MEMORY_MIB} to {_MAX_MEMORY_MIB} MiB, got {value}")
    return value


class VM:
    """A QEMU guest that can be booted (and measured) any number of times, one boot at a time.

    ``with VM(memory_mib=128) as vm:`` boots it (``vm.measurement`` is the
    :class:`StartMeasurement` of that boot) and stops it on exit.  Every argument is checked
    here, before anything is spawned or written: ``memory_mib`` an int from
    :data:`MIN_MEMORY_MIB` and ``smp`` an int from 1 (the guest's resource limits:
    :class:`InvalidLimitError`, as for a container's ``--memory``); ``accel`` one of ``"auto"``,
    ``"kvm"``, ``"tcg"``, ``machine`` a QEMU machine name, ``label`` a string, the timeouts
    positive finite numbers, not bools (a VM the model refuses: :class:`InvalidSpecError`).
    Both are subclasses of ``ValueError``.

    ``kvm_deadline``: seconds an ``auto`` boot gives KVM to reach the marker before falling back
    to TCG; ``boot_timeout``: seconds any other boot may take (:class:`BootTimeoutError`);
    ``hold``: the guest powers itself off after that many seconds if nobody stops it.
    QEMU is killed with the *thread* that booted it (``PR_SET_PDEATHSIG``): keep that thread
    alive while the VM runs.
    """

    def __init__(self, *, memory_mib: int = 128, smp: int = 1, accel: str = "auto", label: str = "vm",
                 machine: str = "q35", kvm_deadline: float = 5.0, boot_timeout: float = 60.0, hold: float = 120.0,
                 kernel: Kernel | None = None, cache_dir: str | os.PathLike[str] | None = None,
                 state_dir: str | os.PathLike[str] | None = None, qemu: str = "qemu-system-x86_64") -> None:
        self.memory_mib = _memory_mib(memory_mib)
        if isinstance(smp, bool) or not isinstance(smp, int) or not 1 <= smp <= _MAX_SMP:
            raise InvalidLimitError(f"smp must be an integer from 1 to {_MAX_SMP}, got {smp!r}")
        self.smp = smp
        if accel not in ("auto", "kvm", "tcg"):
            raise InvalidSpecError(f"accel must be 'auto', 'kvm' or 'tcg', not {accel!r}")
        self.accel = accel
        if not isinstance(machine, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", machine):
            raise InvalidSpecError(f"machine must be a QEMU machine type name, got {machine!r}")
        self.machine = machine
        if not isinstance(label, str):
            raise InvalidSpecError(f"label must be a string, got {label!r}")
        self.label = label
        self.kvm_deadline = _positive(kvm_deadline, "kvm_deadline")
        self.boot_timeout = _positive(boot_timeout, "boot_timeout")
        self.hold = _positive(hold, "hold")
        if kernel is not None and not isinstance(kernel, Kernel):
            raise InvalidSpecError(f"kernel must be a Kernel (see find_kernel) or None, got {kernel!r}")
        self._kernel = kernel
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.qemu = qemu
        self.kvm_works: bool | None = None  # the verdict of this instance's first KVM try (None: untried)
        self.measurement: StartMeasurement | None = None
        self._guest: _Guest | None = None
        self._finalizer: weakref.finalize | None = None
        self._qemu_version: str | None = None

    # -- what a boot needs, found before anything is spawned --------------------------------------

    def _qemu_binary(self) -> str:
        found = shutil.which(self.qemu)
        if found is None:
            raise BackendUnavailableError(f"{self.qemu} not found: install Debian's qemu-system-x86 "
                                          "(apt-get install --no-install-recommends qemu-system-x86; ./dev as root does)")
        if self._qemu_version is None:
            try:
                out = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30).stdout
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise BackendUnavailableError(f"{found} --version failed: {exc}") from exc
            self._qemu_version = (out.splitlines() or ["unknown"])[0].strip()
        return found

    def _initramfs(self) -> Path:
        from sim.images.base import (
            busybox_layer,  # BackendUnavailableError without a static busybox
        )

        return _initramfs.cached_initramfs(self.state_dir / "vm", busybox_layer(), vm_init_script())

    def _plan(self) -> list[str]:
        if self.accel != "auto":
            return [self.accel]
        if self.kvm_works is False or not kvm_usable():
            return ["tcg"]
        return ["kvm"] if self.kvm_works else ["kvm", "tcg"]

    def argv(self, accelerator: str, kernel: Kernel, initrd: Path, qemu: str = "qemu-system-x86_64") -> list[str]:
        """QEMU's command line for one boot (no network, no disk, no display: the serial port on
        stdio is the guest's only device the host talks to)."""
        hold = max(1, round(self.hold))
        # The same default CPU model for both accelerators: the two command lines differ only in
        # -accel (and "-cpu host" aborts on some nested KVM hosts: "failed to set MSR").
        return [qemu, "-machine", self.machine, "-accel", accelerator, "-m", str(self.memory_mib),
                "-smp", str(self.smp), "-nodefaults", "-nographic", "-no-reboot", "-serial", "stdio",
                "-kernel", str(kernel.path), "-initrd", str(initrd),
                "-append", f"console=ttyS0 panic=-1 quiet LAYERLAB_WAIT={hold}"]

    # -- booting -----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._guest is not None and self._guest.running

    @property
    def pid(self) -> int | None:
        """QEMU's pid while a boot is up, else None."""
        return self._guest.proc.pid if self._guest is not None else None

    def boot(self) -> StartMeasurement:
        """Start QEMU and wait for the guest's marker; the guest keeps running (see :meth:`stop`).

        ``start_s`` is the wall time from spawning the QEMU process that reached the marker to
        the marker line arriving on its serial console (a KVM attempt that was given up is not
        counted; its seconds are in ``details["kvm_wasted_s"]``).  ``memory_bytes`` is QEMU's
        ``VmRSS`` read right after the marker; ``details`` adds ``VmHWM``, ``Pss`` (when
        readable), the guest's own uptime at the marker, kernel and QEMU versions, the argv.
        :class:`BackendUnavailableError` when QEMU, the kernel or busybox is missing;
        :class:`BootTimeoutError` when the guest never prints its marker."""
        if self._guest is not None:
            raise ConflictError(f"VM {self.label!r} is already running (pid {self._guest.proc.pid}); stop it first")
        qemu = self._qemu_binary()
        kernel = self._kernel or find_kernel(self._cache_dir)
        initrd = self._initramfs()
        journal = Journal(self.state_dir)
        plan = self._plan()
        tried_kvm, kvm_failure, wasted = False, "", 0.0
        for accelerator in plan:
            fallback = accelerator == "kvm" and len(plan) > 1
            guest = _Guest(self.argv(accelerator, kernel, initrd, qemu), accelerator=accelerator, journal=journal,
                           workdir=self.state_dir / "vm" / f"run-{uuid.uuid4().hex[:12]}")
            tried_kvm = tried_kvm or accelerator == "kvm"
            try:
                ok = guest.wait_for_marker(guest.launched + (self.kvm_deadline if fallback else self.boot_timeout))
                if ok:
                    if accelerator == "kvm":
                        self.kvm_works = True
                    self._guest = guest
                    self._finalizer = weakref.finalize(self, _kill_guest, guest)
                    self.measurement = self._measure(guest, kernel, tried_kvm, kvm_failure, wasted)
                    return self.measurement
            except BaseException:  # an interrupt (or a failed reading) before boot returns: no guest left
                if self._finalizer is not None:
                    self._finalizer.detach()
                    self._finalizer = None
                self._guest = None
                guest.stop(grace=0)
                raise
            try:  # an interrupt while this attempt is looked at must not leave QEMU running
                waited = time.monotonic() - guest.launched
                ended = guest.proc.poll()
                console, stderr = guest.console.text(), guest.stderr_text().strip()
            finally:
                guest.stop(grace=0)
            if accelerator == "kvm":
                self.kvm_works = False  # remembered: this instance's next boot goes straight to TCG
            why = (f"QEMU exited ({ended}) after {waited:.1f} s" if ended is not None
                   else f"no {MARKER} line after {waited:.1f} s") + (f"; QEMU said: {stderr[-500:]}" if stderr else "")
            if fallback:
                kvm_failure, wasted = why, waited
                continue
            raise BootTimeoutError(f"the guest ({accelerator}) did not reach init: {why}", console=console)
        raise AssertionError("unreachable: the last accelerator either boots or raises")

    def _measure(self, guest: _Guest, kernel: Kernel, tried_kvm: bool, kvm_failure: str,
                 wasted: float) -> StartMeasurement:
        readings = _status_bytes(guest.proc.pid)  # first: the guest now idles in `read`
        details: dict[str, object] = {
            "vm_hwm_bytes": readings.get("VmHWM", 0),
            "guest_uptime_s": guest.console.uptime,
            "kernel_version": kernel.version,
            "qemu_version": self._qemu_version,
            "argv": list(guest.argv),
            "machine": self.machine,
            "smp": self.smp,
            "kvm_tried": tried_kvm,
            "kvm_failed": bool(kvm_failure),
            "kvm_failure": kvm_failure,
            "kvm_wasted_s": round(wasted, 3),
            "timed": "spawn of the QEMU process -> marker line read from its serial console",
        }
        if "Pss" in readings:
            details["pss_bytes"] = readings["Pss"]
        return StartMeasurement(kind="vm", label=self.label, source="measured",
                                start_s=guest.console.marker_time - guest.launched,
                                memory_bytes=readings.get("VmRSS", 0), reserved_bytes=self.memory_mib * MiB,
                                accelerator=guest.accelerator, details=details)

    def memory(self) -> dict[str, int]:
        """QEMU's ``VmRSS``, ``VmHWM`` and ``Pss`` now, in bytes (empty when not running)."""
        return _status_bytes(self._guest.proc.pid) if self._guest is not None and self._guest.running else {}

    def console(self) -> str:
        """The tail of what the current (or last stopped) guest printed on its serial console."""
        return self._guest.console.text() if self._guest is not None else ""

    def stop(self, grace: float = 5.0) -> int | None:
        """Let the guest power off, SIGKILL QEMU after ``grace`` seconds, clean up; idempotent.
        Returns QEMU's exit status (None when nothing ran)."""
        guest, self._guest = self._guest, None
        if guest is None:
            return None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        return guest.stop(grace)

    def __enter__(self) -> VM:
        self.boot()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running pid={self.pid}" if self._guest is not None else "stopped"
        return f"<VM {self.label!r} {self.memory_mib} MiB smp={self.smp} accel={self.accel} {state}>"


def boot_and_measure(*, memory_mib: int = 128, smp: int = 1, accel: str = "auto", label: str = "vm",
                     **options: Any) -> StartMeasurement:
    """Boot one :class:`VM`, measure it (see :meth:`VM.boot`), stop it; same arguments as :class:`VM`."""
    with VM(memory_mib=memory_mib, smp=smp, accel=accel, label=label, **options) as vm:
        assert vm.measurement is not None
        return vm.measurement


# -- the container side of the comparison ----------------------------------------------------------


def _running(engine: Any, ref: str) -> bool:
    return any(c.id == ref and c.state == "running" for c in engine.containers())


def measure_container_start(engine: Any, *, memory_mib: int = 128, label: str = "container",
                            image: str | None = None, timeout: float = 30.0, hold: float = 60.0) -> StartMeasurement:
    """Run :data:`MARKER_SCRIPT` in a busybox container on a real engine and measure its start.

    The container is created first (``docker create``: its overlay mount is made, not timed;
    ``details["create_s"]``), then ``start_s`` is the wall time from the ``engine.start(...,
    detach=True)`` call (namespaces, cgroup, ``pivot_root``, exec of ``/bin/sh``) to the marker
    line appearing on the container's stdout (polled every millisecond, so up to 1 ms late).
    ``memory_bytes`` is the charge of its cgroup (``memory.usage_in_bytes`` /
    ``memory.current``) read right after, while it sleeps; it gets a cgroup because it is given
    ``--memory`` = ``memory_mib`` (the VM's ``-m``).  The container is removed afterwards.

    ``image`` None imports the busybox base image (``engine.base_image()``, idempotent).
    :class:`InvalidLimitError` for a bad ``memory_mib``, :class:`InvalidSpecError` for a bad
    ``timeout``/``hold`` and ``ValueError`` for a non-real engine, all before anything is made; :class:`BackendUnavailableError` when the engine cannot give
    the container a cgroup (rootless on cgroup v1), before anything is made;
    :class:`BootTimeoutError` when no marker appears within ``timeout`` seconds."""
    memory_mib = _memory_mib(memory_mib)
    timeout, hold = _positive(timeout, "timeout"), _positive(hold, "hold")
    if getattr(engine, "name", None) != "real":
        raise ValueError(f"measure_container_start needs a real engine (sim.connect('real')), got {engine!r}")
    from realrt.containers.cgroups import plan
    from sim.containers.limits import parse_limits

    memory = f"{memory_mib}m"
    plan(parse_limits(memory), rootless=bool(getattr(engine, "rootless", False)))  # no cgroup here: refuse now
    ref = image
    if ref is None:
        ref = "busybox:latest"
        engine.base_image(ref)
    script = MARKER_SCRIPT + f"exec sleep {max(1, round(hold))}\n"
    created = time.monotonic()
    info = engine.create(ref, ["/bin/sh", "-c", script], memory=memory)
    try:
        launched = time.monotonic()
        engine.start(info.id, detach=True)
        deadline, seen, polls = launched + timeout, None, 0
        while seen is None:
            logs = engine.logs(info.id)  # docker logs: what it has written so far
            found = _MARKER_LINE.search(logs)
            polls += 1
            if found:
                seen = (time.monotonic(), float(found.group(1)))
            elif time.monotonic() > deadline or (polls % 50 == 0 and not _running(engine, info.id)):
                raise BootTimeoutError(f"the container printed no {MARKER} line in {time.monotonic() - launched:.1f} s",
                                       console=logs.decode("utf-8", "replace")[-4000:])
            else:
                time.sleep(0.001)
        usage = engine.usage(info.id)  # docker stats: its cgroup's counters
        details: dict[str, object] = {
            "create_s": round(launched - created, 6),
            "argv": ["/bin/sh", "-c", script],
            "image": ref,
            "rootless": bool(getattr(engine, "rootless", False)),
            "memory_peak_bytes": getattr(usage, "memory_peak_bytes", None),
            "host_uptime_s": seen[1],  # a container shares the host's clock: this is not its own uptime
            "timed": "engine.start(detach=True) call -> marker line seen on the container's stdout",
        }
        return StartMeasurement(kind="container", label=label, source="measured", start_s=seen[0] - launched,
                                memory_bytes=int(getattr(usage, "memory_bytes", None) or 0),
                                reserved_bytes=memory_mib * MiB, accelerator=None, details=details)
    finally:
        engine.remove(info.id, force=True, volumes=True)


# -- python -m realrt.vm fetch | boot ------------------------------------------------------------------


def _describe(m: StartMeasurement) -> str:
    extra = f" ({m.accelerator})" if m.accelerator else ""
    return (f"{m.kind}{extra}: {m.start_s * 1000:.0f} ms to marker, "
            f"{m.memory_bytes / MiB:.1f} MiB held of {m.reserved_bytes / MiB:.0f} MiB reserved")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["fetch"]:
        kernel = fetch_kernel()
        print(f"VM kernel {kernel.version}: {kernel.path}")
        return 0
    if args == ["boot"]:
        print(_describe(boot_and_measure()))
        return 0
    print("usage: python -m realrt.vm fetch | boot", file=sys.stderr)
    return 2


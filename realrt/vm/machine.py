"""A VM booted and measured next to a container (虚拟机, the machine).

:class:`VM` and :func:`boot_and_measure` boot QEMU; :func:`measure_container_start` times a
container running the same thing.  Both sides return a :class:`~sim.capacity.series.StartMeasurement` of the same marker script
(:data:`realrt.vm._console.MARKER_SCRIPT`) run from the same busybox files; see
:mod:`realrt.vm` for the accelerator policy and the cleanup.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

from realrt.journal import Journal, default_state_dir
from realrt.vm import _initramfs
from realrt.vm._console import MARKER, MARKER_LINE, MARKER_SCRIPT, BootTimeoutError, vm_init_script
from realrt.vm._guest import Guest, kill_guest
from realrt.vm.kernel import Kernel, find_kernel
from sim.capacity.series import StartMeasurement
from sim.errors import BackendUnavailableError, ConflictError, InvalidLimitError, InvalidSpecError

__all__ = ["VM", "boot_and_measure", "measure_container_start", "kvm_usable", "MIN_MEMORY_MIB", "MiB"]

MiB = 1 << 20
#: With 64 MiB the cloud kernel's decompressor gives up and the guest resets before printing
#: anything (80 MiB boots; measured with 6.1 cloud-amd64): keep a margin above that.
MIN_MEMORY_MIB = 96
_MAX_MEMORY_MIB = 1 << 20  # 1 TiB: a typo guard, not a host limit
_MAX_SMP = 255


def kvm_usable(device: str = "/dev/kvm") -> bool:
    """``/dev/kvm`` exists and this user may open it read-write (whether KVM then *boots* is
    what :class:`VM` finds out)."""
    return os.path.exists(device) and os.access(device, os.R_OK | os.W_OK)


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
        self._guest: Guest | None = None
        self._finalizer: weakref.finalize[[Guest], VM] | None = None
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
            guest = Guest(self.argv(accelerator, kernel, initrd, qemu), accelerator=accelerator, journal=journal,
                           workdir=self.state_dir / "vm" / f"run-{uuid.uuid4().hex[:12]}")
            tried_kvm = tried_kvm or accelerator == "kvm"
            try:
                ok = guest.wait_for_marker(guest.launched + (self.kvm_deadline if fallback else self.boot_timeout))
                if ok:
                    if accelerator == "kvm":
                        self.kvm_works = True
                    self._guest = guest
                    self._finalizer = weakref.finalize(self, kill_guest, guest)
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

    def _measure(self, guest: Guest, kernel: Kernel, tried_kvm: bool, kvm_failure: str,
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
            found = MARKER_LINE.search(logs)
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

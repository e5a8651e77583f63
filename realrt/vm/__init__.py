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

Modules: :mod:`realrt.vm.kernel` (finding and fetching the kernels), :mod:`realrt.vm.machine`
(:class:`VM` and both measurements), :mod:`realrt.vm.limits` (the limits suite here and in a
cgroup v2 guest that runs the host's own Python: ``_share``, ``_modules``), ``_console`` (the
marker line and the console that reads it), ``_guest`` (one QEMU process), ``_initramfs``; this
package re-exports the public names of the first two and holds ``main`` for
``python -m realrt.vm fetch | boot`` (``fetch`` gets both kernels).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from realrt.vm._console import MARKER, MARKER_SCRIPT, BootTimeoutError, vm_init_script
from realrt.vm.kernel import (
    CLOUD_KERNEL_PACKAGE,
    Kernel,
    default_cache_dir,
    fetch_kernel,
    fetch_share_kernel,
    find_kernel,
)
from realrt.vm.machine import (
    MIN_MEMORY_MIB,
    VM,
    MiB,
    boot_and_measure,
    kvm_usable,
    measure_container_start,
)
from sim.capacity.series import StartMeasurement

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
        share = fetch_share_kernel()  # the cgroup v2 guest's: the cloud kernel has no virtio-9p
        print(f"VM kernel with virtio-9p {share.version}: {share.path} (modules in {share.modules})")
        return 0
    if args == ["boot"]:
        print(_describe(boot_and_measure()))
        return 0
    print("usage: python -m realrt.vm fetch | boot", file=sys.stderr)
    return 2

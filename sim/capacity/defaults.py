"""Published figures the model starts from, each with where it comes from.

Every default the model uses is a :class:`Sourced` value in :data:`DEFAULTS`; the spec classes
(:mod:`sim.capacity.specs`) take their defaults from here, and any of them can be overridden per
instance or host.  The notebook and ``docs/vm-vs-container.md`` print this table, so a reader sees
which number is a measurement of someone's testbed, which is a design limit and which is this
project's own modelling choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["Sourced", "DEFAULTS", "MB", "MiB", "GiB", "value"]

MB = 1_000_000
MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Sourced:
    """A number, its unit, where it was published and what the model does with it."""

    value: float
    unit: str
    source: str
    note: str = ""


_TABLE: dict[str, Sourced] = {
    "vm_boot_s": Sourced(44.2, "s", "Mao & Humphrey, 'A Performance Study on the VM Startup Time in the Cloud', "
                         "IEEE CLOUD 2012 (Rackspace)", "EC2 measured 96.9 s in the same study"),
    "vm_boot_ec2_s": Sourced(96.9, "s", "Mao & Humphrey, IEEE CLOUD 2012 (EC2)"),
    "vm_overhead": Sourced(131 * MB, "bytes", "Agache et al., 'Firecracker', NSDI 2020 (QEMU VMM per VM; secondary)",
                           "host memory the hypervisor process holds beyond the guest's RAM"),
    "vm_guest_os": Sourced(128 * MiB, "bytes", "layerlab modelling choice",
                           "what a guest kernel and a small distribution keep resident; the chapter measures a "
                           "busybox guest on this machine next to it"),
    "microvm_guest_os": Sourced(32 * MiB, "bytes", "layerlab modelling choice",
                                "a minimal guest kernel and init, as microVMs run"),
    "microvm_boot_s": Sourced(0.125, "s", "firecracker SPECIFICATION.md (<= 125 ms to guest init)"),
    "microvm_overhead": Sourced(5 * MiB, "bytes", "firecracker SPECIFICATION.md (VMM <= 5 MiB)"),
    "microvm_launch_rate": Sourced(5.0, "per core per s", "firecracker docs/design.md (~5 microVMs per core per s)",
                                   "starts on one host queue behind each other at this rate"),
    "container_start_s": Sourced(0.225, "s", "youki README (runc create+start+delete, one testbed)",
                                 "crun 47 ms, youki 112 ms on the same testbed; layerlab measures its own"),
    "container_overhead": Sourced(11 * MB, "bytes", "moby #21737, containerd #2020/#7878 (shim 3-11 MB RSS)",
                                  "the upper end: one containerd-shim per container"),
    "virtualisation_cpu_overhead": Sourced(0.0, "fraction", "Felter et al., IBM RC25482 / ISPASS 2015",
                                           "'almost none' for CPU and memory in both VMs and containers"),
    "max_pods": Sourced(110, "containers per host", "Kubernetes kubelet --max-pods default"),
    "cpu_overcommit": Sourced(16.0, "ratio", "OpenStack Nova cpu_allocation_ratio default"),
    "ram_overcommit": Sourced(1.5, "ratio", "OpenStack Nova ram_allocation_ratio default"),
    "reserved_host_memory": Sourced(512 * MB, "bytes", "OpenStack Nova reserved_host_memory_mb default"),
    "power_idle_w": Sourced(86.0, "W", "CloudSim PowerModelSpecPowerHpProLiantMl110G4 (SPECpower)"),
    "power_max_w": Sourced(117.0, "W", "CloudSim PowerModelSpecPowerHpProLiantMl110G4 (SPECpower)"),
    "page_sharing_similar": Sourced(0.90, "fraction saved", "Gupta et al., 'Difference Engine', OSDI 2008",
                                    "up to 90% for similar VMs"),
    "page_sharing_different": Sourced(0.65, "fraction saved", "Gupta et al., 'Difference Engine', OSDI 2008",
                                      "65% for different VMs"),
    "restart_backoff_s": Sourced(10.0, "s", "Kubernetes pod lifecycle docs (CrashLoopBackOff: 10 s, doubling)",
                                 "doubles after each kill, capped at restart_backoff_max_s"),
    "restart_backoff_max_s": Sourced(300.0, "s", "Kubernetes pod lifecycle docs (CrashLoopBackOff cap 5 min)"),
    "restart_backoff_reset_s": Sourced(600.0, "s", "Kubernetes pod lifecycle docs (back-off reset after 10 min running)",
                                       "a life this long starts the back-off from the beginning again"),
    "memory_high_slowdown": Sourced(0.25, "fraction", "layerlab modelling choice",
                                    "above memory.high a group runs and allocates at this fraction of its speed "
                                    "(the kernel throttles and reclaims; the real factor depends on the workload)"),
    "start_jitter": Sourced(0.1, "lognormal sigma", "layerlab modelling choice",
                            "start times vary around the published median by this spread"),
}

#: name -> :class:`Sourced`; read-only.
DEFAULTS: Mapping[str, Sourced] = MappingProxyType(_TABLE)


def value(name: str) -> float:
    """``DEFAULTS[name].value`` (``KeyError`` names the known defaults)."""
    try:
        return DEFAULTS[name].value
    except KeyError:
        raise KeyError(f"no default {name!r}; known: {', '.join(sorted(DEFAULTS))}") from None

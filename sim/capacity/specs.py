"""What the model simulates: hosts, VMs (and microVMs), containers, workloads and instances.

All are frozen dataclasses validated on construction (:class:`~sim.errors.InvalidSpecError`
names the field).  Sizes are bytes, CPU is cores, times are seconds.  Defaults come from
:data:`sim.capacity.defaults.DEFAULTS`, each with its source.

The rules the engine applies to them (``docs/vm-vs-container.md`` has the long form):

- a **VM** is admitted on what it was given (``vcpus``, ``memory`` + the hypervisor's
  ``overhead``) and keeps all of it reserved until it stops; the host memory it holds is the
  hypervisor's overhead, the guest OS, and the *high-water mark* of what the workload touched
  (a guest never hands pages back) -- unless it has a ``balloon``, then it follows current use;
  ``page_sharing`` (a KSM-like fraction) lets VMs on one host share that fraction of their pages.
  It cannot use more CPU than its vCPUs; beyond the host's cores the shortfall is *steal*.
- a **container** is admitted on its *requests*; it holds only what it uses (plus its shim);
  CPU is shared by ``weight`` under contention and capped at ``cpu_max`` (``cpu.max``) even on
  an idle host; above ``memory_high`` it is slowed; above ``memory_max`` it is OOM-killed and
  restarted after a back-off; ``pids_max`` caps its tasks (the forks beyond fail).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sim.capacity._check import number, whole
from sim.capacity.defaults import GiB, MiB, value
from sim.capacity.profiles import Flat, Profile
from sim.containers.limits import Limits, shares_to_weight
from sim.errors import InvalidSpecError

__all__ = ["Host", "VMSpec", "ContainerSpec", "Workload", "Instance", "vm", "microvm", "container",
           "Spec", "KIND_ORDER"]

#: How plots and tables order the three kinds.
KIND_ORDER = ("vm", "microvm", "container")


def _positive(name: str, v: float, *, zero: bool = False) -> None:
    number(name, v, strict=not zero)


@dataclass(frozen=True)
class Host:
    """A physical machine: ``cores`` and ``memory`` it has, the overcommit ratios the scheduler
    admits against, memory kept for the host itself, power drawn idle and at full CPU, and how
    many containers it may run (``max_pods``; VMs have no such count)."""

    cores: float = 32
    memory: int = 128 * GiB
    cpu_overcommit: float = value("cpu_overcommit")
    ram_overcommit: float = value("ram_overcommit")
    reserved_memory: int = int(value("reserved_host_memory"))
    power_idle_w: float = value("power_idle_w")
    power_max_w: float = value("power_max_w")
    max_pods: int | None = int(value("max_pods"))

    def __post_init__(self) -> None:
        _positive("Host.cores", self.cores)
        _positive("Host.memory", self.memory)
        _positive("Host.cpu_overcommit", self.cpu_overcommit)
        _positive("Host.ram_overcommit", self.ram_overcommit)
        _positive("Host.reserved_memory", self.reserved_memory, zero=True)
        if self.reserved_memory >= self.memory:
            raise InvalidSpecError("Host.reserved_memory must leave some memory for instances")
        _positive("Host.power_idle_w", self.power_idle_w, zero=True)
        _positive("Host.power_max_w", self.power_max_w, zero=True)
        if self.power_max_w < self.power_idle_w:
            raise InvalidSpecError("Host.power_max_w cannot be below power_idle_w")
        if self.max_pods is not None:
            whole("Host.max_pods", self.max_pods)

    @property
    def admissible_cpu(self) -> float:
        return self.cores * self.cpu_overcommit

    @property
    def admissible_memory(self) -> float:
        return (self.memory - self.reserved_memory) * self.ram_overcommit


@dataclass(frozen=True)
class VMSpec:
    """A virtual machine (``kind="vm"``, QEMU-like) or microVM (``kind="microvm"``,
    Firecracker-like).  ``guest_os`` is what the guest kernel and OS keep resident;
    ``launch_rate`` (starts per core per second, or None) queues starts on one host."""

    vcpus: int = 2
    memory: int = 4 * GiB
    boot_s: float = value("vm_boot_s")
    overhead: int = int(value("vm_overhead"))
    guest_os: int = int(value("vm_guest_os"))
    balloon: bool = False
    page_sharing: float = 0.0
    launch_rate: float | None = None
    kind: str = "vm"

    def __post_init__(self) -> None:
        if self.kind not in ("vm", "microvm"):
            raise InvalidSpecError(f"VMSpec.kind must be 'vm' or 'microvm', not {self.kind!r}")
        whole("VMSpec.vcpus", self.vcpus)
        _positive("VMSpec.memory", self.memory)
        _positive("VMSpec.boot_s", self.boot_s, zero=True)
        _positive("VMSpec.overhead", self.overhead, zero=True)
        _positive("VMSpec.guest_os", self.guest_os, zero=True)
        if self.guest_os >= self.memory:
            raise InvalidSpecError("VMSpec.guest_os must be smaller than the VM's memory")
        if not number("VMSpec.page_sharing", self.page_sharing, strict=False) < 1:
            raise InvalidSpecError(f"VMSpec.page_sharing is a fraction in [0, 1), not {self.page_sharing}")
        if self.launch_rate is not None:
            _positive("VMSpec.launch_rate", self.launch_rate)

    @property
    def start_s(self) -> float:
        return self.boot_s

    @property
    def cpu_request(self) -> float:
        return float(self.vcpus)

    @property
    def memory_request(self) -> float:
        return float(self.memory)

    @property
    def reserved_memory(self) -> float:
        """What admission books on the host: the guest's RAM and the hypervisor's overhead."""
        return float(self.memory + self.overhead)


@dataclass(frozen=True)
class ContainerSpec:
    """A container's requests (what admission books) and limits (what the kernel enforces).

    ``weight`` is cgroup v2's ``cpu.weight`` (1..10000, default 100); ``cpu_max`` cores or None;
    ``memory_high``/``memory_max`` bytes or None; ``pids_max`` tasks or None."""

    cpu_request: float = 0.5
    memory_request: int = 512 * MiB
    cpu_max: float | None = None
    weight: float = 100
    memory_high: int | None = None
    memory_max: int | None = None
    pids_max: int | None = None
    start_s: float = value("container_start_s")
    overhead: int = int(value("container_overhead"))
    launch_rate: float | None = None
    kind: str = field(default="container", init=False)

    def __post_init__(self) -> None:
        _positive("ContainerSpec.cpu_request", self.cpu_request, zero=True)
        _positive("ContainerSpec.memory_request", self.memory_request, zero=True)
        if self.cpu_max is not None:
            _positive("ContainerSpec.cpu_max", self.cpu_max)
            if self.cpu_max < self.cpu_request:
                raise InvalidSpecError("ContainerSpec.cpu_max cannot be below cpu_request")
        number("ContainerSpec.weight (cgroup v2's cpu.weight)", self.weight, low=1, strict=False, high=10_000)
        for name in ("memory_high", "memory_max"):
            v = getattr(self, name)
            if v is not None:
                _positive(f"ContainerSpec.{name}", v)
                if v < self.memory_request:
                    raise InvalidSpecError(f"ContainerSpec.{name} cannot be below memory_request")
        if self.memory_high is not None and self.memory_max is not None and self.memory_high > self.memory_max:
            raise InvalidSpecError("ContainerSpec.memory_high cannot be above memory_max")
        if self.pids_max is not None:
            whole("ContainerSpec.pids_max", self.pids_max)
        _positive("ContainerSpec.start_s", self.start_s, zero=True)
        _positive("ContainerSpec.overhead", self.overhead, zero=True)
        if self.launch_rate is not None:
            _positive("ContainerSpec.launch_rate", self.launch_rate)

    @property
    def reserved_memory(self) -> float:
        """What admission books on the host: the request and the shim (Kubernetes' PodOverhead)."""
        return float(self.memory_request + self.overhead)

    @classmethod
    def from_limits(cls, limits: Limits, *, cpu_request: float | None = None,
                    memory_request: int | None = None, **more: object) -> ContainerSpec:
        """The container ``docker run`` with ``limits`` makes (see :func:`sim.containers.limits.parse_limits`).

        Docker sets no requests: they default to the limits (``--cpus``, ``--memory``) or 0, as a
        Kubernetes pod whose requests default to its limits.  ``--cpu-shares`` becomes cgroup v2's
        weight by runc's formula (1024 -> 39); without it the weight is v2's default, 100."""
        cpu_max = limits.cpus if limits.nano_cpus else None
        mem_max = limits.memory if limits.memory else None
        return cls(
            cpu_request=cpu_request if cpu_request is not None else (cpu_max or 0.0),
            memory_request=memory_request if memory_request is not None else (mem_max or 0),
            cpu_max=cpu_max, memory_max=mem_max,
            weight=shares_to_weight(limits.cpu_shares) if limits.cpu_shares else 100,
            pids_max=limits.pids_limit if limits.pids_limit and limits.pids_limit > 0 else None,
            **more,  # type: ignore[arg-type]
        )


Spec = VMSpec | ContainerSpec


def vm(vcpus: int = 2, memory: int = 4 * GiB, **more: object) -> VMSpec:
    """A full VM (QEMU/KVM-like) with the published boot time and hypervisor overhead."""
    return VMSpec(vcpus, memory, **more)  # type: ignore[arg-type]


def microvm(vcpus: int = 1, memory: int = 512 * MiB, **more: object) -> VMSpec:
    """A Firecracker-like microVM: 125 ms to init, <= 5 MiB VMM, ~5 starts per core per s."""
    options: dict[str, object] = {"boot_s": value("microvm_boot_s"), "overhead": int(value("microvm_overhead")),
                                  "guest_os": int(value("microvm_guest_os")),
                                  "launch_rate": value("microvm_launch_rate"),
                                  "kind": "microvm"}
    options.update(more)
    return VMSpec(vcpus, memory, **options)  # type: ignore[arg-type]


def container(cpu_request: float = 0.5, memory_request: int = 512 * MiB, **more: object) -> ContainerSpec:
    return ContainerSpec(cpu_request, memory_request, **more)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Workload:
    """What runs inside: mean ``cpu`` cores and ``memory`` bytes, each shaped over time by a
    profile, with per-instance noise (relative standard deviation, redrawn every minute), a
    memory ``leak`` (bytes per second since the last (re)start), ``pids`` tasks, an ``arrival``
    time and a ``duration`` (``inf``: until the end of the run)."""

    cpu: float = 0.25
    memory: int = 256 * MiB
    cpu_profile: Profile = field(default_factory=Flat)
    memory_profile: Profile = field(default_factory=Flat)
    noise: float = 0.0
    leak: float = 0.0
    pids: int = 1
    arrival: float = 0.0
    duration: float = math.inf

    def __post_init__(self) -> None:
        _positive("Workload.cpu", self.cpu, zero=True)
        _positive("Workload.memory", self.memory, zero=True)
        _positive("Workload.noise", self.noise, zero=True)
        _positive("Workload.leak", self.leak, zero=True)
        _positive("Workload.arrival", self.arrival, zero=True)
        number("Workload.duration", self.duration, infinite=True)
        whole("Workload.pids", self.pids, low=0)
        for name in ("cpu_profile", "memory_profile"):
            if not isinstance(getattr(self, name), Profile):
                raise InvalidSpecError(f"Workload.{name} must be a Profile (sim.capacity.profiles)")


@dataclass(frozen=True)
class Instance:
    """One VM, microVM or container running one workload; ``name`` labels traces and plots."""

    spec: Spec
    workload: Workload = field(default_factory=Workload)
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.spec, (VMSpec, ContainerSpec)):
            raise InvalidSpecError(f"Instance.spec must be a VMSpec or ContainerSpec, not {type(self.spec).__name__}")
        if not isinstance(self.workload, Workload):
            raise InvalidSpecError("Instance.workload must be a Workload")
        if not isinstance(self.name, str):
            raise InvalidSpecError(f"Instance.name must be a str, not {type(self.name).__name__}")

    @property
    def kind(self) -> str:
        return self.spec.kind

"""What the resource model and the real measurements both return, so one plot overlays them.

:class:`UsageSeries` is one instance's (or a sum's) use of CPU, memory and tasks over time: the
model's prediction (``source="model"``) and the readings of a real container's cgroup files
(``source="measured"``, :mod:`realrt.measure`) have the same fields, units and meaning.
:class:`StartMeasurement` is one start: how long until the guest's ``init`` (a VM) or the
container's first command ran, and how much host memory it holds once started.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sim.errors import InvalidSpecError

__all__ = ["UsageSeries", "StartMeasurement", "SOURCES", "KINDS"]

#: Where a value comes from: the model's prediction or a reading on this machine.
SOURCES = ("model", "measured")
#: What was started: a full VM (QEMU), a microVM (Firecracker-like) or a container.
KINDS = ("vm", "microvm", "container")

FloatArray = npt.NDArray[np.floating[Any]]


def readonly(values: object, dtype: type = np.float64) -> np.ndarray:
    """A read-only copy of ``values`` as a 1-D array of ``dtype`` (results never change under you)."""
    array: np.ndarray = np.array(values, dtype=dtype, copy=True).reshape(-1)
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class UsageSeries:
    """Resource use over time, one row per sample; every array has the length of ``t``.

    - ``t``: seconds since the instance was started (the first sample may be later than 0);
    - ``cpu``: cores in use, averaged over the interval that ends at the sample
      (CPU-seconds per wall-second: ``0.2`` is a fifth of one core);
    - ``memory``: bytes charged to it at the sample (cgroup ``memory.current`` /
      ``memory.usage_in_bytes``; for a VM the host memory its hypervisor process holds);
    - ``throttled``: cumulative seconds it was held back by a limit: the ``cpu.max`` quota (as
      the kernel's ``throttled_time`` counts it), and in the model also ``memory.high``
      (the kernel's CPU counters cannot see reclaim stalls, so a measured series counts only
      the quota);
    - ``pids``: tasks at the sample;
    - ``oom_kills``: cumulative OOM kills inside it.

    ``limits`` names the limits in force (e.g. ``{"memory.max": 16777216, "cpu.max": 0.2}``;
    CPU in cores, memory in bytes), so a plot can draw them.  Arrays are read-only copies.
    """

    label: str
    source: str
    t: FloatArray
    cpu: FloatArray
    memory: FloatArray
    throttled: FloatArray
    pids: FloatArray
    oom_kills: FloatArray
    limits: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise InvalidSpecError(f"source must be one of {SOURCES}, not {self.source!r}")
        n = None
        for name in ("t", "cpu", "memory", "throttled", "pids", "oom_kills"):
            array = readonly(getattr(self, name))
            object.__setattr__(self, name, array)
            if n is None:
                n = len(array)
            elif len(array) != n:
                raise InvalidSpecError(f"UsageSeries.{name} has {len(array)} samples, t has {n}")
        if n and np.any(np.diff(self.t) < 0):
            raise InvalidSpecError("UsageSeries.t must not decrease")
        object.__setattr__(self, "limits", dict(self.limits))

    def __len__(self) -> int:
        return len(self.t)

    @property
    def cpu_seconds(self) -> float:
        """CPU time used over the series (the integral of ``cpu``)."""
        if len(self.t) < 2:
            return 0.0
        return float(np.sum(self.cpu[1:] * np.diff(self.t)))

    @property
    def peak_memory(self) -> float:
        return float(self.memory.max()) if len(self.memory) else 0.0

    def at(self, t: float) -> dict[str, float]:
        """The sample at or just before ``t`` (``KeyError`` before the first sample)."""
        i = int(np.searchsorted(self.t, t, side="right")) - 1
        if i < 0:
            raise KeyError(f"no sample at or before t={t}")
        return {name: float(getattr(self, name)[i])
                for name in ("t", "cpu", "memory", "throttled", "pids", "oom_kills")}


@dataclass(frozen=True)
class StartMeasurement:
    """One start of a VM, microVM or container, from launch until its first program ran.

    ``start_s``: seconds from the launch call to the marker its ``init`` (VM) or first command
    (container) printed; ``memory_bytes``: host memory it held just after (the hypervisor
    process's resident set, or the container's cgroup charge); ``reserved_bytes``: what it was
    given (``-m`` of QEMU, ``--memory`` of a container; 0 when nothing was reserved);
    ``accelerator``: ``"kvm"`` or ``"tcg"`` for a VM (which one really ran), ``None`` otherwise.
    ``details`` keeps what else was recorded (kernel version, command line, samples...).
    """

    kind: str
    label: str
    source: str
    start_s: float
    memory_bytes: int
    reserved_bytes: int = 0
    accelerator: str | None = None
    details: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidSpecError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.source not in SOURCES:
            raise InvalidSpecError(f"source must be one of {SOURCES}, not {self.source!r}")
        if self.accelerator not in (None, "kvm", "tcg"):
            raise InvalidSpecError(f"accelerator must be 'kvm', 'tcg' or None, not {self.accelerator!r}")
        if self.start_s < 0 or self.memory_bytes < 0 or self.reserved_bytes < 0:
            raise InvalidSpecError("start_s, memory_bytes and reserved_bytes cannot be negative")
        object.__setattr__(self, "details", dict(self.details))

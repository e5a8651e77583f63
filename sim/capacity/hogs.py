"""Three misbehaving programs the chapter runs inside limits: a CPU hog, a memory hog, a fork bomb.

A :class:`Hog` is both a workload for the model (how much CPU, memory and tasks it asks for at
each moment: :meth:`Hog.demand`) and the busybox shell script that does exactly that in a real
container (:meth:`Hog.script`), so a prediction and a measurement of the same hog can be drawn
on one plot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.capacity.defaults import MiB
from sim.capacity.series import FloatArray
from sim.errors import InvalidSpecError

__all__ = ["Hog", "cpu_hog", "memory_hog", "fork_bomb"]

_KINDS = ("cpu", "memory", "fork")


@dataclass(frozen=True)
class Hog:
    """``kind`` "cpu": a busy loop of ``cores`` shells for ``duration_s``;
    "memory": one shell that grows by ``step_mib`` MiB every ``step_s`` up to ``total_mib``,
    then holds it until ``duration_s``; "fork": ``tasks`` sleeping children started at once,
    all sleeping until ``duration_s``.  Build them with :func:`cpu_hog`, :func:`memory_hog`,
    :func:`fork_bomb` (they validate)."""

    kind: str
    duration_s: float
    cores: int = 1
    step_mib: int = 0
    step_s: float = 0.0
    total_mib: int = 0
    tasks: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidSpecError(f"hog kind must be one of {_KINDS}, not {self.kind!r}")
        if not self.duration_s > 0:
            raise InvalidSpecError(f"duration_s must be positive, not {self.duration_s}")
        if self.kind == "cpu" and self.cores < 1:
            raise InvalidSpecError(f"a CPU hog needs at least one busy loop, not {self.cores}")
        if self.kind == "memory" and not (self.step_mib > 0 and self.step_s > 0 and self.total_mib >= self.step_mib):
            raise InvalidSpecError("a memory hog needs step_mib > 0, step_s > 0 and total_mib >= step_mib")
        if self.kind == "fork" and self.tasks < 1:
            raise InvalidSpecError(f"a fork bomb needs at least one task, not {self.tasks}")

    @property
    def label(self) -> str:
        if self.kind == "cpu":
            return f"CPU hog ({self.cores} busy loop{'s' if self.cores > 1 else ''}, {self.duration_s:g} s)"
        if self.kind == "memory":
            return f"memory hog (+{self.step_mib} MiB every {self.step_s:g} s to {self.total_mib} MiB)"
        return f"fork bomb ({self.tasks} tasks)"

    def demand(self, t: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """What it asks for at times ``t`` (seconds since start): (cores, bytes, tasks).

        The numbers follow what busybox really does (measured by ``realrt.measure``): the shell
        is one task and ~1 MiB; each busy loop runs under ``timeout``, which keeps a watcher
        (two tasks per loop); the memory hog appends by copying, so while step ``s`` builds
        the new string the old one is still there (``(2s - 1) x step`` at the peak of the step,
        with a subshell, ``head`` and ``tr`` running), then holds ``s x step`` with one
        ``sleep`` as its clock; each sleeping child of the fork bomb is ~0.1 MiB."""
        t = np.asarray(t, dtype=np.float64)
        running = (t >= 0) & (t < self.duration_s)
        cpu = np.zeros_like(t)
        memory = np.where(running, 1.0 * MiB, 0.0)
        tasks = np.where(running, 1.0, 0.0)
        if self.kind == "cpu":
            cpu = np.where(running, float(self.cores), 0.0)
            tasks = tasks + np.where(running, 2.0 * self.cores, 0.0)
        elif self.kind == "memory":
            last = self.total_mib // self.step_mib
            steps = np.minimum(np.floor(np.maximum(t, 0) / self.step_s) + 1, last)
            growing = running & (np.floor(np.maximum(t, 0) / self.step_s) + 1 <= last)
            held = np.where(growing, 2 * steps - 1, steps) * self.step_mib * MiB
            memory = memory + np.where(running, held, 0.0)
            cpu = np.where(growing, 0.1, 0.0)  # building each step's string: a light load
            tasks = tasks + np.where(growing, 3.0, np.where(running, 1.0, 0.0))
        else:
            tasks = tasks + np.where(running, float(self.tasks), 0.0)
            memory = memory + np.where(running, self.tasks * 0.1 * MiB, 0.0)
        return cpu, memory, tasks

    def script(self) -> str:
        """The busybox ``sh -c`` script that behaves as :meth:`demand` says."""
        d = f"{self.duration_s:g}"
        if self.kind == "cpu":
            loops = " ".join(["(timeout %s sh -c 'while :; do :; done') &" % d] * self.cores)
            return f"{loops} wait; true"
        if self.kind == "memory":
            steps = self.total_mib // self.step_mib
            grow = f"head -c {self.step_mib * MiB} /dev/zero | tr '\\0' a"
            # A background sleep is the clock: `date +%s` has whole seconds, which ended the hold
            # anywhere between duration_s - 1 and duration_s.
            return (f"sleep {d} & end=$!; x=; i=0; "
                    f"while [ $i -lt {steps} ]; do x=\"$x$({grow})\"; i=$((i+1)); sleep {self.step_s:g}; done; "
                    f"wait $end; echo held ${{#x}}")
        # A failed fork ends a shell: the loop runs in a subshell, its sleeps stay, PID 1 waits.
        return f"(for i in $(seq {self.tasks}); do sleep {d} & done) 2>/dev/null; sleep {d}"


def cpu_hog(duration_s: float = 3.0, cores: int = 1) -> Hog:
    return Hog("cpu", duration_s, cores=cores)


def memory_hog(total_mib: int = 64, step_mib: int = 4, step_s: float = 0.1, duration_s: float = 3.0) -> Hog:
    return Hog("memory", duration_s, step_mib=step_mib, step_s=step_s, total_mib=total_mib)


def fork_bomb(tasks: int = 50, duration_s: float = 3.0) -> Hog:
    return Hog("fork", duration_s, tasks=tasks)

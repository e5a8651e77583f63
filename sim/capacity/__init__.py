"""容器和虚拟机 (containers vs VMs): a resource-allocation model, checked against real measurements.

Hosts run VMs, microVMs and containers (:mod:`.specs`) that carry workloads; :func:`simulate`
places them (first-, best- or worst-fit on reservations) and steps time in ticks, vectorised over
instances: a VM holds all it was given from boot, a container takes what it needs; CPU is shared
by weight and capped by ``cpu.max``; ``memory.high`` slows, ``memory.max`` OOM-kills, ``pids.max``
stops forks.  The result (:class:`Run`) holds capacity / reserved / used series, and
:meth:`Run.metrics` the numbers a run is judged by.  :mod:`.scenarios` has the chapter's six
teaching scenarios, :mod:`.plots` their figures, :data:`DEFAULTS` every published number used,
with its source.  Nothing here needs Linux: :mod:`realrt.measure` and :mod:`realrt.vm` measure
the same things on this machine and return the same types (:class:`UsageSeries`,
:class:`StartMeasurement`).
"""

from __future__ import annotations

from sim.capacity._simulate import simulate
from sim.capacity.defaults import DEFAULTS, MB, GiB, MiB, Sourced
from sim.capacity.hogs import Hog, cpu_hog, fork_bomb, memory_hog
from sim.capacity.placement import POLICIES, Density, Placement, density, place
from sim.capacity.predict import predict_hog, predict_start, this_host
from sim.capacity.profiles import Profile, diurnal, flat, step, trace
from sim.capacity.run import InstanceTotals, Metrics, Run
from sim.capacity.scenarios import (
                        ScenarioResult,
                        consolidation_power,
                        flash_crowd,
                        idle_waste_day,
                        noisy_neighbour,
                        overcommit_sweep,
                        same_service,
)
from sim.capacity.series import StartMeasurement, UsageSeries
from sim.capacity.specs import (
                        ContainerSpec,
                        Host,
                        Instance,
                        VMSpec,
                        Workload,
                        container,
                        microvm,
                        vm,
)

__all__ = [
    "simulate", "Run", "Metrics", "InstanceTotals",
    "Host", "VMSpec", "ContainerSpec", "Workload", "Instance", "vm", "microvm", "container",
    "Profile", "flat", "diurnal", "step", "trace",
    "POLICIES", "place", "Placement", "density", "Density",
    "DEFAULTS", "Sourced", "MB", "MiB", "GiB",
    "UsageSeries", "StartMeasurement",
    "Hog", "cpu_hog", "memory_hog", "fork_bomb",
    "predict_hog", "predict_start", "this_host",
    # the chapter's six scenarios (their figures are in .plots, which needs matplotlib)
    "ScenarioResult", "same_service", "flash_crowd", "noisy_neighbour", "overcommit_sweep", "idle_waste_day",
    "consolidation_power",
]


"""The chapter's six teaching scenarios (``docs/vm-vs-container.md``, the reference's expected outcomes).

Each function builds hosts and instances, runs :func:`~sim.capacity.simulate` and returns a
:class:`ScenarioResult`: the claim it illustrates, the numbers that show it (``outcome``), the
runs behind them and every parameter it used.  All are deterministic for their ``seed``; every
parameter is a keyword with a default from :data:`~sim.capacity.defaults.DEFAULTS` where one
exists, and every parameter is checked (:class:`~sim.errors.InvalidSpecError`) before anything
is simulated.  Each runs in well under a second or two, so tests and notebooks can call them.

=====================  =====================================================================
``same_service``       one service as VMs, microVMs, containers on one host: density, memory
``flash_crowd``        demand doubles at t=60 s: unmet-demand window ~ start time
``noisy_neighbour``    weights, ``cpu.max``, ``memory.high``/``memory.max``, host OOM killer
``overcommit_sweep``   RAM and CPU overcommit ratios: the RAM cliff comes long before the CPU one
``idle_waste_day``     a day at 80% peak / 10% trough: VMs sized for peak vs containers at mean
``consolidation_power`` switching idle hosts off vs raising utilisation on hosts that stay on
=====================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from sim.capacity._scenario import ScenarioResult
from sim.capacity._scenarios_architecture import noisy_neighbour
from sim.capacity._scenarios_resources import idle_waste_day, overcommit_sweep, same_service
from sim.capacity._scenarios_usage import consolidation_power, flash_crowd

__all__ = ["ScenarioResult", "same_service", "flash_crowd", "noisy_neighbour", "overcommit_sweep",
           "idle_waste_day", "consolidation_power", "ALL"]


#: Every scenario by name (read-only): ``{name: fn(**overrides) -> ScenarioResult}``.
ALL: Mapping[str, Callable[..., ScenarioResult]] = MappingProxyType({
    fn.__name__: fn for fn in (same_service, flash_crowd, noisy_neighbour, overcommit_sweep, idle_waste_day,
                               consolidation_power)
})

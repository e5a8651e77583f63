"""Checks for chapter 4 (容器和虚拟机 containers vs virtual machines): every answer is graded by
running the resource model (:mod:`sim.capacity`: admission, the tick engine, the hogs under limits,
start times), and the hog exercise measures real containers with ``$LAYERLAB_BACKEND=real``.
Every check raises :class:`AssertionError` whose message names the concept a wrong answer misses
(a VM books its whole RAM, a container only its request; overcommit; a guest never hands pages
back; ``memory.max`` kills, ``cpu.max`` caps, ``pids.max`` refuses forks; a VM boots a guest).

Only :mod:`sim.capacity`'s public API is used, so a faster engine behind it grades the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from sim.capacity import (
    ContainerSpec,
    GiB,
    Hog,
    Host,
    Instance,
    MiB,
    Placement,
    VMSpec,
    Workload,
    density,
    flash_crowd,
    place,
    predict_hog,
    predict_start,
    simulate,
)
from sim.containers.limits import parse_limits
from sim.errors import BackendUnavailableError, InvalidSpecError
from sim.exercises._engine import backend_name, scratch_engine
from sim.exercises._properties import Mutant, check_property

__all__ = ["check_density", "check_fleet_fit", "hog_outcome", "check_hog_outcome", "check_start_order",
           "held_memory", "check_held_memory", "check_placement_property", "PLACEMENT_MUTANTS"]

Spec = VMSpec | ContainerSpec
START_KINDS = ("vm", "microvm", "container")


def _gib(v: float) -> str:
    return f"{v / GiB:.2f} GiB"


def _need(ok: bool, what: str) -> None:
    """A setup argument (the teacher's, not the student's answer) that is wrong: a typed error."""
    if not ok:
        raise InvalidSpecError(what)


# -- 1. how many fit: admission books a VM's whole RAM, a container's request -------------------

def _miscounts(host: Host, spec: Spec, workload: Workload) -> list[tuple[int, str]]:
    """Counts a typical wrong reasoning gives, each with the concept it misses (those that differ from
    the true count; a wrong answer is told every one it matches)."""
    truth = density(host, spec)

    def count(h: Host, sp: Spec) -> int:
        try:
            return density(h, sp).count
        except InvalidSpecError:  # the mistake books nothing at all: no count to match
            return -1

    cpu_count = math.floor(host.admissible_cpu / spec.cpu_request + 1e-9) if spec.cpu_request else None
    found: list[tuple[int, str]] = []
    if isinstance(spec, VMSpec):
        found.append((count(replace(host, max_pods=None), ContainerSpec(float(spec.vcpus), workload.memory, overhead=0)),
                      "a VM holds its whole memory from boot: admission books all of the RAM it was given plus the "
                      "hypervisor's overhead (memory + overhead), not what its app uses"))
        found.append((count(host, replace(spec, overhead=0)),
                      "the hypervisor process (overhead, ~131 MB for QEMU) is booked next to the guest's RAM"))
    else:
        if spec.memory_max is not None:
            found.append((count(host, replace(spec, memory_request=spec.memory_max)),
                          "a container is admitted on its request, not its limit: memory.max is a ceiling the "
                          "kernel enforces, nothing is booked for it"))
        if spec.memory_request != workload.memory:
            found.append((count(host, replace(spec, memory_request=workload.memory)),
                          "a container is admitted on its request (plus its shim), not on what its app uses "
                          "right now"))
        found.append((count(host, replace(spec, overhead=0)),
                      "each container's shim (containerd-shim, ~11 MB) is booked with its request"))
        if host.max_pods is not None:
            found.append((count(replace(host, max_pods=None), spec),
                          f"kubelet's --max-pods ({host.max_pods}) stops containers on a host, whatever is left"))
    if cpu_count is not None and truth.limited_by != "cpu":
        found.append((cpu_count, f"{cpu_count} is what the CPU admits, but {truth.limited_by} runs out first"))
    if host.ram_overcommit != 1.0 or host.cpu_overcommit != 1.0:
        found.append((count(replace(host, ram_overcommit=1.0, cpu_overcommit=1.0), spec),
                      f"overcommit: the host admits cores x cpu_overcommit ({host.cpu_overcommit:g}) CPU and "
                      f"(memory - reserved_memory) x ram_overcommit ({host.ram_overcommit:g}) memory"))
        found.append((count(replace(host, ram_overcommit=1.0), spec),
                      f"memory overcommit: the host admits (memory - reserved_memory) x ram_overcommit "
                      f"({host.ram_overcommit:g}) of memory"))
    if host.reserved_memory:
        found.append((count(replace(host, reserved_memory=0), spec),
                      f"the host keeps reserved_memory ({host.reserved_memory / MiB:.0f} MiB) for itself before "
                      "the overcommit ratio applies"))
    return [(n, why) for n, why in found if n not in (truth.count, -1)]


def check_density(answer: Mapping[str, int], host: Host, specs: Mapping[str, Spec], workload: Workload) -> None:
    """``answer[name]`` is how many copies of ``specs[name]`` one ``host`` admits
    (:func:`sim.capacity.density`: on reservations, at saturation) for every name in ``specs``;
    ``workload`` is what each runs (it changes no count: it names the use-based mistake).

    Raises :class:`~sim.errors.InvalidSpecError` for a bad setup and :class:`AssertionError`, one
    hint per wrong count naming the concept it misses, for a wrong answer."""
    _need(isinstance(host, Host) and isinstance(workload, Workload) and isinstance(specs, Mapping)
          and all(isinstance(s, (VMSpec, ContainerSpec)) for s in specs.values()),
          "check_density(answer, host: Host, specs: {name: VMSpec | ContainerSpec}, workload: Workload)")
    if not isinstance(answer, Mapping):
        raise AssertionError(f"the answer must be a dict of name -> count, not {type(answer).__name__}")
    missing = sorted(set(specs) - set(answer))
    if missing:
        raise AssertionError(f"the answer has no count for {missing}: give one per spec ({sorted(specs)})")
    hints = []
    for name, spec in specs.items():
        given, truth = answer[name], density(host, spec)
        if not isinstance(given, (int, np.integer)) or isinstance(given, bool):
            hints.append(f"{name}: a count is a whole number, not {given!r}")
            continue
        if given == truth.count:
            continue
        why = list(dict.fromkeys(w for n, w in _miscounts(host, spec, workload) if n == given))
        limit = f", at most {host.max_pods} containers" if isinstance(spec, ContainerSpec) and host.max_pods else ""
        hints.append(f"{name}: {truth.count} fit, not {given}: " + (
            "; ".join(why) if why else f"count on what admission books ({_gib(spec.reserved_memory)} and "
            f"{spec.cpu_request:g} cores each) against what the host admits ({_gib(host.admissible_memory)}, "
            f"{host.admissible_cpu:g} cores{limit}): {truth.limited_by} runs out first"))
    if hints:
        raise AssertionError("; ".join(hints))


# -- 2. limits that make a workload fit a fleet ---------------------------------------------------

def check_fleet_fit(answer: ContainerSpec, workload: Workload, count: int, host: Host, hosts: int = 100, *,
                    duration: float = 86_400.0, dt: float = 900.0, max_unmet: float = 0.01) -> None:
    """``count`` containers of ``answer`` running ``workload`` on ``hosts`` copies of ``host``
    (first-fit, :func:`sim.capacity.simulate` for ``duration`` s in ticks of ``dt``; a killed
    container is not restarted within the run, as ``docker run`` without ``--restart``) are all
    placed, none is OOM-killed (by its own ``memory.max`` or by the host), and at most
    ``max_unmet`` of the CPU they ask for goes unserved.

    Raises :class:`~sim.errors.InvalidSpecError` for a bad setup and :class:`AssertionError` with
    the hint (requests too high: rejected; memory request below the peak: host OOM kills;
    ``memory.max`` below the peak: OOM kills; ``cpu.max`` or the CPU request below the peak:
    throttling, contention) for a wrong answer."""
    _need(isinstance(workload, Workload) and isinstance(host, Host), "check_fleet_fit needs a Workload and a Host")
    _need(isinstance(count, int) and count > 0 and isinstance(hosts, int) and hosts > 0,
          "count and hosts are whole numbers > 0")
    if isinstance(answer, VMSpec):
        raise AssertionError("the answer is a VM: this fleet runs containers; give a ContainerSpec "
                             "(container(cpu_request, memory_request, cpu_max=..., memory_max=...))")
    if not isinstance(answer, ContainerSpec):
        raise AssertionError(f"the answer must be a ContainerSpec (container(...)), not {type(answer).__name__}")
    never = 10.0 * duration  # no restart inside the run: one kill is one failure, and grading stays fast
    run = simulate([host] * hosts, [Instance(answer, workload)] * count, duration=duration, dt=dt,
                   restart_backoff=never, restart_backoff_max=never)
    m = run.metrics()
    peak_mem = workload.memory * workload.memory_profile.peak
    peak_cpu = workload.cpu * workload.cpu_profile.peak
    per_host = -(-count // hosts)
    hints = []
    if m.rejected:
        fits = density(host, answer)
        hints.append(f"{m.rejected} of {count} were rejected: a container is admitted on its requests, and with "
                     f"{answer.cpu_request:g} cores and {_gib(answer.reserved_memory)} (request + shim) a host "
                     f"admits only {fits.count} ({fits.limited_by} runs out); {hosts} hosts need {per_host} a host, "
                     "so the requests are too high")
    if m.oom_kills:
        hints.append(f"{m.oom_kills} OOM kills: memory.max ({_gib(answer.memory_max or 0)}) is below what the "
                     f"workload uses at its peak ({_gib(peak_mem)}); the kernel kills a container that passes its "
                     "limit (memory cannot be throttled)")
    if m.host_oom_kills:
        hints.append(f"{m.host_oom_kills} host OOM kills: the memory request ({_gib(answer.memory_request)}) is below "
                     f"the workload's peak use ({_gib(peak_mem)}), so admission packed more containers on a host "
                     "than its RAM holds at the peak, and the host's OOM killer killed them: request the peak")
    if not hints and m.unmet_fraction > max_unmet:
        if m.throttled_s > 0:
            hints.append(f"{100 * m.unmet_fraction:.1f}% of the CPU demand unmet: cpu.max ({answer.cpu_max:g} "
                         f"cores) is below the workload's peak ({peak_cpu:g} cores); the quota throttles it even "
                         "on an idle host")
        else:
            hints.append(f"{100 * m.unmet_fraction:.1f}% of the CPU demand unmet: the CPU request "
                         f"({answer.cpu_request:g} cores) is below the workload's peak ({peak_cpu:g}), so admission "
                         "put more containers on a host than its cores serve at the peak (CPU contention)")
    if hints:
        raise AssertionError("; ".join(hints))
    print(f"{count} containers on {hosts} hosts ({m.mean_active_hosts:.0f} in use): none rejected, no OOM kill, "
          f"{100 * m.unmet_fraction:.1f}% of the CPU demand unmet")


# -- 3. hogs under limits: memory.max kills, cpu.max caps, pids.max refuses forks ----------------

HogCases = Mapping[str, tuple[Hog, Mapping[str, Any]]]

#: How far an answer may be from the truth, per hog kind: seconds to the OOM kill, cores, tasks.
_TOLERANCE = {"memory": 0.1, "cpu": 0.05, "fork": 0.0}


def _outcome(hog: Hog, series: Any, *, measured: bool) -> float | None:
    if hog.kind == "memory":
        killed = np.nonzero(np.asarray(series.oom_kills) > 0)[0]
        return float(series.t[killed[0]]) if len(killed) else None
    if hog.kind == "cpu":
        if measured:  # a reading is the mean over the interval that ends at it
            return float(series.cpu_seconds) / hog.duration_s
        # a model tick's value holds from its sample to the next one
        return float(np.mean(np.asarray(series.cpu)[np.asarray(series.t) < hog.duration_s]))
    return float(np.max(series.pids)) if len(series.pids) else 0.0


def _checked(hogs: HogCases) -> dict[str, Any]:
    _need(isinstance(hogs, Mapping) and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], Hog)
                                            and isinstance(v[1], Mapping) for v in hogs.values()),
          "hogs is {name: (Hog, {docker run flag: value})}")
    return {name: parse_limits(**dict(flags)) for name, (_, flags) in hogs.items()}  # bad flags: before anything runs


def _predicted(hogs: HogCases) -> dict[str, float | None]:
    limits = _checked(hogs)
    return {name: _outcome(hog, predict_hog(hog, limits[name]), measured=False) for name, (hog, _) in hogs.items()}


def _measured(hogs: HogCases) -> dict[str, float | None] | None:
    """Each hog run in a real container of the checks' engine, or ``None`` (printed why) when it
    cannot measure: the model's engine, or rootless on cgroup v1."""
    _checked(hogs)
    measured: dict[str, float | None] = {}
    try:
        with scratch_engine() as engine:
            runner: Any = engine  # measure_hog is the real engine's own (sim never imports realrt)
            if not hasattr(runner, "measure_hog"):
                raise BackendUnavailableError("the model has no cgroup to measure")
            for name, (hog, flags) in hogs.items():
                measured[name] = _outcome(hog, runner.measure_hog(hog, **flags).series, measured=True)
    except BackendUnavailableError as exc:
        print(f"cannot measure here ({exc}): graded on the model's prediction")
        return None
    print("measured on this machine:", {k: None if v is None else round(v, 3) for k, v in measured.items()})
    return measured


def hog_outcome(hogs: HogCases, *, measure: bool | None = None) -> dict[str, float | None]:
    """For each ``name: (hog, docker run flags)``: a memory hog's OOM-kill time in seconds after its
    start (``None``: never killed), a CPU hog's mean cores over its ``duration_s``, a fork bomb's
    most tasks at once.  ``measure`` (default: the checks' backend is ``"real"``) runs each in a
    real container (the engine's ``measure_hog``, :mod:`realrt.measure`); otherwise, or when this
    machine cannot (rootless on cgroup v1), the model predicts it (:func:`sim.capacity.predict_hog`)."""
    if measure if measure is not None else backend_name() == "real":
        measured = _measured(hogs)
        if measured is not None:
            return measured
    return _predicted(hogs)


def _hog_hint(hog: Hog, flags: Mapping[str, Any], given: float | None, low: float | None) -> str:
    limits = parse_limits(**dict(flags))
    if hog.kind == "memory":
        if low is None:
            return "it is not killed: its charge never passes memory.max"
        if given is None:
            return ("memory.max is a hard limit, not a size it lives within: when the container's charge passes it "
                    "the kernel OOM-kills the container (memory.high is the limit that only slows it)")
        return ("the charge is everything its processes hold: the shell (~1 MiB) and, while a step is built, the old "
                "string and its copy; it is killed at the first moment that passes memory.max "
                f"({(limits.memory or 0) / MiB:g} MiB): use hog.demand(t)")
    if hog.kind == "cpu":
        if given is not None and low is not None and given > low:
            return ("cpu.max caps the container at its quota (--cpus) even when the host's other cores are idle: "
                    "the rest of each 100 ms period it is throttled")
        return "cpu.max throttles it down to its quota, not below: it still runs --cpus cores' worth"
    limit = limits.pids_limit
    if given is not None and low is not None and given > low:
        return (f"pids.max ({limit}) refuses every fork beyond it (the fork fails with EAGAIN); the tasks never "
                "exist, so the count stops at the limit")
    if given is not None and low is not None and given < low:
        return ("pids.max counts every task in the container, its first shell included, and the forks up to the "
                "limit succeed: a refused fork is an error for the caller, not a kill of what already runs")
    return "pids.max refuses the forks beyond the limit"


def check_hog_outcome(answer: Mapping[str, float | None], hogs: HogCases) -> None:
    """``answer[name]`` is the model's :func:`hog_outcome` for every hog in ``hogs``, to within
    0.1 s (the OOM kill), 0.05 cores, 0 tasks.  With ``$LAYERLAB_BACKEND=real`` the hogs are also
    measured in real containers: a value then passes anywhere between the model's prediction and
    the measurement (each widened by that tolerance), since the model is the program at full speed
    and a measurement adds this machine's own delays, load and 50 ms sampling; a memory hog must be
    killed (or not) as the kernel did.  Where the machine cannot measure, the model alone grades.

    Raises :class:`~sim.errors.InvalidSpecError` for a bad setup and :class:`AssertionError`, one
    hint per wrong value naming the limit's rule it misses, for a wrong answer."""
    if not isinstance(answer, Mapping):
        raise AssertionError(f"the answer must be a dict of name -> number (or None), not {type(answer).__name__}")
    missing = sorted(set(hogs) - set(answer))
    if missing:
        raise AssertionError(f"the answer has nothing for {missing}: give one value per hog ({sorted(hogs)})")
    for name, value in answer.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.number))):
            raise AssertionError(f"{name}: a number of seconds, cores or tasks (or None), not {value!r}")
    predicted = _predicted(hogs)
    measured = _measured(hogs) if backend_name() == "real" else None
    hints = []
    for name, (hog, flags) in hogs.items():
        given = answer[name]
        seen = [predicted[name]] if measured is None else [predicted[name], measured[name]]
        if measured is not None and (measured[name] is None) != (predicted[name] is None):
            seen = [measured[name]]  # the kernel decides whether it was killed
        if given is None and seen[0] is None:
            continue
        values = [v for v in seen if v is not None]
        low, high = (min(values), max(values)) if len(values) == len(seen) else (None, None)
        tol = _TOLERANCE[hog.kind] + 1e-9
        if given is not None and low is not None and high is not None and low - tol <= float(given) <= high + tol:
            continue
        shown = "never" if low is None else f"{low:.3g}" if low == high else f"{low:.3g} to {high:.3g}"
        hints.append(f"{name}: {shown}, not {given}: {_hog_hint(hog, flags, given, low)}")
    if hints:
        raise AssertionError("; ".join(hints))


# -- 4. start latency and the flash crowd ---------------------------------------------------------

def check_start_order(order: Sequence[str], under_a_second: Iterable[str]) -> None:
    """``order`` lists ``"vm"``, ``"microvm"``, ``"container"`` from the fastest start to the slowest
    (the model's published medians, :func:`sim.capacity.predict_start`), and ``under_a_second`` is
    the set of kinds whose unmet-demand window in :func:`sim.capacity.flash_crowd` (demand doubles,
    new replicas start at once) is under one second.  Always graded on the model.

    Raises :class:`AssertionError` with the hint (a VM boots a whole guest; a microVM boots a
    minimal one straight to init; a container starts a process; until a replica runs, the extra
    demand is unmet)."""
    if isinstance(order, str) or not isinstance(order, Sequence) or sorted(map(str, order)) != sorted(START_KINDS):
        raise AssertionError(f"order must list each of {list(START_KINDS)} once, fastest first")
    if isinstance(under_a_second, str) or not isinstance(under_a_second, Iterable):
        raise AssertionError("under_a_second must be a set of kinds")
    chosen = {str(k) for k in under_a_second}
    if chosen - set(START_KINDS):
        raise AssertionError(f"{sorted(chosen - set(START_KINDS))} are not kinds: choose from {list(START_KINDS)}")
    starts = {k: predict_start(k, memory=512 * MiB).start_s for k in START_KINDS}
    truth = sorted(START_KINDS, key=lambda k: starts[k])
    hints = []
    if list(order) != truth:
        times = ", ".join(f"{k} {starts[k]:g} s" for k in truth)
        if list(order)[-1] != truth[-1]:
            hints.append(f"fastest first is {truth} ({times}): a VM boots a whole machine (firmware, its own "
                         "kernel, a distribution) before its app runs")
        else:
            hints.append(f"fastest first is {truth} ({times}): a microVM boots a minimal guest kernel straight to "
                         f"init (Firecracker: {starts['microvm'] * 1000:.0f} ms), a container's runtime sets up "
                         f"namespaces and cgroups for a process on the host's kernel (runc: "
                         f"{starts['container'] * 1000:.0f} ms); both take a fraction of a second")
    crowd = flash_crowd().outcome
    fast = {k for k in START_KINDS if crowd[f"{k}_window_s"] < 1.0}
    for kind in sorted(chosen - fast):
        hints.append(f"{kind}'s window is {crowd[kind + '_window_s']:.1f} s: new replicas serve nothing until "
                     f"they run, and a {kind} boots its guest for {starts[kind]:g} s while the extra demand waits")
    for kind in sorted(fast - chosen):
        hints.append(f"{kind}'s window is {crowd[kind + '_window_s']:.2f} s: it starts in {starts[kind]:g} s, "
                     "so the new replicas run almost at once")
    if hints:
        raise AssertionError("; ".join(hints))


# -- 5. what the host holds: a guest keeps what it touched ----------------------------------------

def held_memory(specs: Mapping[str, Spec], workload: Workload, duration: float, *, dt: float = 60.0) -> dict[str, float]:
    """Bytes each of ``specs`` (one instance each, running ``workload``, on a host big enough for
    all) holds at the end of a ``duration``-second run, as its usage series reports it: for a VM
    the host memory its hypervisor process holds (overhead, guest OS, guest pages), for a container
    its cgroup's charge (the shim is outside the cgroup)."""
    _need(isinstance(specs, Mapping) and bool(specs) and all(isinstance(s, (VMSpec, ContainerSpec))
                                                             for s in specs.values())
          and all(isinstance(k, str) and k for k in specs), "specs is {name: VMSpec | ContainerSpec}, names not empty")
    _need(isinstance(workload, Workload), "workload must be a Workload")
    need_cpu = sum(s.cpu_request for s in specs.values())
    need_mem = sum(s.reserved_memory for s in specs.values()) + workload.memory * workload.memory_profile.peak
    big = Host(cores=max(1.0, need_cpu), memory=int(2 * need_mem) + GiB, cpu_overcommit=1.0, ram_overcommit=1.0,
               reserved_memory=0, max_pods=None)
    run = simulate([big], [Instance(s, workload, name=n) for n, s in specs.items()], duration=duration, dt=dt,
                   trace=list(specs), jitter=0.0)
    return {name: float(run.traces[name].memory[-1]) for name in specs}


def _held_hints(spec: Spec, workload: Workload, given: float, truth: float, duration: float, tol: float) -> str:
    now = workload.memory * float(workload.memory_profile(np.array([duration]))[0])
    peak = workload.memory * workload.memory_profile.peak

    def near(v: float) -> bool:
        return abs(given - v / MiB) <= tol

    if isinstance(spec, VMSpec):
        base = spec.overhead + spec.guest_os
        if near(spec.memory) or near(spec.reserved_memory):
            return ("admission books the VM's whole RAM, but the host holds the pages the guest touched: its "
                    "high-water mark, plus the guest OS and the hypervisor")
        if not spec.balloon and (near(now) or near(base + now)):
            return ("a guest never hands pages back: without a balloon the VM keeps holding the high-water mark of "
                    f"what its workload touched ({_gib(peak)} at the peak), whatever it uses now")
        if spec.balloon and (near(peak) or near(base + peak)):
            return ("a balloon driver takes back the pages the guest no longer uses: a ballooned VM follows what "
                    "its workload uses now")
        if near(truth - base) or near(truth - spec.overhead) or near(truth - spec.guest_os):
            return (f"a VM also holds its guest kernel and OS ({spec.guest_os / MiB:.0f} MiB) and the hypervisor "
                    f"process ({spec.overhead / MiB:.0f} MiB) beside the guest's pages")
        return "a VM holds its hypervisor, its guest OS and every page its guest has touched (or, ballooned, uses now)"
    if near(peak):
        return ("a container's charge follows what its processes use now: memory they free goes back to the host "
                "at once (no guest keeps it)")
    if near(spec.memory_request) or near(spec.reserved_memory):
        return "the request is what admission books; a container holds what its processes use"
    if spec.memory_max is not None and near(spec.memory_max):
        return "memory.max is a ceiling the kernel enforces; a container holds only what its processes use"
    return "a container has no guest kernel or OS: its cgroup is charged what its processes use now"


def check_held_memory(answer: Mapping[str, float], specs: Mapping[str, Spec], workload: Workload,
                      duration: float, *, tolerance_mib: float = 12.0) -> None:
    """``answer[name]`` is :func:`held_memory`'s value for ``specs[name]`` in MiB, to within
    ``tolerance_mib`` (default 12 MiB, about a container's shim), for every name in ``specs``.

    Raises :class:`~sim.errors.InvalidSpecError` for a bad setup and :class:`AssertionError`, one
    hint per wrong value (a guest's high-water mark, the balloon, guest OS and hypervisor, a
    container's charge), for a wrong answer."""
    if not isinstance(answer, Mapping):
        raise AssertionError(f"the answer must be a dict of name -> MiB, not {type(answer).__name__}")
    missing = sorted(set(specs) - set(answer))
    if missing:
        raise AssertionError(f"the answer has nothing for {missing}: give MiB for each of {sorted(specs)}")
    truth = held_memory(specs, workload, duration)
    hints = []
    for name, spec in specs.items():
        given = answer[name]
        if isinstance(given, bool) or not isinstance(given, (int, float, np.number)):
            hints.append(f"{name}: a number of MiB, not {given!r}")
            continue
        if abs(float(given) - truth[name] / MiB) <= tolerance_mib:
            continue
        hints.append(f"{name}: {truth[name] / MiB:.0f} MiB, not {given}: "
                     f"{_held_hints(spec, workload, float(given), truth[name], duration, tolerance_mib)}")
    if hints:
        raise AssertionError("; ".join(hints))


# -- 6. write the property: what place() admits ---------------------------------------------------

#: What a property's subject ``place`` is: ``place(hosts, instances, **options)`` gives the
#: :class:`~sim.capacity.Placement` of ``instances`` (``.host[i]``: instance i's host, -1 rejected).
Place = Callable[..., Placement]


def _joined(parts: Sequence[Placement]) -> Placement:
    return Placement(host=np.concatenate([p.host for p in parts]).astype(np.int64),
                     latency=np.concatenate([p.latency for p in parts]),
                     queued=np.concatenate([p.queued for p in parts]))


def _ignores_placed(hosts: Sequence[Host], instances: Sequence[Instance], **options: Any) -> Placement:
    """Each instance placed as if every host were empty: what is already on a host is forgotten."""
    if not instances:
        return place(hosts, [], **options)
    return _joined([place(hosts, [inst], **options) for inst in instances])


def _forgets_departures(hosts: Sequence[Host], instances: Sequence[Instance], **options: Any) -> Placement:
    """An instance that leaves keeps its reservation: every duration made endless before placing."""
    forever = [replace(i, workload=replace(i.workload, duration=math.inf)) for i in instances]
    return place(hosts, forever, **options)


def _books_vm_use(hosts: Sequence[Host], instances: Sequence[Instance], **options: Any) -> Placement:
    """A VM booked like a container, on what its guest uses (its OS and its app), not its whole RAM
    and the hypervisor."""
    def booked(inst: Instance) -> Instance:
        spec = inst.spec
        if not isinstance(spec, VMSpec):
            return inst
        return replace(inst, spec=replace(spec, memory=spec.guest_os + max(inst.workload.memory, 1), overhead=0))
    return place(hosts, [booked(i) for i in instances], **options)


PLACEMENT_MUTANTS = (
    Mutant("earlier placements ignored", "after placing, add up what every host holds (cpu_request and "
           "spec.reserved_memory of the instances on it that have not left) and check it is within "
           "host.admissible_cpu and host.admissible_memory"),
    Mutant("departures forgotten", "give instances a finite duration, and check that an instance is rejected only "
           "when no host has room for it at its arrival (counting only the instances still there)"),
    Mutant("a VM booked on what it uses", "draw VMs whose RAM is more than their workload uses, and count each VM on "
           "its host with spec.reserved_memory: its whole RAM plus the hypervisor's overhead"),
)


def _correct(hosts: Sequence[Host], instances: Sequence[Instance], **options: Any) -> Placement:
    return place(hosts, instances, **options)


def check_placement_property(prop: object, *, max_examples: int = 60) -> None:
    """Chapter 4: ``prop(place, ...)`` holds for :func:`sim.capacity.place` and catches three broken
    schedulers built around it (:data:`PLACEMENT_MUTANTS`): one that places each instance on hosts
    as if they were empty, one that never frees what a departed instance reserved, one that books a
    VM on what its workload uses.  Examples are drawn deterministically, at most ``max_examples`` a
    run.  Always on the model (placement has no kernel twin).

    Raises :class:`AssertionError` (see :func:`~sim.exercises.check_property`)."""
    check_property(prop, _correct, [(PLACEMENT_MUTANTS[0], _ignores_placed),
                                    (PLACEMENT_MUTANTS[1], _forgets_departures),
                                    (PLACEMENT_MUTANTS[2], _books_vm_use)], max_examples=max_examples)

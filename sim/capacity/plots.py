"""Figures of the resource model and the measurements: matplotlib's object API, no pyplot.

Every function builds a new :class:`matplotlib.figure.Figure` and returns it; nothing touches
pyplot's current figure or any other global state (rc settings are changed only while a figure
is being built).  Titles and axis labels are Chinese + English.  When no installed font has CJK
glyphs (``./dev`` installs one as root), the figures keep only the English (:func:`latin`); a
figure never warns about a glyph its fonts lack.

- :func:`figure` -- a :class:`~sim.capacity.scenarios.ScenarioResult`'s figure (by its name);
- :func:`fleet` -- capacity / reserved / used over time of one :class:`~sim.capacity.Run`;
- :func:`overlay` -- one hog as the model predicts it and as this machine measured it;
- :func:`starts` -- time to init and host memory per start, model vs measured;
- :func:`layers` -- what each kind of instance holds, layer by layer (the seed's 虚拟化层面).
"""

from __future__ import annotations

import contextlib
import functools
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ParamSpec, cast

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

from sim.capacity.defaults import GiB, MiB
from sim.capacity.run import Run
from sim.capacity.scenarios import ScenarioResult
from sim.capacity.series import KINDS, StartMeasurement, UsageSeries
from sim.capacity.specs import KIND_ORDER, Spec, VMSpec, container, microvm, vm
from sim.figures import cjk_font, font_rc

__all__ = ["figure", "fleet", "start_latency", "overlay", "starts", "layers", "same_service", "flash_crowd", "noisy_neighbour",
           "overcommit_sweep", "idle_waste_day", "consolidation_power", "COLOURS"]

#: One colour per kind of instance, used in every figure.
COLOURS: Mapping[str, str] = {"vm": "#4c72b0", "microvm": "#dd8452", "container": "#55a868"}
_NAMES = {"vm": "虚拟机 VM", "microvm": "微虚拟机 microVM", "container": "容器 container"}
_CJK = cjk_font()


@contextlib.contextmanager
def _no_glyph_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        yield


class _Figure(Figure):
    """A plain Figure, except that drawing it never warns about glyphs the fonts lack (text is
    laid out and drawn in :meth:`draw` and :meth:`get_tightbbox`, whoever calls them)."""

    def draw(self, renderer: Any) -> None:
        with _no_glyph_warnings():
            super().draw(renderer)

    def get_tightbbox(self, renderer: Any = None, *args: Any, **kwargs: Any) -> Any:
        with _no_glyph_warnings():
            return super().get_tightbbox(renderer, *args, **kwargs)


P = ParamSpec("P")


_HAN = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]+")


def latin(text: str) -> str:
    """``text`` without its Chinese: what a figure says when no font can draw the Chinese
    (every label is written "中文 English", so the English reads on its own)."""
    text = re.sub(r"\s+", " ", _HAN.sub("", text))
    text = re.sub(r"\(\s*\)", "", text)
    return re.sub(r"\s+([:,)])", r"\1", text).strip().lstrip(":/ ").strip()


def _builds_figure(fn: Callable[P, Figure]) -> Callable[P, Figure]:
    """While ``fn`` builds its figure: a CJK fallback font if one is installed (text keeps the
    fonts it was created with) and no glyph warnings; without such a font, English only."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with rc_context(cast(Any, font_rc())), _no_glyph_warnings():
            fig = fn(*args, **kwargs)
        if not _CJK:
            for text in fig.findobj(Text):
                text.set_text(latin(text.get_text()))
        return fig

    return wrapper


def _new(rows: int = 1, cols: int = 1, *, width: float = 10.0, height: float = 4.0,
         sharex: bool = False, sharey: bool = False) -> tuple[Figure, list[Axes]]:
    fig = _Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=sharex, sharey=sharey, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def _time_axis(t: np.ndarray) -> tuple[np.ndarray, str]:
    """Seconds, minutes or hours, whichever reads best for the span."""
    span = float(t[-1]) if len(t) else 0.0
    if span > 3 * 3600:
        return t / 3600.0, "时间 time (h)"
    if span > 600:
        return t / 60.0, "时间 time (min)"
    return t, "时间 time (s)"


# -- generic figures -----------------------------------------------------------------------------

@_builds_figure
def fleet(run: Run) -> Figure:
    """Two panels over the run: CPU (cores: capacity of the hosts on, reserved, demand, used) and
    memory (GiB: capacity, reserved, held by the hosts for the instances, in use by workloads)."""
    fig, (cpu, mem) = _new(1, 2, width=11, height=4, sharex=True)
    x, xlabel = _time_axis(run.t)
    cpu.plot(x, run.capacity_cpu, "k--", label="容量 capacity")
    cpu.plot(x, run.reserved_cpu, label="预留 reserved")
    cpu.plot(x, run.demand_cpu, ":", label="需求 demand")
    cpu.plot(x, run.used_cpu, label="使用 used")
    cpu.set(title="CPU", xlabel=xlabel, ylabel="CPU 核 cores")
    mem.plot(x, run.capacity_memory / GiB, "k--", label="容量 capacity")
    mem.plot(x, run.reserved_memory / GiB, label="预留 reserved")
    mem.plot(x, run.used_memory / GiB, label="占用 held")
    mem.plot(x, run.in_use_memory / GiB, label="使用 in use")
    mem.set(title="内存 memory", xlabel=xlabel, ylabel="内存 memory (GiB)")
    for ax in (cpu, mem):
        ax.set_ylim(bottom=0)
        ax.legend(fontsize="small")
    fig.suptitle(f"集群 fleet: {len(run.hosts)} 台主机 hosts, {len(run.instances)} 个实例 instances ({run.policy})")
    return fig


@_builds_figure
def start_latency(runs: Mapping[str, Run]) -> Figure:
    """The distribution of start latency (arrival to running, seconds, log scale) of every
    admitted instance in ``runs``, one empirical CDF per kind, with its median marked."""
    latencies: dict[str, list[float]] = {}
    for run in runs.values():
        it = run.instances
        for kind, host, latency in zip(it.kind, it.host, it.start_latency):
            if host >= 0:
                latencies.setdefault(kind, []).append(float(latency))
    if not latencies:
        raise ValueError("start_latency() needs a run with at least one admitted instance")
    fig, (ax,) = _new(1, 1, width=7, height=4)
    for kind in sorted(latencies, key=KIND_ORDER.index):
        values = np.sort(np.maximum(latencies[kind], 1e-4))
        share = np.arange(1, len(values) + 1) / len(values)
        ax.step(values, share, where="post", color=COLOURS[kind], label=f"{_NAMES[kind]} (n={len(values)})")
        ax.axvline(float(np.median(values)), color=COLOURS[kind], ls=":", lw=1)
    ax.set_xscale("log")
    ax.set(xlabel="启动延迟 start latency (s, log)", ylabel="累计比例 cumulative share", ylim=(0, 1.02),
           title="启动延迟分布 start-latency distribution (CDF; dotted: median)")
    ax.legend(fontsize="small", loc="lower right")
    return fig


_LIMIT_PANELS = (("cpu", "CPU 核 cores", 1.0, ("cpu.max",)),
                 ("memory", "内存 memory (MiB)", MiB, ("memory.high", "memory.max")),
                 ("pids", "进程数 tasks", 1.0, ("pids.max",)))


@_builds_figure
def overlay(model: UsageSeries, measured: UsageSeries) -> Figure:
    """The same hog predicted (solid) and measured (markers) on shared axes: CPU, memory, pids
    panels; each limit in either series' ``limits`` is drawn as a dashed horizontal line."""
    fig, axes = _new(1, 3, width=13, height=3.8, sharex=True)
    limits = {**measured.limits, **model.limits}
    for ax, (field, ylabel, unit, names) in zip(axes, _LIMIT_PANELS):
        ax.plot(model.t, getattr(model, field) / unit, "-", color="#4c72b0", label="模型 model")
        ax.plot(measured.t, getattr(measured, field) / unit, "o", ms=3, color="#c44e52",
                label="实测 measured")
        for i, name in enumerate(n for n in names if n in limits):
            ax.axhline(limits[name] / unit, ls="--", color=("#555555", "#999999")[i % 2], label=name)
        ax.set(xlabel="时间 time (s)", ylabel=ylabel)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize="x-small", loc="best")
    axes[0].set_title("CPU")
    axes[1].set_title("内存 memory")
    axes[2].set_title("进程 pids")
    fig.suptitle(f"模型与实测 model vs measured: {model.label} / {measured.label}")
    return fig


def _start_label(m: StartMeasurement) -> str:
    extra = f" ({m.accelerator})" if m.accelerator else ""
    return f"{m.kind}\n{m.source}{extra}"


@_builds_figure
def starts(measurements: Sequence[StartMeasurement]) -> Figure:
    """Per start, grouped by kind (VM, microVM, container) and source: seconds to init (log
    scale) and host memory held just after (MiB, log scale); a measured VM's label names the
    accelerator that really ran ("kvm" or "tcg").  Model bars are hatched."""
    if not measurements:
        raise ValueError("starts() needs at least one StartMeasurement")
    order = sorted(measurements, key=lambda m: (KINDS.index(m.kind), m.source != "model", m.label))
    fig, (time_ax, mem_ax) = _new(1, 2, width=max(8.0, 1.3 * len(order) + 4), height=4)
    x = np.arange(len(order))
    for ax, values, ylabel, title in (
            (time_ax, [m.start_s for m in order], "秒 seconds (log)", "启动时间 time to init"),
            (mem_ax, [m.memory_bytes / MiB for m in order], "MiB (log)", "主机内存 host memory held")):
        bars = ax.bar(x, np.maximum(values, 1e-6), color=[COLOURS[m.kind] for m in order],
                      edgecolor="black", linewidth=0.6)
        for bar, m in zip(bars, order):
            if m.source == "model":
                bar.set_hatch("//")
                bar.set_alpha(0.6)
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize="x-small")
        ax.set_yscale("log")
        ax.set_xticks(x, [_start_label(m) for m in order], fontsize="small")
        ax.set(ylabel=ylabel, title=title)
    fig.suptitle("启动 starts: 模型 model (hatched) vs 实测 measured")
    return fig


_OVERHEAD = "开销 overhead: hypervisor / VMM / shim"


def _layers_of(spec: Spec, app: float) -> list[tuple[str, float, str, str | None]]:
    """(label, MiB, colour, hatch) from the bottom up."""
    if isinstance(spec, VMSpec):
        room = spec.memory - spec.guest_os
        used = min(app, room)
        return [(_OVERHEAD, spec.overhead / MiB, "#8172b3", None),
                ("客户机内核与系统 guest kernel + OS", spec.guest_os / MiB, "#937860", None),
                ("应用 app", used / MiB, "#55a868", None),
                ("已分配未使用 given, not used", (room - used) / MiB, "#dddddd", "//")]
    return [(_OVERHEAD, spec.overhead / MiB, "#8172b3", None), ("应用 app", app / MiB, "#55a868", None)]


@_builds_figure
def layers(specs: Mapping[str, Spec] | None = None, *, app_memory: int = 256 * MiB) -> Figure:
    """Stacked bars of what one instance of each spec holds or reserves on the host, in MiB, for
    an app using ``app_memory``: hypervisor/VMM overhead, guest kernel + OS, the app and the RAM
    it was given but does not use (a VM reserves it all) -- or, for a container, shim + app.
    Default specs: ``vm(2, 4 GiB)``, ``microvm(1, 512 MiB)``, ``container(0.25, 256 MiB)``."""
    specs = dict(specs) if specs is not None else {"vm": vm(2, 4 * GiB), "microvm": microvm(1, 512 * MiB),
                                                   "container": container(0.25, 256 * MiB)}
    if not specs:
        raise ValueError("layers() needs at least one spec")
    fig, (ax,) = _new(1, 1, width=8, height=4.5)
    seen: set[str] = set()
    for i, (_name, spec) in enumerate(specs.items()):
        bottom = 0.0
        for label, height, colour, hatch in _layers_of(spec, float(app_memory)):
            if height <= 0:
                continue
            ax.bar(i, height, bottom=bottom, color=colour, hatch=hatch, edgecolor="black", linewidth=0.5,
                   label=None if label in seen else label)
            seen.add(label)
            bottom += height
        ax.annotate(f"{bottom:.0f} MiB", (i, bottom), ha="center", va="bottom", fontsize="small")
    ax.set_xticks(range(len(specs)), [f"{_NAMES.get(s.kind, s.kind)}\n{n}" if n != s.kind else _NAMES[s.kind]
                                      for n, s in specs.items()])
    ax.set(ylabel="内存 memory (MiB)",
           title="虚拟化层面 virtualisation level: 硬件虚拟化 hardware vs 进程虚拟化 process")
    ax.legend(fontsize="small", loc="upper right")
    return fig


# -- one figure per scenario -----------------------------------------------------------------------

@_builds_figure
def same_service(result: ScenarioResult) -> Figure:
    """Copies per kind (what ran out first on each bar; kubelet's ``--max-pods`` as a line), and
    the packed host's memory per kind: reserved, held, in use."""
    fig, (count_ax, mem_ax) = _new(1, 2, width=11, height=4.2)
    kinds, counts, limited = result.table["kind"], result.table["count"], result.table["limited_by"]
    bars = count_ax.bar(range(len(kinds)), counts, color=[COLOURS[k] for k in kinds])
    count_ax.bar_label(bars, labels=[f"{c}\n({lim})" for c, lim in zip(counts, limited)], fontsize="small")
    cap = result.outcome["container_count_max_pods"]
    count_ax.axhline(cap, ls="--", color="grey", label=f"kubelet --max-pods: {cap:.0f} 个容器 containers")
    count_ax.set_xticks(range(len(kinds)), [_NAMES[k] for k in kinds])
    count_ax.set(ylabel="每台主机实例数 instances per host", title="密度 density (what runs out first)")
    count_ax.set_ylim(0, max(counts) * 1.2)
    count_ax.legend(fontsize="small", loc="upper left")
    width = 0.27
    for j, (what, label) in enumerate((("reserved", "预留 reserved"), ("held", "占用 held"), ("in_use", "使用 in use"))):
        values = [result.outcome[f"{k}_{what}_gib"] for k in kinds]
        mem_ax.bar(np.arange(len(kinds)) + (j - 1) * width, values, width, label=label,
                   color=["#999999", "#4c72b0", "#55a868"][j])
    host = result.parameters["host"]
    mem_ax.axhline(host.memory / GiB, ls="--", color="black", label="主机内存 host memory")  # type: ignore[attr-defined]
    mem_ax.set_xticks(range(len(kinds)), [_NAMES[k] for k in kinds])
    mem_ax.set(ylabel="内存 memory (GiB)", title="装满的主机 the packed host")
    mem_ax.legend(fontsize="small")
    fig.suptitle(result.title)
    return fig


@_builds_figure
def flash_crowd(result: ScenarioResult) -> Figure:
    """One panel per kind: demand and served CPU over time, the unmet part shaded, the step's
    moment as a dotted line and the unmet-demand window in the title."""
    fig, axes = _new(1, 3, width=13, height=3.8, sharey=True)
    at = result.outcome["at"]
    for ax, kind in zip(axes, KIND_ORDER):
        run = result.runs[kind]
        ax.plot(run.t, run.demand_cpu, "k:", label="需求 demand")
        ax.plot(run.t, run.used_cpu, color=COLOURS[kind], label="满足 served")
        ax.fill_between(run.t, run.used_cpu, run.demand_cpu, color="#c44e52", alpha=0.3, step=None,
                        label="未满足 unmet")
        ax.axvline(at, color="grey", ls="--", lw=0.8)
        ax.set(title=f"{_NAMES[kind]}: 缺口 unmet window {result.outcome[f'{kind}_window_s']:.2f} s", xlabel="时间 time (s)")
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel("CPU 核 cores")
    axes[0].legend(fontsize="small", loc="lower right")
    fig.suptitle(result.title)
    return fig


def _kill_marks(ax: Axes, s: UsageSeries, unit: float, colour: str) -> None:
    kills = np.nonzero(np.diff(s.oom_kills, prepend=0.0) > 0)[0]
    if len(kills):
        before = np.maximum(kills - 1, 0)  # where it stood just before it was killed
        ax.plot(s.t[kills], s.memory[before] / unit, "x", color=colour, ms=9, mew=2)


@_builds_figure
def noisy_neighbour(result: ScenarioResult) -> Figure:
    """Four panels, one per case: CPU of the hog and its neighbour under weights and under
    ``cpu.max`` (the cap dashed); memory of the leaker and its neighbours under memory.high and
    memory.max, and with no limits against the host's memory (OOM kills marked x)."""
    fig, axes = _new(2, 2, width=12, height=7.5)
    o, palette = result.outcome, ("#c44e52", "#4c72b0", "#55a868")
    w = result.runs["weights"].traces
    for (name, s), colour in zip(w.items(), palette):
        axes[0].plot(s.t, s.cpu, color=colour, label=name)
    axes[0].set(title=f"cpu.weight: 独占空闲 uses idle {o['weights_hog_cpu_alone']:.1f}, "
                      f"让出 yields to {o['weights_hog_cpu_contended']:.1f} cores", ylabel="CPU 核 cores")
    q = result.runs["quota"].traces
    for (name, s), colour in zip(q.items(), palette):
        axes[1].plot(s.t, s.cpu, color=colour, label=name)
    axes[1].axhline(result.parameters["quota"], ls="--", color="grey", label="cpu.max")  # type: ignore[arg-type]
    axes[1].set(title=f"cpu.max: 空闲也被限流 throttled on an idle host ({o['quota_throttled_s']:.0f} s)",
                ylabel="CPU 核 cores")
    lim = result.runs["limits"].traces
    for (name, s), colour in zip(lim.items(), palette):
        axes[2].plot(s.t, s.memory / GiB, color=colour, label=name)
        _kill_marks(axes[2], s, GiB, colour)
    for key, label, style in (("memory_high", "memory.high", ":"), ("memory_max", "memory.max", "--")):
        axes[2].axhline(result.parameters[key] / GiB, ls=style, color="grey", label=label)  # type: ignore[operator]
    axes[2].set(title=f"memory.high → memory.max: OOM ×{o['limits_oom_kills']:.0f}, 邻居 neighbours "
                      f"×{o['limits_neighbour_kills']:.0f}", ylabel="内存 memory (GiB)")
    ho = result.runs["host_oom"]
    for (name, s), colour in zip(ho.traces.items(), palette):
        axes[3].plot(s.t, s.memory / GiB, color=colour, label=name)
        _kill_marks(axes[3], s, GiB, colour)
    axes[3].plot(ho.t, ho.used_memory / GiB, "k:", lw=1, label="主机占用 host held")
    h = ho.hosts[0]
    axes[3].axhline((h.memory - h.reserved_memory) / GiB, ls="--", color="black", label="主机内存 host memory")
    victim = result.table["first_host_oom_victim"][0] or "-"
    axes[3].set(title=f"no memory.max (无上限): host OOM kills first 主机先杀: {victim}", ylabel="内存 memory (GiB)")
    for ax in axes:
        ax.set_xlabel("时间 time (s)")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize="x-small", loc="upper left")
    fig.suptitle(result.title)
    return fig


_SWEEP_PANELS = (("energy_kwh", "能耗 energy (kWh)"), ("hosts", "开机主机 hosts on"),
                 (None, "利用率 utilisation (fraction of capacity)"), ("unmet_fraction", "未满足 CPU unmet fraction"),
                 ("host_oom_kills", "主机杀进程 host OOM kills"))


@_builds_figure
def overcommit_sweep(result: ScenarioResult) -> Figure:
    """Five panels against the overcommit ratio (log scale), the RAM sweep and the CPU sweep on
    each: energy, hosts on, utilisation of the swept resource, unmet CPU fraction, host OOM
    kills; the sixth panel states where each breaks."""
    fig, axes = _new(2, 3, width=13, height=7)
    t = result.table
    sweeps = (("ram", "内存超分 RAM ratio", "#c44e52", "memory_utilisation"),
              ("cpu", "CPU 超分 overcommit ratio", "#4c72b0", "cpu_utilisation"))
    for ax, (column, ylabel) in zip(axes, _SWEEP_PANELS):
        for sweep, label, colour, util in sweeps:
            values = t[f"{sweep}_{column or util}"]
            ax.plot(t[f"{sweep}_ratio"], values, "o-", color=colour, label=label)
        ax.set_xscale("log", base=2)
        ticks = sorted(set(t["ram_ratio"]) | set(t["cpu_ratio"]))
        ax.set_xticks(ticks, [f"{r:g}" for r in ticks], fontsize="x-small")
        ax.minorticks_off()
        ax.set(xlabel="超分比例 overcommit ratio", ylabel=ylabel)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize="x-small")
    text = axes[5]
    text.axis("off")
    o = result.outcome
    text.text(0.02, 0.9, "\n".join([
        f"内存悬崖 RAM cliff: x{o['ram_cliff_ratio']:g}",
        "  (host OOM kills jump from 0)",
        f"CPU 违约 SLA break: x{o['cpu_break_ratio']:g}",
        f"  (unmet > {result.parameters['sla']:.0%}, no kills)",
    ]), va="top", family="monospace", fontsize="small")
    fig.suptitle(result.title)
    return fig


@_builds_figure
def idle_waste_day(result: ScenarioResult) -> Figure:
    """VMs and containers over the day: memory reserved, held and in use, the idle waste
    (reserved minus in use) shaded, GiB·h and the fraction wasted in each title."""
    fig, axes = _new(1, 2, width=12, height=4, sharey=True)
    for ax, kind in zip(axes, ("vm", "container")):
        run = result.runs[kind]
        x, xlabel = _time_axis(run.t)
        ax.plot(x, run.reserved_memory / GiB, color="#555555", label="预留 reserved")
        ax.plot(x, run.used_memory / GiB, color=COLOURS[kind], label="占用 held")
        ax.plot(x, run.in_use_memory / GiB, color="black", ls=":", label="使用 in use")
        ax.fill_between(x, run.in_use_memory / GiB, np.maximum(run.reserved_memory, run.in_use_memory) / GiB,
                        color="#c44e52", alpha=0.2, label="闲置浪费 idle waste")
        o = result.outcome
        ax.set(title=f"{_NAMES[kind]}: {o[f'{kind}_waste_gib_h']:.0f} GiB·h ({o[f'{kind}_waste_fraction']:.0%})",
               xlabel=xlabel)
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel("内存 memory (GiB)")
    axes[0].legend(fontsize="small", loc="lower right")
    fig.suptitle(result.title)
    return fig


@_builds_figure
def consolidation_power(result: ScenarioResult) -> Figure:
    """Per case: energy over the run (kWh, hosts on as bar labels) and energy per core-hour of
    work served (Wh), with the idle/peak power ratio in the title."""
    fig, (energy_ax, work_ax) = _new(1, 2, width=12, height=4.5)
    cases = result.table["case"]
    colours = ["#999999", "#bbbbbb", "#55a868", "#8fbc8f", "#dd8452"][:len(cases)]
    x = np.arange(len(cases))
    bars = energy_ax.bar(x, result.table["energy_kwh"], color=colours)
    energy_ax.bar_label(bars, labels=[f"{h:.1f} 台 hosts" for h in result.table["hosts"]], fontsize="small")
    energy_ax.set(ylabel="能耗 energy (kWh)", title="能耗 energy")
    bars = work_ax.bar(x, result.table["wh_per_core_h"], color=colours)
    work_ax.bar_label(bars, fmt="%.1f", fontsize="small")
    work_ax.set(ylabel="Wh / core·h 每核时", title="每单位工作的能耗 energy per unit of work")
    for ax in (energy_ax, work_ax):
        ax.set_xticks(x, [c.replace(", ", "\n") for c in cases], fontsize="small")
    fig.suptitle(f"{result.title} — 空闲满载功率比 idle/peak power {result.outcome['idle_peak_ratio']:.2f}")
    return fig


_BY_NAME: Mapping[str, Callable[[ScenarioResult], Figure]] = {
    "same_service": same_service, "flash_crowd": flash_crowd, "noisy_neighbour": noisy_neighbour,
    "overcommit_sweep": overcommit_sweep, "idle_waste_day": idle_waste_day,
    "consolidation_power": consolidation_power,
}


def figure(result: ScenarioResult) -> Figure:
    """The figure of a scenario's result, chosen by ``result.name`` (``KeyError`` if unknown)."""
    try:
        draw = _BY_NAME[result.name]
    except KeyError:
        raise KeyError(f"no figure for scenario {result.name!r}; known: {', '.join(_BY_NAME)}") from None
    return draw(result)

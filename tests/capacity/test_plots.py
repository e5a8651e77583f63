"""Every figure function returns a populated Figure that saves to PNG without any warning."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

from sim.capacity import (
    GiB,
    MiB,
    StartMeasurement,
    UsageSeries,
    container,
    memory_hog,
    plots,
    predict_hog,
    predict_start,
    vm,
)
from sim.capacity.scenarios import ALL, ScenarioResult
from sim.containers.limits import parse_limits

# Small versions of the scenarios: the figures' shape, not the numbers, is under test here.
SMALL: dict[str, dict[str, Any]] = {
    "same_service": {"duration": 60.0},
    "flash_crowd": {"duration": 120.0},
    "noisy_neighbour": {},
    "overcommit_sweep": {"ram_ratios": (1.0, 1.5, 2.0), "cpu_ratios": (1.0, 8.0, 16.0), "duration": 7200.0},
    "idle_waste_day": {"services": 5},
    "consolidation_power": {"duration": 7200.0},
}
AXES = {"same_service": 2, "flash_crowd": 3, "noisy_neighbour": 4, "overcommit_sweep": 6, "idle_waste_day": 2,
        "consolidation_power": 2}


def shown(text: str) -> str:
    """What a figure shows for ``text``: all of it with a CJK font installed, the English without."""
    return text if plots._CJK else plots.latin(text)


def strict(build: Callable[[], Figure], png: Path) -> Figure:
    """Build and save the figure with every warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = build()
        fig.savefig(png, dpi=40)
        fig.savefig(png.with_suffix(".tight.png"), dpi=40, bbox_inches="tight")
    assert png.stat().st_size > 1000
    return fig



@pytest.mark.parametrize("name", list(ALL))
def test_scenario_figure(name: str, tmp_path: Path) -> None:
    result: ScenarioResult = ALL[name](**SMALL[name])
    fig = strict(lambda: plots.figure(result), tmp_path / f"{name}.png")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == AXES[name]
    assert all(len(ax.lines) + len(ax.patches) for ax in fig.axes if ax.axison)
    assert shown(result.title) in fig.get_suptitle()


def test_figure_of_an_unknown_scenario() -> None:
    result = ALL["flash_crowd"](duration=70.0)
    with pytest.raises(KeyError):
        plots.figure(ScenarioResult("nope", result.title, result.claim, result.outcome, result.runs, {}))


def test_fleet(tmp_path: Path) -> None:
    run = ALL["idle_waste_day"](services=3).runs["vm"]
    fig = strict(lambda: plots.fleet(run), tmp_path / "fleet.png")
    assert len(fig.axes) == 2
    assert all(len(ax.lines) == 4 for ax in fig.axes)
    assert fig.axes[1].get_ylabel() == shown("内存 memory (GiB)")


def test_overlay_draws_both_series_and_dashed_limits(tmp_path: Path) -> None:
    model = predict_hog(memory_hog(64), parse_limits(memory="32m", cpus=0.5, pids_limit=20))
    t = np.arange(0.0, 3.0, 0.1)
    measured = UsageSeries("runc hog", "measured", t, np.full_like(t, 0.1), np.minimum(t * 20e6, 32 * MiB),
                           np.zeros_like(t), np.ones_like(t), (t > 1.7).astype(float), {"memory.max": 32 * MiB})
    fig = strict(lambda: plots.overlay(model, measured), tmp_path / "overlay.png")
    assert len(fig.axes) == 3
    for ax, limit in zip(fig.axes, ("cpu.max", "memory.max", "pids.max")):
        dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert [line.get_label() for line in dashed] == [limit]
        assert len(ax.lines) == 3  # model, measured, the limit


def test_starts_labels_the_accelerator(tmp_path: Path) -> None:
    ms = [predict_start(k, memory=512 * MiB) for k in ("vm", "microvm", "container")]
    ms += [StartMeasurement("vm", "qemu", "measured", 2.5, 150 * MiB, 512 * MiB, "tcg"),
           StartMeasurement("container", "runc", "measured", 0.028, 1 * MiB)]
    fig = strict(lambda: plots.starts(ms), tmp_path / "starts.png")
    assert len(fig.axes) == 2
    assert all(len(ax.patches) == len(ms) for ax in fig.axes)
    labels = [tick.get_text() for tick in fig.axes[0].get_xticklabels()]
    assert any("tcg" in label for label in labels)
    with pytest.raises(ValueError):
        plots.starts([])


def test_layers_stacks_vm_layers_and_container_shim(tmp_path: Path) -> None:
    fig = strict(plots.layers, tmp_path / "layers.png")
    assert len(fig.axes) == 1
    # VM and microVM: overhead, guest OS, app, given-not-used; container: shim, app.
    assert len(fig.axes[0].patches) == 4 + 4 + 2
    custom = strict(lambda: plots.layers({"big vm": vm(4, 8 * GiB), "box": container(1, 1 * GiB)},
                                         app_memory=1 * GiB), tmp_path / "custom.png")
    assert len(custom.axes[0].patches) == 4 + 2


def test_figures_do_not_touch_pyplot() -> None:
    import sys

    before = "matplotlib.pyplot" in sys.modules
    plots.layers()
    assert ("matplotlib.pyplot" in sys.modules) == before


def test_without_a_cjk_font_a_label_keeps_its_english() -> None:
    from sim.capacity.plots import latin

    assert latin("内存 memory (GiB)") == "memory (GiB)"
    assert latin("启动 starts: 模型 model (hatched) vs 实测 measured") == "starts: model (hatched) vs measured"
    assert latin("no memory.max (无上限): host OOM kills first 主机先杀: web") == "no memory.max: host OOM kills first: web"
    assert latin("CPU 核 cores") == "CPU cores" and latin("plain") == "plain"


def test_fleet_and_start_latency_figures(tmp_path: Path) -> None:
    crowd = ALL["flash_crowd"](duration=120.0)
    fig = strict(lambda: plots.start_latency(crowd.runs), tmp_path / "latency.png")
    (ax,) = fig.axes
    assert len([line for line in ax.lines if line.get_linestyle() == "-"]) == 3  # one CDF per kind
    assert ax.get_xscale() == "log"
    fig = strict(lambda: plots.fleet(crowd.runs["vm"]), tmp_path / "fleet.png")
    assert len(fig.axes) == 2 and all(len(ax.lines) >= 4 for ax in fig.axes)
    with pytest.raises(ValueError):
        plots.start_latency({})

"""The rules every chapter figure follows (sim.figures.figure_problems), shown on figures that
break each one, and the warning show() gives; the notebooks' own figures are checked by
tests/test_notebooks.py (a FigureWarning in a notebook's output fails it)."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from sim.figures import FigureWarning, figure_problems, show


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _good() -> Figure:
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, 2, 3], label="model")
    ax.plot([0, 1, 2], [1, 2, 4], label="kernel")
    ax.set(title="stat time by depth", xlabel="layers", ylabel="time (µs)")
    ax.legend()
    return fig


def test_a_figure_that_follows_every_rule_has_no_problem() -> None:
    assert figure_problems(_good()) == []


def test_each_broken_rule_is_named() -> None:
    fig = _good()
    ax = fig.axes[0]
    ax.set_title("")
    ax.set_ylabel("time")
    legend = ax.get_legend()
    assert legend is not None
    legend.remove()
    problems = figure_problems(fig)
    assert any("has no title" in p for p in problems)
    assert any("y axis label 'time' gives no unit" in p for p in problems)
    assert any("draws 2 series and has no legend" in p for p in problems)
    ax.set_xlabel("")
    assert any("the x axis has no label" in p for p in figure_problems(fig))


def test_a_figure_title_covers_its_panels_and_one_legend_its_small_multiples() -> None:
    fig, (left, right) = plt.subplots(1, 2, sharey=True)
    for ax in (left, right):
        ax.plot([0, 1], [0, 1], label="a")
        ax.plot([0, 1], [1, 0], label="b")
        ax.set_xlabel("time (s)")
    left.set_ylabel("memory (MiB)")
    left.legend()
    fig.suptitle("two panels, one legend")
    assert figure_problems(fig) == []


def test_category_axes_and_drawings_without_axes_need_no_label() -> None:
    fig, (bars, graph) = plt.subplots(1, 2)
    bars.bar(["vm", "container"], [4, 0.5])
    bars.set(title="memory held", ylabel="memory (GiB)")
    graph.plot([0, 1], [0, 1])
    graph.axis("off")
    graph.set_title("a graph")
    assert figure_problems(fig) == []


def test_show_warns_about_each_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython.display

    shown: list[object] = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    fig = _good()
    fig.axes[0].set_ylabel("time")
    with pytest.warns(FigureWarning, match="gives no unit"):
        show(fig)
    assert len(shown) == 1

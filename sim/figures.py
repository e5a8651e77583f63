"""What every chapter's figures share: a font that draws the Chinese terms, bilingual labels,
the rules a figure follows (:func:`figure_problems`), and showing a figure in a notebook.

The labels read "English 中文" when an installed font can draw Chinese (``./dev`` installs one as
root) and English alone otherwise.  The CJK font goes *first* in the family list: matplotlib's
fallback from DejaVu Sans to a font collection (``.ttc``, as WenQuanYi's is) loses the Chinese
glyphs, while the other way round it falls back to DejaVu Sans for whatever the CJK font lacks.
"""

from __future__ import annotations

import functools
import io
import re
import warnings
from typing import Any, cast

__all__ = ["CJK_FAMILIES", "cjk_font", "font_rc", "use_cjk_font", "bi", "show", "figure_problems", "FigureWarning"]

# A unit in a numeric axis's label: "(ms)", "[MiB]", "(% of a core)", or a unitless quantity said so.
_UNIT = re.compile(r"\([^)]+\)|\[[^\]]+\]|\b(count|number|ratio|fraction|share|layers|files|containers|hosts|"
                   r"instances|steps|events|VMs|cores?|kills|tasks|processes)\b|\S\s*/\s*\S", re.IGNORECASE)

#: Fonts with Chinese glyphs, in order of preference.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
                "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "AR PL UMing CN", "Droid Sans Fallback")


@functools.cache
def cjk_font() -> str | None:
    """The first installed font of :data:`CJK_FAMILIES`, or ``None``."""
    from matplotlib.font_manager import fontManager

    installed = {font.name for font in fontManager.ttflist}
    return next((name for name in CJK_FAMILIES if name in installed), None)


def font_rc() -> dict[str, Any]:
    """rc settings that draw Chinese with the CJK font (empty when there is none)."""
    font = cjk_font()
    return {"font.family": ["sans-serif"], "font.sans-serif": [font, "DejaVu Sans"]} if font else {}


def use_cjk_font() -> str | None:
    """Put :func:`font_rc`'s settings into matplotlib's (a notebook's figures); the font, or ``None``."""
    import matplotlib

    matplotlib.rcParams.update(cast(Any, font_rc()))
    return cjk_font()


def bi(en: str, zh: str) -> str:
    """A figure label: the English term, and the Chinese one when a font can draw it."""
    return f"{en} {zh}" if cjk_font() else en


class FigureWarning(UserWarning):
    """A figure breaks one of :func:`figure_problems`' rules."""


_NUMBER = re.compile(r"^[-+\u2212]?[\d.,]+(e[-+]?\d+)?%?$|^\$.*\d.*\$$", re.IGNORECASE)


def _numeric(axis: Any) -> bool:
    """The axis's tick labels, as drawn, are numbers (not category names)."""
    texts = [t.get_text().strip() for t in axis.get_ticklabels() if t.get_text().strip()]
    return bool(texts) and all(_NUMBER.match(t.replace(" ", "")) for t in texts)


def _series(ax: Any) -> int:
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) > 1 or not line.get_label().startswith("_")]
    return len(lines) + len(ax.containers) + sum(1 for c in ax.collections if not c.get_label().startswith("_"))


def figure_problems(fig: Any) -> list[str]:
    """What ``fig`` lacks of the rules every chapter's figure follows: a title (the axes' own or
    the figure's); each numeric axis labelled, with its unit ("(ms)", "[MiB]", "Wh / core·h") or a
    word saying what it counts ("containers", "cores"); and a legend when an axes draws more than
    one series (on that axes, another panel of the figure, or the figure itself: small multiples
    share one).  An axis of named categories (bars named by their tick labels) needs no label, and
    axes drawn without axis lines (graphs, layer stacks) need only the title.
    Returns one sentence per problem; ``[]`` for a figure that follows them all."""
    problems: list[str] = []
    fig.canvas.draw()  # tick labels exist only once drawn
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    legends = bool(fig.legends) or any(ax.get_legend() is not None for ax in fig.get_axes())
    for n, ax in enumerate(fig.get_axes()):
        if not ax.has_data() and not ax.get_title():
            continue  # a colour bar or an empty panel of a grid
        name = f"axes {n} ({ax.get_title() or 'untitled'})"
        if not (ax.get_title() or ax.get_title(loc="left") or suptitle):
            problems.append(f"{name} has no title, and the figure has none")
        if not ax.axison:
            continue
        for which, axis, label in (("x", ax.xaxis, ax.get_xlabel()), ("y", ax.yaxis, ax.get_ylabel())):
            if not axis.get_visible() or not any(t.get_visible() and t.get_text() for t in axis.get_ticklabels()):
                continue  # no tick labels drawn (a shared axis shows them on one panel only)
            if not _numeric(axis):
                continue
            if not label.strip():
                problems.append(f"{name}: the {which} axis has no label")
            elif not _UNIT.search(label):
                problems.append(f"{name}: the {which} axis label {label!r} gives no unit")
        if _series(ax) > 1 and not legends:
            problems.append(f"{name} draws {_series(ax)} series and has no legend")
    return problems


def show(fig: Any) -> None:
    """Render ``fig`` to PNG and display it, then close it: works with any matplotlib backend (Agg in
    the tests, inline in Jupyter), and the committed notebook keeps the picture.  Warns
    (:class:`FigureWarning`) about each of :func:`figure_problems`."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    for problem in figure_problems(fig):
        warnings.warn(problem, FigureWarning, stacklevel=2)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    display(Image(buf.getvalue()))  # type: ignore[no-untyped-call]

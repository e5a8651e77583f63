"""What every chapter's figures share: a font that draws the Chinese terms, bilingual labels, and
showing a figure in a notebook.

The labels read "English 中文" when an installed font can draw Chinese (``./dev`` installs one as
root) and English alone otherwise.  The CJK font goes *first* in the family list: matplotlib's
fallback from DejaVu Sans to a font collection (``.ttc``, as WenQuanYi's is) loses the Chinese
glyphs, while the other way round it falls back to DejaVu Sans for whatever the CJK font lacks.
"""

from __future__ import annotations

import functools
import io
from typing import Any, cast

__all__ = ["CJK_FAMILIES", "cjk_font", "font_rc", "use_cjk_font", "bi", "show"]

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


def show(fig: Any) -> None:
    """Render ``fig`` to PNG and display it, then close it: works with any matplotlib backend (Agg in
    the tests, inline in Jupyter), and the committed notebook keeps the picture."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    display(Image(buf.getvalue()))  # type: ignore[no-untyped-call]

"""The figures' shared look: one text style, constrained layout, PNGs cropped to what is drawn.

Figures are matplotlib `Figure` objects made without pyplot, so no global figure state
is left behind and the functions can return them for inspection. matplotlib is imported when
the first figure is drawn, not when this module is: the command lines that may draw one
(`bulk_attack --curve`) start without it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STYLE = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 10,
    "savefig.dpi": 110,
}

Draw = TypeVar("Draw", bound=Callable)


def styled(draw: Draw) -> Draw:
    """Decorator for a figure function: its artists are drawn (and saved) in STYLE."""

    @functools.wraps(draw)
    def in_style(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    return in_style  # type: ignore[return-value]


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure (width, height in inches): long tick labels and colour bars get room."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, path: Path) -> Figure:
    """Write fig as PNG, its box grown to hold every label (nothing clipped), and return it."""
    fig.savefig(path, bbox_inches="tight", pad_inches=0.06)
    return fig

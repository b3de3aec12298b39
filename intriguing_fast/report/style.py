"""The figures' shared look: one text style, constrained layout, PNGs cropped to what is drawn.

Figures are matplotlib `Figure` objects made without pyplot, so no global figure state
is left behind and the functions can return them for inspection."""
from __future__ import annotations

from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

STYLE = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
         "legend.fontsize": 7, "figure.titlesize": 10, "savefig.dpi": 110}

# decorator for a figure function: its artists are drawn (and saved) in STYLE
styled = matplotlib.rc_context(STYLE)


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure (width, height in inches): long tick labels and colour bars get room."""
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, path: Path) -> Figure:
    """Write fig as PNG, its box grown to hold every label (nothing clipped), and return it."""
    fig.savefig(path, bbox_inches="tight", pad_inches=0.06)
    return fig

"""Ours against the paper, cell by cell: one scatter per table, our value (y, with its 95%
interval) over the paper's (x), around the line y = x where the two agree."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

from ..experiments.stats import Z95, Rate
from .style import new_figure, save, styled

# where a point's name may go, in points from the marker: right, left, then further up or down
SPOTS = [(dx, dy) for dy in (0, 8, -8, 16, -16, 24, -24, 32, -32) for dx in (5, -5)]


@dataclass(frozen=True)
class Compared:
    """One table cell: our value and its 95% interval beside the paper's value."""

    label: str
    ours: float
    low: float
    high: float
    paper: float | None
    group: str = ""

    @classmethod
    def of_rate(cls, label: str, rate: Rate, paper: float | None, group: str = "") -> Compared:
        """An error rate in percent, with its Wilson interval."""
        return cls(label, rate.percent, *rate.interval, paper, group)

    @classmethod
    def of_mean(cls, label: str, values: np.ndarray, paper: float | None) -> Compared:
        """The mean of the finite values, with a normal-approximation interval (the paper gives a mean only)."""
        values = values[np.isfinite(values)]
        mean = float(values.mean()) if values.size else math.nan
        half = Z95 * float(values.std(ddof=1)) / math.sqrt(values.size) if values.size > 1 else 0.0
        return cls(label, mean, mean - half, mean + half, paper)


@styled
def table_vs_paper(errors: list[Compared], distortions: list[Compared], path: Path, title: str) -> Figure:
    """Tables 1/3: per model, our test error (left) and mean minimal distortion (right) against the paper's."""
    fig = new_figure(9.0, 4.4)
    left, right = fig.subplots(1, 2)
    _versus(left, errors, "test error (%)", len(errors), "Wilson 95% interval")
    _versus(right, distortions, "mean minimal distortion", len(distortions), "95% interval of the mean")
    fig.suptitle(f"{title}: ours against the paper, per model (bars: our 95% interval)")
    return save(fig, path)


@styled
def transfer_vs_paper(cells: list[Compared], path: Path, title: str, labelled: int = 6) -> Figure:
    """Tables 2/4: every cell's error rate (examples of a row fed to a column's model), ours against
    the paper's, coloured by the row's kind; the `labelled` cells farthest from the paper are named."""
    fig = new_figure(6.2, 5.6)
    ax = fig.subplots()
    _versus(ax, cells, "error rate (%) of a cell", labelled, "Wilson 95% interval")
    ax.set_title(
        f"{title}: ours against the paper, cell by cell\n"
        f"(own-model cells left out; named: the {labelled} farthest from the paper)"
    )
    return save(fig, path)


def _versus(ax: Axes, points: list[Compared], quantity: str, labelled: int, interval: str) -> None:
    """Our values (y, error bars) over the paper's (x) on equal axes with the line y = x, one colour
    per group; the `labelled` points farthest from that line are named. Points the paper lacks are left out."""
    points = [p for p in points if p.paper is not None and math.isfinite(p.ours)]
    top = 1.06 * max([p.high for p in points] + [p.paper for p in points] + [1e-9])
    ax.plot([0, top], [0, top], color="0.6", linestyle="--", linewidth=1, label="y = x: same as the paper")
    for i, group in enumerate(dict.fromkeys(p.group for p in points)):
        chosen = [p for p in points if p.group == group]
        ax.errorbar(
            [p.paper for p in chosen],
            [p.ours for p in chosen],
            yerr=np.clip([[p.ours - p.low for p in chosen], [p.high - p.ours for p in chosen]], 0, None),
            fmt="o",
            markersize=4,
            capsize=2,
            linewidth=1,
            color=f"C{i}",
            label=group or "ours",
        )
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    ax.set_xlabel(f"paper: {quantity}")
    ax.set_ylabel(f"ours: {quantity}, bars: {interval}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    _name(ax, points, sorted(points, key=lambda p: -abs(p.ours - p.paper))[:labelled])


def _name(ax: Axes, points: list[Compared], named: list[Compared]) -> None:
    """Write each named point's label, with a line to it, at the spot (of SPOTS) where it clashes
    least with the axes' edges, the legend, earlier labels, other markers and (less) their bars."""
    ax.figure.draw_without_rendering()  # lay the figure out, so that extents are final
    ends = ax.transData.transform([(p.paper, y) for p in points for y in (p.low, p.ours, p.high)]).reshape(-1, 3, 2)
    taken = [(ax.get_legend().get_window_extent(), 10)]
    for p in named:
        others = [
            box
            for q, (lo, mid, hi) in zip(points, ends)
            if q is not p
            for box in ((Bbox([mid - 3, mid + 3]), 10), (Bbox([lo - 1, hi + 1]), 1))
        ]
        probe = _label(ax, p, SPOTS[0])  # without its line: quick to measure
        clash = partial(_clashes, probe, inside=ax.get_window_extent(), taken=taken + others)
        spot = next((spot for spot in SPOTS if not clash(spot)), None) or min(SPOTS, key=clash)
        taken.append((_move(probe, spot).get_window_extent(), 10))
        probe.remove()
        _label(ax, p, spot, {"arrowstyle": "-", "color": "0.55", "linewidth": 0.5})


def _clashes(text: Annotation, spot: tuple[int, int], inside: Bbox, taken: list[tuple[Bbox, int]]) -> int:
    """How badly the label sits at spot: 100 if it leaves `inside`, plus the weight of each box it overlaps."""
    box = _move(text, spot).get_window_extent()
    out = not (inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1))
    return 100 * out + sum(weight for other, weight in taken if box.overlaps(other))


def _label(ax: Axes, p: Compared, spot: tuple[int, int], line: dict | None = None) -> Annotation:
    """p's label at spot (offset in points from its marker), with a line to the marker if `line` styles one."""
    return _move(
        ax.annotate(
            p.label,
            (p.paper, p.ours),
            xytext=spot,
            textcoords="offset points",
            va="center",
            fontsize=6.5,
            arrowprops=line,
        ),
        spot,
    )


def _move(text: Annotation, spot: tuple[int, int]) -> Annotation:
    text.set_position(spot)
    text.set_horizontalalignment("left" if spot[0] > 0 else "right")
    return text

"""Section 3's report: the paper's Figures 1-2 (top images of units and of random directions)
and the test of its claim that the two are equally "semantic", on the coherence of many
directions' top-k images (experiments/probing_stage.py computes them)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .markdown import table
from .style import new_figure, save, styled

if TYPE_CHECKING:
    from ..experiments.probing_stage import ProbingResult

ALPHA = 0.05
MEASURES = {
    "majority": "majority-label share",
    "layer_cosine": "layer-space cosine",
    "pixel_cosine": "pixel-space cosine",
}
KINDS = {"units": ("units e_i", "C0"), "random": ("random directions v", "C1")}


def unit_probing(name: str, title: str, result: ProbingResult, fig_dir: Path) -> tuple[str, list[str]]:
    """The grids, the table of tests (one row per layer and k), the coherence figure, and the findings."""
    n_tests = sum(len(e["metrics"]) for layer in result["layers"].values() for e in layer["by_k"])
    parts = [f"## {title}\n\n" + _intro(result, n_tests)]
    for key, grid in result["grids"].items():
        slug = "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in key)
        top_images(grid, key, fig_dir / f"{name}_grid_{slug}.png")
        parts.append(f"![{key}: top images of units and of random directions](figures/{name}_grid_{slug}.png)")
    parts.append(_table(result))
    coherence_boxes(result, fig_dir / f"{name}_coherence.png")
    parts.append(f"![coherence of top-k images, units against random directions](figures/{name}_coherence.png)")
    return "\n\n".join(parts), _findings(result, ALPHA / max(n_tests, 1))


def _intro(result: dict, n_tests: int) -> str:
    return (
        f"Held-out set: {result['held_out']} ({result['images']} images). Directions: {result['directions']}. "
        "For each direction, its top-k images (largest projection <phi(x), v>) are scored by how coherent they "
        "are: the share of them carrying their most common label, and their mean pairwise cosine similarity in "
        "the layer's space and in pixel space (after subtracting the held-out mean). Units and random "
        "directions are compared by a two-sided Mann-Whitney U test: rank-biserial r > 0 means units are more "
        "coherent; the interval is a bootstrap 95% interval of the difference of medians. Directions whose "
        "top-k projections are all equal (dead units) are left out. A difference counts as significant below "
        f"p = {ALPHA} / {n_tests} (Bonferroni over the {n_tests} tests)."
    )


def _table(result: dict) -> str:
    header = ["layer", "k", "left out (units / random)"] + [
        f"{m}: units vs random [CI], r, p" for m in MEASURES.values()
    ]
    body = [
        [key, e["k"], f"{e['excluded']['units']} / {e['excluded']['random']}"]
        + [_cell(e["metrics"][m]["test"]) for m in MEASURES]
        for key, layer in result["layers"].items()
        for e in layer["by_k"]
    ]
    return table(header, body)


def _cell(test: dict | None) -> str:
    if test is None:
        return "too few directions"
    lo, hi = test["diff_ci95"]
    return (
        f"{test['median_a']:.3f} vs {test['median_b']:.3f} [{lo:+.3f}, {hi:+.3f}], "
        f"r={test['rank_biserial']:+.2f}, p={test['p']:.1g}"
    )


def _findings(result: dict, alpha: float) -> list[str]:
    """Per layer: whether the data supports the paper's claim, with the strongest difference and
    the k at which the tests find one; then how the answer depends on k."""
    lines, differing = [], {k: [] for k in result["ks"]}
    for key, layer in result["layers"].items():
        found = [
            (e["k"], m, e["metrics"][m]["test"])
            for e in layer["by_k"]
            for m in MEASURES
            if e["metrics"][m]["test"] is not None and e["metrics"][m]["test"]["p"] < alpha
        ]
        for k in {f[0] for f in found}:
            differing[k].append(key)
        tied = max(e["excluded"]["units"] for e in layer["by_k"])
        note = (
            f" ({tied} of {len(layer['units'])} units left out: tied top-k, i.e. dead on the held-out set)"
            if tied
            else ""
        )
        lines.append(f"{key}{note}: " + (_differs(found) if found else _same(layer)))
    return lines + [_k_dependence(differing)]


def _k_dependence(differing: dict[int, list[str]]) -> str:
    ks = ", ".join(map(str, differing))
    if len({tuple(v) for v in differing.values()}) == 1:
        layers = ", ".join(next(iter(differing.values()))) or "none"
        return f"Section 3: the answer does not depend on k ({ks}): the layers where units differ are the same at every k ({layers})."
    per_k = "; ".join(f"k={k}: {', '.join(v) or 'none'}" for k, v in differing.items())
    return f"Section 3: the answer depends on k; layers where units differ from random directions: {per_k}."


def _same(layer: dict) -> str:
    tests = [e["metrics"][m]["test"] for e in layer["by_k"] for m in MEASURES if e["metrics"][m]["test"] is not None]
    strongest = max(tests, key=lambda t: abs(t["rank_biserial"]), default=None)
    size = f" (largest |r| {abs(strongest['rank_biserial']):.2f})" if strongest else ""
    return (
        "no significant difference between units and random directions on any measure at any k"
        f"{size}: the data supports the paper's claim for this layer (no difference found, not proof of none)."
    )


def _differs(found: list[tuple[int, str, dict]]) -> str:
    k, m, t = max(found, key=lambda f: abs(f[2]["rank_biserial"]))
    signs = {f[2]["rank_biserial"] > 0 for f in found}
    verdict = {
        frozenset({True}): "units' top-k images are more coherent than random directions'",
        frozenset({False}): "random directions' top-k images are more coherent than units'",
    }.get(frozenset(signs), "units and random directions differ, in both directions")
    where = "; ".join(
        f"k={kk}: {', '.join(MEASURES[mm] for k2, mm, _ in found if k2 == kk)}" for kk in sorted({f[0] for f in found})
    )
    labels = (
        ""
        if any(f[1] == "majority" for f in found)
        else (
            " On labels (majority-label share) no difference is significant at any k: units' top images look more "
            "alike, but that they share a class more often is not shown."
        )
    )
    return (
        f"{verdict}: the data does not support the paper's claim for this layer (significant at {where}; "
        f"strongest: {MEASURES[m]} at k={k}, median {t['median_a']:.3f} vs {t['median_b']:.3f}, "
        f"r={t['rank_biserial']:+.2f}, p={t['p']:.1g}).{labels}"
    )


@styled
def top_images(grid: dict, key: str, path: Path) -> Figure:
    """The paper's Figures 1-2 for one layer: each row the top images of one direction, best
    first, units on the left and random directions on the right, each captioned with its label."""
    shape = tuple(grid["shape"])
    rows = max(1, *(len(grid[kind]["images"]) for kind in KINDS))
    cols = max((len(r) for kind in KINDS for r in grid[kind]["images"]), default=1)
    fig = new_figure(2 * 0.62 * cols + 0.6, 0.75 * rows + 0.7)
    for panel, (kind, (label, _)) in zip(fig.subfigures(1, 2), KINDS.items()):
        axes = panel.subplots(rows, cols, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for i, (row, labels, direction) in enumerate(
            zip(grid[kind]["images"], grid[kind]["labels"], grid[kind]["directions"])
        ):
            for j, (pixels, digit) in enumerate(zip(row, labels)):
                axes[i, j].imshow(
                    np.frombuffer(bytes.fromhex(pixels), np.uint8).reshape(shape), cmap="gray", vmin=0, vmax=255
                )
                axes[i, j].set_title(str(digit), fontsize=6, pad=1)
            axes[i, 0].text(
                -0.15,
                0.5,
                f"{'unit' if kind == 'units' else 'v'} {direction}",
                fontsize=6,
                transform=axes[i, 0].transAxes,
                ha="right",
                va="center",
            )
        panel.suptitle(f"{label}", fontsize=8)
    fig.suptitle(f"{key}: held-out images that maximise <phi(x), direction>, best first (title: true label)")
    return save(fig, path)


@styled
def coherence_boxes(result: dict, path: Path) -> Figure:
    """Box plots of each coherence measure (rows) at each k (columns): per layer, units beside random directions."""
    keys, ks = list(result["layers"]), result["ks"]
    fig = new_figure(1.0 * len(keys) * len(ks) + 1.0, 2.0 * len(MEASURES) + 0.8)
    axes = fig.subplots(len(MEASURES), len(ks), squeeze=False, sharey="row")
    for r, (m, measure) in enumerate(MEASURES.items()):
        for c, k in enumerate(ks):
            _boxes(axes[r, c], [_entry(result["layers"][key], k)["metrics"][m] for key in keys])
            axes[r, c].set_xticks(
                np.arange(len(keys)), keys if r == len(MEASURES) - 1 else [""] * len(keys), rotation=35, ha="right"
            )
            axes[0, c].set_title(f"top k = {k}")
        axes[r, 0].set_ylabel(measure)
    handles = [axes[0, 0].plot([], [], color=colour, lw=6)[0] for _, colour in KINDS.values()]
    fig.legend(handles, [label for label, _ in KINDS.values()], loc="outside upper right", ncols=2)
    fig.suptitle("How alike each direction's top-k held-out images are: units against random directions")
    return save(fig, path)


def _entry(layer: dict, k: int) -> dict:
    return next(e for e in layer["by_k"] if e["k"] == k)


def _boxes(ax: Axes, metrics: list[dict]) -> None:
    """At x = 0, 1, ...: a box of units' values (left) and of random directions' (right)."""
    for offset, (kind, (_, colour)) in zip((-0.2, 0.2), KINDS.items()):
        data = [np.asarray(m[kind], dtype=float) for m in metrics]
        keep = [i for i, d in enumerate(data) if d.size]
        if keep:
            ax.boxplot(
                [data[i] for i in keep],
                positions=np.asarray(keep) + offset,
                widths=0.34,
                patch_artist=True,
                showfliers=False,
                boxprops={"facecolor": colour, "alpha": 0.55},
                medianprops={"color": "black"},
            )

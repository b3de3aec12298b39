"""The report's figures of our own numbers (PNG): transfer heat maps, distortion panels, examples.
Each function draws one figure file and returns the Figure; style.py gives them one look."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..attack.curves import RobustnessCurve
from .style import new_figure, save, styled

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn (style.py), not by the command lines' --help
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@styled
def transfer_heatmap(matrix: np.ndarray, rows: list[str], cols: list[str], path: Path, title: str) -> Figure:
    """Tables 2/4 as a heat map: error rate (%) of each column's model on each row's examples
    (adversarials made for the row's model, or the noise controls)."""
    fig = new_figure(1.2 * len(cols) + 3.2, 0.5 * len(rows) + 2.0)
    ax = fig.subplots()
    im = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(
                j,
                i,
                f"{matrix[i, j]:.1f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if matrix[i, j] < 60 else "black",
            )
    ax.set_xlabel("evaluated on (columns): the model the examples are fed to")
    ax.set_ylabel("examples made for (rows): the attacked model, or a noise control")
    ax.set_title(f"{title}: error rate (%) of each column's model on each row's examples")
    fig.colorbar(im, ax=ax, label="error rate on the row's examples (%)")
    return save(fig, path)


@styled
def distortion_histograms(
    distortions: dict[str, np.ndarray], paper: dict[str, float | None], path: Path, cols: int = 3
) -> Figure:
    """Minimal distortions of each model's successful adversarials: one histogram panel per model,
    on a shared x axis, with our mean (solid) and the paper's mean (dashed, when it gives one).

    Small multiples rather than cumulative curves: the paper reports one mean per model, and a
    panel of its own shows that mean against our whole distribution and our mean; nine
    cumulative curves would overlap again, and a mean cannot be read off a cumulative curve."""
    finite = {k: v[np.isfinite(v)] for k, v in distortions.items()}
    top = max((float(v.max()) for v in finite.values() if v.size), default=1.0)
    bins = np.linspace(0.0, top * 1.02 + 1e-9, 40)
    rows = math.ceil(len(finite) / cols)
    fig = new_figure(2.4 * cols + 0.6, 1.7 * rows + 0.8)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for ax, (name, values) in zip(axes.flat, finite.items()):
        ax.hist(values, bins=bins, color="0.72")
        ax.set_title(name)
        _mark_means(ax, values, paper.get(name))
    for ax in axes.flat[len(finite) :]:
        ax.set_visible(False)
    for ax in axes.flat[max(0, len(finite) - cols) : len(finite)]:
        ax.tick_params(labelbottom=True)  # bottom panel of each column, also above an empty slot
    axes[0, 0].legend(loc="upper right")
    fig.suptitle("Minimal distortion of each successful adversarial, one panel per model")
    fig.supxlabel("distortion sqrt(sum r^2 / n) of the adversarial (x + r) for that image")
    fig.supylabel("images")
    return save(fig, path)


def _mark_means(ax: Axes, values: np.ndarray, paper: float | None) -> None:
    """Vertical lines at our mean and the paper's mean of one model's distortions, and both as numbers."""
    ours = float(values.mean()) if values.size else None
    for mean, style in (
        (ours, {"color": "C0", "label": "our mean"}),
        (paper, {"color": "C3", "linestyle": "--", "label": "paper's mean"}),
    ):
        if mean is not None:
            ax.axvline(mean, linewidth=1.4, **style)
    numbers = [f"{who} {'-' if mean is None else f'{mean:.3g}'}" for who, mean in (("ours", ours), ("paper", paper))]
    ax.text(0.97, 0.62, "\n".join(numbers), transform=ax.transAxes, ha="right", va="top", fontsize=6.5)


@styled
def adversarial_grid(examples: dict[str, dict[str, torch.Tensor]], path: Path, per_model: int = 4) -> Figure:
    """The paper's Figures 5/7: per model, triples original | perturbation | adversarial.

    examples: model -> {"original", "adversarial"} (k images, [k, 784] or [k, 1, 28, 28]) and,
    when present, "labels", "targets", "predicted" ([k] classes), captioned under the images.
    Each row's perturbations are magnified by one round factor, named in its title, so that they
    compare within the row; each one's largest pixel change is captioned under it."""
    fig = new_figure(1.05 * 3 * per_model, 1.55 * len(examples) + 0.4)
    for band, (name, example) in zip(fig.subfigures(len(examples), 1, squeeze=False)[:, 0], examples.items()):
        row = band.subplots(1, 3 * per_model)
        orig = example["original"][:per_model].reshape(-1, 28, 28).cpu().numpy()
        adv = example["adversarial"][:per_model].reshape(-1, 28, 28).cpu().numpy()
        factor = magnification(adv - orig)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_frame_on(False)
        for j in range(orig.shape[0]):
            true, adversarial = _captions(example, j)
            _image(row[3 * j], orig[j], true)
            r = adv[j] - orig[j]
            _image(row[3 * j + 1], 0.5 + factor * r, f"max |r| {np.abs(r).max():.2f}")
            _image(row[3 * j + 2], adv[j], adversarial)
        band.suptitle(f"{name}: perturbation ×{factor:g} (mid-grey = 0)", x=0.005, ha="left", fontsize=9)
    fig.suptitle("Each triple: original | perturbation r, magnified | adversarial x + r")
    return save(fig, path)


def magnification(perturbations: np.ndarray) -> float:
    """The largest 1, 2 or 5 x 10^k that keeps 0.5 + factor * r within [0, 1] for every r."""
    peak = float(np.abs(perturbations).max(initial=0.0))
    if peak <= 0:
        return 1.0
    limit = 0.5 / peak
    power = 10.0 ** math.floor(math.log10(limit))
    return max(m * power for m in (1, 2, 5) if m * power <= limit)


def _captions(example: dict[str, torch.Tensor], j: int) -> tuple[str, str]:
    """(under the original, under the adversarial) for image j: its true class; target and prediction."""
    value = {k: int(example[k][j]) for k in ("labels", "targets", "predicted") if k in example}
    true = f"true {value['labels']}" if "labels" in value else ""
    adversarial = ", ".join(
        f"{word} {value[k]}" for k, word in (("targets", "target"), ("predicted", "pred")) if k in value
    )
    return true, adversarial


def _image(ax: Axes, image: np.ndarray, caption: str) -> None:
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.set_xlabel(caption, fontsize=7, labelpad=2)


@styled
def robustness_curve_figure(curve: RobustnessCurve, path: Path, title: str) -> Figure:
    """Robust accuracy against epsilon (a step curve: each image drops out at its own minimal
    distance), with the median distance marked and the area under the curve in the legend."""
    fig = new_figure(4.2, 2.8)
    ax = fig.subplots()
    ax.step(
        curve.epsilons.numpy(),
        curve.accuracy.numpy(),
        where="post",
        color="C0",
        label=f"robust accuracy (area {curve.area:.4f})",
    )
    if math.isfinite(curve.median):
        ax.axvline(
            curve.median, color="0.5", linestyle="--", linewidth=0.8, label=f"median distance {curve.median:.4f}"
        )
    ax.set_xlim(0.0, float(curve.epsilons[-1]))
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel(
        f"epsilon ({'L2 norm' if curve.measure == 'l2' else 'distortion sqrt(sum r^2 / n)'} of the perturbation)"
    )
    ax.set_ylabel("robust accuracy")
    ax.set_title(title)
    ax.legend(loc="upper right")
    return save(fig, path)

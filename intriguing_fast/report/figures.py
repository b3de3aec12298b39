"""The report's figures (PNG, drawn with matplotlib's non-interactive Agg backend)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def adversarial_grid(examples: dict[str, tuple[torch.Tensor, torch.Tensor]], path: Path, per_model: int = 4) -> Path:
    """The paper's Figure 5/7 layout: for each model, original | perturbation (magnified) | adversarial.

    examples: model name -> (originals [k, 784 or 1x28x28], adversarials like originals).
    """
    rows = len(examples)
    fig, axes = plt.subplots(rows, 3 * per_model, figsize=(1.1 * 3 * per_model, 1.3 * rows + 0.4), squeeze=False)
    for i, (name, (orig, adv)) in enumerate(examples.items()):
        orig = orig[:per_model].reshape(-1, 28, 28).cpu().numpy()
        adv = adv[:per_model].reshape(-1, 28, 28).cpu().numpy()
        for j in range(3 * per_model):
            axes[i, j].axis("off")
        for j in range(orig.shape[0]):
            r = adv[j] - orig[j]
            scale = max(np.abs(r).max(), 1e-12)
            axes[i, 3 * j].imshow(orig[j], cmap="gray", vmin=0, vmax=1)
            axes[i, 3 * j + 1].imshow(0.5 + 0.5 * r / scale, cmap="gray", vmin=0, vmax=1)
            axes[i, 3 * j + 2].imshow(adv[j], cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_title(name, loc="left", fontsize=8)
    fig.suptitle("original | perturbation (magnified) | adversarial", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def distortion_histogram(distortions: dict[str, np.ndarray], path: Path) -> Path:
    """Histogram of the minimal distortions of the successful adversarials, one curve per model."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    finite = {k: v[np.isfinite(v)] for k, v in distortions.items() if np.isfinite(v).any()}
    top = max((float(v.max()) for v in finite.values() if v.size), default=1.0)
    bins = np.linspace(0.0, top * 1.02 + 1e-9, 40)
    for name, values in finite.items():
        ax.hist(values, bins=bins, histtype="step", linewidth=1.4, label=f"{name} (mean {values.mean():.3f})")
    ax.set_xlabel("distortion sqrt(sum r^2 / n)")
    ax.set_ylabel("images")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def transfer_heatmap(matrix: np.ndarray, rows: list[str], cols: list[str], path: Path, title: str) -> Path:
    """Error rates (%) of each column's model on each row's examples, as a heat map."""
    fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 2.8, 0.55 * len(rows) + 1.6))
    im = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, f"{matrix[i, j]:.1f}", ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] < 60 else "black")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="error rate (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""How coherent a direction's top-k images are, and whether units and random directions differ.

Coherence of one direction's top-k images: the share carrying their most common label, and
their mean pairwise cosine similarity (in the layer's space or in pixel space) after
subtracting a reference mean (the held-out set's), since all-positive activations (sigmoid,
ReLU) or pixels would otherwise make every pair look alike. The comparison of two groups of
directions is a two-sided Mann-Whitney U test with its effect size and a seeded bootstrap
interval for the difference of medians.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch


def majority_share(labels: torch.Tensor) -> torch.Tensor:
    """[D, k] integer labels -> [D]: the share of each row carrying its most common label."""
    if labels.ndim != 2 or labels.shape[1] < 1:
        raise ValueError(f"labels: expected [D, k] with k >= 1, got shape {tuple(labels.shape)}")
    shifted = labels.long() - labels.min()
    counts = torch.zeros(labels.shape[0], int(shifted.max()) + 1, dtype=torch.long)
    counts.scatter_add_(1, shifted, torch.ones_like(shifted))
    return counts.max(dim=1).values.double() / labels.shape[1]


def mean_pairwise_cosine(x: torch.Tensor, center: torch.Tensor | None = None) -> torch.Tensor:
    """[D, k, ...] vectors (flattened from the third axis on) -> [D]: the mean cosine similarity
    over the k(k-1)/2 distinct pairs of each row, after subtracting `center`."""
    return mean_off_diagonal(cosine_gram(x, center))


def cosine_gram(x: torch.Tensor, center: torch.Tensor | None = None) -> torch.Tensor:
    """[D, k, ...] -> [D, k, k]: the cosine similarities of each row's vectors, after subtracting
    `center`; a zero vector counts as dissimilar (cosine 0) to everything. The top-left
    [r, r] block is the gram of the first r vectors, so one gram serves every r <= k."""
    if x.ndim < 3 or x.shape[1] < 2:
        raise ValueError(f"x: expected [D, k, ...] with k >= 2, got shape {tuple(x.shape)}")
    v = x.flatten(2).double()
    if center is not None:
        v = v - center.flatten().double().to(v.device)
    v = v / v.norm(dim=2, keepdim=True).clamp_min(1e-12)
    return v @ v.transpose(1, 2)


def mean_off_diagonal(gram: torch.Tensor) -> torch.Tensor:
    """[D, k, k] -> [D]: the mean of each matrix's entries off the diagonal."""
    k = gram.shape[1]
    return (gram.sum((1, 2)) - gram.diagonal(dim1=1, dim2=2).sum(1)) / (k * (k - 1))


@dataclass(frozen=True)
class Comparison:
    """Group a (units) against group b (random directions) on one coherence measure.

    u: Mann-Whitney U of a; p: its two-sided p-value; cles: the common-language effect size
    P(a > b) + P(a = b) / 2; rank_biserial: 2 * cles - 1, in [-1, 1], positive when a is more
    coherent; diff_ci95: the bootstrap percentile interval of median(a) - median(b)."""

    n_a: int
    n_b: int
    median_a: float
    median_b: float
    mean_a: float
    mean_b: float
    u: float
    p: float
    cles: float
    rank_biserial: float
    diff: float
    diff_ci95: tuple[float, float]

    def as_dict(self) -> dict:
        return {**asdict(self), "diff_ci95": list(self.diff_ci95)}


def compare(a: np.ndarray, b: np.ndarray, seed: int = 0, resamples: int = 2000) -> Comparison:
    """Compare the values of two groups (each at least 2 finite values; NaNs are dropped)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        raise ValueError(f"a, b: expected at least 2 finite values in each group, got {a.size} and {b.size}")
    from scipy.stats import mannwhitneyu  # here, not at import: scipy.stats takes most of a second to import

    u, p = mannwhitneyu(a, b, alternative="two-sided")
    cles = float(u) / (a.size * b.size)
    return Comparison(
        a.size,
        b.size,
        float(np.median(a)),
        float(np.median(b)),
        float(a.mean()),
        float(b.mean()),
        float(u),
        float(p),
        cles,
        2 * cles - 1,
        float(np.median(a) - np.median(b)),
        bootstrap_median_diff(a, b, seed, resamples),
    )


def bootstrap_median_diff(a: np.ndarray, b: np.ndarray, seed: int, resamples: int = 2000) -> tuple[float, float]:
    """95% percentile bootstrap interval of median(a) - median(b), each group resampled on its own
    (numpy's default generator seeded with `seed`)."""
    rng = np.random.default_rng(seed)
    da = np.median(rng.choice(a, (resamples, a.size)), axis=1)
    db = np.median(rng.choice(b, (resamples, b.size)), axis=1)
    lo, hi = np.percentile(da - db, [2.5, 97.5])
    return float(lo), float(hi)

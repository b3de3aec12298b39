"""The paper's P1/P2 split: two disjoint, equal, seeded halves of the training set (Section 4.3)."""

from __future__ import annotations

import torch

from .dataset import MnistSplit


def p1_p2_split(train: MnistSplit, seed: int = 0) -> tuple[MnistSplit, MnistSplit]:
    """Split ``train`` into halves P1 and P2 (30,000 each on full MNIST) by a seeded permutation.

    Each half keeps the original order of its examples; an odd leftover example is dropped.
    """
    if len(train) < 2:
        raise ValueError(f"train: need at least 2 examples to split, got {len(train)}")
    permutation = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    half = len(train) // 2
    p1 = permutation[:half].sort().values
    p2 = permutation[half : 2 * half].sort().values
    return train.subset(p1, "P1"), train.subset(p2, "P2")

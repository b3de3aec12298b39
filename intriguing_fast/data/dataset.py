"""The dataset object every MNIST split is handed around as, and the paper's P1/P2 split of one:
two disjoint, equal, seeded halves of the training set (Section 4.3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..storage import tensor_digest


@dataclass(frozen=True, eq=False)
class MnistSplit:
    """Images ``[N, 1, 28, 28]`` float32 in [0, 1], labels ``[N]`` int64, and where they came from.

    ``source`` names the origin (``"mnist-idx:/dir (MD5 verified)"`` or the embedded subset) and is
    meant to be copied into every result; ``split`` names the part ("train", "test", "P1", ...).
    """

    images: torch.Tensor
    labels: torch.Tensor
    source: str
    split: str

    def __post_init__(self) -> None:
        if self.images.dtype != torch.float32 or self.images.ndim != 4 or self.images.shape[1:] != (1, 28, 28):
            raise ValueError(
                f"images: expected float32 [N, 1, 28, 28], got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels: expected int64 [{self.images.shape[0]}], got {self.labels.dtype} {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def flat(self) -> torch.Tensor:
        """The images as a ``[N, 784]`` view."""
        return self.images.view(len(self), 784)

    def subset(self, indices: torch.Tensor | np.ndarray | range | list[int], split: str | None = None) -> MnistSplit:
        """The examples at ``indices`` (same source), optionally renamed to ``split``."""
        index = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        return MnistSplit(self.images[index], self.labels[index], self.source, split or self.split)

    def fingerprint(self) -> str:
        """SHA-256 of the pixels and labels: identifies the exact data a model was trained on."""
        return tensor_digest(self.images, self.labels)


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

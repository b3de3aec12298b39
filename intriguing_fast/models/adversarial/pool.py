"""A pool of adversarial examples for one layer of a model in training (Szegedy et al., Sec. 4.2):
a fixed number of slots, a random part of which is replaced by examples freshly made, with the
batched L-BFGS attack, for the model as it is at that moment; batches draw from it at random."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch

from ...attack import LBFGSAttack
from .split import LayerSplit

POOL_TARGETS = ("random", "least_likely", "untargeted")


@dataclass
class AdversarialPool:
    """`size` slots of the layer's adversarial outputs (images for ``"input"``), their true labels,
    the classes they were made to reach (-1 where untargeted), whether the attack succeeded,
    and the training step each was made at (-1: empty slot)."""

    examples: torch.Tensor
    labels: torch.Tensor
    targets: torch.Tensor
    fooled: torch.Tensor
    made_at: torch.Tensor

    @classmethod
    def empty(cls, size: int, example: torch.Tensor) -> AdversarialPool:
        """`size` empty slots for examples shaped like `example` (one layer output)."""
        if size < 1:
            raise ValueError(f"size: expected a pool of at least 1 slot, got {size}")

        def unset() -> torch.Tensor:
            return torch.full((size,), -1, dtype=torch.long)

        return cls(
            torch.zeros(size, *example.shape, dtype=example.dtype),
            unset(),
            unset(),
            torch.zeros(size, dtype=torch.bool),
            unset(),
        )

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def filled(self) -> torch.Tensor:
        """Which slots hold an example."""
        return self.made_at >= 0

    def refresh(
        self,
        split: LayerSplit,
        images: torch.Tensor,
        labels: torch.Tensor,
        slots: torch.Tensor,
        attack: LBFGSAttack,
        targets: str,
        step: int,
    ) -> float:
        """Replace the examples in `slots` by adversarials of `split`'s layer made now, one per row of
        `images` (with true `labels`); returns the attack's seconds. Where the attack fails the slot
        holds the layer's clean output (still a training example, marked not fooled)."""
        if targets not in POOL_TARGETS:
            raise ValueError(f"targets: expected one of {POOL_TARGETS}, got {targets!r}")
        if not slots.shape[0] == images.shape[0] == labels.shape[0]:
            raise ValueError(
                f"slots, images, labels: expected one image per slot, got {slots.shape[0]}, "
                f"{images.shape[0]}, {labels.shape[0]}"
            )
        start = time.perf_counter()
        codes = split.codes(images)
        result = attack(split.upper, codes, targets, labels=labels, bounds=split.bounds, progress=False)
        self.examples[slots] = result.adversarial.to(self.examples.dtype)
        self.labels[slots], self.targets[slots] = labels, result.targets
        self.fooled[slots], self.made_at[slots] = result.success, step
        return time.perf_counter() - start

    def sample(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """`count` filled slots drawn uniformly with replacement: (examples, labels)."""
        filled = self.filled.nonzero().squeeze(1)
        if filled.numel() == 0:
            raise ValueError("pool: no example to draw from yet (fill it first)")
        rows = filled[torch.randint(filled.numel(), (count,), generator=generator)]
        return self.examples[rows], self.labels[rows]

    def state(self) -> dict[str, torch.Tensor]:
        """Its tensors, for a checkpoint."""
        return {
            "examples": self.examples,
            "labels": self.labels,
            "targets": self.targets,
            "fooled": self.fooled,
            "made_at": self.made_at,
        }


def seeded(attack: LBFGSAttack, generator: torch.Generator) -> LBFGSAttack:
    """`attack` with a seed for its random targets drawn from `generator`: fresh targets at each refresh."""
    return replace(attack, seed=int(torch.randint(2**31 - 1, (1,), generator=generator)))

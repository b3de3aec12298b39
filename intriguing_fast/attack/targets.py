"""Target labels for the attack: random other class, every other class, least likely."""

from __future__ import annotations

import torch

TARGET_MODES = ("random", "all", "least_likely", "untargeted")


def random_targets(labels: torch.Tensor, num_classes: int, seed: int = 0, first: int = 0) -> torch.Tensor:
    """A class other than labels[i] for each i, uniform, reproducible for a seed. With ``first``,
    labels are rows first.. of a longer sequence, and get the targets they get in the whole of it."""
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise ValueError(f"first: expected an int >= 0 (the index of labels[0] in the whole sequence), got {first!r}")
    gen = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, (first + labels.shape[0],), generator=gen)[first:].to(labels.device)
    return (labels + shift) % num_classes


def all_other_targets(labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(image_index, targets): every class other than labels[i] in increasing order, for each image i in order."""
    idx = torch.arange(labels.shape[0], device=labels.device).repeat_interleave(num_classes - 1)
    j = torch.arange(num_classes - 1, device=labels.device).repeat(labels.shape[0])
    return idx, j + (j >= labels[idx]).long()


def least_likely_targets(logits: torch.Tensor) -> torch.Tensor:
    """The class with the smallest logit for each input (Kurakin et al.'s "least likely")."""
    return logits.argmin(dim=1)

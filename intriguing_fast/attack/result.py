"""The plain result object of the attack, in the manner of scipy's OptimizeResult."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch


def distortion(perturbation: torch.Tensor) -> torch.Tensor:
    """The paper's per-image distortion sqrt(sum r^2 / n) of perturbations [N, ...]."""
    r = perturbation.flatten(1)
    return r.norm(dim=1) / math.sqrt(r.shape[1])


@dataclass
class AttackResult:
    """Per-image outcome of `lbfgs_attack`; every field has the batch as first dimension.

    adversarial: the smallest successful x + r found (the input itself where the attack
    failed or the input was already adversarial); perturbation = adversarial - input.
    l2: ||r||_2; distortion: the paper's sqrt(sum r^2 / n). Both are NaN where the attack
    failed and 0 where the input was already adversarial.
    success: adversarial is classified as `targets` (targeted) or not as `labels`
    (untargeted), with margin kappa; already_adversarial: the input itself already was.
    c: the largest penalty weight whose solve succeeded (NaN if none, or already adversarial).
    nit, nfev: L-BFGS iterations and model evaluations (forward + backward) spent per image,
        each forward pass of the boundary search (`boundary_steps`) counted as one.
    predicted: labels the model gives `adversarial` in a final forward pass.
    targets, labels: the target and true labels (targets = -1 in untargeted mode).
    image_index: the row of the caller's inputs each row attacks (repeats with targets="all").
    rounds: the batched calls of the model the attack took, over all its chunks: engine rounds
    (forward and backward) and the boundary search's steps (forward only): what sets its time
    on a GPU.
    """

    adversarial: torch.Tensor
    perturbation: torch.Tensor
    l2: torch.Tensor
    distortion: torch.Tensor
    success: torch.Tensor
    already_adversarial: torch.Tensor
    c: torch.Tensor
    nit: torch.Tensor
    nfev: torch.Tensor
    predicted: torch.Tensor
    targets: torch.Tensor
    labels: torch.Tensor
    image_index: torch.Tensor
    rounds: int = 0

    def __len__(self) -> int:
        return self.success.shape[0]

    @property
    def success_rate(self) -> float:
        return float(self.success.double().mean()) if len(self) else float("nan")

    @property
    def mean_distortion(self) -> float:
        """Mean distortion over the successful rows (the paper's "av. min. distortion")."""
        d = self.distortion[self.success]
        return float(d.double().mean()) if d.numel() else float("nan")

    @staticmethod
    def concatenate(parts: list[AttackResult]) -> AttackResult:
        """Join per-chunk results in order."""
        joined = {
            f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(AttackResult) if f.name != "rounds"
        }
        return AttackResult(**joined, rounds=sum(p.rounds for p in parts))

    def __repr__(self) -> str:
        return (
            f"AttackResult(n={len(self)}, success_rate={self.success_rate:.4f}, "
            f"already_adversarial={int(self.already_adversarial.sum())}, "
            f"mean_distortion={self.mean_distortion:.4f}, mean nfev={self.nfev.double().mean():.1f}, "
            f"rounds={self.rounds})"
        )

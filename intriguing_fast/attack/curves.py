"""Robustness curves from a minimal-norm attack: each image's minimal adversarial distance gives
the model's robust accuracy at every epsilon at once, the security-evaluation curve of
AttackBench (Cina et al., 2024) and RobustBench. An image the attack did not break counts as
robust at every epsilon (the curve is then an upper bound); one already misclassified (or
already at its target) at none."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from .result import AttackResult

MEASURES = ("l2", "distortion")


def minimal_distances(result: AttackResult | Mapping, measure: str = "l2") -> torch.Tensor:
    """[N] float64: each row's minimal distance (`measure`: "l2", or the paper's "distortion"),
    +inf where the attack failed and 0 where the input already was adversarial. `result` is an
    `AttackResult` or a bulk run's output (a mapping with "success" and the measure)."""
    if measure not in MEASURES:
        raise ValueError(f"measure: expected one of {MEASURES}, got {measure!r}")
    get = result.get if isinstance(result, Mapping) else lambda name: getattr(result, name, None)
    success, distance = get("success"), get(measure)
    if (
        not isinstance(success, torch.Tensor)
        or not isinstance(distance, torch.Tensor)
        or success.shape != distance.shape
        or success.dim() != 1
    ):
        raise TypeError(f"result: expected an AttackResult or a mapping with 1-D 'success' and '{measure}' tensors")
    return torch.where(success, distance.double(), math.inf)


def robust_accuracy(
    result: AttackResult | Mapping, epsilons: float | Sequence[float] | torch.Tensor, measure: str = "l2"
) -> torch.Tensor:
    """[E] float64: for each epsilon, the fraction of rows whose minimal distance exceeds it (no
    adversarial within epsilon was found): robust accuracy, untargeted; targeted, the fraction
    whose target is out of reach."""
    eps = torch.as_tensor(epsilons, dtype=torch.float64).reshape(-1)
    if not eps.numel() or not torch.isfinite(eps).all() or (eps < 0).any():
        raise ValueError(f"epsilons: expected finite values >= 0, got {epsilons!r}")
    distances = minimal_distances(result, measure)
    if not distances.numel():
        raise ValueError("result: has no rows")
    return (distances[None, :] > eps[:, None]).double().mean(dim=1)


@dataclass
class RobustnessCurve:
    """Robust accuracy at each of `epsilons` (ascending from 0); `area`: the area under the curve
    over [0, epsilons[-1]] as a fraction of that range (AttackBench's: lower means a stronger
    attack, or a weaker model); `median`: the median minimal distance (inf if at least half of
    the rows resisted)."""

    measure: str
    epsilons: torch.Tensor
    accuracy: torch.Tensor
    area: float
    median: float

    def as_dict(self) -> dict:
        """Plain numbers, for JSON."""
        return {
            "measure": self.measure,
            "epsilons": self.epsilons.tolist(),
            "robust_accuracy": self.accuracy.tolist(),
            "area": self.area,
            "median": self.median if math.isfinite(self.median) else None,
        }


def robustness_curve(
    result: AttackResult | Mapping,
    epsilons: Sequence[float] | torch.Tensor | None = None,
    measure: str = "l2",
    points: int = 101,
) -> RobustnessCurve:
    """The curve of `robust_accuracy` at `epsilons` (default: `points` from 0 to the largest
    minimal distance found)."""
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points: expected an int >= 2, got {points!r}")
    distances = minimal_distances(result, measure)
    finite = distances[torch.isfinite(distances)]
    if epsilons is None:
        top = float(finite.max()) if finite.numel() and float(finite.max()) > 0 else 1.0
        epsilons = torch.linspace(0.0, top, points, dtype=torch.float64)
    accuracy = robust_accuracy(result, epsilons, measure)
    eps = torch.as_tensor(epsilons, dtype=torch.float64).reshape(-1)
    if (eps.diff() <= 0).any():
        raise ValueError("epsilons: expected ascending values")
    top = float(eps[-1])
    # The exact area of the step curve over [0, top]: each row contributes min(distance, top).
    area = float(distances.clamp(max=top).mean() / top) if top > 0 else float(accuracy[0])
    return RobustnessCurve(measure, eps, accuracy, area, float(distances.median()))

"""The last step of the attack: a root search for the decision boundary between each image's
best adversarial and the nearest failing point its search visited.

The c search ends at the largest c that succeeded, whose minimiser lies past the boundary by
however far that c is below the critical one; the failing minimiser at the bracket's other end
(or the clean image, if no c failed) lies short of it. The segment between the two stays in the
box (both ends do), and along it the margin (attack/objective.py) crosses 0. Regula falsi on the
margins of the two ends, with the Illinois rule (the margin of an end kept twice in a row is
halved, so neither end sticks), keeps a successful point nearest the crossing; each step stays
within 1-99% of its segment, so an end whose margin rounds to 0 still leaves room. Forward passes
only: with few c steps it recovers most of the distortion the search left (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# 4 steps: within 0.01% of the mean L2 that 16 reach on the frontier's images (bench/bench_boundary.py).
BOUNDARY_STEPS = 4


def search_boundary(
    margins: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    inside: torch.Tensor,
    outside: torch.Tensor,
    outside_margin: torch.Tensor,
    steps: int,
) -> torch.Tensor:
    """Rows [k, n]: for each, the point nearest the boundary found by `steps` regula falsi steps on
    the segment from `inside` (successful) to `outside` (failing, with `outside_margin`) whose
    margin is at least the rounding slack at `inside`; `inside` itself where its own margin is
    below that slack. `margins(x [k, n])` -> (margin [k], rounding slack [k]: how far past 0 a
    margin must be to survive the model's rounding, attack/objective.py); success is a margin
    >= 0. Takes 1 + steps calls of `margins`."""
    margin, slack = margins(inside)
    keep = margin >= slack
    found, outside = inside.clone(), outside.clone()  # the segment's ends, moved in place
    inside_margin, outside_margin = margin - slack, outside_margin - slack
    kept = torch.zeros_like(inside_margin)  # +1: the last step kept `outside`, -1: `inside`
    for _ in range(steps):
        t = (inside_margin / (inside_margin - outside_margin)).nan_to_num(0.5).clamp(0.01, 0.99)
        point = torch.lerp(found, outside, t[:, None].to(found.dtype))
        margin = margins(point)[0] - slack
        ok = margin >= 0
        outside_margin = torch.where(ok, torch.where(kept > 0, outside_margin / 2, outside_margin), margin)
        inside_margin = torch.where(ok, margin, torch.where(kept < 0, inside_margin / 2, inside_margin))
        kept = torch.where(ok, 1.0, -1.0).to(kept.dtype)
        found[ok], outside[~ok] = point[ok], point[~ok]
    found[~keep] = inside[~keep]
    return found

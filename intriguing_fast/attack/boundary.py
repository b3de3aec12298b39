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
# The rounding slack of a 16-bit model, in its own eps: float16 0.4%, bfloat16 3% of the largest |logit|.
SLACK_EPS_16 = 4


def rounding_slack(logits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[k]: a margin past the success threshold that rounding in a model computing in `dtype`
    cannot undo: 1024 eps times each row's largest |logit| (at least 1); 1.2e-4 times that scale
    in float32. An image's logits differ in their last bits between batch sizes and thread
    counts (by up to 5 eps of the largest on the MLPs of tests/ and bench/, measured one at a
    time, in chunks of 7 and with 2 threads), so a point found exactly on the boundary could be
    judged on its other side when the model is evaluated again: without the slack, 14 of 64 of
    a toy MLP's did (measured while developing it). The attack counts a success only with this
    margin (`AttackObjective.robust`), and the boundary search stops this far inside.

    A 16-bit model (float16, bfloat16) gets SLACK_EPS_16 of its own eps instead: 1024 of them
    would be about the whole logit (float16's eps is 2**13 float32's), and no attack could
    succeed. Its products accumulate in float32 and are rounded once to 16 bits: on CPU an
    image's 16-bit logits were identical alone, in chunks of 7, in a batch of 200 and with 2
    threads (a toy MLP, measured while developing it); the slack covers a different
    accumulation order changing that one rounding (a GPU's split reductions)."""
    units = 1024 if torch.finfo(dtype).bits > 16 else SLACK_EPS_16
    return units * torch.finfo(dtype).eps * logits.abs().amax(dim=1).clamp_min(1.0)


def search_boundary(
    margins: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    inside: torch.Tensor,
    outside: torch.Tensor,
    outside_margin: torch.Tensor,
    steps: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Rows [k, n]: for each, the point nearest the boundary found by `steps` regula falsi steps on
    the segment from `inside` (successful) to `outside` (failing, with `outside_margin`) whose
    margin is at least the rounding slack (`rounding_slack`, for a model computing in `dtype`);
    `inside` itself where its own margin is below the slack. `margins(x [k, n])` -> (margin [k],
    logits [k, classes]); success is a margin >= 0. Takes 1 + steps calls of `margins`."""
    margin, logits = margins(inside)
    slack = rounding_slack(logits, dtype)
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

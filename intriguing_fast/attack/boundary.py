"""The last steps of the attack: a root search for the decision boundary between each image's
best adversarial and the nearest failing point its search visited, then (optionally) a walk
along the boundary towards the image.

The c search ends at the largest c that succeeded, whose minimiser lies past the boundary by
however far that c is below the critical one; the failing minimiser at the bracket's other end
(or the clean image, if no c failed) lies short of it. The segment between the two stays in the
box (both ends do), and along it the margin (attack/objective.py) crosses 0. Regula falsi on the
margins of the two ends, with the Illinois rule (the margin of an end kept twice in a row is
halved, so neither end sticks), keeps a successful point nearest the crossing; each step stays
within 1-99% of its segment, so an end whose margin rounds to 0 still leaves room. Forward passes
only: with few c steps it recovers most of the distortion the search left (BENCHMARKS.md).

The root search ends on the boundary, but where the segment meets it, not at the boundary's
point nearest the image. The walk (`walk_steps`) moves along the boundary: each step linearises
the margin at the best adversarial (one forward and backward pass), goes to the image's nearest
point in the box on the linearised boundary (DeepFool's and FAB's projection, exact for a
half-space and a box: `nearest_in_halfspace`), and keeps it if it succeeds, or else the root
search's point on the segment between it and the best adversarial; a point replaces the best
adversarial only if nearer the image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# 4 steps: within 0.01% of the mean L2 that 16 reach on the frontier's images (bench/bench_boundary.py).
BOUNDARY_STEPS = 4
# Where `nearest_in_halfspace`'s Newton steps stop: the rise short of the offset, relative to it (float64).
NEWTON_TOLERANCE = 1e-12


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


def nearest_in_halfspace(
    images: torch.Tensor, normal: torch.Tensor, offset: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor
) -> torch.Tensor:
    """Rows [k, n]: each of `images`' nearest point z in the box [`lower`, `upper`] with
    normal . z >= `offset` [k] (the image itself where it satisfies that already, and where no
    point of the box does, the box's point farthest along `normal`). The minimiser is
    clamp(image + lam normal) for the least lam >= 0 that meets the constraint (the KKT
    conditions of the projection). Entry i moves until lam reaches its breakpoint lam_i, where it
    meets its bound, so the rise normal . (z - image) = sum_i normal_i^2 min(lam, lam_i) is
    concave and piecewise linear in lam: Newton's steps from lam = 0 never pass the root and each
    crosses at least one breakpoint, so they end on it exactly (in float64): 2.4 ms where the
    60 steps of a bisection took 5.3 ms, for 100 images of the sigmoid MLP of bench/."""
    x, g = images.double(), normal.double()
    to_bound = torch.where(g > 0, upper.double() - x, torch.where(g < 0, lower.double() - x, 0.0))
    breaks, weight = (to_bound / g).nan_to_num(0.0, 0.0, 0.0), g.square()
    need = offset.double() - torch.linalg.vecdot(g, x)
    lam = torch.zeros_like(need)
    for _ in range(x.shape[1] + 1):  # at most one step per breakpoint
        short = need - torch.linalg.vecdot(weight, torch.minimum(breaks, lam[:, None]))
        slope = torch.linalg.vecdot(weight, (breaks > lam[:, None]).to(weight.dtype))
        step = (short > NEWTON_TOLERANCE * need.abs().clamp(min=1)) & (slope > 0)
        if not step.any():
            break
        lam = torch.where(step, lam + short / slope, lam)
    point = torch.minimum(torch.maximum(x + lam[:, None] * g, lower.double()), upper.double()).to(images.dtype)
    return torch.where((need <= 0)[:, None], images, point)


def walk_boundary(
    gradient: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    margins: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    images: torch.Tensor,
    found: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    steps: int,
    boundary_steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows [k, n]: `steps` steps of the walk along the boundary (module docstring) from `found`,
    successful points, towards `images`; each row's point is successful and no farther from its
    image than its start. `gradient(x [k, n])` -> (margin [k], rounding slack [k], the margin's
    gradient [k, n]); `margins(x [j, n], which [j])`: the margins and slacks of x as rows `which`
    of the walk's (as in `search_boundary`). Each step aims at twice the slack, so that the
    linearisation's error leaves the point successful more often. Returns the points and the calls each row made [k]: per step one of
    `gradient`, one of `margins` and, where the projection failed, 1 + `boundary_steps` more."""
    found = found.clone()
    distance = torch.linalg.vector_norm(found - images, dim=1)
    calls = torch.zeros(found.shape[0], dtype=torch.long, device=found.device)
    everyone = torch.arange(found.shape[0], device=found.device)
    for _ in range(steps):
        margin, slack, grad = gradient(found)
        offset = torch.linalg.vecdot(grad, found) - margin + 2 * slack
        step = nearest_in_halfspace(images, grad, offset, lower, upper)
        step_margin, step_slack = margins(step, everyone)
        missed = (step_margin < step_slack).nonzero().squeeze(1)
        calls += 2
        if missed.numel():
            step[missed] = search_boundary(
                lambda x: margins(x, missed),  # noqa: B023
                found[missed],
                step[missed],
                step_margin[missed],
                boundary_steps,
            )
            calls[missed] += 1 + boundary_steps
        step_distance = torch.linalg.vector_norm(step - images, dim=1)
        nearer = step_distance < distance
        found = torch.where(nearer[:, None], step, found)
        distance = torch.where(nearer, step_distance, distance)
    return found, calls

"""Straightforward scipy implementations of the same attack, the baselines of the tests and
benchmarks: the same objective, c search (`CSearch`) and final search of the boundary
(attack/boundary.py), solved with scipy's L-BFGS-B.

`scipy_per_image`: one `fmin_l_bfgs_b` call per image and c step, from r = 0 each time.
Both stop a solve at our attack's relative decrease `ftol` (scipy's factr = ftol / eps).
`scipy_flat_batch`: one call per c step over the whole batch flattened into one vector
(the sum of the per-image objectives), the approach of cleverhans and advertorch.
Both keep, per image, the smallest successful minimiser of any c step.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import torch

from ..boundary import BOUNDARY_STEPS, search_boundary
from ..objective import attack_mode, margin_and_loss, rounding_slack
from ..options import ATTACK_FTOL
from ..result import distortion
from ..search import DEFAULT_STEPS, CSearch

EPS = float(np.finfo(np.float64).eps)


class _Scorer:
    """Objective, gradient and success of rows of images, in float64 numpy for scipy."""

    def __init__(
        self,
        model: torch.nn.Module,
        images: torch.Tensor,
        classes: torch.Tensor,
        targeted: bool,
        kappa: float,
        temperature: float,
    ) -> None:
        self.model, self.images, self.classes = model, images.flatten(1).double(), classes
        self.targeted, self.kappa, self.temperature, self.shape = targeted, kappa, temperature, images.shape[1:]
        self.dtype = next(p.dtype for p in model.parameters())

    def objective(self, x: np.ndarray, rows: torch.Tensor, c: torch.Tensor) -> tuple[float, np.ndarray]:
        xt = torch.from_numpy(x).reshape(rows.shape[0], -1).requires_grad_(True)
        logits = self.model(xt.to(self.dtype).reshape(-1, *self.shape)).double()
        *_, loss = margin_and_loss(logits, self.classes[rows], self.targeted, self.kappa, self.temperature)
        f = (c * (xt - self.images[rows]).square().sum(dim=1) + loss).sum()
        (g,) = torch.autograd.grad(f, xt)
        return float(f.detach()), g.numpy().ravel()

    def success(self, x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(success, margin) of each row."""
        return self.classify(x, rows)[:2]

    def classify(self, x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(success, margin, logits) of each row."""
        with torch.no_grad():
            logits = self.model(x.to(self.dtype).reshape(-1, *self.shape)).double()
        return *margin_and_loss(logits, self.classes[rows], self.targeted, self.kappa, self.temperature)[:2], logits


def _c_search_then_boundary(
    solve, scorer: _Scorer, steps: int, c_init: float, convention: str, boundary_steps: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Run the c search with `solve(c [B]) -> (x [B, n], nfev)`, then search the boundary; (best
    x, its distortion (inf where no c succeeded), total nfev, a boundary step counted as one)."""
    B = scorer.images.shape[0]
    rows = torch.arange(B)
    # Each image's last failing minimiser and its margin: the clean image's until a c fails.
    outside, outside_margin = scorer.images.clone(), scorer.success(scorer.images, rows)[1]
    cs = CSearch(outside_margin, convention, c_init)
    best_x, best_d, nfev = scorer.images.clone(), torch.full((B,), float("inf"), dtype=torch.float64), 0
    for _ in range(steps):
        x, k = solve(cs.c)
        nfev += k
        ok, margin = scorer.success(x, rows)
        d = distortion(x - scorer.images)
        better = ok & (d < best_d)
        best_x[better], best_d[better] = x[better], d[better]
        outside = torch.where(ok[:, None], outside, x)
        outside_margin = torch.where(ok, outside_margin, margin)
        cs.update(ok, margin)
    at = rows[torch.isfinite(best_d)]
    if boundary_steps and at.numel():

        def margins(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            _, margin, logits = scorer.classify(x, at)
            return margin, rounding_slack(logits, scorer.dtype)

        x = search_boundary(margins, best_x[at], outside[at], outside_margin[at], boundary_steps)
        d = distortion(x - scorer.images[at])
        better = d < best_d[at]
        best_x[at[better]], best_d[at[better]] = x[better], d[better]
        nfev += (1 + boundary_steps) * at.numel()
    return best_x, best_d, nfev


def scipy_per_image(
    model: torch.nn.Module,
    images: torch.Tensor,
    classes: torch.Tensor,
    *,
    targeted: bool = True,
    kappa: float = 0.0,
    temperature: float = 0.1,
    steps: int = DEFAULT_STEPS["ours"],
    c_init: float = 10.0,
    convention: str = "ours",
    max_iter: int = 100,
    history: int = 10,
    ftol: float = ATTACK_FTOL,
    boundary_steps: int = BOUNDARY_STEPS,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(adversarials [B, n] float64, distortion [B] (inf where failed), total evaluations)."""
    with attack_mode(model):
        scorer = _Scorer(model, images, classes, targeted, kappa, temperature)
        n = scorer.images.shape[1]

        def solve(c: torch.Tensor) -> tuple[torch.Tensor, int]:
            xs, total = [], 0
            for b in range(c.shape[0]):
                rows = torch.tensor([b])
                x, _, info = scipy.optimize.fmin_l_bfgs_b(
                    scorer.objective,
                    scorer.images[b].numpy(),
                    args=(rows, c[b : b + 1]),
                    bounds=[(0.0, 1.0)] * n,
                    m=history,
                    maxiter=max_iter,
                    factr=ftol / EPS,
                )
                xs.append(torch.from_numpy(x))
                total += info["funcalls"]
            return torch.stack(xs), total

        return _c_search_then_boundary(solve, scorer, steps, c_init, convention, boundary_steps)


def scipy_flat_batch(
    model: torch.nn.Module,
    images: torch.Tensor,
    classes: torch.Tensor,
    *,
    targeted: bool = True,
    kappa: float = 0.0,
    temperature: float = 0.1,
    steps: int = DEFAULT_STEPS["ours"],
    c_init: float = 10.0,
    convention: str = "ours",
    max_iter: int = 100,
    history: int = 10,
    ftol: float = ATTACK_FTOL,
    boundary_steps: int = BOUNDARY_STEPS,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """As `scipy_per_image`, with one scipy call per c step over the flattened batch;
    total evaluations count each batched call once per image."""
    with attack_mode(model):
        scorer = _Scorer(model, images, classes, targeted, kappa, temperature)
        B, n = scorer.images.shape
        rows = torch.arange(B)

        def solve(c: torch.Tensor) -> tuple[torch.Tensor, int]:
            x, _, info = scipy.optimize.fmin_l_bfgs_b(
                scorer.objective,
                scorer.images.numpy().ravel(),
                args=(rows, c),
                bounds=[(0.0, 1.0)] * (B * n),
                m=history,
                maxiter=max_iter,
                factr=ftol / EPS,
            )
            return torch.from_numpy(x).reshape(B, n), info["funcalls"] * B

        return _c_search_then_boundary(solve, scorer, steps, c_init, convention, boundary_steps)

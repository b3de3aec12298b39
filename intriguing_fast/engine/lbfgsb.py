"""Batched projected L-BFGS-B: B independent box-constrained problems solved at once (or one,
returned as scipy returns it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .fixed_rounds import batch_solver
from .result import LBFGSBResult
from .solver import Fun
from .state import LBFGSBOptions

DEFAULTS = LBFGSBOptions()  # the keyword defaults of minimize_lbfgsb: the options' own, written once

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult


@torch.no_grad()
def minimize_lbfgsb(
    fun: Fun,
    x0: torch.Tensor,
    lower: float | torch.Tensor = -float("inf"),
    upper: float | torch.Tensor = float("inf"),
    *,
    history: int = DEFAULTS.history,
    max_iter: int = DEFAULTS.max_iter,
    max_fun: int = DEFAULTS.max_fun,
    gtol: float = DEFAULTS.gtol,
    ftol: float = DEFAULTS.ftol,
    max_ls: int = DEFAULTS.max_ls,
    c1: float = DEFAULTS.c1,
    c2: float = DEFAULTS.c2,
    box_first_step: bool = DEFAULTS.box_first_step,
    backend: str = DEFAULTS.backend,
    history_dtype: torch.dtype | None = DEFAULTS.history_dtype,
    rounds: str = DEFAULTS.rounds,
    check_every: int = DEFAULTS.check_every,
) -> LBFGSBResult | OptimizeResult:
    """Minimise B independent functions over boxes, each with its own L-BFGS state.

    Projected L-BFGS (Kim, Sra and Dhillon, 2010): variables held at a bound by their
    gradient are fixed, the two-loop recursion acts on the others with every curvature pair
    restricted to them, and an Armijo search runs along the projected path P(x + t d) with a
    step of its own per problem: it backtracks from a rejected trial and lengthens past an
    accepted one while f still falls steeply, so one step reaches every bound the path crosses.
    A step without curvature information has unit length, except a problem's first in a box
    whose bounds are all finite: that one goes along the segment from x to P(x - g), trying its
    end first, as scipy's L-BFGS-B does.

    Args:
        fun: ``fun(x, index) -> (f, grad)`` with x of shape [k, n], index the LongTensor of
            the k problem ids (rows of x0) these rows belong to, f [k] and grad [k, n].
            Only problems still running are passed, so look per-problem data up with index.
            x is a view of a buffer the engine reuses (as in scipy): copy it to keep it.
        x0: [B, n] starting points, float32 or float64, or one problem's [n] (solved as
            [1, n]: fun still gets x [1, n] and index [0], and returns f [1], grad [1, n]).
            Points outside the box are projected onto it first.
        lower, upper: scalars or tensors broadcastable to [B, n] ([n] for a 1-D x0); +-inf
            for no bound.
        history: number of curvature pairs kept per problem.
        max_iter, max_fun: per-problem limits on iterations and evaluations of fun.
        gtol: stop when the infinity norm of the projected gradient is <= gtol.
        ftol: stop when (f_old - f) / max(|f_old|, |f|, 1) <= ftol.
        max_ls: trial steps per line search before it restarts from a gradient step.
        c1: sufficient-decrease constant of the Armijo test.
        c2: an accepted step lengthens (the search goes on along the same path) while the slope
            along the rest of the path stays below c2 times the search's initial slope.
        box_first_step: a problem whose bounds are all finite makes its first step (of the
            solve, or after a restart) along the segment from x to P(x - g), as scipy does: the
            trial at t = 1 is P(x - g) exactly and a rejection shortens the step along the
            segment. Without it, the first step has unit length like every gradient step.
        backend: "auto", "torch" (the reference), "cpp" (fused CPU kernels) or "triton"
            (fused GPU kernels). "auto" takes triton for CUDA tensors when triton imports,
            cpp for CPU tensors when the native extension is built, torch otherwise.
        history_dtype: storage of the curvature pairs: None (x0's dtype) or torch.bfloat16,
            which halves the dominant memory traffic; arithmetic stays in x0's dtype.
        rounds: "compact": each round works on the running problems only, which one host
            synchronisation per round finds (the default on CPU); "fixed": each round works on
            all B problems with masks, in shapes that never change and with no host
            synchronisation but a look every `check_every` rounds at whether any problem still
            runs, so a round can be captured as a CUDA graph (the default on CUDA; the torch
            backend). Then fun sees every problem at every round, a stopped one at its current
            point. "auto": by device. The problems' results are the same either way (bitwise
            where fun's rows do not depend on their batch-mates).
        check_every: fixed rounds between two looks; the engine stops at most this many rounds
            after the last problem.

    The settings are checked as one `LBFGSBOptions` (`minimize_lbfgsb(..., **opts.as_kwargs())`
    passes one through).

    Returns:
        An `LBFGSBResult`; for a 1-D x0, its one problem as scipy's `OptimizeResult` (x and jac
        [n] arrays, fun a float, nit, nfev, status, success, message: `LBFGSBResult.problem`),
        as `scipy.optimize.minimize(method="L-BFGS-B")` returns it. A trial point where fun
        gives NaN or inf is a rejected step that halves the step (so a domain ending inside the
        box, as for a log, is approached, not crossed); a problem whose start is not finite, or
        whose search exhausts on such trials, ends NONFINITE at its last finite point. No
        problem affects the others.
    """
    opt = LBFGSBOptions(
        history=history,
        max_iter=max_iter,
        max_fun=max_fun,
        gtol=gtol,
        ftol=ftol,
        max_ls=max_ls,
        c1=c1,
        c2=c2,
        box_first_step=box_first_step,
        backend=backend,
        history_dtype=history_dtype,
        rounds=rounds,
        check_every=check_every,
    )
    single = isinstance(x0, torch.Tensor) and x0.dim() == 1
    if isinstance(x0, torch.Tensor) and x0.dim() not in (1, 2):
        raise ValueError(
            f"x0: expected a 2-D tensor [B, n] (one row per problem) or a 1-D tensor [n] (one problem), "
            f"got shape {tuple(x0.shape)}"
        )
    solver = batch_solver(fun, x0[None] if single else x0, lower, upper, opt)
    while solver.round():
        if solver.fixed:  # here a stopped problem never restarts: its bucket may drop it
            solver.retire(solver.just_stopped)
    return solver.result()[0] if single else solver.result()

"""Plain-torch reference of the three steps of one projected L-BFGS iteration.

Every fused backend (C++, Triton) must reproduce these functions; the tests compare them.
All steps act on the problems listed in `rows` (distinct indices) and leave every other
problem untouched, so one that has stopped never changes. The trial point, f and gradient of
problem rows[i] are row i of x_trial, f_t and g_t: the caller's fun sees a compact batch.
"""

from __future__ import annotations

import torch

from ..state import BatchState, LBFGSBOptions, projected_gradient_norm
from ..status import Status
from .base import Kernels


def two_loop(q: torch.Tensor, st: BatchState, rows: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
    """H_F q for problems `rows` (q [k, n], zero off the free set `free`): the L-BFGS two-loop
    recursion over each one's ring buffer with every pair restricted to the free variables
    (rho and the scaling recomputed there; a pair with no positive curvature there is skipped),
    so the model is one of the reduced problem the step actually moves in."""
    m = st.S.shape[1]
    head, hist_len = st.head[rows], st.hist_len[rows]
    mask = free.to(q.dtype)
    eps = torch.finfo(q.dtype).eps
    r = q.clone()
    gamma = torch.full_like(r[:, 0], float("nan"))
    pairs = []
    for i in range(m):  # newest to oldest
        slot = (head - 1 - i) % m
        s, y = st.S[rows, slot].to(r.dtype), st.Y[rows, slot].to(r.dtype) * mask
        sy, yy = torch.linalg.vecdot(s, y), torch.linalg.vecdot(y, y)
        valid = (i < hist_len) & (sy > eps * yy)
        rho = torch.where(valid, 1.0 / sy, 0.0)
        gamma = torch.where(gamma.isnan() & valid, sy / yy, gamma)
        a = torch.where(valid, rho * torch.linalg.vecdot(s, r), 0)
        r -= a[:, None] * y
        pairs.append((s, y, rho, a))
    r *= torch.where(gamma.isnan(), st.gamma[rows], gamma)[:, None]
    for s, y, rho, a in reversed(pairs):  # oldest to newest
        b = torch.where(rho != 0, rho * torch.linalg.vecdot(y, r), 0)
        r += (a - b)[:, None] * s * mask
    return r


def safe_norm(d: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each row, without overflow for entries beyond 1e154 (never below tiny)."""
    tiny = torch.finfo(d.dtype).tiny
    scale = d.abs().amax(dim=1).clamp_min(tiny)
    return (scale * torch.linalg.vector_norm(d / scale[:, None], dim=1)).clamp_min(tiny)


def free_mask(x: torch.Tensor, g: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """Variables not held at a bound by their gradient (Kim, Sra and Dhillon, 2010)."""
    return ~(((x <= lower) & (g > 0)) | ((x >= upper) & (g < 0)))


def segment_to_projected_gradient_step(
    x: torch.Tensor, g: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor
) -> torch.Tensor:
    """P(x - g) - x, scipy's first step in a box, each component that ends at a bound lengthened
    by 4 eps max(|x|, |P(x - g)|), more than the rounding of x + d, so that x + d lands on it."""
    c = torch.clamp(x - g, lower, upper)
    d = c - x
    nudge = 4 * torch.finfo(x.dtype).eps * torch.maximum(c.abs(), x.abs())
    return torch.where((c == lower) | (c == upper), d + torch.sign(d) * nudge, d)


class TorchKernels(Kernels):
    """The reference backend; the fused ones (cpp.py, triton_backend.py) implement the same three steps."""

    name = "torch"
    every_row = True

    def direction(self, st: BatchState, rows: torch.Tensor) -> None:
        """For the problems in `rows` that run and need one: d = -P_F H P_F g (or -P_F g if that
        is no descent direction). Computed for every row and kept by masks, so no step depends
        on which rows need it (no host synchronisation, one shape for a given `rows`)."""
        need = st.need_dir[rows] & (st.status[rows] == Status.RUNNING)
        g = st.g[rows]
        free = free_mask(st.x[rows], g, *st.bounds(rows))
        q = g * free
        d = -two_loop(q, st, rows, free)
        gd = torch.linalg.vecdot(g, d)
        # A direction that is not a descent direction (or not finite) drops the history.
        restart = need & ~(gd < 0) & (st.hist_len[rows] > 0)
        d = torch.where(restart[:, None], -q, d)
        gd = torch.where(restart, -torch.linalg.vecdot(q, q), gd)
        hist_len = st.hist_len[rows].masked_fill(restart, 0)
        # A gradient step has unit length, except a problem's first where box_first is set (a
        # box with every bound finite): scipy's first step, the segment to P(x - g) with t = 1,
        # which a rejection shortens along the segment.
        first_boxed = st.box_first[rows] & (st.nit[rows] == 0)
        seg = segment_to_projected_gradient_step(st.x[rows], g, *st.bounds(rows))
        d = torch.where(first_boxed[:, None], seg, d)
        gd = torch.where(first_boxed, torch.linalg.vecdot(g, seg), gd)
        t = torch.where((hist_len > 0) | first_boxed, 1.0, 1.0 / safe_norm(d))
        st.t[rows] = torch.where(need, t, st.t[rows])
        st.hist_len[rows] = hist_len
        st.head[rows] = st.head[rows].masked_fill(restart, 0)
        st.d[rows] = torch.where(need[:, None], d, st.d[rows])
        st.gd[rows] = torch.where(need, gd, st.gd[rows])
        st.ls_iter[rows] = st.ls_iter[rows].masked_fill(need, 0)
        st.need_dir[rows] = st.need_dir[rows] & ~need

    def trial(self, st: BatchState, rows: torch.Tensor) -> None:
        """Row i of x_trial = P(x + t d) of problem rows[i] (x itself if it has stopped), and its
        slope = g.(x_trial - x)."""
        x = st.x[rows]
        running = st.status[rows] == Status.RUNNING
        xt = torch.where(running[:, None], torch.clamp(x + st.t[rows, None] * st.d[rows], *st.bounds(rows)), x)
        st.x_trial[: len(rows)] = xt
        st.slope[rows] = torch.where(running, torch.linalg.vecdot(st.g[rows], xt - x), st.slope[rows])

    def accept(
        self, st: BatchState, rows: torch.Tensor, f_t: torch.Tensor, g_t: torch.Tensor, opt: LBFGSBOptions
    ) -> None:
        """Armijo test, history update, convergence and status for the problems in `rows`.

        f_t [k] and g_t [k, n] are the objective and gradient at the k rows of x_trial.
        """
        x, f, g, xt = st.x[rows], st.f[rows], st.g[rows], st.x_trial[: len(rows)]
        lower, upper = st.bounds(rows)
        running = st.status[rows] == Status.RUNNING  # a problem that has stopped never changes
        finite = torch.isfinite(f_t) & torch.isfinite(g_t).all(dim=1)
        # A trial that does not move (its step underflowed) is never accepted, so never taken for convergence.
        ok = running & finite & (f_t <= f + opt.c1 * st.slope[rows].clamp(max=0)) & (xt != x).any(dim=1)
        # Curvature pair of the accepted step as the history stores it (rounded to its dtype),
        # kept only if s.y is sufficiently positive; written by masks, as every update here.
        s = (xt - x).to(st.S.dtype).to(x.dtype)
        y = (g_t - g).to(st.Y.dtype).to(x.dtype)
        sy = torch.linalg.vecdot(s, y)
        yy = torch.linalg.vecdot(y, y)
        kept = ok & (sy > torch.finfo(s.dtype).eps * yy)
        slot, hist_len = st.head[rows], st.hist_len[rows]
        m = st.S.shape[1]
        st.S[rows, slot] = torch.where(kept[:, None], s.to(st.S.dtype), st.S[rows, slot])
        st.Y[rows, slot] = torch.where(kept[:, None], y.to(st.Y.dtype), st.Y[rows, slot])
        st.gamma[rows] = torch.where(kept, sy / yy, st.gamma[rows])
        st.head[rows] = torch.where(kept, (slot + 1) % m, slot)
        st.hist_len[rows] = torch.where(kept, (hist_len + 1).clamp(max=m), hist_len)
        # Move the accepted problems and test their convergence.
        x_new = torch.where(ok[:, None], xt, x)
        f_new = torch.where(ok, f_t, f)
        g_new = torch.where(ok[:, None], g_t, g)
        nit = st.nit[rows] + ok
        pg_norm = torch.where(ok, projected_gradient_norm(x_new, g_new, lower, upper), st.pg_norm[rows])
        scale = torch.maximum(torch.maximum(f.abs(), f_new.abs()), torch.ones_like(f))
        moved = torch.full_like(nit, int(Status.RUNNING))
        moved = torch.where(nit >= opt.max_iter, int(Status.MAX_ITER), moved)
        moved = torch.where(f - f_new <= opt.ftol * scale, int(Status.CONVERGED_FTOL), moved)
        moved = torch.where(pg_norm <= opt.gtol, int(Status.CONVERGED_GTOL), moved)
        status = torch.where(ok, moved, st.status[rows])
        # An accepted step along which f still falls steeply (the slope along the rest of the
        # path below c2 times the search's initial slope) lengthens: the search goes on from the
        # new point along the same path, P(x_new + 3t d) = P(x + 4t d), instead of a new direction.
        t, gd, d = st.t[rows], st.gd[rows], st.d[rows]
        slope_on = torch.linalg.vecdot(torch.where(finite[:, None], g_t, 0), d * ((xt > lower) & (xt < upper)))
        extend = ok & (status == Status.RUNNING) & (slope_on < opt.c2 * gd)
        need_dir = st.need_dir[rows] | (ok & ~extend)
        # Rejected trials shrink the step by safeguarded quadratic interpolation (halve it at a
        # point where f or its gradient is not finite).
        rej = running & ~ok
        denom = 2.0 * (f_t - f - gd * t)
        t_quad = -gd * t * t / denom
        t_new = torch.where(torch.isfinite(t_quad) & (denom > 0), t_quad.clamp(0.1 * t, 0.5 * t), 0.1 * t)
        t_new = torch.where(finite, t_new, 0.5 * t)
        ls_iter = st.ls_iter[rows] + rej
        exhausted = rej & (ls_iter >= opt.max_ls)
        # An exhausted search retries once from a gradient step; from a gradient step it fails.
        retry = exhausted & (st.hist_len[rows] > 0)
        st.hist_len[rows] = st.hist_len[rows].masked_fill(retry, 0)
        st.head[rows] = st.head[rows].masked_fill(retry, 0)
        need_dir |= retry
        failed = exhausted & ~retry
        status = torch.where(failed, torch.where(finite, int(Status.LINE_SEARCH_FAILED), int(Status.NONFINITE)), status)
        nfev = st.nfev[rows] + running
        status = torch.where((status == Status.RUNNING) & (nfev >= opt.max_fun), int(Status.MAX_FUN), status)
        st.x[rows], st.f[rows], st.g[rows], st.pg_norm[rows] = x_new, f_new, g_new, pg_norm
        st.t[rows] = torch.where(rej, t_new, torch.where(extend, 3.0 * t, t))
        st.gd[rows] = torch.where(extend, slope_on, gd)
        st.nit[rows], st.nfev[rows] = nit, nfev
        st.ls_iter[rows] = torch.where(extend, 0, ls_iter)
        st.status[rows], st.need_dir[rows] = status, need_dir

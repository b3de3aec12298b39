"""Plain-torch reference of the three steps of one projected L-BFGS iteration.

Every fused backend (C++, Triton) must reproduce these functions; the tests compare them.
All steps act on the problems listed in `rows` (distinct indices) and leave every other
problem untouched, so one that has stopped never changes. The trial point, f and gradient of
problem rows[i] are row i of x_trial, f_t and g_t: the caller's fun sees a compact batch.
"""
from __future__ import annotations

import torch

from .status import Status
from .state import BatchState, LBFGSBOptions, projected_gradient_norm
from .base import Kernels


def two_loop(q: torch.Tensor, st: BatchState, rows: torch.Tensor) -> torch.Tensor:
    """H q for problems `rows` (q [k, n]): the L-BFGS two-loop recursion over each one's ring buffer."""
    m = st.S.shape[1]
    head, hist_len = st.head[rows], st.hist_len[rows]
    r = q.clone()
    alphas = []
    for i in range(m):  # newest to oldest
        slot = (head - 1 - i) % m
        valid = i < hist_len
        a = torch.where(valid, st.rho[rows, slot] * torch.linalg.vecdot(st.S[rows, slot].to(r.dtype), r), 0)
        r -= a[:, None] * st.Y[rows, slot].to(r.dtype)
        alphas.append((slot, valid, a))
    r *= st.gamma[rows, None]
    for slot, valid, a in reversed(alphas):  # oldest to newest
        b = torch.where(valid, st.rho[rows, slot] * torch.linalg.vecdot(st.Y[rows, slot].to(r.dtype), r), 0)
        r += (a - b)[:, None] * st.S[rows, slot].to(r.dtype)
    return r


def free_mask(x: torch.Tensor, g: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """Variables not held at a bound by their gradient (Kim, Sra and Dhillon, 2010)."""
    return ~(((x <= lower) & (g > 0)) | ((x >= upper) & (g < 0)))


class TorchKernels(Kernels):
    """The reference backend; the fused ones (cpp.py, triton_backend.py) implement the same three steps."""

    name = "torch"

    def direction(self, st: BatchState, rows: torch.Tensor) -> None:
        """For the problems in `rows` that need one: d = -P_F H P_F g (or -P_F g if that is no
        descent direction)."""
        rows = rows[st.need_dir[rows]]
        g = st.g[rows]
        free = free_mask(st.x[rows], g, *st.bounds(rows))
        q = g * free
        d = -two_loop(q, st, rows) * free
        gd = torch.linalg.vecdot(g, d)
        # A direction that is not a descent direction (or not finite) drops the history.
        restart = ~(gd < 0) & (st.hist_len[rows] > 0)
        d = torch.where(restart[:, None], -q, d)
        gd = torch.where(restart, -torch.linalg.vecdot(q, q), gd)
        hist_len = st.hist_len[rows].masked_fill(restart, 0)
        tiny = torch.finfo(d.dtype).tiny
        st.t[rows] = torch.where(hist_len > 0, 1.0, 1.0 / torch.linalg.vector_norm(d, dim=1).clamp_min(tiny))
        st.hist_len[rows] = hist_len
        st.head[rows] = st.head[rows].masked_fill(restart, 0)
        st.d[rows] = d
        st.gd[rows] = gd
        st.ls_iter[rows] = 0
        st.need_dir[rows] = False

    def trial(self, st: BatchState, rows: torch.Tensor) -> None:
        """Row i of x_trial = P(x + t d) of problem rows[i], and its slope = g.(x_trial - x)."""
        x = st.x[rows]
        xt = torch.clamp(x + st.t[rows, None] * st.d[rows], *st.bounds(rows))
        st.x_trial[: len(rows)] = xt
        st.slope[rows] = torch.linalg.vecdot(st.g[rows], xt - x)

    def accept(self, st: BatchState, rows: torch.Tensor, f_t: torch.Tensor, g_t: torch.Tensor,
               opt: LBFGSBOptions) -> None:
        """Armijo test, history update, convergence and status for the problems in `rows`.

        f_t [k] and g_t [k, n] are the objective and gradient at the k rows of x_trial.
        """
        x, f, g, xt = st.x[rows], st.f[rows], st.g[rows], st.x_trial[: len(rows)]
        finite = torch.isfinite(f_t) & torch.isfinite(g_t).all(dim=1)
        ok = finite & (f_t <= f + opt.c1 * st.slope[rows].clamp(max=0))
        # Curvature pair of the accepted step as the history stores it (rounded to its dtype),
        # kept only if s.y is sufficiently positive.
        s = (xt - x).to(st.S.dtype).to(x.dtype)
        y = (g_t - g).to(st.Y.dtype).to(x.dtype)
        sy = torch.linalg.vecdot(s, y)
        yy = torch.linalg.vecdot(y, y)
        kept = (ok & (sy > torch.finfo(s.dtype).eps * yy)).nonzero().squeeze(1)
        upd = rows[kept]
        slot = st.head[upd]
        m = st.S.shape[1]
        st.S[upd, slot] = s[kept].to(st.S.dtype)
        st.Y[upd, slot] = y[kept].to(st.Y.dtype)
        st.rho[upd, slot] = 1.0 / sy[kept]
        st.gamma[upd] = sy[kept] / yy[kept]
        st.head[upd] = (slot + 1) % m
        st.hist_len[upd] = (st.hist_len[upd] + 1).clamp(max=m)
        # Move the accepted problems and test their convergence.
        x_new = torch.where(ok[:, None], xt, x)
        f_new = torch.where(ok, f_t, f)
        g_new = torch.where(ok[:, None], g_t, g)
        nit = st.nit[rows] + ok
        pg_norm = torch.where(ok, projected_gradient_norm(x_new, g_new, *st.bounds(rows)), st.pg_norm[rows])
        scale = torch.maximum(torch.maximum(f.abs(), f_new.abs()), torch.ones_like(f))
        moved = torch.full_like(nit, int(Status.RUNNING))
        moved = torch.where(nit >= opt.max_iter, int(Status.MAX_ITER), moved)
        moved = torch.where(f - f_new <= opt.ftol * scale, int(Status.CONVERGED_FTOL), moved)
        moved = torch.where(pg_norm <= opt.gtol, int(Status.CONVERGED_GTOL), moved)
        status = torch.where(ok, moved, st.status[rows])
        need_dir = st.need_dir[rows] | ok
        # Rejected trials shrink the step by safeguarded quadratic interpolation.
        rej = ~ok
        t, gd = st.t[rows], st.gd[rows]
        denom = 2.0 * (f_t - f - gd * t)
        t_quad = -gd * t * t / denom
        t_new = torch.where(torch.isfinite(t_quad) & (denom > 0), t_quad.clamp(0.1 * t, 0.5 * t), 0.1 * t)
        ls_iter = st.ls_iter[rows] + rej
        exhausted = rej & finite & (ls_iter >= opt.max_ls)
        # An exhausted search retries once from a gradient step; from a gradient step it fails.
        retry = exhausted & (st.hist_len[rows] > 0)
        st.hist_len[rows] = st.hist_len[rows].masked_fill(retry, 0)
        st.head[rows] = st.head[rows].masked_fill(retry, 0)
        need_dir |= retry
        status = torch.where(exhausted & ~retry, int(Status.LINE_SEARCH_FAILED), status)
        # A non-finite objective or gradient ends the problem at its last finite point.
        status = torch.where(finite, status, int(Status.NONFINITE))
        nfev = st.nfev[rows] + 1
        status = torch.where((status == Status.RUNNING) & (nfev >= opt.max_fun), int(Status.MAX_FUN), status)
        st.x[rows], st.f[rows], st.g[rows], st.pg_norm[rows] = x_new, f_new, g_new, pg_norm
        st.t[rows] = torch.where(rej, t_new, t)
        st.nit[rows], st.ls_iter[rows], st.nfev[rows] = nit, ls_iter, nfev
        st.status[rows], st.need_dir[rows] = status, need_dir

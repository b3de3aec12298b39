"""Plain-torch reference of the three steps of one projected L-BFGS iteration.

Every fused backend (C++, Triton) must reproduce these functions; the tests compare them.
All steps act on the rows flagged by a mask and leave every other row untouched, so a
problem that has stopped or is waiting never changes.
"""
from __future__ import annotations

import torch

from ..engine.result import Status
from ..engine.state import BatchState, Options, projected_gradient_norm


def two_loop(q: torch.Tensor, st: BatchState) -> torch.Tensor:
    """H q for every row: the L-BFGS two-loop recursion over each row's ring buffer."""
    R, m, _ = st.S.shape
    ar = torch.arange(R, device=q.device)
    r = q.clone()
    alphas = []
    for i in range(m):  # newest to oldest
        slot = (st.head - 1 - i) % m
        valid = i < st.hist_len
        a = torch.where(valid, st.rho[ar, slot] * torch.linalg.vecdot(st.S[ar, slot].to(r.dtype), r), 0)
        r -= a[:, None] * st.Y[ar, slot].to(r.dtype)
        alphas.append((slot, valid, a))
    r *= st.gamma[:, None]
    for slot, valid, a in reversed(alphas):  # oldest to newest
        b = torch.where(valid, st.rho[ar, slot] * torch.linalg.vecdot(st.Y[ar, slot].to(r.dtype), r), 0)
        r += (a - b)[:, None] * st.S[ar, slot].to(r.dtype)
    return r


def free_mask(x: torch.Tensor, g: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """Variables not held at a bound by their gradient (Kim, Sra and Dhillon, 2010)."""
    return ~(((x <= lower) & (g > 0)) | ((x >= upper) & (g < 0)))


class TorchKernels:
    """The reference backend; the fused ones (cpp.py, triton_backend.py) implement the same three steps."""

    name = "torch"

    def direction(self, st: BatchState, need: torch.Tensor) -> None:
        """For the rows in `need`: d = -P_F H P_F g (or -P_F g if that is no descent direction)."""
        free = free_mask(st.x, st.g, st.lower, st.upper)
        q = st.g * free
        d = -two_loop(q, st) * free
        gd = torch.linalg.vecdot(st.g, d)
        # A direction that is not a descent direction (or not finite) drops the history.
        restart = need & ~(gd < 0) & (st.hist_len > 0)
        d = torch.where(restart[:, None], -q, d)
        gd = torch.where(restart, -torch.linalg.vecdot(q, q), gd)
        st.hist_len.masked_fill_(restart, 0)
        st.head.masked_fill_(restart, 0)
        tiny = torch.finfo(d.dtype).tiny
        t0 = torch.where(st.hist_len > 0, 1.0, 1.0 / torch.linalg.vector_norm(d, dim=1).clamp_min(tiny))
        st.d = torch.where(need[:, None], d, st.d)
        st.gd = torch.where(need, gd, st.gd)
        st.t = torch.where(need, t0, st.t)
        st.ls_iter.masked_fill_(need, 0)
        st.need_dir.masked_fill_(need, False)

    def trial(self, st: BatchState, run: torch.Tensor) -> None:
        """x_trial = P(x + t d) and slope = g.(x_trial - x) for the rows in `run`."""
        xt = torch.clamp(st.x + st.t[:, None] * st.d, st.lower, st.upper)
        st.x_trial = torch.where(run[:, None], xt, st.x_trial)
        st.slope = torch.where(run, torch.linalg.vecdot(st.g, xt - st.x), st.slope)

    def accept(self, st: BatchState, run: torch.Tensor, f_t: torch.Tensor, g_t: torch.Tensor, opt: Options) -> None:
        """Armijo test, history update, convergence and status for the rows in `run`.

        f_t [R] and g_t [R, n] are the objective and gradient at x_trial (rows outside
        `run` are ignored).
        """
        finite = torch.isfinite(f_t) & torch.isfinite(g_t).all(dim=1)
        ok = run & finite & (f_t <= st.f + opt.c1 * st.slope.clamp(max=0))
        # Curvature pair of the accepted step as the history stores it (rounded to its dtype),
        # kept only if s.y is sufficiently positive.
        s = (st.x_trial - st.x).to(st.S.dtype).to(st.x.dtype)
        y = (g_t - st.g).to(st.Y.dtype).to(st.x.dtype)
        sy = torch.linalg.vecdot(s, y)
        yy = torch.linalg.vecdot(y, y)
        upd = (ok & (sy > torch.finfo(s.dtype).eps * yy)).nonzero().squeeze(1)
        slot = st.head[upd]
        m = st.S.shape[1]
        st.S[upd, slot] = s[upd].to(st.S.dtype)
        st.Y[upd, slot] = y[upd].to(st.Y.dtype)
        st.rho[upd, slot] = 1.0 / sy[upd]
        st.gamma[upd] = sy[upd] / yy[upd]
        st.head[upd] = (slot + 1) % m
        st.hist_len[upd] = (st.hist_len[upd] + 1).clamp(max=m)
        # Move the accepted problems and test their convergence.
        f_old = st.f
        st.x = torch.where(ok[:, None], st.x_trial, st.x)
        st.f = torch.where(ok, f_t, st.f)
        st.g = torch.where(ok[:, None], g_t, st.g)
        st.nit += ok
        st.pg_norm = torch.where(ok, projected_gradient_norm(st.x, st.g, st.lower, st.upper), st.pg_norm)
        scale = torch.maximum(torch.maximum(f_old.abs(), st.f.abs()), torch.ones_like(st.f))
        status = torch.full_like(st.status, int(Status.RUNNING))
        status = torch.where(st.nit >= opt.max_iter, int(Status.MAX_ITER), status)
        status = torch.where(f_old - st.f <= opt.ftol * scale, int(Status.CONVERGED_FTOL), status)
        status = torch.where(st.pg_norm <= opt.gtol, int(Status.CONVERGED_GTOL), status)
        st.status = torch.where(ok, status, st.status)
        st.need_dir |= ok
        # Rejected trials shrink the step by safeguarded quadratic interpolation.
        rej = run & ~ok
        t = st.t
        denom = 2.0 * (f_t - st.f - st.gd * t)
        t_quad = -st.gd * t * t / denom
        t_new = torch.where(torch.isfinite(t_quad) & (denom > 0), t_quad.clamp(0.1 * t, 0.5 * t), 0.1 * t)
        st.t = torch.where(rej, t_new, st.t)
        st.ls_iter += rej
        exhausted = rej & finite & (st.ls_iter >= opt.max_ls)
        # An exhausted search retries once from a gradient step; from a gradient step it fails.
        retry = exhausted & (st.hist_len > 0)
        st.hist_len.masked_fill_(retry, 0)
        st.head.masked_fill_(retry, 0)
        st.need_dir |= retry
        st.status = torch.where(exhausted & ~retry, int(Status.LINE_SEARCH_FAILED), st.status)
        # A non-finite objective or gradient ends the problem at its last finite point.
        st.status = torch.where(run & ~finite, int(Status.NONFINITE), st.status)
        st.nfev += run
        st.status = torch.where(run & (st.status == Status.RUNNING) & (st.nfev >= opt.max_fun),
                                int(Status.MAX_FUN), st.status)

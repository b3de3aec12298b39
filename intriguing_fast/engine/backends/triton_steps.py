"""The trial and accept steps of a projected L-BFGS iteration as Triton kernels
(engine/backends/reference.py is their definition; the direction step is in engine/backends/triton_direction.py).
One program per running problem: program i works on problem rows[i], and the trial point,
f_t and g_t of that problem are row i of their compact buffers. The bounds of problem b start
at b * bound_stride (0 when all problems share one row). History loads widen to the compute
dtype and stores round to the history dtype (float32/float64 or bfloat16).

Scalar settings arrive in `settings`, a tensor of the compute dtype holding
[c1, ftol, gtol, tiny, eps, c2], so float64 problems keep full-precision thresholds.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ..status import Status

# Status codes as compile-time constants (plain globals are not visible inside kernels).
RUNNING = tl.constexpr(int(Status.RUNNING))
CONVERGED_GTOL = tl.constexpr(int(Status.CONVERGED_GTOL))
CONVERGED_FTOL = tl.constexpr(int(Status.CONVERGED_FTOL))
MAX_ITER = tl.constexpr(int(Status.MAX_ITER))
MAX_FUN = tl.constexpr(int(Status.MAX_FUN))
LINE_SEARCH_FAILED = tl.constexpr(int(Status.LINE_SEARCH_FAILED))
NONFINITE = tl.constexpr(int(Status.NONFINITE))


@triton.jit
def _to_history(v, H):
    """v rounded to the element type of history pointer H: bfloat16 by integer round to
    nearest even, as torch does (the same bits compiled and interpreted; inputs are finite)."""
    if H.dtype.element_ty == tl.bfloat16:
        u = v.to(tl.float32).to(tl.uint32, bitcast=True)
        u = u + 0x7FFF + ((u >> 16) & 1)
        return (u >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        return v.to(H.dtype.element_ty)


@triton.jit
def _safe_norm(scale, ssq, tiny):
    """scale sqrt(ssq), at least tiny (NaN kept, like torch's clamp): safe_norm of the reference
    from scale = max(max |d|, tiny) and ssq = sum (d / scale)^2, so entries beyond 1e154 do not overflow."""
    return tl.maximum(scale * tl.sqrt(ssq), tiny, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _row_safe_norm(v, n, tiny, BLOCK: tl.constexpr):
    """safe_norm of one row: a sweep for max |v|, then one for sum (v / max |v|)^2."""
    big = tl.zeros([BLOCK], dtype=v.dtype.element_ty)
    for c in range(0, n, BLOCK):
        offs = c + tl.arange(0, BLOCK)
        big = tl.maximum(big, tl.abs(tl.load(v + offs, mask=offs < n, other=0.0)))
    scale = tl.maximum(tl.max(big), tiny)
    acc = tl.zeros([BLOCK], dtype=v.dtype.element_ty)
    for c in range(0, n, BLOCK):
        offs = c + tl.arange(0, BLOCK)
        u = tl.load(v + offs, mask=offs < n, other=0.0) / scale
        acc += u * u
    return _safe_norm(scale, tl.sum(acc), tiny)


@triton.jit
def trial_kernel(rows, x, g, lower, upper, d, t, x_trial, slope, status, n, bound_stride, BLOCK: tl.constexpr):
    """Row i of x_trial = P(x + t d) of problem rows[i] (x itself if it has stopped), and its
    slope g.(x_trial - x)."""
    i = tl.program_id(0).to(tl.int64)
    b = tl.load(rows + i)
    row = b * n
    brow = b * bound_stride
    tb = tl.load(t + b)
    running = tl.load(status + b) == RUNNING
    acc = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
    for c in range(0, n, BLOCK):
        offs = c + tl.arange(0, BLOCK)
        inb = offs < n
        xv = tl.load(x + row + offs, mask=inb, other=0.0)
        xt = xv + tb * tl.load(d + row + offs, mask=inb, other=0.0)
        xt = tl.minimum(
            tl.maximum(xt, tl.load(lower + brow + offs, mask=inb, other=0.0)),
            tl.load(upper + brow + offs, mask=inb, other=0.0),
        )
        xt = tl.where(running, xt, xv)
        tl.store(x_trial + i * n + offs, xt, mask=inb)
        acc += tl.load(g + row + offs, mask=inb, other=0.0) * (xt - xv)
    tl.store(slope + b, tl.where(running, tl.sum(acc), tl.load(slope + b)))


@triton.jit
def accept_kernel(
    rows,
    f_t,
    g_t,
    x,
    f,
    g,
    lower,
    upper,
    S,
    Y,
    gamma,
    hist_len,
    head,
    d,
    gd,
    t,
    x_trial,
    slope,
    ls_iter,
    need_dir,
    status,
    nit,
    nfev,
    pg_norm,
    settings,
    n,
    m,
    bound_stride,
    max_iter,
    max_fun,
    max_ls,
    BLOCK: tl.constexpr,
):
    """For problem rows[i], given f_t[i] and g_t[i] at row i of x_trial: Armijo test, history
    update, move and status, and a longer step along the same path while f still falls steeply
    there; step shrink, restart or failure for a rejected trial. A problem that is not running
    returns at once."""
    i = tl.program_id(0).to(tl.int64)
    b = tl.load(rows + i)
    row = b * n
    trow = i * n
    brow = b * bound_stride
    if tl.load(status + b) == RUNNING:  # a stopped problem (fixed-shape rounds pass every row) stays as it is
        acc_sy = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
        acc_yy = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
        bad = tl.zeros([BLOCK], dtype=tl.int32)
        moves = tl.zeros([BLOCK], dtype=tl.int32)
        for c in range(0, n, BLOCK):  # the pair as the history will hold it
            offs = c + tl.arange(0, BLOCK)
            inb = offs < n
            gt = tl.load(g_t + trow + offs, mask=inb, other=0.0)
            xt = tl.load(x_trial + trow + offs, mask=inb, other=0.0)
            xv = tl.load(x + row + offs, mask=inb, other=0.0)
            s = _to_history(xt - xv, S).to(xt.dtype)
            y = _to_history(gt - tl.load(g + row + offs, mask=inb, other=0.0), Y).to(gt.dtype)
            acc_sy += s * y
            acc_yy += y * y
            bad += ((gt != gt) | (tl.abs(gt) == float("inf"))).to(tl.int32)
            moves += (xt != xv).to(tl.int32)
        sy = tl.sum(acc_sy)
        yy = tl.sum(acc_yy)
        ft = tl.load(f_t + i)
        f_old = tl.load(f + b)
        finite = (ft == ft) & (tl.abs(ft) != float("inf")) & (tl.sum(bad) == 0)
        c1 = tl.load(settings + 0)
        # A trial that does not move (its step underflowed) is never accepted.
        ok = finite & (ft <= f_old + c1 * tl.minimum(tl.load(slope + b), 0.0)) & (tl.sum(moves) > 0)
        hl = tl.load(hist_len + b)
        st = tl.load(status + b)
        tb = tl.load(t + b)
        gdb = tl.load(gd + b)
        if ok:
            slot = tl.load(head + b)
            upd = sy > tl.load(settings + 4) * yy
            n_upd = tl.where(upd, n, 0)  # history stores cover the row only when the pair is kept
            acc_pg = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
            acc_on = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
            for c in range(0, n, BLOCK):
                offs = c + tl.arange(0, BLOCK)
                inb = offs < n
                xt = tl.load(x_trial + trow + offs, mask=inb, other=0.0)
                gt = tl.load(g_t + trow + offs, mask=inb, other=0.0)
                lo = tl.load(lower + brow + offs, mask=inb, other=0.0)
                hi = tl.load(upper + brow + offs, mask=inb, other=0.0)
                hist = (b * m + slot) * n + offs
                tl.store(S + hist, _to_history(xt - tl.load(x + row + offs, mask=inb, other=0.0), S), mask=offs < n_upd)
                tl.store(Y + hist, _to_history(gt - tl.load(g + row + offs, mask=inb, other=0.0), Y), mask=offs < n_upd)
                tl.store(x + row + offs, xt, mask=inb)
                tl.store(g + row + offs, gt, mask=inb)
                acc_pg = tl.maximum(acc_pg, tl.abs(tl.minimum(tl.maximum(-gt, lo - xt), hi - xt)))
                # The slope along the rest of the path: d on the variables strictly inside their box.
                acc_on += gt * tl.where((xt > lo) & (xt < hi), tl.load(d + row + offs, mask=inb, other=0.0), 0.0)
            if upd:
                tl.store(gamma + b, sy / yy)
                tl.store(head + b, (slot + 1) % m)
                tl.store(hist_len + b, tl.minimum(hl + 1, m))
            pgn = tl.max(acc_pg)
            it = tl.load(nit + b) + 1
            tl.store(f + b, ft)
            tl.store(nit + b, it)
            tl.store(pg_norm + b, pgn)
            scale = tl.maximum(tl.maximum(tl.abs(f_old), tl.abs(ft)), 1.0)
            st = tl.where(it >= max_iter, MAX_ITER, RUNNING).to(tl.int64)
            st = tl.where(f_old - ft <= tl.load(settings + 1) * scale, CONVERGED_FTOL, st)
            st = tl.where(pgn <= tl.load(settings + 2), CONVERGED_GTOL, st)
            slope_on = tl.sum(acc_on)
            if (st == RUNNING) & (slope_on < tl.load(settings + 5) * gdb):  # lengthen: P(x_new + 3t d) = P(x + 4t d)
                tl.store(t + b, 3.0 * tb)
                tl.store(gd + b, slope_on)
                tl.store(ls_iter + b, 0)
            else:
                tl.store(need_dir + b, 1)
        else:  # shrink the step by safeguarded quadratic interpolation (halve it at a non-finite point)
            denom = 2.0 * (ft - f_old - gdb * tb)
            t_quad = -gdb * tb * tb / denom
            good = (t_quad == t_quad) & (tl.abs(t_quad) != float("inf")) & (denom > 0)
            t_new = tl.where(good, tl.minimum(tl.maximum(t_quad, 0.1 * tb), 0.5 * tb), 0.1 * tb)
            t_new = tl.where(finite, t_new, 0.5 * tb)
            ls = tl.load(ls_iter + b)
            tl.store(t + b, t_new)
            ls += 1
            tl.store(ls_iter + b, ls)
            exhausted = ls >= max_ls
            if exhausted & (hl > 0):  # retry once from a gradient step
                tl.store(hist_len + b, 0)
                tl.store(head + b, 0)
                tl.store(need_dir + b, 1)
            # From a gradient step it fails: NONFINITE at a non-finite trial, else LINE_SEARCH_FAILED.
            st = tl.where(exhausted & (hl == 0), tl.where(finite, LINE_SEARCH_FAILED, NONFINITE), st)
        fe = tl.load(nfev + b) + 1
        tl.store(nfev + b, fe)
        tl.store(status + b, tl.where((st == RUNNING) & (fe >= max_fun), MAX_FUN, st))

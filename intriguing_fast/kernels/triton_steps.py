"""The three steps of a projected L-BFGS iteration as Triton kernels (kernels/reference.py
is their definition). One program per running problem: program i works on problem rows[i],
and the trial point, f_t and g_t of that problem are row i of their compact buffers. The
bounds of problem b start at b * bound_stride (0 when all problems share one row). History
loads widen to the compute dtype and stores round to the history dtype (float32/float64 or bfloat16).

Scalar settings arrive in `settings`, a tensor of the compute dtype holding
[c1, ftol, gtol, tiny, eps], so float64 problems keep full-precision thresholds.
"""
from __future__ import annotations

import triton
import triton.language as tl

from .status import Status

# Status codes as compile-time constants (plain globals are not visible inside kernels).
RUNNING = tl.constexpr(int(Status.RUNNING))
CONVERGED_GTOL = tl.constexpr(int(Status.CONVERGED_GTOL))
CONVERGED_FTOL = tl.constexpr(int(Status.CONVERGED_FTOL))
MAX_ITER = tl.constexpr(int(Status.MAX_ITER))
MAX_FUN = tl.constexpr(int(Status.MAX_FUN))
LINE_SEARCH_FAILED = tl.constexpr(int(Status.LINE_SEARCH_FAILED))
NONFINITE = tl.constexpr(int(Status.NONFINITE))


@triton.jit
def _free(x, g, lo, hi):
    """Variables not held at a bound by their gradient."""
    return ~(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)))


@triton.jit
def _free_chunk(x, g, lower, upper, offs, inb):
    """One chunk of a row (pointers to the row's start): its gradient and which variables are free."""
    gv = tl.load(g + offs, mask=inb, other=0.0)
    free = _free(tl.load(x + offs, mask=inb, other=0.0), gv, tl.load(lower + offs, mask=inb, other=0.0),
                 tl.load(upper + offs, mask=inb, other=0.0))
    return gv, free


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
def _finish_direction(b, gd, dd, qq, hl, hist_len, head, gd_out, t_out, ls_iter, need_dir, settings):
    """Restart test and first step; returns whether the row restarts from -q."""
    restart = (~(gd < 0)) & (hl > 0)
    gd = tl.where(restart, -qq, gd)
    dd = tl.where(restart, qq, dd)
    hl = tl.where(restart, 0, hl)
    tl.store(hist_len + b, hl)
    tl.store(head + b, tl.where(restart, 0, tl.load(head + b)))
    tiny = tl.load(settings + 3)
    tl.store(t_out + b, tl.where(hl > 0, 1.0, 1.0 / tl.maximum(tl.sqrt(dd), tiny)).to(gd.dtype))
    tl.store(gd_out + b, gd)
    tl.store(ls_iter + b, 0)
    tl.store(need_dir + b, 0)
    return restart


@triton.jit
def direction_block_kernel(rows, x, g, lower, upper, S, Y, rho, gamma, hist_len, head, d, gd_out, t_out,
                           ls_iter, need_dir, settings, n, m, bound_stride, BLOCK: tl.constexpr, M_PAD: tl.constexpr):
    """Direction for n <= BLOCK: q stays in registers through the whole two-loop recursion."""
    b = tl.load(rows + tl.program_id(0))
    if tl.load(need_dir + b) != 0:
        offs = tl.arange(0, BLOCK)
        inb = offs < n
        row = b * n
        brow = b * bound_stride
        xv = tl.load(x + row + offs, mask=inb, other=0.0)
        gv = tl.load(g + row + offs, mask=inb, other=0.0)
        free = _free(xv, gv, tl.load(lower + brow + offs, mask=inb, other=0.0),
                     tl.load(upper + brow + offs, mask=inb, other=0.0)) & inb
        q = tl.where(free, gv, 0.0)
        hl = tl.load(hist_len + b)
        hd = tl.load(head + b)
        slots = tl.arange(0, M_PAD)
        alpha = tl.zeros([M_PAD], dtype=x.dtype.element_ty)
        r = q
        for i in range(0, hl):  # newest to oldest
            j = (hd - 1 - i + m) % m
            s = tl.load(S + (b * m + j) * n + offs, mask=inb, other=0.0).to(r.dtype)
            a = tl.load(rho + b * m + j) * tl.sum(s * r)
            r -= a * tl.load(Y + (b * m + j) * n + offs, mask=inb, other=0.0).to(r.dtype)
            alpha = tl.where(slots == i, a, alpha)
        r *= tl.load(gamma + b)
        for k in range(0, hl):  # oldest to newest
            i = hl - 1 - k
            j = (hd - 1 - i + m) % m
            yv = tl.load(Y + (b * m + j) * n + offs, mask=inb, other=0.0).to(r.dtype)
            beta = tl.load(rho + b * m + j) * tl.sum(yv * r)
            a = tl.sum(tl.where(slots == i, alpha, 0.0))
            r += (a - beta) * tl.load(S + (b * m + j) * n + offs, mask=inb, other=0.0).to(r.dtype)
        dv = tl.where(free, -r, 0.0)
        restart = _finish_direction(b, tl.sum(gv * dv), tl.sum(dv * dv), tl.sum(q * q), hl, hist_len, head,
                                    gd_out, t_out, ls_iter, need_dir, settings)
        tl.store(d + row + offs, tl.where(restart, -q, dv), mask=inb)


@triton.jit
def direction_chunked_kernel(rows, x, g, lower, upper, S, Y, rho, gamma, hist_len, head, d, gd_out, t_out,
                             ls_iter, need_dir, settings, n, m, bound_stride, BLOCK: tl.constexpr, M_PAD: tl.constexpr):
    """Direction for any n (ImageNet-sized rows): q lives in the row of d in global memory
    and every sweep loops over BLOCK-sized chunks; barriers order the sweeps of a program."""
    b = tl.load(rows + tl.program_id(0))
    if tl.load(need_dir + b) != 0:
        row = b * n
        brow = b * bound_stride
        acc = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
        for c in range(0, n, BLOCK):  # q = P_F g
            offs = c + tl.arange(0, BLOCK)
            inb = offs < n
            gv, free = _free_chunk(x + row, g + row, lower + brow, upper + brow, offs, inb)
            q = tl.where(free, gv, 0.0)
            acc += q * q
            tl.store(d + row + offs, q, mask=inb)
        qq = tl.sum(acc)
        tl.debug_barrier()
        hl = tl.load(hist_len + b)
        hd = tl.load(head + b)
        slots = tl.arange(0, M_PAD)
        alpha = tl.zeros([M_PAD], dtype=x.dtype.element_ty)
        for i in range(0, hl):  # newest to oldest
            pair = b * m + (hd - 1 - i + m) % m
            a = tl.load(rho + pair) * _row_dot(S + pair * n, d + row, n, BLOCK)
            alpha = tl.where(slots == i, a, alpha)
            _row_axpy(-a, Y + pair * n, d + row, n, BLOCK)
        _row_scale(tl.load(gamma + b), d + row, n, BLOCK)
        for k in range(0, hl):  # oldest to newest
            i = hl - 1 - k
            pair = b * m + (hd - 1 - i + m) % m
            beta = tl.load(rho + pair) * _row_dot(Y + pair * n, d + row, n, BLOCK)
            _row_axpy(tl.sum(tl.where(slots == i, alpha, 0.0)) - beta, S + pair * n, d + row, n, BLOCK)
        acc_gd = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
        acc_dd = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
        for c in range(0, n, BLOCK):  # d = -P_F H q
            offs = c + tl.arange(0, BLOCK)
            inb = offs < n
            gv, free = _free_chunk(x + row, g + row, lower + brow, upper + brow, offs, inb)
            dv = tl.where(free, -tl.load(d + row + offs, mask=inb, other=0.0), 0.0)
            acc_gd += gv * dv
            acc_dd += dv * dv
            tl.store(d + row + offs, dv, mask=inb)
        restart = _finish_direction(b, tl.sum(acc_gd), tl.sum(acc_dd), qq, hl, hist_len, head, gd_out, t_out,
                                    ls_iter, need_dir, settings)
        if restart:
            for c in range(0, n, BLOCK):  # d = -P_F g
                offs = c + tl.arange(0, BLOCK)
                inb = offs < n
                gv, free = _free_chunk(x + row, g + row, lower + brow, upper + brow, offs, inb)
                tl.store(d + row + offs, tl.where(free, -gv, 0.0), mask=inb)


@triton.jit
def _row_dot(u, q, n, BLOCK: tl.constexpr):
    """u . q over one row, u widened to q's dtype."""
    acc = tl.zeros([BLOCK], dtype=q.dtype.element_ty)
    for c in range(0, n, BLOCK):
        offs = c + tl.arange(0, BLOCK)
        inb = offs < n
        acc += tl.load(u + offs, mask=inb, other=0.0).to(acc.dtype) * tl.load(q + offs, mask=inb, other=0.0)
    return tl.sum(acc)


@triton.jit
def _row_axpy(alpha, u, q, n, BLOCK: tl.constexpr):
    """q <- q + alpha u over one row, in place."""
    for c in range(0, n, BLOCK):
        offs = c + tl.arange(0, BLOCK)
        inb = offs < n
        r = tl.load(q + offs, mask=inb, other=0.0)
        tl.store(q + offs, r + alpha * tl.load(u + offs, mask=inb, other=0.0).to(r.dtype), mask=inb)
    tl.debug_barrier()


@triton.jit
def _row_scale(scale, q, n, BLOCK: tl.constexpr):
    """q <- scale q over one row, in place."""
    for c in range(0, n, BLOCK):
        offs = c + tl.arange(0, BLOCK)
        inb = offs < n
        tl.store(q + offs, scale * tl.load(q + offs, mask=inb, other=0.0), mask=inb)
    tl.debug_barrier()


@triton.jit
def trial_kernel(rows, x, g, lower, upper, d, t, x_trial, slope, n, bound_stride, BLOCK: tl.constexpr):
    """Row i of x_trial = P(x + t d) of problem rows[i], and its slope g.(x_trial - x)."""
    i = tl.program_id(0).to(tl.int64)
    b = tl.load(rows + i)
    row = b * n
    brow = b * bound_stride
    tb = tl.load(t + b)
    acc = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
    for c in range(0, n, BLOCK):
        offs = c + tl.arange(0, BLOCK)
        inb = offs < n
        xv = tl.load(x + row + offs, mask=inb, other=0.0)
        xt = xv + tb * tl.load(d + row + offs, mask=inb, other=0.0)
        xt = tl.minimum(tl.maximum(xt, tl.load(lower + brow + offs, mask=inb, other=0.0)),
                        tl.load(upper + brow + offs, mask=inb, other=0.0))
        tl.store(x_trial + i * n + offs, xt, mask=inb)
        acc += tl.load(g + row + offs, mask=inb, other=0.0) * (xt - xv)
    tl.store(slope + b, tl.sum(acc))


@triton.jit
def accept_kernel(rows, f_t, g_t, x, f, g, lower, upper, S, Y, rho, gamma, hist_len, head, gd, t, x_trial, slope,
                  ls_iter, need_dir, status, nit, nfev, pg_norm, settings, n, m, bound_stride, max_iter, max_fun,
                  max_ls, BLOCK: tl.constexpr):
    """For problem rows[i], given f_t[i] and g_t[i] at row i of x_trial: Armijo test,
    history update, move and status; step shrink, restart or failure for a rejected trial."""
    i = tl.program_id(0).to(tl.int64)
    b = tl.load(rows + i)
    row = b * n
    trow = i * n
    brow = b * bound_stride
    acc_sy = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
    acc_yy = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
    bad = tl.zeros([BLOCK], dtype=tl.int32)
    for c in range(0, n, BLOCK):  # the pair as the history will hold it
        offs = c + tl.arange(0, BLOCK)
        inb = offs < n
        gt = tl.load(g_t + trow + offs, mask=inb, other=0.0)
        s = (tl.load(x_trial + trow + offs, mask=inb, other=0.0) - tl.load(x + row + offs, mask=inb, other=0.0))
        y = gt - tl.load(g + row + offs, mask=inb, other=0.0)
        s = _to_history(s, S).to(s.dtype)
        y = _to_history(y, Y).to(y.dtype)
        acc_sy += s * y
        acc_yy += y * y
        bad += ((gt != gt) | (tl.abs(gt) == float("inf"))).to(tl.int32)
    sy = tl.sum(acc_sy)
    yy = tl.sum(acc_yy)
    ft = tl.load(f_t + i)
    f_old = tl.load(f + b)
    finite = (ft == ft) & (tl.abs(ft) != float("inf")) & (tl.sum(bad) == 0)
    c1 = tl.load(settings + 0)
    ok = finite & (ft <= f_old + c1 * tl.minimum(tl.load(slope + b), 0.0))
    hl = tl.load(hist_len + b)
    st = tl.load(status + b)
    if ok:
        slot = tl.load(head + b)
        upd = sy > tl.load(settings + 4) * yy
        n_upd = tl.where(upd, n, 0)  # history stores cover the row only when the pair is kept
        acc_pg = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
        for c in range(0, n, BLOCK):
            offs = c + tl.arange(0, BLOCK)
            inb = offs < n
            xt = tl.load(x_trial + trow + offs, mask=inb, other=0.0)
            gt = tl.load(g_t + trow + offs, mask=inb, other=0.0)
            hist = (b * m + slot) * n + offs
            tl.store(S + hist, _to_history(xt - tl.load(x + row + offs, mask=inb, other=0.0), S), mask=offs < n_upd)
            tl.store(Y + hist, _to_history(gt - tl.load(g + row + offs, mask=inb, other=0.0), Y), mask=offs < n_upd)
            tl.store(x + row + offs, xt, mask=inb)
            tl.store(g + row + offs, gt, mask=inb)
            pg = tl.minimum(tl.maximum(xt - gt, tl.load(lower + brow + offs, mask=inb, other=0.0)),
                            tl.load(upper + brow + offs, mask=inb, other=0.0)) - xt
            acc_pg = tl.maximum(acc_pg, tl.abs(pg))
        if upd:
            tl.store(rho + b * m + slot, 1.0 / sy)
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
        tl.store(need_dir + b, 1)
    else:  # shrink the step by safeguarded quadratic interpolation
        tb = tl.load(t + b)
        gdb = tl.load(gd + b)
        denom = 2.0 * (ft - f_old - gdb * tb)
        t_quad = -gdb * tb * tb / denom
        good = (t_quad == t_quad) & (tl.abs(t_quad) != float("inf")) & (denom > 0)
        tl.store(t + b, tl.where(good, tl.minimum(tl.maximum(t_quad, 0.1 * tb), 0.5 * tb), 0.1 * tb))
        ls = tl.load(ls_iter + b) + 1
        tl.store(ls_iter + b, ls)
        exhausted = (ls >= max_ls) & finite
        if exhausted & (hl > 0):  # retry once from a gradient step
            tl.store(hist_len + b, 0)
            tl.store(head + b, 0)
            tl.store(need_dir + b, 1)
        st = tl.where(exhausted & (hl == 0), LINE_SEARCH_FAILED, st)  # it was a gradient step: fail
        st = tl.where(finite, st, NONFINITE)  # ends at its last finite point
    fe = tl.load(nfev + b) + 1
    tl.store(nfev + b, fe)
    tl.store(status + b, tl.where((st == RUNNING) & (fe >= max_fun), MAX_FUN, st))

"""The direction step of a projected L-BFGS iteration as Triton kernels (TorchKernels.direction
in engine/backends/reference.py is its definition), in two variants: the row in registers for short
rows, in global memory for long ones. One program per problem of the row list, as for the
other steps (engine/backends/triton_steps.py, which also lists `settings`; this step reads tiny and eps).

The two-loop recursion restricts every curvature pair to the free set F: y_F = y on F,
rho = 1 / s.y_F, the scaling s.y_F / y_F.y_F of the newest pair with s.y_F > eps y_F.y_F (else
the stored gamma), and a pair failing that test is skipped (rho = 0).
"""

from __future__ import annotations

import triton
import triton.language as tl

from .triton_steps import RUNNING, _row_safe_norm, _safe_norm


@triton.jit
def _free(x, g, lo, hi):
    """Variables not held at a bound by their gradient."""
    return ~(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)))


@triton.jit
def _segment(x, g, lo, hi, eps):
    """P(x - g) - x, lengthened at a bound so that x + d lands on it (engine/backends/reference.py,
    segment_to_projected_gradient_step)."""
    c = tl.minimum(tl.maximum(x - g, lo), hi)
    d = c - x
    nudge = 4.0 * eps * tl.maximum(tl.abs(c), tl.abs(x))
    return tl.where((c == lo) | (c == hi), d + tl.where(d > 0, nudge, tl.where(d < 0, -nudge, 0.0)), d)


@triton.jit
def _pick(v, slots, i):
    """Entry i of the register vector v (one value per history pair)."""
    return tl.sum(tl.where(slots == i, v, 0.0))


@triton.jit
def _pair_terms(sy, yy, sr, eps, scaling):
    """(rho, alpha, scaling) of one pair from its sums s.y_F, y_F.y_F and s.r: rho = 0 for a pair
    without positive curvature on F; scaling, NaN until a valid pair, is set by the first (newest) one."""
    valid = sy > eps * yy
    rho = tl.where(valid, 1.0 / tl.where(valid, sy, 1.0), 0.0)
    scaling = tl.where((scaling != scaling) & valid, sy / tl.where(valid, yy, 1.0), scaling)
    return rho, tl.where(valid, rho * sr, 0.0), scaling


@triton.jit
def _recursion_start(b, x, hist_len, head, settings, M_PAD: tl.constexpr):
    """Row b's history length and head, eps, and the recursion's registers: slot ids, alphas
    and rhos (one per pair), the scaling (NaN until the newest valid pair sets it)."""
    zeros = tl.zeros([M_PAD], dtype=x.dtype.element_ty)
    return (
        tl.load(hist_len + b),
        tl.load(head + b),
        tl.load(settings + 4),
        tl.arange(0, M_PAD),
        zeros,
        zeros,
        tl.full([], float("nan"), dtype=x.dtype.element_ty),
    )


@triton.jit
def _finish_direction(b, gd, qq, hl, hist_len, head, gd_out, ls_iter, need_dir):
    """Restart test (history dropped); returns whether the row restarts from -q, and its history length."""
    restart = (~(gd < 0)) & (hl > 0)
    hl = tl.where(restart, 0, hl)
    tl.store(hist_len + b, hl)
    tl.store(head + b, tl.where(restart, 0, tl.load(head + b)))
    tl.store(gd_out + b, tl.where(restart, -qq, gd))
    tl.store(ls_iter + b, 0)
    tl.store(need_dir + b, 0)
    return restart, hl


@triton.jit
def direction_block_kernel(
    rows,
    x,
    g,
    lower,
    upper,
    S,
    Y,
    gamma,
    hist_len,
    head,
    d,
    gd_out,
    t_out,
    ls_iter,
    need_dir,
    status,
    nit,
    box_first,
    settings,
    n,
    m,
    bound_stride,
    BLOCK: tl.constexpr,
    M_PAD: tl.constexpr,
):
    """Direction for n <= BLOCK: r and the free set stay in registers through the whole two-loop recursion."""
    b = tl.load(rows + tl.program_id(0))
    if (tl.load(need_dir + b) != 0) & (tl.load(status + b) == RUNNING):
        offs = tl.arange(0, BLOCK)
        inb = offs < n
        row = b * n
        brow = b * bound_stride
        xv = tl.load(x + row + offs, mask=inb, other=0.0)
        gv = tl.load(g + row + offs, mask=inb, other=0.0)
        lo = tl.load(lower + brow + offs, mask=inb, other=0.0)
        hi = tl.load(upper + brow + offs, mask=inb, other=0.0)
        free = _free(xv, gv, lo, hi) & inb
        q = tl.where(free, gv, 0.0)
        hl, hd, eps, slots, alpha, rho, scaling = _recursion_start(b, x, hist_len, head, settings, M_PAD)
        r = q
        for i in range(0, hl):  # newest to oldest
            pair = (b * m + (hd - 1 - i + m) % m) * n
            s = tl.load(S + pair + offs, mask=inb, other=0.0).to(r.dtype)
            y = tl.where(free, tl.load(Y + pair + offs, mask=inb, other=0.0).to(r.dtype), 0.0)
            rho_i, a, scaling = _pair_terms(tl.sum(s * y), tl.sum(y * y), tl.sum(s * r), eps, scaling)
            r -= a * y
            alpha = tl.where(slots == i, a, alpha)
            rho = tl.where(slots == i, rho_i, rho)
        r *= tl.where(scaling != scaling, tl.load(gamma + b), scaling)
        for k in range(0, hl):  # oldest to newest
            i = hl - 1 - k
            pair = (b * m + (hd - 1 - i + m) % m) * n
            y = tl.where(free, tl.load(Y + pair + offs, mask=inb, other=0.0).to(r.dtype), 0.0)
            rho_i = _pick(rho, slots, i)
            beta = tl.where(rho_i != 0, rho_i * tl.sum(y * r), 0.0)
            s = tl.where(free, tl.load(S + pair + offs, mask=inb, other=0.0).to(r.dtype), 0.0)
            r += (_pick(alpha, slots, i) - beta) * s
        restart, hl = _finish_direction(
            b, tl.sum(gv * -r), tl.sum(q * q), hl, hist_len, head, gd_out, ls_iter, need_dir
        )
        dv = tl.where(restart, -q, -r)
        tiny = tl.load(settings + 3)
        scale = tl.maximum(tl.max(tl.abs(dv)), tiny)
        norm = _safe_norm(scale, tl.sum((dv / scale) * (dv / scale)), tiny)
        # A gradient step has unit length, except a problem's first where box_first is set (a
        # box with every bound finite): scipy's first step, the segment to P(x - g) with t = 1.
        first_boxed = (tl.load(box_first + b) != 0) & (tl.load(nit + b) == 0)
        if first_boxed:
            dv = tl.where(inb, _segment(xv, gv, lo, hi, eps), 0.0)
            tl.store(gd_out + b, tl.sum(gv * dv))
        tl.store(t_out + b, tl.where((hl > 0) | first_boxed, 1.0, 1.0 / norm))
        tl.store(d + row + offs, dv, mask=inb)


@triton.jit
def direction_chunked_kernel(
    rows,
    x,
    g,
    lower,
    upper,
    S,
    Y,
    gamma,
    hist_len,
    head,
    d,
    gd_out,
    t_out,
    ls_iter,
    need_dir,
    status,
    nit,
    box_first,
    settings,
    free_set,
    n,
    m,
    bound_stride,
    BLOCK: tl.constexpr,
    M_PAD: tl.constexpr,
):
    """Direction for any n (ImageNet-sized rows): r lives in the row of d and the free set in row
    i of the scratch `free_set`, both in global memory, and every sweep loops over BLOCK-sized
    chunks; barriers order the sweeps of a program."""
    p = tl.program_id(0).to(tl.int64)
    b = tl.load(rows + p)
    if (tl.load(need_dir + b) != 0) & (tl.load(status + b) == RUNNING):
        row = b * n
        brow = b * bound_stride
        r = d + row
        fs = free_set + p * n
        acc = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
        for c in range(0, n, BLOCK):  # the free set and q = P_F g
            offs = c + tl.arange(0, BLOCK)
            inb = offs < n
            gv = tl.load(g + row + offs, mask=inb, other=0.0)
            free = _free(
                tl.load(x + row + offs, mask=inb, other=0.0),
                gv,
                tl.load(lower + brow + offs, mask=inb, other=0.0),
                tl.load(upper + brow + offs, mask=inb, other=0.0),
            )
            q = tl.where(free, gv, 0.0)
            acc += q * q
            tl.store(r + offs, q, mask=inb)
            tl.store(fs + offs, free, mask=inb)
        qq = tl.sum(acc)
        tl.debug_barrier()
        hl, hd, eps, slots, alpha, rho, scaling = _recursion_start(b, x, hist_len, head, settings, M_PAD)
        for i in range(0, hl):  # newest to oldest
            pair = (b * m + (hd - 1 - i + m) % m) * n
            sr, sy, yy = _row_sums(S + pair, Y + pair, fs, r, n, BLOCK)
            rho_i, a, scaling = _pair_terms(sy, yy, sr, eps, scaling)
            alpha = tl.where(slots == i, a, alpha)
            rho = tl.where(slots == i, rho_i, rho)
            _row_axpy(-a, Y + pair, fs, r, n, BLOCK)
        _row_scale(tl.where(scaling != scaling, tl.load(gamma + b), scaling), r, n, BLOCK)
        for k in range(0, hl):  # oldest to newest
            i = hl - 1 - k
            pair = (b * m + (hd - 1 - i + m) % m) * n
            rho_i = _pick(rho, slots, i)
            beta = tl.where(rho_i != 0, rho_i * _row_dot(Y + pair, fs, r, n, BLOCK), 0.0)
            _row_axpy(_pick(alpha, slots, i) - beta, S + pair, fs, r, n, BLOCK)
        acc_gd = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
        for c in range(0, n, BLOCK):  # d = -r
            offs = c + tl.arange(0, BLOCK)
            inb = offs < n
            dv = -tl.load(r + offs, mask=inb, other=0.0)
            acc_gd += tl.load(g + row + offs, mask=inb, other=0.0) * dv
            tl.store(r + offs, dv, mask=inb)
        restart, hl = _finish_direction(b, tl.sum(acc_gd), qq, hl, hist_len, head, gd_out, ls_iter, need_dir)
        if restart:
            for c in range(0, n, BLOCK):  # d = -q
                offs = c + tl.arange(0, BLOCK)
                inb = offs < n
                gv = tl.load(g + row + offs, mask=inb, other=0.0)
                tl.store(r + offs, tl.where(tl.load(fs + offs, mask=inb, other=0) != 0, -gv, 0.0), mask=inb)
        first_boxed = (tl.load(box_first + b) != 0) & (tl.load(nit + b) == 0)
        if first_boxed:  # scipy's first step in a box: the segment to P(x - g), t = 1
            acc_gd = tl.zeros([BLOCK], dtype=x.dtype.element_ty)
            for c in range(0, n, BLOCK):
                offs = c + tl.arange(0, BLOCK)
                inb = offs < n
                gv = tl.load(g + row + offs, mask=inb, other=0.0)
                dv = _segment(
                    tl.load(x + row + offs, mask=inb, other=0.0),
                    gv,
                    tl.load(lower + brow + offs, mask=inb, other=0.0),
                    tl.load(upper + brow + offs, mask=inb, other=0.0),
                    eps,
                )
                acc_gd += gv * dv
                tl.store(r + offs, dv, mask=inb)
            tl.store(gd_out + b, tl.sum(acc_gd))
            tl.store(t_out + b, 1.0)
        elif hl == 0:  # a gradient step has unit length
            tl.debug_barrier()
            tl.store(t_out + b, 1.0 / _row_safe_norm(r, n, tl.load(settings + 3), BLOCK))
        else:
            tl.store(t_out + b, 1.0)


@triton.jit
def _row_sums(s, y, free, r, n, BLOCK: tl.constexpr):
    """(s.r, s.y_F, y_F.y_F) over one row, history widened to r's dtype."""
    acc_sr = tl.zeros([BLOCK], dtype=r.dtype.element_ty)
    acc_sy = tl.zeros([BLOCK], dtype=r.dtype.element_ty)
    acc_yy = tl.zeros([BLOCK], dtype=r.dtype.element_ty)
    for c in range(0, n, BLOCK):
        offs = c + tl.arange(0, BLOCK)
        inb = offs < n
        sv = tl.load(s + offs, mask=inb, other=0.0).to(acc_sr.dtype)
        yv = tl.load(y + offs, mask=inb, other=0.0).to(acc_sr.dtype)
        yv = tl.where(tl.load(free + offs, mask=inb, other=0) != 0, yv, 0.0)
        acc_sr += sv * tl.load(r + offs, mask=inb, other=0.0)
        acc_sy += sv * yv
        acc_yy += yv * yv
    return tl.sum(acc_sr), tl.sum(acc_sy), tl.sum(acc_yy)


@triton.jit
def _row_dot(u, free, r, n, BLOCK: tl.constexpr):
    """u_F . r over one row (u on the free set), u widened to r's dtype."""
    acc = tl.zeros([BLOCK], dtype=r.dtype.element_ty)
    for c in range(0, n, BLOCK):
        offs = c + tl.arange(0, BLOCK)
        inb = offs < n
        uv = tl.load(u + offs, mask=inb, other=0.0).to(acc.dtype)
        acc += tl.where(tl.load(free + offs, mask=inb, other=0) != 0, uv, 0.0) * tl.load(r + offs, mask=inb, other=0.0)
    return tl.sum(acc)


@triton.jit
def _row_axpy(alpha, u, free, r, n, BLOCK: tl.constexpr):
    """r <- r + alpha u_F over one row, in place."""
    for c in range(0, n, BLOCK):
        offs = c + tl.arange(0, BLOCK)
        inb = offs < n
        rv = tl.load(r + offs, mask=inb, other=0.0)
        uv = tl.load(u + offs, mask=inb, other=0.0).to(rv.dtype)
        tl.store(r + offs, rv + alpha * tl.where(tl.load(free + offs, mask=inb, other=0) != 0, uv, 0.0), mask=inb)
    tl.debug_barrier()


@triton.jit
def _row_scale(scale, r, n, BLOCK: tl.constexpr):
    """r <- scale r over one row, in place."""
    for c in range(0, n, BLOCK):
        offs = c + tl.arange(0, BLOCK)
        inb = offs < n
        tl.store(r + offs, scale * tl.load(r + offs, mask=inb, other=0.0), mask=inb)
    tl.debug_barrier()

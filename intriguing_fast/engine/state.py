"""The solver's settings and its per-problem state, kept as batched tensors so every step is a
few fused ops: what the engine and every backend share."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from numbers import Real

import torch

from .status import Status

BACKENDS = ("auto", "torch", "cpp", "triton")
ROUNDS = ("auto", "compact", "fixed")
HISTORY_DTYPES = (None, torch.float32, torch.float64, torch.bfloat16)


@dataclass(frozen=True)
class LBFGSBOptions:
    """Solver settings shared by all problems of a batch, checked on construction (the
    arguments of `minimize_lbfgsb`, which documents them)."""

    history: int = 10
    max_iter: int = 15000
    max_fun: int = 15000
    gtol: float = 1e-5
    ftol: float = 2.220446049250313e-09
    max_ls: int = 20
    c1: float = 1e-4
    c2: float = 0.9
    box_first_step: bool = True
    backend: str = "auto"
    history_dtype: torch.dtype | None = None
    rounds: str = "auto"
    check_every: int = 16

    def __post_init__(self) -> None:
        for name, least in (("history", 1), ("max_iter", 0), ("max_fun", 1), ("max_ls", 1), ("check_every", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name}: expected an int >= {least}, got {value!r}")
        for name in ("gtol", "ftol"):
            value = getattr(self, name)
            if not isinstance(value, Real) or isinstance(value, bool) or not 0 <= value < math.inf:
                raise ValueError(f"{name}: expected a finite float >= 0, got {value!r}")
        if not isinstance(self.c1, Real) or not 0 < self.c1 < 1:
            raise ValueError(f"c1: expected a float in (0, 1), got {self.c1!r}")
        if not isinstance(self.c2, Real) or not self.c1 < self.c2 < 1:
            raise ValueError(f"c2: expected a float in (c1, 1), got {self.c2!r}")
        if not isinstance(self.box_first_step, bool):
            raise TypeError(f"box_first_step: expected a bool, got {self.box_first_step!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {self.backend!r}")
        if self.rounds not in ROUNDS:
            raise ValueError(f"rounds: expected one of {ROUNDS}, got {self.rounds!r}")
        if self.history_dtype not in HISTORY_DTYPES:
            raise TypeError(f"history_dtype: expected one of {HISTORY_DTYPES}, got {self.history_dtype!r}")

    def as_kwargs(self) -> dict:
        """The settings as keyword arguments of `minimize_lbfgsb`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class BatchState:
    """The problems of a solve, one row each, in the caller's order.

    lower and upper are [B, n], or [1, n] when all problems share them (engine/validation.py).
    History is a ring buffer per problem: S[r, j], Y[r, j] (stored in x's dtype or in
    bfloat16, read back into x's dtype), the newest pair in slot (head[r] - 1) mod m,
    hist_len[r] valid pairs, and gamma[r] = s.y / y.y of the newest pair (the initial
    inverse-Hessian scaling where no pair has positive curvature on the free variables).
    Line search: d the search direction, gd = g.d, t the current step, slope =
    g.(x_trial - x); box_first[r]: the problem's first step goes along the segment to P(x - g). x_trial is
    compact: its row i is P(x + t d) of the i-th problem of the step's row list
    (engine/backends/reference.py).
    """

    lower: torch.Tensor
    upper: torch.Tensor
    x: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    S: torch.Tensor
    Y: torch.Tensor
    gamma: torch.Tensor
    hist_len: torch.Tensor
    head: torch.Tensor
    d: torch.Tensor
    gd: torch.Tensor
    t: torch.Tensor
    x_trial: torch.Tensor
    slope: torch.Tensor
    ls_iter: torch.Tensor
    need_dir: torch.Tensor
    box_first: torch.Tensor
    status: torch.Tensor
    nit: torch.Tensor
    nfev: torch.Tensor
    pg_norm: torch.Tensor

    @classmethod
    def start(
        cls,
        x: torch.Tensor,
        f: torch.Tensor,
        g: torch.Tensor,
        lower: torch.Tensor,
        upper: torch.Tensor,
        history: int,
        history_dtype: torch.dtype | None = None,
        box_first_step: bool = True,
    ) -> BatchState:
        """The state before the first iteration. f and g are copied: fused backends update
        the state in place and must never write into tensors returned by the caller's fun.
        box_first_step: a problem whose bounds are all finite makes its first step (of the
        solve, or after a restart) along the segment to P(x - g), as scipy's L-BFGS-B does (box_first)."""
        B, n = x.shape
        opts = dict(dtype=x.dtype, device=x.device)
        ints = dict(dtype=torch.int64, device=x.device)
        hist = dict(dtype=history_dtype or x.dtype, device=x.device)
        return cls(
            lower=lower,
            upper=upper,
            x=x,
            f=f.clone(memory_format=torch.contiguous_format),
            g=g.clone(memory_format=torch.contiguous_format),
            S=torch.zeros(B, history, n, **hist),
            Y=torch.zeros(B, history, n, **hist),
            gamma=torch.ones(B, **opts),
            hist_len=torch.zeros(B, **ints),
            head=torch.zeros(B, **ints),
            d=torch.zeros_like(x),
            gd=torch.zeros(B, **opts),
            t=torch.ones(B, **opts),
            x_trial=x.clone(),
            slope=torch.zeros(B, **opts),
            ls_iter=torch.zeros(B, **ints),
            need_dir=torch.ones(B, dtype=torch.bool, device=x.device),
            box_first=((lower.isfinite() & upper.isfinite()).all(dim=1) & box_first_step).expand(B).contiguous(),
            status=torch.full((B,), int(Status.RUNNING), **ints),
            nit=torch.zeros(B, **ints),
            nfev=torch.ones(B, **ints),
            pg_norm=projected_gradient_norm(x, g, lower, upper),
        )

    def take(self, rows: torch.Tensor) -> BatchState:
        """The state of problems `rows` alone, in that order (shared bounds stay shared)."""
        shared = self.lower.shape[0] == 1
        return BatchState(
            **{
                f.name: getattr(self, f.name)
                if shared and f.name in ("lower", "upper")
                else getattr(self, f.name)[rows]
                for f in fields(self)
            }
        )

    def bounds(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(lower, upper) of the problems `rows`: their rows, or the one row they all share."""
        if self.lower.shape[0] == 1:
            return self.lower, self.upper
        return self.lower[rows], self.upper[rows]

    def begin(
        self,
        rows: torch.Tensor,
        x: torch.Tensor,
        f: torch.Tensor,
        g: torch.Tensor,
        opt: LBFGSBOptions,
        curvature_shift: torch.Tensor | None = None,
        only: torch.Tensor | None = None,
    ) -> None:
        """Problems `rows` start afresh from x (inside their box) with f and g at it: counters as
        after one evaluation, status RUNNING unless already final at x, and an empty history,
        except where curvature_shift [len(rows)] is a number: there the pairs stay, y + shift s
        (BatchSolver.restart). `only` [len(rows)] bool: just these of `rows` begin (the
        fixed-shape rounds pass every row and a mask). The others are untouched."""

        def put(name: str, new: torch.Tensor | float) -> None:
            field = getattr(self, name)
            if only is not None:
                new = torch.where(only.view(-1, *([1] * (field.dim() - 1))), new, field.index_select(0, rows))
            if isinstance(new, torch.Tensor):  # index_copy_ and index_select move whole rows: on CPU several
                field.index_copy_(0, rows, new.to(field.dtype))  # times faster than t[rows] for [k, n] rows
            else:
                field.index_fill_(0, rows, new)

        put("x", x), put("f", f), put("g", g)
        if curvature_shift is None:
            put("hist_len", 0), put("head", 0), put("gamma", 1.0)
        else:  # masks, not a host-synchronising selection: the pairs of a NaN row are dropped after a zero shift
            drop = curvature_shift.isnan()
            self.shift_curvature(rows, curvature_shift.nan_to_num(0.0), only)
            put("hist_len", self.hist_len[rows].masked_fill(drop, 0))
            put("head", self.head[rows].masked_fill(drop, 0))
            put("gamma", self.gamma[rows].masked_fill(drop, 1.0))
        put("need_dir", True), put("ls_iter", 0), put("nit", 0), put("nfev", 1)
        pg_norm = projected_gradient_norm(x, g, *self.bounds(rows))
        put("pg_norm", pg_norm)
        put("status", start_status(f, g, pg_norm, opt))

    def shift_curvature(self, rows: torch.Tensor, shift: torch.Tensor, only: torch.Tensor | None = None) -> None:
        """y <- y + shift s in every pair of problems `rows` (of those `only` marks, if given), and
        the scaling from the newest (kept where the shifted pair has no positive curvature)."""
        if only is not None:
            shift = torch.where(only, shift, 0.0)
        shifted = self.S.index_select(0, rows).to(shift.dtype).mul_(shift[:, None, None])
        self.Y.index_add_(0, rows, shifted.to(self.Y.dtype))
        m, n = self.S.shape[1:]
        newest = rows * m + (self.head[rows] - 1) % m  # each row's newest pair, in the [B m, n] view
        s, y = (pairs.reshape(-1, n).index_select(0, newest).to(shift.dtype) for pairs in (self.S, self.Y))
        sy, yy = torch.linalg.vecdot(s, y), torch.linalg.vecdot(y, y)
        update = (self.hist_len[rows] > 0) & (sy > 0) & (yy > 0)
        if only is not None:
            update &= only
        self.gamma[rows] = torch.where(update, sy / yy, self.gamma[rows])


def start_status(f: torch.Tensor, g: torch.Tensor, pg_norm: torch.Tensor, opt: LBFGSBOptions) -> torch.Tensor:
    """The status of problems at their starting point: NONFINITE if f or g is not finite there,
    CONVERGED_GTOL if it is already stationary, MAX_ITER if no iteration is allowed, else RUNNING."""
    status = torch.full_like(pg_norm, int(Status.RUNNING), dtype=torch.int64)
    status = torch.where(torch.isfinite(f) & torch.isfinite(g).all(dim=1), status, int(Status.NONFINITE))
    status = torch.where((status == Status.RUNNING) & (pg_norm <= opt.gtol), int(Status.CONVERGED_GTOL), status)
    status = torch.where((status == Status.RUNNING) & (opt.max_iter == 0), int(Status.MAX_ITER), status)
    return status


def projected_gradient_norm(x: torch.Tensor, g: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """Infinity norm of P(x - g) - x per row, the first-order optimality measure of a box,
    computed as clamp(-g, lower - x, upper - x): the same number, but never rounded to 0 where
    x - g rounds to x (|x| far above |g|)."""
    return torch.clamp(-g, lower - x, upper - x).abs().amax(dim=1)

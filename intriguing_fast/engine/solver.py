"""The engine's loop one round at a time: `minimize_lbfgsb` runs rounds until every problem has
stopped; a caller that gives problems new work as they stop (the attack moves each image to
its next c) restarts them between rounds, so the batch never waits for its slowest problem.
This module holds the compact rounds (the CPU default); engine/fixed_rounds.py the fixed-shape
ones (the CUDA default) and `batch_solver`, which gives the one the options ask for."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .backends import resolve_backend
from .result import LBFGSBResult
from .state import BatchState, LBFGSBOptions, start_status
from .status import Status
from .validation import (
    check_bound,
    check_bounds,
    check_fun,
    check_fun_output,
    check_history_dtype,
    check_memory,
    check_x0,
)

Fun = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


class BatchSolver:
    """B independent box-constrained problems (see `minimize_lbfgsb` for fun and the bounds), in
    compact rounds (`engine.fixed_rounds.batch_solver` gives the solver that options ask for).

    The first round evaluates fun at every starting point (in the constructor). Each later
    round evaluates, in one call of fun, the trial point of every running problem and the
    starting point of every problem restarted since the previous round. After a round:
    `evaluated` lists the problems fun saw (in the order of its rows), `moved` says which of
    them now sit at the point evaluated (an accepted trial or a restart), and `stopped()`
    which of them stopped in it.
    """

    @torch.no_grad()
    def __init__(
        self,
        fun: Fun,
        x0: torch.Tensor,
        lower: float | torch.Tensor,
        upper: float | torch.Tensor,
        options: LBFGSBOptions,
        start: torch.Tensor | None = None,
    ) -> None:
        """`start` [B] bool: the problems that start now (default: all); the others wait, never
        evaluated, with status STOPPED, until `restart` gives them a point."""
        x, lower, upper = self._check(fun, x0, lower, upper, options)
        if fixed_rounds(options, x.device):
            raise ValueError(
                f"options: rounds={options.rounds!r} asks for fixed-shape rounds on {x.device}: build the "
                "solver with engine.fixed_rounds.batch_solver (or pass rounds='compact')"
            )
        self.evaluated = torch.arange(x.shape[0], device=x.device) if start is None else _start_rows(start, x)
        # fun gets its own copy of the row indices: one that changed them in place would corrupt the rounds' bookkeeping
        f_start, g_start = check_fun_output(self.fun(x[self.evaluated], self.evaluated.clone()), x[self.evaluated])
        f, g = f_start, g_start
        if start is not None:  # the waiting problems hold zeros until they are restarted
            f = x.new_zeros(x.shape[0]).index_copy_(0, self.evaluated, f_start)
            g = torch.zeros_like(x).index_copy_(0, self.evaluated, g_start)
        self.st = BatchState.start(
            x, f, g, lower, upper, options.history, options.history_dtype, options.box_first_step
        )
        self.st.status.copy_(start_status(self.st.f, self.st.g, self.st.pg_norm, options))
        if start is not None:
            self.st.status.masked_fill_(~start, int(Status.STOPPED))
            self.st.nfev.masked_fill_(~start, 0)
        self._trials: torch.Tensor | None = None
        self._nit_before: torch.Tensor | None = None
        self._restarts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
        self.rounds = 1

    def _check(
        self,
        fun: Fun,
        x0: torch.Tensor,
        lower: float | torch.Tensor,
        upper: float | torch.Tensor,
        options: LBFGSBOptions,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Checks the arguments, sets fun, opt and kernels; returns x0 projected onto the box and the bounds."""
        if not isinstance(options, LBFGSBOptions):
            raise TypeError(f"options: expected an LBFGSBOptions, got {type(options).__name__}")
        fun, x0 = check_fun(fun), check_x0(x0)
        lower, upper = check_bounds(check_bound(lower, "lower", x0), check_bound(upper, "upper", x0))
        check_history_dtype(options.history_dtype, x0)
        check_memory(x0, options.history, options.history_dtype)
        self.fun, self.opt = fun, options
        self.kernels = resolve_backend(options.backend, x0.device)
        return torch.clamp(x0, lower, upper).contiguous(), lower, upper

    fixed = False  # compact rounds

    @torch.no_grad()
    def restart(self, rows: torch.Tensor, x: torch.Tensor, curvature_shift: torch.Tensor | None = None) -> None:
        """Problems `rows` (stopped, distinct) start afresh from x [len(rows), n], projected onto
        their box, in the next round: new counters and status, and a new history unless
        `curvature_shift` [len(rows)] is given: then each keeps its curvature pairs, every y
        shifted by curvature_shift * s, exact when fun has changed by a term whose Hessian is
        curvature_shift * I (the attack's next c: 2 (c_new - c_old)); a NaN entry gives its problem
        a new history. The others go on.

        `rows` may be a bool mask [B] instead, with x [B, n] and curvature_shift [B] of which only
        its rows are read: the form the fixed-shape rounds take without a host synchronisation."""
        st = self.st
        B, n = st.x.shape
        if _check_mask_restart(rows, x, curvature_shift, B, n, st.x.device):
            rows = rows.nonzero().squeeze(1)
            if not rows.numel():
                return
            x, curvature_shift = x[rows], None if curvature_shift is None else curvature_shift[rows]
        if not isinstance(rows, torch.Tensor) or rows.dtype != torch.int64 or rows.device != st.x.device:
            raise TypeError(f"rows: expected an int64 tensor of problem indices on {st.x.device}")
        if not isinstance(x, torch.Tensor) or x.device != st.x.device:
            raise TypeError(f"x: expected a tensor on {st.x.device}")
        if rows.numel() and (rows.min() < 0 or rows.max() >= B):
            raise ValueError(f"rows: problem indices must lie in [0, {B - 1}]")
        if rows.dim() != 1 or x.shape != (rows.shape[0], n):
            raise ValueError(f"rows, x: expected [k] and [k, {n}], got {tuple(rows.shape)} and {tuple(x.shape)}")
        if (st.status[rows] == Status.RUNNING).any() or rows.unique().numel() != rows.numel():
            raise ValueError("rows: a problem restarts only once it has stopped, and once per round")
        if curvature_shift is not None and (
            not isinstance(curvature_shift, torch.Tensor)
            or curvature_shift.shape != rows.shape
            or curvature_shift.device != st.x.device
            or torch.isinf(curvature_shift).any()
        ):
            raise ValueError(
                f"curvature_shift: expected None or a tensor of shape {tuple(rows.shape)} on "
                f"{st.x.device}, finite or NaN"
            )
        shift = None if curvature_shift is None else curvature_shift.to(st.x.dtype)
        self._restarts.append((rows, torch.clamp(x.to(st.x.dtype), *st.bounds(rows)), shift))

    @torch.no_grad()
    def stop(self, rows: torch.Tensor) -> None:
        """Problems `rows` (indices, or a bool mask [B]) stop where they are (status STOPPED); a
        restart takes them up again. The others go on."""
        self.st.status.masked_fill_(self._mask(rows), int(Status.STOPPED))

    def retire(self, rows: torch.Tensor) -> None:
        """Problems `rows` (indices, or a bool mask [B]), once stopped, will never restart: fixed-shape
        rounds may then drop them from their batch (buckets); compact rounds need not know."""
        self._mask(rows)

    @property
    def problems(self) -> int:
        """B, the number of problems."""
        return self.st.x.shape[0]

    def _mask(self, rows: torch.Tensor) -> torch.Tensor:
        """[B] bool of problem indices `rows`, or `rows` itself if it is that mask."""
        device, B = self.st.x.device, self.problems
        if (
            not isinstance(rows, torch.Tensor)
            or rows.dtype not in (torch.int64, torch.bool)
            or rows.device != device
            or (rows.dtype == torch.bool and rows.shape != (B,))
        ):
            raise TypeError(f"rows: expected an int64 tensor of problem indices or a bool mask [{B}] on {device}")
        if rows.dtype == torch.bool:
            return rows
        return torch.zeros(B, dtype=torch.bool, device=device).index_fill_(0, rows, True)

    @torch.no_grad()
    def round(self) -> bool:
        """One round; False (and nothing done) when no problem runs and none restarts: known at
        at once in compact rounds, at the next look in fixed-shape ones (`check_every`)."""
        st = self.st
        # The one host synchronisation per round: which problems still run.
        rows = (st.status == Status.RUNNING).nonzero().squeeze(1)
        k = len(rows)
        restarts, self._restarts = self._restarts, []
        if k == 0 and not restarts:
            return False
        if k:
            self.kernels.propose(st, rows)  # a direction where needed, then the trial points
        self.evaluated = rows
        if restarts:
            restarted = torch.cat([r for r, _, _ in restarts])
            st.x_trial[k : k + len(restarted)] = torch.cat([x for _, x, _ in restarts])
            # NaN: no shift given, a new history
            shift = (
                None
                if all(s is None for _, _, s in restarts)
                else torch.cat(
                    [torch.full_like(r, float("nan"), dtype=st.x.dtype) if s is None else s for r, _, s in restarts]
                )
            )
            self.evaluated = torch.cat([rows, restarted])
        x_eval = st.x_trial[: len(self.evaluated)]
        f_t, g_t = check_fun_output(self.fun(x_eval, self.evaluated.clone()), x_eval)
        self._trials, self._nit_before = rows, st.nit[rows]
        if k:
            self.kernels.accept(st, rows, f_t[:k], g_t[:k], self.opt)
        if restarts:
            st.begin(restarted, x_eval[k:], f_t[k:], g_t[k:], self.opt, shift)
        self.rounds += 1
        return True

    @property
    def moved(self) -> torch.Tensor:
        """For each problem of `evaluated`: whether it now sits at the point evaluated in the
        last round (its trial was accepted, or it was restarted there)."""
        if self._trials is None:  # the constructor's round: every problem sits at its start
            return torch.ones_like(self.evaluated, dtype=torch.bool)
        accepted = self.st.nit[self._trials] > self._nit_before
        restarted = torch.ones(len(self.evaluated) - len(accepted), dtype=torch.bool, device=accepted.device)
        return torch.cat([accepted, restarted])

    @property
    def just_stopped(self) -> torch.Tensor:
        """[B] bool: the problems that stopped in the last round (at their start, after the
        constructor of compact rounds)."""
        st = self.st
        stopped = self.evaluated[st.status[self.evaluated] != Status.RUNNING]
        return torch.zeros_like(st.status, dtype=torch.bool).index_fill_(0, stopped, True)

    def stopped(self) -> torch.Tensor:
        """The problems that stopped in the last round (at their start, after the constructor)."""
        return self.just_stopped.nonzero().squeeze(1)

    def problem_state(self, field: str) -> torch.Tensor:
        """A field of `BatchState` ("x", "f", "g", "pg_norm", "nit", "nfev", "status"), one row
        per problem: what a caller reads between rounds (fixed-shape rounds keep their state in
        buckets of rows)."""
        return getattr(self.st, field)

    def result(self) -> LBFGSBResult:
        x, f, g, pg_norm, nit, nfev, status = (self.problem_state(field) for field in RESULT_FIELDS)
        return LBFGSBResult(x=x, fun=f, grad=g, pg_norm=pg_norm, nit=nit, nfev=nfev, status=status)


RESULT_FIELDS = ("x", "f", "g", "pg_norm", "nit", "nfev", "status")


def fixed_rounds(options: LBFGSBOptions, device: torch.device) -> bool:
    """Whether the options ask for fixed-shape rounds on `device` ("auto": on CUDA)."""
    return options.rounds == "fixed" or (options.rounds == "auto" and device.type == "cuda")


def _check_mask_restart(rows: object, x: object, shift: object, B: int, n: int, device: torch.device) -> bool:
    """Whether `rows` is a restart's bool mask [B] (then x [B, n] and shift [B] must have its
    form, on `device`); False for indices."""
    if not (isinstance(rows, torch.Tensor) and rows.dtype == torch.bool):
        return False
    if (
        rows.shape != (B,)
        or rows.device != device
        or not isinstance(x, torch.Tensor)
        or x.shape != (B, n)
        or x.device != device
    ):
        raise ValueError(f"rows, x: a mask restart takes a bool [{B}] and x [{B}, {n}] on {device}")
    if shift is not None and (not isinstance(shift, torch.Tensor) or shift.shape != (B,)):
        raise ValueError(f"curvature_shift: expected None or a tensor of shape ({B},)")
    return True


def _start_rows(start: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if (
        not isinstance(start, torch.Tensor)
        or start.dtype != torch.bool
        or start.shape != x.shape[:1]
        or start.device != x.device
    ):
        raise ValueError(f"start: expected None or a bool tensor of shape [{x.shape[0]}] on {x.device}")
    return start.nonzero().squeeze(1)

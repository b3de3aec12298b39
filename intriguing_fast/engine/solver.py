"""The engine's loop one round at a time: `minimize_lbfgsb` runs rounds until every problem has
stopped; a caller that gives problems new work as they stop (the attack moves each image to
its next c) restarts them between rounds, so the batch never waits for its slowest problem."""
from __future__ import annotations

from typing import Callable

import torch

from ..kernels import BatchState, LBFGSBOptions, Status, resolve_backend, start_status
from .result import LBFGSBResult
from .validation import (check_bound, check_bounds, check_fun, check_fun_output, check_history_dtype, check_memory,
                         check_x0)

Fun = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


class BatchSolver:
    """B independent box-constrained problems (see `minimize_lbfgsb` for fun and the bounds).

    The first round evaluates fun at every starting point (in the constructor). Each later
    round evaluates, in one call of fun, the trial point of every running problem and the
    starting point of every problem restarted since the previous round. After a round:
    `evaluated` lists the problems fun saw (in the order of its rows), `moved` says which of
    them now sit at the point evaluated (an accepted trial or a restart), and `stopped()`
    which of them stopped in it.
    """

    @torch.no_grad()
    def __init__(self, fun: Fun, x0: torch.Tensor, lower: float | torch.Tensor, upper: float | torch.Tensor,
                 options: LBFGSBOptions, start: torch.Tensor | None = None) -> None:
        """`start` [B] bool: the problems that start now (default: all); the others wait, never
        evaluated, with status STOPPED, until `restart` gives them a point."""
        if not isinstance(options, LBFGSBOptions):
            raise TypeError(f"options: expected an LBFGSBOptions, got {type(options).__name__}")
        fun, x0 = check_fun(fun), check_x0(x0)
        lower, upper = check_bounds(check_bound(lower, "lower", x0), check_bound(upper, "upper", x0))
        check_history_dtype(options.history_dtype, x0)
        check_memory(x0, options.history, options.history_dtype)
        self.fun, self.opt = fun, options
        self.kernels = resolve_backend(options.backend, x0.device)
        x = torch.clamp(x0, lower, upper).contiguous()
        self.evaluated = torch.arange(x.shape[0], device=x.device) if start is None else _start_rows(start, x)
        # fun gets its own copy of the row indices: one that changed them in place would corrupt the rounds' bookkeeping
        f_start, g_start = check_fun_output(fun(x[self.evaluated], self.evaluated.clone()), x[self.evaluated])
        f, g = f_start, g_start
        if start is not None:  # the waiting problems hold zeros until they are restarted
            f = x.new_zeros(x.shape[0]).index_copy_(0, self.evaluated, f_start)
            g = torch.zeros_like(x).index_copy_(0, self.evaluated, g_start)
        self.st = BatchState.start(x, f, g, lower, upper, options.history, options.history_dtype,
                                   options.box_first_step)
        self.st.status.copy_(start_status(self.st.f, self.st.g, self.st.pg_norm, options))
        if start is not None:
            self.st.status.masked_fill_(~start, int(Status.STOPPED))
            self.st.nfev.masked_fill_(~start, 0)
        self._trials: torch.Tensor | None = None
        self._nit_before: torch.Tensor | None = None
        self.rounds = 1
        self._restarts: list[tuple[torch.Tensor, torch.Tensor]] = []

    @torch.no_grad()
    def restart(self, rows: torch.Tensor, x: torch.Tensor, curvature_shift: torch.Tensor | None = None) -> None:
        """Problems `rows` (stopped, distinct) start afresh from x [len(rows), n], projected onto
        their box, in the next round: new counters and status, and a new history unless
        `curvature_shift` [len(rows)] is given: then each keeps its curvature pairs, every y
        shifted by curvature_shift * s, exact when fun has changed by a term whose Hessian is
        curvature_shift * I (the attack's next c: 2 (c_new - c_old)); a NaN entry gives its problem
        a new history. The others go on."""
        st = self.st
        B = st.x.shape[0]
        if not isinstance(rows, torch.Tensor) or rows.dtype != torch.int64 or rows.device != st.x.device:
            raise TypeError(f"rows: expected an int64 tensor of problem indices on {st.x.device}")
        if not isinstance(x, torch.Tensor) or x.device != st.x.device:
            raise TypeError(f"x: expected a tensor on {st.x.device}")
        if rows.numel() and (rows.min() < 0 or rows.max() >= B):
            raise ValueError(f"rows: problem indices must lie in [0, {B - 1}]")
        if rows.dim() != 1 or x.shape != (rows.shape[0], st.x.shape[1]):
            raise ValueError(f"rows, x: expected [k] and [k, {st.x.shape[1]}], got {tuple(rows.shape)} and {tuple(x.shape)}")
        if (st.status[rows] == Status.RUNNING).any() or rows.unique().numel() != rows.numel():
            raise ValueError("rows: a problem restarts only once it has stopped, and once per round")
        if curvature_shift is not None and (not isinstance(curvature_shift, torch.Tensor)
                                            or curvature_shift.shape != rows.shape
                                            or curvature_shift.device != st.x.device
                                            or torch.isinf(curvature_shift).any()):
            raise ValueError(f"curvature_shift: expected None or a tensor of shape {tuple(rows.shape)} on "
                             f"{st.x.device}, finite or NaN")
        shift = None if curvature_shift is None else curvature_shift.to(st.x.dtype)
        self._restarts.append((rows, torch.clamp(x.to(st.x.dtype), *st.bounds(rows)), shift))

    @torch.no_grad()
    def stop(self, rows: torch.Tensor) -> None:
        """Problems `rows` stop where they are (status STOPPED); a restart takes them up again. The
        others go on."""
        if not isinstance(rows, torch.Tensor) or rows.dtype != torch.int64 or rows.device != self.st.x.device:
            raise TypeError(f"rows: expected an int64 tensor of problem indices on {self.st.x.device}")
        self.st.status[rows] = int(Status.STOPPED)

    @torch.no_grad()
    def round(self) -> bool:
        """One round; False (and nothing done) when no problem runs and none restarts."""
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
            st.x_trial[k:k + len(restarted)] = torch.cat([x for _, x, _ in restarts])
            # NaN: no shift given, a new history
            shift = None if all(s is None for _, _, s in restarts) else torch.cat(
                [torch.full_like(r, float("nan"), dtype=st.x.dtype) if s is None else s for r, _, s in restarts])
            self.evaluated = torch.cat([rows, restarted])
        x_eval = st.x_trial[:len(self.evaluated)]
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

    def stopped(self) -> torch.Tensor:
        """The problems that stopped in the last round (at their start, after the constructor)."""
        return self.evaluated[self.st.status[self.evaluated] != Status.RUNNING]

    def result(self) -> LBFGSBResult:
        st = self.st
        return LBFGSBResult(x=st.x, fun=st.f, grad=st.g, pg_norm=st.pg_norm, nit=st.nit, nfev=st.nfev, status=st.status)


def _start_rows(start: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(start, torch.Tensor) or start.dtype != torch.bool or start.shape != x.shape[:1] \
            or start.device != x.device:
        raise ValueError(f"start: expected None or a bool tensor of shape [{x.shape[0]}] on {x.device}")
    return start.nonzero().squeeze(1)

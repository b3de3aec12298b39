"""Fixed-shape rounds (issue 29): every round works on every problem of a bucket with masks, in
shapes that never change and with no host synchronisation but a look every `check_every` rounds,
so a round can run on CUDA without the stream waiting for the host, and be captured as a CUDA
graph. Problems that will never run again (`retire`) leave at a look once they are half the
bucket: the others are compacted into the next smaller power-of-two bucket (one
synchronisation, then fixed shapes again). The caller sees one row per problem throughout:
`evaluated` holds problem ids, `problem_state` gathers the buckets' rows back."""

from __future__ import annotations

import torch

from .backends import TorchKernels
from .solver import RESULT_FIELDS, BatchSolver, Fun, _check_mask_restart, _start_rows, fixed_rounds
from .state import BatchState, LBFGSBOptions
from .status import Status
from .validation import check_fun_output

# The smallest bucket: below it a round's cost no longer follows its rows.
MIN_BUCKET = 32


def batch_solver(
    fun: Fun,
    x0: torch.Tensor,
    lower: float | torch.Tensor,
    upper: float | torch.Tensor,
    options: LBFGSBOptions,
    start: torch.Tensor | None = None,
) -> BatchSolver:
    """The solver `options` ask for on x0's device: fixed-shape rounds, or compact ones."""
    fixed = isinstance(options, LBFGSBOptions) and isinstance(x0, torch.Tensor) and fixed_rounds(options, x0.device)
    return (FixedShapeSolver if fixed else BatchSolver)(fun, x0, lower, upper, options, start)


class FixedShapeSolver(BatchSolver):
    """`BatchSolver` in fixed-shape rounds (options.rounds "fixed", or "auto" on CUDA).

    fun sees every problem of the bucket at every round, a stopped one at its current point;
    `live` [B] (updated in place) marks the problems whose evaluation counts. Every problem
    starts as a restart, so the first round evaluates the starting ones like any other.
    """

    fixed = True

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
        x, lower, upper = self._check(fun, x0, lower, upper, options)
        if not self.kernels.every_row:  # cpp takes running rows only: auto falls back to the torch steps
            if options.backend != "auto":
                raise ValueError(
                    f"backend: the fixed-shape rounds need steps that take every problem (torch, "
                    f"triton), got {self.kernels.name!r}; pass another backend or rounds='compact'"
                )
            self.kernels = TorchKernels()
        B = x.shape[0]
        if start is not None:
            _start_rows(start, x)  # checks it
        self.st = BatchState.start(
            x,
            x.new_zeros(B),
            torch.zeros_like(x),
            lower,
            upper,
            options.history,
            options.history_dtype,
            options.box_first_step,
        )
        self.st.status.fill_(int(Status.STOPPED))
        self.st.nfev.zero_()
        self.ids = torch.arange(B, device=x.device)  # the problem of each row of the bucket
        self.every = self.ids.clone()  # the bucket's rows, as the steps take them
        self.live = torch.zeros(B, dtype=torch.bool, device=x.device)  # per problem, in place
        self.retired = torch.zeros_like(self.live)  # per problem: never to run again
        self._live, self._moved = self.live.clone(), self.live.clone()  # per row of the bucket
        self._restart_mask = torch.ones_like(self.live) if start is None else start.clone()
        self._restart_x, self._restart_shift = x.clone(), torch.full_like(x[:, 0], float("nan"))
        self._final: dict[str, torch.Tensor] | None = None  # per problem, once buckets have dropped some
        # The look every check_every rounds reads what it copied (without waiting) at the look
        # before: whether anything ran, and how many of the bucket's problems are not retired.
        pinned = x.device.type == "cuda"
        self._flag = torch.tensor([1, B], dtype=torch.int64).pin_memory() if pinned else torch.tensor([1, B])
        self._flag_copied = torch.cuda.Event() if pinned else None
        self._queued = False  # restarts by index asked for since the last look
        self.rounds = 0

    @property
    def evaluated(self) -> torch.Tensor:
        return self.ids

    @property
    def moved(self) -> torch.Tensor:
        return self._moved

    @property
    def just_stopped(self) -> torch.Tensor:
        stopped = self._live & (self.st.status != Status.RUNNING)
        return self._per_problem(stopped, torch.zeros(self.problems, dtype=torch.bool, device=stopped.device))

    @torch.no_grad()
    def restart(self, rows: torch.Tensor, x: torch.Tensor, curvature_shift: torch.Tensor | None = None) -> None:
        """As `BatchSolver.restart`, queued for the next round; a running problem of a mask is left
        running. A look (`check_every`) sees a mask's restart only if something ran at the look
        before: restart problems that have just stopped (as the attack does), not a finished batch."""
        B, n = self.problems, self.st.x.shape[1]
        if not _check_mask_restart(rows, x, curvature_shift, B, n, self.live.device):
            mask = self._mask(rows)
            full = torch.zeros(B, n, dtype=self.st.x.dtype, device=x.device).index_copy_(0, rows, x.to(self.st.x.dtype))
            curvature_shift = (
                None
                if curvature_shift is None
                else torch.zeros(B, dtype=self.st.x.dtype, device=x.device).index_copy_(
                    0, rows, curvature_shift.to(self.st.x.dtype)
                )
            )
            rows, x = mask, full
            self._queued = True  # seen at the next look, even if nothing runs
        st, ids = self.st, self.ids
        mask = rows[ids] & (st.status != Status.RUNNING)
        self._restart_mask |= mask
        projected = torch.clamp(x[ids].to(st.x.dtype), *st.bounds(self.every))
        self._restart_x = torch.where(mask[:, None], projected, self._restart_x)
        if curvature_shift is not None:
            self._restart_shift = torch.where(mask, curvature_shift[ids].to(st.x.dtype), self._restart_shift)

    @torch.no_grad()
    def stop(self, rows: torch.Tensor) -> None:
        self.st.status.masked_fill_(self._mask(rows)[self.ids], int(Status.STOPPED))

    def retire(self, rows: torch.Tensor) -> None:
        self.retired |= self._mask(rows)

    @property
    def problems(self) -> int:
        return self.live.shape[0]

    @torch.no_grad()
    def round(self) -> bool:
        """A round on every problem of the bucket, stopped ones untouched by masks: the same
        operators on the same shapes every time, and no host synchronisation but the look every
        check_every rounds."""
        if self.rounds and self.rounds % self.opt.check_every == 0 and not self._look():
            return False
        st = self.st  # after the look, which may have changed the bucket
        running = st.status == Status.RUNNING
        self.kernels.propose(st, self.every)
        restarting = self._restart_mask
        x_eval = torch.where(restarting[:, None], self._restart_x, st.x_trial)
        self._live = running | restarting
        self.live.zero_().index_put_((self.ids,), self._live)
        f_t, g_t = check_fun_output(self.fun(x_eval, self.ids.clone()), x_eval)
        nit = st.nit.clone()
        self.kernels.accept(st, self.every, f_t, g_t, self.opt)
        # Always the shift's operators (NaN: a new history), so that every round has the same ones.
        st.begin(self.every, x_eval, f_t, g_t, self.opt, self._restart_shift, only=restarting)
        self._moved = self._live & ((st.nit > nit) | restarting)
        self._restart_mask = torch.zeros_like(restarting)
        self._restart_shift = torch.full_like(self._restart_shift, float("nan"))
        self.rounds += 1
        return True

    def _look(self) -> bool:
        """Whether any problem ran or was to restart at the previous look (or a restart by index was
        asked for since): the flag copied then is read now, so the read does not wait for the
        device. Where half the bucket had retired by then, the bucket shrinks first."""
        if self._flag_copied is not None:
            self._flag_copied.synchronize()  # recorded check_every rounds ago: long done
        ran, unretired = self._flag.tolist()
        ran = bool(ran) or self._queued
        self._queued = False
        size = self.st.x.shape[0]
        if ran and size > MIN_BUCKET and unretired <= size // 2:
            self._shrink()
        st = self.st
        flag = torch.stack(
            [((st.status == Status.RUNNING).any() | self._restart_mask.any()).long(), (~self.retired[self.ids]).sum()]
        )
        self._flag.copy_(flag, non_blocking=True)
        if self._flag_copied is not None:
            self._flag_copied.record()
        return ran

    def _shrink(self) -> None:
        """Compact the bucket's problems that may still run into the next smaller power-of-two
        bucket (padded with retired ones), keeping the dropped problems' final state."""
        st = self.st
        keep = ~self.retired[self.ids] | (st.status == Status.RUNNING) | self._restart_mask
        kept = keep.nonzero().squeeze(1)
        size = max(MIN_BUCKET, 1 << max(0, int(kept.numel()) - 1).bit_length())
        if size >= st.x.shape[0]:
            return
        dropped = (~keep).nonzero().squeeze(1)
        rows = torch.cat([kept, dropped[: size - kept.numel()]]).sort().values  # problem order kept
        if self._final is None:
            self._final = {field: getattr(st, field).clone() for field in RESULT_FIELDS}
        gone = torch.ones_like(keep).index_fill_(0, rows, False).nonzero().squeeze(1)
        for field, values in self._final.items():
            values[self.ids[gone]] = getattr(st, field)[gone]
        self.st = st.take(rows)
        self.ids = self.ids[rows]
        self.every = torch.arange(size, device=rows.device)
        self._live, self._moved = self._live[rows], self._moved[rows]
        self._restart_mask, self._restart_x = self._restart_mask[rows], self._restart_x[rows]
        self._restart_shift = self._restart_shift[rows]

    def problem_state(self, field: str) -> torch.Tensor:
        values = getattr(self.st, field)
        return values if self._final is None else self._per_problem(values, self._final[field].clone())

    def _per_problem(self, values: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
        """One row per problem from the bucket's rows `values`: `outside` [B, ...] holds (and gets)
        the problems outside the bucket."""
        if values.shape[0] == self.problems:
            return values
        return outside.index_put_((self.ids,), values)

"""Random BatchStates that exercise every branch of the three steps, for comparing each
fused backend with the torch reference (tests/test_kernels_*.py)."""

from __future__ import annotations

import dataclasses

import torch

from intriguing_fast.engine.state import BatchState, LBFGSBOptions
from intriguing_fast.engine.status import Status

OPTIONS = LBFGSBOptions(history=4, max_iter=30, max_fun=40, max_ls=3, gtol=1e-5, ftol=1e-9)


def random_state(
    R: int,
    n: int,
    m: int,
    dtype: torch.dtype,
    *,
    seed: int = 0,
    fixed: str = "mixed",
    history_dtype: torch.dtype | None = None,
    shared_bounds: bool = False,
) -> BatchState:
    """R problems of n variables with ring buffers of m pairs: hist_len from 0 to m, heads
    that wrap. fixed = "mixed" (some variables held at bounds), "none" or "all"; with
    shared_bounds, one row of bounds ([1, n]) for all problems."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=gen, dtype=torch.float64)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    lower, upper = -rand(R, n) - 0.1, rand(R, n) + 0.1
    lower[rand(R, n) < 0.1] = -float("inf")
    upper[rand(R, n) < 0.1] = float("inf")
    boxed = slice(0, 5)  # every bound finite: rows 3 and 4 make a first step in a box (below)
    lower[boxed], upper[boxed] = lower[boxed].clamp_min(-1.1), upper[boxed].clamp_max(1.1)
    if shared_bounds:
        lower, upper = lower[:1], upper[:1]
    x = lower.clamp_min(-1) + (upper.clamp_max(1) - lower.clamp_min(-1)) * rand(R, n)
    g = randn(R, n)
    if fixed == "mixed":
        at_lo, at_hi = rand(R, n) < 0.2, rand(R, n) < 0.2
        x = torch.where(at_lo & lower.isfinite(), lower, torch.where(at_hi & upper.isfinite(), upper, x))
    elif fixed == "all":  # every variable at a finite bound, its gradient pushing outward
        lower, upper = lower.clamp_min(-1), upper.clamp_max(1)
        at_lo = rand(R, n) < 0.5
        x = torch.where(at_lo, lower, upper)
        g = torch.where(at_lo, g.abs() + 0.1, -g.abs() - 0.1)
    cast = dict(dtype=dtype)
    st = BatchState.start(
        x.to(**cast), (x * x).sum(1).to(**cast), g.to(**cast), lower.to(**cast), upper.to(**cast), m, history_dtype
    )
    # A partly filled, wrapped history of pairs with s.y > 0 (y = D s + noise).
    s = 0.3 * randn(R, m, n)
    y = s * (0.5 + rand(R, m, n)) + 0.01 * randn(R, m, n)
    st.S.copy_(s)
    st.Y.copy_(y)
    s, y = st.S.double(), st.Y.double()
    sy = (s * y).sum(-1)
    st.hist_len.copy_(torch.randint(0, m + 1, (R,), generator=gen))
    st.hist_len[:3] = torch.tensor([0, m, m - 1])[: min(R, 3)]
    st.head.copy_(torch.randint(0, m, (R,), generator=gen))
    newest = (st.head - 1) % m
    ar = torch.arange(R)
    st.gamma.copy_(sy[ar, newest] / (y[ar, newest] ** 2).sum(-1))
    # A line search in progress: direction, step, trial point.
    st.d.copy_(randn(R, n))
    st.gd.copy_(-rand(R) - 0.1)
    st.t.copy_(rand(R) + 0.1)
    st.ls_iter.copy_(torch.randint(0, OPTIONS.max_ls, (R,), generator=gen))
    st.ls_iter[rand(R) < 0.3] = OPTIONS.max_ls - 1  # a rejection exhausts these searches
    st.nit.copy_(torch.randint(0, OPTIONS.max_iter, (R,), generator=gen))
    st.nit[rand(R) < 0.15] = OPTIONS.max_iter - 1
    st.nfev.copy_(st.nit + 1 + torch.randint(0, 3, (R,), generator=gen))
    st.nfev[rand(R) < 0.15] = OPTIONS.max_fun - 1
    st.need_dir.copy_(rand(R) < 0.5)
    # Two problems at their first step (no history), needing a direction, in a box with every
    # bound finite: the segment to P(x - g) with t = 1.
    first = slice(3, 5)
    st.nit[first], st.hist_len[first], st.ls_iter[first], st.need_dir[first] = 0, 0, 0, True
    st.status[rand(R) < 0.1] = Status.MAX_ITER  # stopped rows, which no step may touch
    # No pair with positive curvature (y = -s) and a stored scaling of -1 give H = -I, an ascent
    # direction: these rows must restart.
    ascent = slice(R // 2, R // 2 + 2)
    st.Y[ascent] = -st.S[ascent]
    st.gamma[ascent], st.hist_len[ascent] = -1.0, m
    st.need_dir[ascent], st.status[ascent] = True, Status.RUNNING
    # The running problems' trial points, compact (row i for problem rows[i]), and their slopes.
    rows = step_rows(st)
    xt = torch.clamp(st.x[rows] + st.t[rows, None] * st.d[rows], *st.bounds(rows))
    st.x_trial[: len(rows)] = xt
    st.slope[rows] = torch.linalg.vecdot(st.g[rows], xt - st.x[rows])
    return st


def trial_outcome(st: BatchState, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(f_t, g_t) at the compact trial points of the running problems, by position mod 9:
    accepted with a curvature update, accepted with s.y < 0, converged by gtol, converged by
    ftol (its slope set to 0), rejected, NaN f, inf gradient, a trial that did not move (its
    x_trial set to x), accepted with f still falling steeply along the path (the step lengthens)."""
    gen = torch.Generator().manual_seed(seed)
    rows = step_rows(st)
    k, n = len(rows), st.x.shape[1]
    kind = torch.arange(k) % 9
    still = (kind == 7).nonzero().squeeze(1)
    st.x_trial[still] = st.x[rows[still]]
    st.slope[rows[still]] = 0.0
    f, g, slope = st.f[rows], st.g[rows], st.slope[rows]
    s = st.x_trial[:k] - st.x[rows]
    f_t = torch.where((kind < 3) | (kind >= 7), f + 2 * OPTIONS.c1 * slope.clamp(max=0) - 1e-3, f + 1.0)
    g_t = g + s * (0.5 + torch.rand(k, n, generator=gen, dtype=torch.float64)).to(st.x.dtype)
    g_t[kind == 1] = (g - s)[kind == 1]
    g_t[kind == 2] = 0.0
    st.slope[rows[kind == 3]] = 0.0
    f_t[kind == 3] = f[kind == 3]
    f_t[kind == 5] = float("nan")
    g_t[(kind == 6).nonzero().squeeze(1), 0] = float("inf")
    steep = (kind == 8).nonzero().squeeze(1)
    g_t[steep] = -st.d[rows[steep]]
    st.gd[rows[steep]] = -1e-3  # the search's initial slope, far above the slope along the path
    return f_t, g_t


def clone_state(st: BatchState) -> BatchState:
    return BatchState(**{f.name: getattr(st, f.name).clone() for f in dataclasses.fields(st)})


def assert_states_match(got: BatchState, want: BatchState) -> None:
    """Integer and boolean fields equal; floating fields within the dtype's tolerance."""
    tol = dict(rtol=1e-4, atol=1e-5) if got.x.dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    for f in dataclasses.fields(got):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if a.is_floating_point():
            torch.testing.assert_close(a.double(), b.double(), equal_nan=True, **tol, msg=lambda m: f"{f.name}: {m}")
        else:
            assert torch.equal(a, b), f"{f.name}: {a} != {b}"


def step_rows(st: BatchState) -> torch.Tensor:
    """The running problems, as the engine lists them for a step."""
    return (st.status == Status.RUNNING).nonzero().squeeze(1)


def every_row(st: BatchState, f_t: torch.Tensor, g_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The step's inputs as fixed-shape rounds give them: every problem's trial point in its own
    row of x_trial (a stopped one's at x), and (f_t, g_t) for every problem (a stopped one's at x)."""
    rows = step_rows(st)
    x_trial = st.x.clone()
    x_trial[rows] = st.x_trial[: len(rows)]
    st.x_trial.copy_(x_trial)
    f_all, g_all = st.f.clone(), st.g.clone()
    f_all[rows], g_all[rows] = f_t, g_t
    return f_all, g_all


def run_step(kernels, step: str, st: BatchState, rows: torch.Tensor, f_t: torch.Tensor, g_t: torch.Tensor) -> None:
    """One step ("direction", "trial" or "accept") of `kernels` on problems `rows` of st, on st's device."""
    device = st.x.device
    if step == "accept":
        kernels.accept(st, rows.to(device), f_t.to(device), g_t.to(device), OPTIONS)
    else:
        getattr(kernels, step)(st, rows.to(device))

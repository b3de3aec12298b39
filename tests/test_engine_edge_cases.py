"""Degenerate problems: fixed variables, everything active, no bounds, tiny shapes."""

import pytest
import torch

from intriguing_fast import Status, autograd_objective, minimize_lbfgsb


def separable_quadratic(center: torch.Tensor):
    """f(x) = 0.5 ||x - center||^2 row by row: the optimum is the projection of center."""

    def fun(x, index):
        r = x - center[index]
        return 0.5 * (r * r).sum(dim=1), r

    return fun


def test_an_objective_that_changes_its_index_in_place_changes_nothing(backend):
    """fun gets its own copy of the row indices: scribbling on it neither hangs the rounds nor
    reaches the solver's bookkeeping."""
    center = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    plain = separable_quadratic(center)

    def scribbling(x, index):
        out = plain(x, index)
        index.fill_(-1)
        return out

    args = (torch.zeros(6, 5, dtype=torch.float64), -1.0, 1.0)
    expected, got = (minimize_lbfgsb(f, *args, backend=backend) for f in (plain, scribbling))
    assert torch.equal(got.x, expected.x) and torch.equal(got.nfev, expected.nfev) and bool(got.success.all())


def test_lower_equal_upper_keeps_fixed_variables(backend):
    center = torch.full((3, 5), 2.0, dtype=torch.float64)
    lower = torch.full((3, 5), -1.0, dtype=torch.float64)
    upper = torch.full((3, 5), 1.0, dtype=torch.float64)
    lower[:, 1] = upper[:, 1] = 0.25
    res = minimize_lbfgsb(
        separable_quadratic(center), torch.zeros(3, 5, dtype=torch.float64), lower, upper, backend=backend
    )
    assert bool(res.success.all())
    assert (res.x[:, 1] == 0.25).all()
    torch.testing.assert_close(res.x[:, [0, 2, 3, 4]], torch.ones(3, 4, dtype=torch.float64))


def test_every_variable_active_at_the_optimum(backend):
    center = torch.tensor([[5.0, -5.0, 7.0]], dtype=torch.float64)
    res = minimize_lbfgsb(
        separable_quadratic(center), torch.zeros(1, 3, dtype=torch.float64), -1.0, 1.0, backend=backend
    )
    assert res.status[0] == Status.CONVERGED_GTOL
    assert res.x.tolist() == [[1.0, -1.0, 1.0]]
    assert res.pg_norm[0] == 0


def test_no_bounds_is_plain_lbfgs(backend):
    center = torch.randn(4, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    res = minimize_lbfgsb(separable_quadratic(center), torch.zeros(4, 30, dtype=torch.float64), backend=backend)
    assert bool(res.success.all())
    torch.testing.assert_close(res.x, center, atol=1e-6, rtol=0)


def test_zero_gradient_at_a_bound_converges_at_iteration_zero(backend):
    # x0 sits on the lower bound where the minimum is: the projected gradient is 0.
    center = torch.zeros(2, 4, dtype=torch.float64)
    res = minimize_lbfgsb(
        separable_quadratic(center), torch.zeros(2, 4, dtype=torch.float64), 0.0, 1.0, backend=backend
    )
    assert res.status.tolist() == [Status.CONVERGED_GTOL] * 2
    assert res.nit.tolist() == [0, 0] and res.nfev.tolist() == [1, 1]


def test_batch_where_every_problem_converges_at_iteration_zero(backend):
    center = torch.rand(16, 7, dtype=torch.float64)
    calls = []

    def fun(x, index):
        calls.append(index.clone())
        return separable_quadratic(center)(x, index)

    res = minimize_lbfgsb(fun, center.clone(), backend=backend)
    assert len(calls) == 1 and bool((res.status == Status.CONVERGED_GTOL).all())
    assert torch.equal(res.x, center)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_single_problem_single_variable(backend, dtype):
    fun = autograd_objective(lambda x, i: ((x - 3.0) ** 2).sum(dim=1) + torch.cos(x).sum(dim=1))
    res = minimize_lbfgsb(fun, torch.zeros(1, 1, dtype=dtype), -10.0, 10.0, backend=backend)
    assert res.x.shape == (1, 1) and res.x.dtype == dtype
    # f'(x) = 2(x - 3) - sin(x) = 0 near x = 3.07
    assert abs(2 * (res.x.item() - 3) - torch.sin(res.x).item()) < 1e-4
    assert bool(res.success.all())


def test_start_outside_the_box_is_projected(backend):
    center = torch.zeros(1, 3, dtype=torch.float64)
    calls = []

    def fun(x, index):
        calls.append(x.clone())
        return separable_quadratic(center)(x, index)

    res = minimize_lbfgsb(fun, torch.tensor([[5.0, -5.0, 0.5]], dtype=torch.float64), 0.0, 1.0, backend=backend)
    assert calls[0].tolist() == [[1.0, 0.0, 0.5]]
    torch.testing.assert_close(res.x, center)


def test_max_iter_zero_and_limits(backend):
    center = torch.ones(3, 10, dtype=torch.float64)
    x0 = torch.zeros(3, 10, dtype=torch.float64)
    res = minimize_lbfgsb(separable_quadratic(center), x0, max_iter=0, backend=backend)
    assert res.status.tolist() == [Status.MAX_ITER] * 3 and torch.equal(res.x, x0)
    rosen = autograd_objective(lambda x, i: (100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2).sum(1))
    x0 = torch.full((2, 6), -1.2, dtype=torch.float64)
    res = minimize_lbfgsb(rosen, x0, max_iter=3, backend=backend)
    assert res.status.tolist() == [Status.MAX_ITER] * 2 and res.nit.tolist() == [3, 3]
    res = minimize_lbfgsb(rosen, x0, max_fun=5, backend=backend)
    assert res.status.tolist() == [Status.MAX_FUN] * 2 and res.nfev.tolist() == [5, 5]


def test_nonfinite_trials_shorten_the_step_and_stay_alone(backend):
    """A trial where f or its gradient is not finite is a rejected step that halves the step, not
    the end of the problem: a problem whose domain ends inside the box stops at a finite point
    near that edge; one that is finite nowhere but at its start ends NONFINITE; the others are
    untouched."""
    center = torch.full((5, 6), 0.5, dtype=torch.float64)

    def fun(x, index):
        f, g = separable_quadratic(center)(x, index)
        f = torch.where((index == 1) & (x[:, 0] > 0.2), float("nan"), f)  # problem 1: NaN beyond 0.2
        g = torch.where((index == 2)[:, None] & (x[:, :1] > 0.1), float("inf"), g)  # problem 2: inf gradient
        f = torch.where((index == 3) & (x.abs().sum(1) > 0), float("nan"), f)  # problem 3: finite only at x0
        return f, g

    res = minimize_lbfgsb(fun, torch.zeros(5, 6, dtype=torch.float64), 0.0, 1.0, max_ls=20, backend=backend)
    assert bool(torch.isfinite(res.x).all() & torch.isfinite(res.fun).all())
    assert 0.19 < res.x[1, 0] <= 0.2 and 0.09 < res.x[2, 0] <= 0.1
    assert res.status[3] == Status.NONFINITE and res.nfev[3] == 21 and bool((res.x[3] == 0).all())
    assert bool(res.success[[0, 4]].all())
    torch.testing.assert_close(res.x[[0, 4]], center[[0, 4]])


def test_nonfinite_at_the_start():
    def fun(x, index):
        return torch.where(index == 0, float("nan"), (x * x).sum(1)), 2 * x

    res = minimize_lbfgsb(fun, torch.ones(2, 3, dtype=torch.float64))
    assert res.status.tolist() == [Status.NONFINITE, Status.CONVERGED_GTOL]
    assert res.message[0].startswith("ABNORMAL")


def test_result_repr_and_messages():
    res = minimize_lbfgsb(separable_quadratic(torch.ones(2, 3)), torch.zeros(2, 3))
    assert "CONVERGED" in repr(res) and "B=2" in repr(res)
    assert all(m.startswith("CONVERGENCE") for m in res.message)


@pytest.mark.parametrize("form", ["scalar", "vector", "row", "mixed"])
def test_bounds_shared_by_all_problems_match_dense_bounds(backend, form):
    """Bounds without a batch extent are stored once ([1, n]) and read by every problem: the
    result is bit-identical to the same bounds repeated for each problem."""
    gen = torch.Generator().manual_seed(1)
    center = 2 * torch.randn(6, 9, dtype=torch.float64, generator=gen)
    lo_row, hi_row = (
        -torch.rand(9, dtype=torch.float64, generator=gen),
        torch.rand(9, dtype=torch.float64, generator=gen),
    )
    if form == "scalar":
        lo_row, hi_row = torch.full_like(lo_row, -0.5), torch.full_like(hi_row, 0.5)
    shared = {
        "scalar": (-0.5, 0.5),
        "vector": (lo_row, hi_row),
        "row": (lo_row[None], hi_row[None]),
        "mixed": (lo_row, hi_row.expand(6, 9).clone()),
    }[form]
    x0 = torch.zeros(6, 9, dtype=torch.float64)
    fun = separable_quadratic(center)
    want = minimize_lbfgsb(fun, x0, lo_row.expand(6, 9).clone(), hi_row.expand(6, 9).clone(), backend=backend)
    got = minimize_lbfgsb(fun, x0, *shared, backend=backend)
    assert torch.equal(got.x, want.x) and torch.equal(got.nit, want.nit) and torch.equal(got.status, want.status)

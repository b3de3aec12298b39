"""The engine against scipy.optimize.minimize(method="L-BFGS-B"), problem by problem."""

import numpy as np
import pytest
import scipy.optimize
import torch

from intriguing_fast import Status, minimize_lbfgsb
from intriguing_fast.engine.problems import convex_quadratic, rosenbrock, softmax_attack


def scipy_solve(problem, b: int) -> scipy.optimize.OptimizeResult:
    lo = problem.lower[b].double().numpy()
    hi = problem.upper[b].double().numpy()
    bounds = list(zip(np.where(np.isinf(lo), None, lo), np.where(np.isinf(hi), None, hi)))
    x0 = np.clip(problem.x0[b].double().numpy(), lo, hi)
    return scipy.optimize.minimize(
        problem.numpy_fun(b), x0, jac=True, method="L-BFGS-B", bounds=bounds, options=dict(maxiter=15000, maxfun=15000)
    )


def assert_feasible(res, problem):
    assert (res.x >= problem.lower).all() and (res.x <= problem.upper).all()


def scipy_pg_norm(problem, b: int, x: np.ndarray) -> float:
    """Infinity norm of scipy's projected gradient at its solution."""
    _, g = problem.numpy_fun(b)(x)
    lo, hi = problem.lower[b].double().numpy(), problem.upper[b].double().numpy()
    return float(np.abs(np.clip(x - g, lo, hi) - x).max())


def assert_stationary_like_scipy(ours: float, problem, b: int, ref, factor: float) -> None:
    """Our projected-gradient norm is within `factor` of scipy's (or of gtol)."""
    assert ours <= factor * max(scipy_pg_norm(problem, b, ref.x), 1e-5), (b, ours)


@pytest.mark.parametrize("n", [2, 10, 100, 784])
def test_convex_quadratic_matches_scipy(backend, n):
    B = 6 if n == 784 else 16
    problem = convex_quadratic(B, n, seed=n)
    res = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper, backend=backend)
    assert_feasible(res, problem)
    assert bool(res.success.all()), res.message
    active = ((res.x == problem.lower) | (res.x == problem.upper)).sum()
    assert active > 0, "the test problems are meant to have active bounds at the optimum"
    for b in range(B):
        ref = scipy_solve(problem, b)
        # Our objective is never worse than scipy's by more than 1e-6 relative.
        assert res.fun[b].item() <= ref.fun + 1e-6 * abs(ref.fun), (b, res.fun[b].item(), ref.fun)
        assert abs(res.fun[b].item() - ref.fun) <= 1e-6 * abs(ref.fun)
        # Both stop by ftol on one step's small gain, where the projected gradient of two correct
        # solvers differs by up to two orders of magnitude (70x on one of these problems).
        assert_stationary_like_scipy(res.pg_norm[b].item(), problem, b, ref, factor=100)


def test_bounded_rosenbrock_matches_scipy(backend):
    problem = rosenbrock(8, 6, seed=1)
    res = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper, backend=backend)
    assert_feasible(res, problem)
    assert bool(res.success.all()), res.message
    for b in range(8):
        ref = scipy_solve(problem, b)
        assert res.fun[b].item() == pytest.approx(ref.fun, rel=1e-5, abs=1e-8)
        assert_stationary_like_scipy(res.pg_norm[b].item(), problem, b, ref, factor=100)


@pytest.mark.parametrize("dtype,rel", [(torch.float64, 1e-6), (torch.float32, 1e-4)])
def test_softmax_attack_objective_matches_scipy(backend, dtype, rel):
    problem = softmax_attack(8, 784, c=0.05, seed=2, dtype=dtype)
    res = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper, backend=backend)
    assert res.x.dtype == dtype
    assert_feasible(res, problem)
    if dtype == torch.float64:
        assert bool(res.success.all()), res.message
    else:  # in float32 a search may end at the rounding floor, as scipy's ABNORMAL_TERMINATION
        assert bool((res.success | (res.status == Status.LINE_SEARCH_FAILED)).all()), res.message
    for b in range(8):
        ref = scipy_solve(problem, b)
        assert res.fun[b].item() == pytest.approx(ref.fun, rel=rel)
        assert_stationary_like_scipy(
            res.pg_norm[b].item(), problem, b, ref, factor=10 if dtype == torch.float64 else 1e3
        )


def test_each_problem_reads_as_scipys_optimize_result():
    """res[i] is scipy's OptimizeResult for problem i: scipy's keys, status codes and messages."""
    problem = convex_quadratic(4, 10, seed=3)
    res = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper)
    assert res.jac is res.grad and len(res) == 4
    for b in range(4):
        ours, ref = res[b], scipy_solve(problem, b)
        assert isinstance(ours, scipy.optimize.OptimizeResult)
        assert set(ref) - {"hess_inv"} <= set(ours)
        assert ours.status == ref.status == 0 and ours.success and ours.engine_status == res.status[b]
        if ours.engine_status == Status.CONVERGED_GTOL:  # scipy's text for the same outcome
            assert ours.message == "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"
        np.testing.assert_allclose(ours.x, ref.x, atol=1e-4)
        np.testing.assert_array_equal(ours.jac, res.grad[b].numpy())
        assert ours.fun == float(res.fun[b]) and ours.nit == int(res.nit[b])
    # A limit reached: scipy's status 1 and its message.
    capped = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper, max_iter=1)
    ref = scipy.optimize.minimize(
        problem.numpy_fun(0), problem.x0[0].numpy(), jac=True, method="L-BFGS-B", options=dict(maxiter=1)
    )
    assert capped[0].status == ref.status == 1 and capped[0].message == ref.message
    assert res[-1].x.tolist() == res.x[3].tolist()
    with pytest.raises(IndexError, match=r"i: expected a problem index in \[-4, 3\], got 4"):
        res[4]


def test_a_one_argument_fun_is_named_not_a_raw_type_error():
    problem = convex_quadratic(2, 3)
    with pytest.raises(TypeError, match=r"fun: expected fun\(x, index\).*signature \(x\).*wrap it"):
        minimize_lbfgsb(lambda x: ((x * x).sum(1), 2 * x), problem.x0)

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
    return scipy.optimize.minimize(problem.numpy_fun(b), x0, jac=True, method="L-BFGS-B", bounds=bounds,
                                   options=dict(maxiter=15000, maxfun=15000))


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
        assert_stationary_like_scipy(res.pg_norm[b].item(), problem, b, ref, factor=10 if dtype == torch.float64 else 1e3)

"""A 1-D x0 is one problem: solved as [1, n] and returned as scipy's L-BFGS-B returns it."""

import numpy as np
import pytest
import torch
from scipy.optimize import OptimizeResult, minimize

from intriguing_fast import minimize_lbfgsb

TIGHT = dict(gtol=1e-10, ftol=1e-14)  # both solvers run to the minimiser, not to where a loose test stops them


def rosenbrock(x, index):
    """Batched: x [k, n] -> (f [k], grad [k, n])."""
    a, b = x[:, :-1], x[:, 1:]
    f = ((1 - a) ** 2 + 100 * (b - a * a) ** 2).sum(1)
    g = torch.zeros_like(x)
    g[:, :-1] += -2 * (1 - a) - 400 * a * (b - a * a)
    g[:, 1:] += 200 * (b - a * a)
    return f, g


def quadratic(x, index):
    """Batched 0.5 (x - c)' D (x - c): its minimiser in the box sits on bounds for some variables."""
    c = torch.linspace(-3.0, 3.0, x.shape[1], dtype=x.dtype)
    d = torch.linspace(1.0, 10.0, x.shape[1], dtype=x.dtype)
    return 0.5 * (d * (x - c) ** 2).sum(1), d * (x - c)


def scipy_solve(fun, x0, lower, upper):
    def one(x):
        f, g = fun(torch.from_numpy(x)[None], torch.zeros(1, dtype=torch.long))
        return float(f[0]), g[0].numpy()

    bounds = list(zip(lower.numpy(), upper.numpy()))
    return minimize(
        one,
        x0.numpy(),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options=dict(gtol=TIGHT["gtol"], ftol=TIGHT["ftol"], maxls=20),
    )


@pytest.mark.parametrize("fun,n,low,high", [(rosenbrock, 6, -2.0, 0.8), (quadratic, 7, -1.0, 2.0)])
def test_one_problem_matches_scipy(fun, n, low, high):
    x0 = torch.linspace(-1.0, 0.5, n, dtype=torch.float64)
    lower, upper = torch.full((n,), low, dtype=torch.float64), torch.full((n,), high, dtype=torch.float64)
    ours = minimize_lbfgsb(fun, x0, lower, upper, **TIGHT)
    theirs = scipy_solve(fun, x0, lower, upper)
    assert isinstance(ours, OptimizeResult)
    assert ours.x.shape == ours.jac.shape == (n,) and isinstance(ours.fun, float)
    assert isinstance(ours.nit, int) and isinstance(ours.nfev, int) and isinstance(ours.message, str)
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-5)
    assert abs(ours.fun - theirs.fun) <= 1e-8 * max(1.0, abs(theirs.fun))
    assert (ours.status, ours.success) == (theirs.status, theirs.success) == (0, True)


def test_one_problem_is_row_zero_of_the_batch():
    """The same solve as a one-row batch, and scalar bounds work as for a batch."""
    x0 = torch.linspace(-1.0, 0.5, 5, dtype=torch.float64)
    one = minimize_lbfgsb(quadratic, x0, -1.0, 2.0)
    batch = minimize_lbfgsb(quadratic, x0[None], -1.0, 2.0)[0]
    assert np.array_equal(one.x, batch.x) and (one.fun, one.nit, one.nfev, one.status) == (
        batch.fun,
        batch.nit,
        batch.nfev,
        batch.status,
    )


def test_one_problem_fun_sees_batches():
    seen = []

    def fun(x, index):
        seen.append((tuple(x.shape), index.tolist()))
        return quadratic(x, index)

    minimize_lbfgsb(fun, torch.zeros(3, dtype=torch.float64), max_iter=2)
    assert seen and all(s == ((1, 3), [0]) for s in seen)


@pytest.mark.parametrize("x0", [torch.tensor(0.5, dtype=torch.float64), torch.zeros(2, 3, 4, dtype=torch.float64)])
def test_other_dimensions_are_refused(x0):
    with pytest.raises(ValueError, match=r"x0: expected a 2-D tensor \[B, n\].* or a 1-D tensor \[n\].*got shape"):
        minimize_lbfgsb(quadratic, x0)


def test_one_argument_fun_is_refused_for_one_problem_too():
    with pytest.raises(TypeError, match=r"fun: expected fun\(x, index\).*one-argument"):
        minimize_lbfgsb(lambda x: ((x * x).sum(), 2 * x), torch.zeros(3, dtype=torch.float64))

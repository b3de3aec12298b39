"""Invariants of the engine, checked with hypothesis on random box-constrained problems."""

import pytest
import torch
from conftest import CPU_BACKENDS
from hypothesis import given, settings
from hypothesis import strategies as st

from intriguing_fast import minimize_lbfgsb
from intriguing_fast.engine.problems import convex_quadratic, rosenbrock, softmax_attack

BUILDERS = {
    "quadratic": lambda B, n, seed: convex_quadratic(B, n, seed=seed),
    "rosenbrock": lambda B, n, seed: rosenbrock(B, n + 1, seed=seed),
    "softmax": lambda B, n, seed: softmax_attack(B, n, classes=3, c=0.05, seed=seed),
}
problems = st.tuples(st.sampled_from(sorted(BUILDERS)), st.integers(1, 6), st.integers(1, 12), st.integers(0, 10_000))
SETTINGS = settings(max_examples=15, deadline=None)


def recorded(fun, log):
    """fun that logs every (index, x, f) it is asked for."""

    def wrapped(x, index):
        f, g = fun(x, index)
        log.append((index.clone(), x.clone(), f.clone()))
        return f, g

    return wrapped


@SETTINGS
@given(problems, st.sampled_from(CPU_BACKENDS))
def test_every_evaluated_point_lies_in_the_box(spec, backend):
    name, B, n, seed = spec
    p = BUILDERS[name](B, n, seed)
    log = []
    res = minimize_lbfgsb(recorded(p.fun, log), p.x0, p.lower, p.upper, backend=backend, max_iter=60)
    for index, x, _ in log:
        assert (x >= p.lower[index]).all() and (x <= p.upper[index]).all()
    assert (res.x >= p.lower).all() and (res.x <= p.upper).all()


@SETTINGS
@given(problems, st.sampled_from(CPU_BACKENDS))
def test_objective_never_increases(spec, backend):
    """Stopping after k iterations gives a non-increasing sequence of objectives.

    (Up to 1e-12 relative: the runs evaluate different sub-batches, and a matrix product's
    rounding depends on its batch size.)"""
    name, B, n, seed = spec
    p = BUILDERS[name](B, n, seed)
    previous = p.fun(torch.clamp(p.x0, p.lower, p.upper), torch.arange(B))[0]
    for k in range(1, 12):
        res = minimize_lbfgsb(p.fun, p.x0, p.lower, p.upper, backend=backend, max_iter=k)
        assert (res.fun <= previous + 1e-12 * previous.abs().clamp_min(1)).all()
        previous = res.fun


@SETTINGS
@given(problems, st.sampled_from(CPU_BACKENDS))
def test_stopped_problems_are_never_evaluated_again(spec, backend):
    name, B, n, seed = spec
    p = BUILDERS[name](B, n, seed)
    log = []
    res = minimize_lbfgsb(recorded(p.fun, log), p.x0, p.lower, p.upper, backend=backend, max_iter=40)
    counts = torch.zeros(B, dtype=torch.int64)
    for index, _x, _f in log:
        counts[index] += 1
    assert torch.equal(counts, res.nfev)
    # The returned point is the last accepted one: an evaluated point with the returned value.
    for b in range(B):
        seen = [(x[i], f[i]) for index, x, f in log for i in range(len(index)) if index[i] == b]
        assert any(torch.equal(x, res.x[b]) and f == res.fun[b] for x, f in seen)


@SETTINGS
@given(problems, st.sampled_from(CPU_BACKENDS), st.data())
def test_result_does_not_depend_on_batch_mates(spec, backend, data):
    name, B, n, seed = spec
    p = BUILDERS[name](B, n, seed)
    batch = minimize_lbfgsb(p.fun, p.x0, p.lower, p.upper, backend=backend, max_iter=50)
    b = data.draw(st.integers(0, B - 1))
    sub = torch.tensor([b])
    alone = minimize_lbfgsb(
        lambda x, i: p.fun(x, sub[i]), p.x0[sub], p.lower[sub], p.upper[sub], backend=backend, max_iter=50
    )
    assert alone.nit[0] == batch.nit[b] and alone.status[0] == batch.status[b]
    torch.testing.assert_close(alone.x[0], batch.x[b], rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_alone_equals_in_a_batch_of_4096(backend, dtype):
    """Row-wise objectives with very different difficulty: problem 7 alone and among 4096."""
    B, n = 4096, 16
    gen = torch.Generator().manual_seed(3)
    scale = 10.0 ** (3 * torch.rand(B, n, generator=gen, dtype=torch.float64) - 1)
    center = 2 * torch.rand(B, n, generator=gen, dtype=torch.float64) - 0.5
    scale, center = scale.to(dtype), center.to(dtype)

    def fun(x, index):
        r = x - center[index]
        w = scale[index]
        return (w * r * r + 0.1 * r.pow(4)).sum(dim=1), 2 * w * r + 0.4 * r.pow(3)

    x0 = torch.zeros(B, n, dtype=dtype)
    batch = minimize_lbfgsb(fun, x0, 0.0, 1.0, backend=backend)
    for b in (7, 1234, 4095):
        sub = torch.tensor([b])
        alone = minimize_lbfgsb(lambda x, i: fun(x, sub[i]), x0[sub], 0.0, 1.0, backend=backend)
        assert alone.nit[0] == batch.nit[b] and alone.nfev[0] == batch.nfev[b]
        assert torch.equal(alone.x[0], batch.x[b])

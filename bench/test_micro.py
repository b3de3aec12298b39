"""Micro-benchmarks of what users call (issue 17), through pytest-benchmark:

    python -m pytest bench/ --benchmark-only      # the timings (under a minute)
    python -m pytest bench/ --benchmark-disable   # each body once, as a check (tests/test_bench_smoke.py)

One torch thread (the native core follows it), as in the tests, so the figures compare across runs
and machines and a loaded machine's thread pool does not spin. Each benchmark checks its result.
"""

from __future__ import annotations

import copy

import pytest
import torch
from pytest_benchmark.fixture import BenchmarkFixture

from intriguing_fast import AttackResult, LBFGSBResult, lbfgs_attack, minimize_lbfgsb, random_targets
from intriguing_fast.analysis import layer_bounds
from intriguing_fast.engine.backends import (
    BatchState,
    Kernels,
    LBFGSBOptions,
    Status,
    native_available,
    resolve_backend,
)
from intriguing_fast.engine.problems import convex_quadratic, softmax_attack
from intriguing_fast.engine.solver import BatchSolver
from intriguing_fast.models import MLP

torch.set_num_threads(1)

B, N, M = 256, 784, 10  # engine round: problems, variables, history pairs
NO_NATIVE = pytest.mark.skipif(not native_available(), reason="no native extension")
BACKENDS = ["torch", pytest.param("cpp", marks=NO_NATIVE)]


class MidSolve:
    """A float32 state mid-solve, histories full: the paper's attack objective on softmax regression
    (engine/problems.py) after 15 rounds; the rows still running, f and g at their next trial points
    (what one round hands the kernels), and the state after that round by the torch reference."""

    def __init__(self) -> None:
        problem = softmax_attack(B, N, dtype=torch.float32)
        self.options = LBFGSBOptions(history=M, backend="torch")
        solver = BatchSolver(problem.fun, problem.x0, problem.lower, problem.upper, self.options)
        for _ in range(15):
            solver.round()
        self.state = solver.st
        self.rows = (self.state.status == Status.RUNNING).nonzero().squeeze(1)
        reference = resolve_backend("torch", self.state.x.device)
        probe = copy.deepcopy(self.state)
        reference.propose(probe, self.rows)
        self.f_t, self.g_t = problem.fun(probe.x_trial[: len(self.rows)], self.rows)
        self.after = self.round(reference, copy.deepcopy(self.state))

    def round(self, kernels: Kernels, state: BatchState) -> BatchState:
        """The engine's own work in one round (fun excluded): propose, then accept."""
        kernels.propose(state, self.rows)
        kernels.accept(state, self.rows, self.f_t, self.g_t, self.options)
        return state


@pytest.fixture(scope="module")
def mid_solve() -> MidSolve:
    return MidSolve()


@pytest.mark.benchmark(group="engine round, B=256 n=784 m=10 float32")
@pytest.mark.parametrize("backend", BACKENDS)
def test_engine_round(benchmark: BenchmarkFixture, backend: str, mid_solve: MidSolve) -> None:
    """propose + accept on 256 problems mid-solve; each round starts from a fresh copy of the state
    (copied outside the timing). The outcome must be the torch reference's, and the round must move."""
    kernels = resolve_backend(backend, mid_solve.state.x.device)
    after = benchmark.pedantic(
        mid_solve.round, setup=lambda: ((kernels, copy.deepcopy(mid_solve.state)), {}), rounds=50, warmup_rounds=2
    )
    ref, rows = mid_solve.after, mid_solve.rows
    assert (ref.nit[rows] > mid_solve.state.nit[rows]).sum() > len(rows) // 2  # most trials accepted
    assert torch.equal(after.nit, ref.nit) and torch.equal(after.status, ref.status)
    torch.testing.assert_close(after.x, ref.x, rtol=0, atol=1e-5)


@pytest.mark.benchmark(group="solve")
def test_minimize_quadratics(benchmark: BenchmarkFixture) -> None:
    """minimize_lbfgsb end to end on 64 box-constrained convex quadratics (n = 100, float64, many
    bounds active at the optimum): every problem must converge."""
    problem = convex_quadratic(64, 100)
    args = (problem.fun, problem.x0, problem.lower, problem.upper)
    res: LBFGSBResult = benchmark.pedantic(minimize_lbfgsb, args=args, rounds=10, warmup_rounds=1)
    assert res.success.all(), res


@pytest.mark.benchmark(group="attack")
def test_lbfgs_attack(benchmark: BenchmarkFixture) -> None:
    """lbfgs_attack with its defaults on 64 MNIST-sized images (torch.rand, seeded) against a fixed
    random-weight 784-100-10 sigmoid MLP, random targets: every image must reach its target."""
    torch.manual_seed(0)
    model = MLP((784, 100, 10)).eval()
    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        targets = random_targets(model(images).argmax(1), 10, seed=0)
    res: AttackResult = benchmark.pedantic(
        lbfgs_attack, args=(model, images, targets), kwargs={"progress": False}, rounds=5, warmup_rounds=1
    )
    assert res.success.all() and torch.equal(res.predicted, targets)


@pytest.mark.benchmark(group="spectral")
def test_conv_layer_bound(benchmark: BenchmarkFixture) -> None:
    """The Sec. 4.3 bound of a 16 -> 32 channel 5x5 convolution on 28x28 inputs (layer_bounds: the
    Fourier bound and the exact norm by power iteration): the bound must hold."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 32, 5, padding=2)
    [bound] = benchmark.pedantic(layer_bounds, args=([("conv", conv)], (16, 28, 28)), rounds=5, warmup_rounds=1)
    assert bound.converged and bound.exact <= bound.bound * (1 + 1e-6)

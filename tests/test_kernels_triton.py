"""The Triton steps against the torch reference. Without a GPU they run on CPU tensors in
Triton's interpreter (TRITON_INTERPRET=1, set here before triton is imported), so shapes
stay small; with CUDA they run compiled on the GPU."""

import importlib.util
import os
import sys

import pytest
import torch

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
    if "triton" in sys.modules:  # its language functions were built for compilation, not interpretation
        pytest.skip(
            "triton was imported before TRITON_INTERPRET=1 could be set: run with TRITON_INTERPRET=1",
            allow_module_level=True,
        )
    os.environ["TRITON_INTERPRET"] = "1"

from kernel_cases import assert_states_match, clone_state, every_row, random_state, run_step, step_rows, trial_outcome  # noqa: E402

from intriguing_fast import minimize_lbfgsb  # noqa: E402
from intriguing_fast.engine.backends import TorchKernels  # noqa: E402
from intriguing_fast.engine.backends.triton_backend import TritonKernels  # noqa: E402
from intriguing_fast.engine.problems import softmax_attack  # noqa: E402
from intriguing_fast.engine.status import Status  # noqa: E402

# The inf-gradient case multiplies inf by 0 in NumPy, as it does on the GPU, without a warning there.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

# (n, kernels): one register-resident block; n = 37 over 16-wide chunks (odd tail, several chunks).
LAYOUTS = {"block": TritonKernels(), "chunked": TritonKernels(max_block=16, block_chunk=16)}


def to_device(st):
    for name, value in vars(st).items():
        setattr(st, name, value.to(DEVICE))
    return st


@pytest.mark.parametrize(
    "dtype,history_dtype", [(torch.float64, None), (torch.float32, None), (torch.float32, torch.bfloat16)]
)
@pytest.mark.parametrize(
    "n,fixed,shared", [(37, "mixed", False), (20, "all", False), (45, "none", False), (37, "mixed", True)]
)
@pytest.mark.parametrize("layout", ["block", "chunked"])
@pytest.mark.parametrize("step", ["direction", "trial", "accept"])
def test_step_matches_reference(step, layout, n, fixed, shared, dtype, history_dtype):
    st = random_state(14, n, 3, dtype, seed=n, fixed=fixed, history_dtype=history_dtype, shared_bounds=shared)
    f_t, g_t = trial_outcome(st)
    want, got = clone_state(st), to_device(clone_state(st))
    rows = step_rows(st)
    run_step(TorchKernels(), step, want, rows, f_t, g_t)
    run_step(LAYOUTS[layout], step, got, rows, f_t, g_t)
    assert_states_match(to_cpu(got), want)


def to_cpu(st):
    for name, value in vars(st).items():
        setattr(st, name, value.cpu())
    return st


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_engine_matches_reference(dtype):
    """A small batch solved end to end with the Triton backend, against the reference."""
    problem = softmax_attack(6, 40, c=0.05, seed=4, dtype=dtype)
    ref = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper, backend="torch", max_iter=6)
    p = [v.to(DEVICE) for v in (problem.x0, problem.lower, problem.upper)]

    def fun(x, index):
        f, g = problem.fun(x.cpu(), index.cpu())
        return f.to(DEVICE), g.to(DEVICE)

    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else {}
    for rounds in ("compact", "fixed"):  # fixed: every problem in every round, the stopped ones' programs return
        res = minimize_lbfgsb(fun, *p, backend="triton", max_iter=6, rounds=rounds, check_every=2)
        assert torch.equal(res.status.cpu(), ref.status) and torch.equal(res.nit.cpu(), ref.nit)
        assert torch.equal(res.nfev.cpu(), ref.nfev)
        torch.testing.assert_close(res.x.cpu(), ref.x, **tol)


@pytest.mark.parametrize("layout", ["block", "chunked"])
@pytest.mark.parametrize("step", ["direction", "trial", "accept"])
def test_step_over_every_row_leaves_stopped_problems(step, layout):
    """Fixed-shape rounds pass every problem: a stopped one's program returns at once (its trial
    point is x), and the running ones get what the reference gives them."""
    st = random_state(14, 37, 3, torch.float64, seed=5)
    f_t, g_t = every_row(st, *trial_outcome(st))
    every = torch.arange(14)
    want, got = clone_state(st), to_device(clone_state(st))
    assert (st.status != Status.RUNNING).any()
    run_step(TorchKernels(), step, want, every, f_t, g_t)
    run_step(LAYOUTS[layout], step, got, every, f_t, g_t)
    assert_states_match(to_cpu(got), want)

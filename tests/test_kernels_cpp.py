"""The fused C++ steps (csrc/) against the torch reference, step by step and end to end."""

import pytest
import torch
from kernel_cases import OPTIONS, assert_states_match, clone_state, random_state, step_rows, trial_outcome

from intriguing_fast import minimize_lbfgsb
from intriguing_fast.engine.backends import CppKernels, TorchKernels, native_available
from intriguing_fast.engine.problems import softmax_attack

pytestmark = pytest.mark.skipif(not native_available(), reason="the native extension intriguing_fast._C is not built")

CASES = [(torch.float64, None), (torch.float32, None), (torch.float32, torch.bfloat16), (torch.float64, torch.bfloat16)]


def run_step(step: str, kernels, st, f_t=None, g_t=None) -> None:
    rows = step_rows(st)
    if step == "direction":
        kernels.direction(st, rows)
    elif step == "trial":
        kernels.trial(st, rows)
    elif step == "propose":
        kernels.propose(st, rows)
    else:
        kernels.accept(st, rows, f_t, g_t, OPTIONS)


@pytest.mark.parametrize("dtype,history_dtype", CASES)
@pytest.mark.parametrize(
    "n,fixed,shared",
    [
        (1, "mixed", False),
        (37, "mixed", False),
        (300, "none", False),
        (64, "all", False),
        (37, "mixed", True),
        (64, "all", True),
    ],
)
@pytest.mark.parametrize("step", ["direction", "trial", "propose", "accept"])
def test_step_matches_reference(step, n, fixed, shared, dtype, history_dtype):
    st = random_state(24, n, 4, dtype, seed=n, fixed=fixed, history_dtype=history_dtype, shared_bounds=shared)
    f_t, g_t = trial_outcome(st)
    want, got = clone_state(st), clone_state(st)
    run_step(step, TorchKernels(), want, f_t, g_t)
    run_step(step, CppKernels(), got, f_t, g_t)
    assert_states_match(got, want)


def test_views_follow_a_replaced_field():
    """The kernels cache the state's NumPy views per state; a field replaced by a new tensor
    must be written, not the old one."""
    st = random_state(6, 16, 3, torch.float64)
    want, got = clone_state(st), clone_state(st)
    kernels = CppKernels()
    kernels.trial(got, step_rows(got))  # caches views of got's tensors
    got.x_trial, want.x_trial = torch.zeros_like(got.x_trial), torch.zeros_like(want.x_trial)
    kernels.trial(got, step_rows(got))
    TorchKernels().trial(want, step_rows(want))
    assert_states_match(got, want)


def test_rejects_a_state_it_cannot_write_in_place():
    st = random_state(4, 8, 2, torch.float64)
    st.x = st.x.t().contiguous().t()  # same values, column-major: no in-place view possible
    with pytest.raises(ValueError, match="state.x: must be C-contiguous"):
        CppKernels().trial(st, step_rows(st))
    st = random_state(4, 8, 2, torch.float64)
    st.t = st.t.float()
    with pytest.raises(ValueError, match="state.t: expected dtype float64"):
        CppKernels().trial(st, step_rows(st))


@pytest.mark.parametrize(
    "rows,match",
    [([0, 4], r"indices in \[0, 4\), got 4"), ([1, 1], "distinct indices"), ([-1], r"got -1 at position 0")],
)
@pytest.mark.parametrize("step", ["direction", "trial", "propose"])
def test_rejects_a_row_list_that_could_corrupt_memory(step, rows, match):
    st = random_state(4, 8, 2, torch.float64)
    with pytest.raises(ValueError, match=match):
        getattr(CppKernels(), step)(st, torch.tensor(rows))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_engine_matches_reference(dtype):
    problem = softmax_attack(12, 200, c=0.05, seed=3, dtype=dtype)
    ref = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper, backend="torch", max_iter=8)
    res = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper, backend="cpp", max_iter=8)
    assert torch.equal(res.status, ref.status) and torch.equal(res.nit, ref.nit) and torch.equal(res.nfev, ref.nfev)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else {}
    torch.testing.assert_close(res.x, ref.x, **tol)
    torch.testing.assert_close(res.fun, ref.fun, **tol)

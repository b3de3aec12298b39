"""Bad input gets an error that names the argument."""

import pytest
import torch

from intriguing_fast import autograd_objective, minimize_lbfgsb
from intriguing_fast.engine import LBFGSBOptions, StateMemoryError
from intriguing_fast.engine.__main__ import main as engine_main
from intriguing_fast.engine.backends import resolve_backend
from intriguing_fast.engine.solver import BatchSolver
from intriguing_fast.engine.validation import available_bytes
from intriguing_fast.errors import IntriguingFastError


def quad(x, index):
    return (x * x).sum(dim=1), 2 * x


X0 = torch.zeros(3, 4, dtype=torch.float64)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(x0=[[0.0]]), TypeError, "x0: expected a torch.Tensor"),
        (dict(x0=torch.zeros(3, 4, dtype=torch.int64)), TypeError, "x0: expected dtype float32 or float64"),
        (
            dict(x0=torch.zeros(1, 3, 4, dtype=torch.float64)),
            ValueError,
            r"x0: expected a 2-D tensor \[B, n\].*got shape",
        ),
        (dict(x0=torch.zeros(0, 4, dtype=torch.float64)), ValueError, "x0: expected a non-empty"),
        (dict(x0=torch.tensor([[0.0, float("nan")]], dtype=torch.float64)), ValueError, "x0: contains NaN"),
        (dict(x0=torch.tensor([[0.0, float("inf")]], dtype=torch.float64)), ValueError, "x0: contains NaN or inf"),
        (dict(lower=torch.zeros(5, dtype=torch.float64)), ValueError, "lower: shape"),
        (dict(upper=torch.ones(3, 4)), TypeError, "upper: expected dtype torch.float64"),
        (dict(lower=float("nan")), ValueError, "lower: is NaN"),
        (dict(upper=torch.full((3, 4), float("nan"), dtype=torch.float64)), ValueError, "upper: contains NaN"),
        (dict(lower="0"), TypeError, "lower: expected a float"),
        (dict(lower=1.0, upper=0.0), ValueError, "lower > upper"),
        (dict(lower=float("inf")), ValueError, "lower must not be \\+inf"),
        (dict(history=0), ValueError, "history: expected an int >= 1"),
        (dict(max_iter=-1), ValueError, "max_iter"),
        (dict(max_fun=1.5), ValueError, "max_fun"),
        (dict(gtol=-1.0), ValueError, "gtol"),
        (dict(ftol=float("nan")), ValueError, "ftol"),
        (dict(max_ls=0), ValueError, "max_ls"),
        (dict(c1=0.0), ValueError, r"c1: expected a float in \(0, 1\)"),
        (dict(c2=1e-5), ValueError, r"c2: expected a float in \(c1, 1\)"),
        (dict(c2=1.0), ValueError, r"c2: expected a float in \(c1, 1\)"),
        (dict(box_first_step=1), TypeError, "box_first_step: expected a bool"),
        (dict(backend="cuda"), ValueError, "backend: expected one of"),
        (
            dict(x0=X0.float(), lower=-1e300),
            ValueError,
            r"lower: -1e\+300 lies beyond the range of x0's dtype torch.float32",
        ),
        (dict(fun=3), TypeError, r"fun: expected a callable fun\(x, index\) -> \(f, grad\), got int"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = dict(fun=quad, x0=X0) | kwargs
    with pytest.raises(error, match=match):
        minimize_lbfgsb(**args)


@pytest.mark.parametrize(
    "fun,error,match",
    [
        (lambda x, i: (x * x).sum(1), TypeError, r"fun: expected a tuple \(f, grad\)"),
        (lambda x, i: ((x * x).sum(1, keepdim=True), 2 * x), ValueError, r"fun: returned f of shape \(3, 1\)"),
        (lambda x, i: ((x * x).sum(1), 2 * x[:, :2]), ValueError, r"fun: returned grad of shape \(3, 2\)"),
        (lambda x, i: ((x * x).sum(1).float(), 2 * x), TypeError, "fun: returned f of dtype torch.float32"),
        (lambda x, i: ((x * x).sum(1), (2 * x).numpy()), TypeError, "fun: returned grad of type ndarray"),
    ],
)
def test_bad_fun_output(fun, error, match):
    with pytest.raises(error, match=match):
        minimize_lbfgsb(fun, X0)


def test_device_checks():
    with pytest.raises(ValueError, match="x0: expected a tensor on a CPU or CUDA device"):
        minimize_lbfgsb(quad, torch.zeros(2, 2, device="meta"))
    with pytest.raises(ValueError, match="backend='cpp' runs on CPU tensors"):
        resolve_backend("cpp", torch.device("cuda"))


def test_autograd_objective_checks_its_function():
    with pytest.raises(ValueError, match=r"func: expected its output to be a tensor of shape \(3,\)"):
        minimize_lbfgsb(autograd_objective(lambda x, i: x.sum()), X0)
    with pytest.raises(ValueError, match=r"func: its output \(shape \(3,\)\) does not depend on x"):
        minimize_lbfgsb(autograd_objective(lambda x, i: torch.zeros(x.shape[0], dtype=x.dtype)), X0)
    weight = torch.ones(4, dtype=torch.float64, requires_grad=True)  # differentiable, but not in x
    with pytest.raises(ValueError, match=r"func: its output \(shape \(3,\)\) does not depend on x"):
        minimize_lbfgsb(autograd_objective(lambda x, i: (weight * weight).sum().expand(x.shape[0])), X0)
    with pytest.raises(ValueError, match=r"func: expected its output to be a tensor of shape \(3,\).*got tuple"):
        minimize_lbfgsb(autograd_objective(lambda x, i: ((x * x).sum(1), 2 * x)), X0)
    with pytest.raises(TypeError, match="func: expected its output in x's dtype torch.float64, got torch.float32"):
        minimize_lbfgsb(autograd_objective(lambda x, i: (x * x).sum(1).float()), X0)
    with pytest.raises(TypeError, match="func: expected a callable"):
        autograd_objective("x * x")


def test_state_larger_than_memory_is_refused_before_allocation():
    """history=10**12 would need ~200 TB: a clear error naming the options, not the OOM killer."""
    assert available_bytes(torch.device("cpu")) > 0
    for solve in (
        lambda: minimize_lbfgsb(quad, X0, history=10**12),
        lambda: BatchSolver(quad, X0, 0.0, 1.0, LBFGSBOptions(history=10**12)),
    ):
        with pytest.raises(
            StateMemoryError,
            match=r"history: the solver state of 3 problems x 4 variables with "
            r"history=1000000000000 needs 1.92e\+05 GB, but .* GB is available on cpu: lower history, "
            r"or solve fewer problems at once \(the batch size, 3\), or keep the pairs in bfloat16",
        ):
            solve()
    assert issubclass(StateMemoryError, MemoryError) and issubclass(StateMemoryError, IntriguingFastError)


def test_state_check_counts_the_history_dtype(monkeypatch):
    import intriguing_fast.engine.validation as validation

    monkeypatch.setattr(validation, "available_bytes", lambda device: 3 * 4 * (2 * 100 * 2 + 8 * 8))
    minimize_lbfgsb(quad, X0, history=100, history_dtype=torch.bfloat16, max_iter=1)  # fits exactly
    with pytest.raises(StateMemoryError, match="with history=100 needs"):
        minimize_lbfgsb(quad, X0, history=100)


@pytest.mark.parametrize("option", ["--batch", "--dim", "--check"])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_engine_command_line_refuses_sizes_below_one(option, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        engine_main([option, value])
    assert exit_info.value.code == 2
    assert f"error: {option}: expected an int >= 1, got {value}" in capsys.readouterr().err


def test_autograd_objective_gives_each_row_its_gradient():
    fun = autograd_objective(lambda x, i: (i[:, None] * x**3).sum(dim=1))
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    f, g = fun(x, torch.tensor([2, 5]))
    torch.testing.assert_close(f, torch.tensor([18.0, 455.0], dtype=torch.float64))
    torch.testing.assert_close(g, torch.tensor([[6.0, 24.0], [135.0, 240.0]], dtype=torch.float64))

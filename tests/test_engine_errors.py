"""Bad input gets an error that names the argument."""
import pytest
import torch

from intriguing_fast import autograd_objective, minimize_lbfgsb
from intriguing_fast.kernels import resolve_backend


def quad(x, index):
    return (x * x).sum(dim=1), 2 * x


X0 = torch.zeros(3, 4, dtype=torch.float64)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(x0=[[0.0]]), TypeError, "x0: expected a torch.Tensor"),
    (dict(x0=torch.zeros(3, 4, dtype=torch.int64)), TypeError, "x0: expected dtype float32 or float64"),
    (dict(x0=torch.zeros(4, dtype=torch.float64)), ValueError, r"x0: expected a non-empty 2-D tensor.*x0\[None\]"),
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
])
def test_bad_arguments(kwargs, error, match):
    args = dict(fun=quad, x0=X0) | kwargs
    with pytest.raises(error, match=match):
        minimize_lbfgsb(**args)


@pytest.mark.parametrize("fun,error,match", [
    (lambda x, i: (x * x).sum(1), TypeError, r"fun: expected a tuple \(f, grad\)"),
    (lambda x, i: ((x * x).sum(1, keepdim=True), 2 * x), ValueError, r"fun: returned f of shape \(3, 1\)"),
    (lambda x, i: ((x * x).sum(1), 2 * x[:, :2]), ValueError, r"fun: returned grad of shape \(3, 2\)"),
    (lambda x, i: ((x * x).sum(1).float(), 2 * x), TypeError, "fun: returned f of dtype torch.float32"),
    (lambda x, i: ((x * x).sum(1), (2 * x).numpy()), TypeError, "fun: returned grad of type ndarray"),
])
def test_bad_fun_output(fun, error, match):
    with pytest.raises(error, match=match):
        minimize_lbfgsb(fun, X0)


def test_device_checks():
    with pytest.raises(ValueError, match="x0: expected a tensor on a CPU or CUDA device"):
        minimize_lbfgsb(quad, torch.zeros(2, 2, device="meta"))
    with pytest.raises(ValueError, match="backend='cpp' runs on CPU tensors"):
        resolve_backend("cpp", torch.device("cuda"))


def test_autograd_objective_checks_its_function():
    with pytest.raises(ValueError, match=r"func: expected a tensor of shape \(3,\)"):
        minimize_lbfgsb(autograd_objective(lambda x, i: x.sum()), X0)
    with pytest.raises(ValueError, match="func: its result does not depend on x"):
        minimize_lbfgsb(autograd_objective(lambda x, i: torch.zeros(x.shape[0], dtype=x.dtype)), X0)


def test_autograd_objective_gives_each_row_its_gradient():
    fun = autograd_objective(lambda x, i: (i[:, None] * x ** 3).sum(dim=1))
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    f, g = fun(x, torch.tensor([2, 5]))
    torch.testing.assert_close(f, torch.tensor([18.0, 455.0], dtype=torch.float64))
    torch.testing.assert_close(g, torch.tensor([[6.0, 24.0], [135.0, 240.0]], dtype=torch.float64))

"""Batched test problems with known structure, shared by the tests and the benchmarks.

Each builder returns a `Problem`: the engine's `fun(x, index)`, a starting point, the box,
and `numpy_fun(b)`, problem b alone as a scipy-style `x -> (f, grad)` in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

NumpyFun = Callable[[np.ndarray], "tuple[float, np.ndarray]"]


@dataclass
class Problem:
    fun: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    x0: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    numpy_fun: Callable[[int], NumpyFun]


def convex_quadratic(
    B: int, n: int, *, seed: int = 0, dtype: torch.dtype = torch.float64, infinite_fraction: float = 0.2
) -> Problem:
    """f_b(x) = 0.5 x'H_b x - c_b'x with H_b positive definite; a fraction of the bounds is
    infinite and the linear term is large enough that many bounds are active at the optimum."""
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(B, n, n, generator=gen, dtype=torch.float64) / n**0.5
    H = A @ A.transpose(1, 2) + 0.1 * torch.eye(n, dtype=torch.float64)
    c = 3.0 * torch.randn(B, n, generator=gen, dtype=torch.float64)
    lower = -torch.rand(B, n, generator=gen, dtype=torch.float64)
    upper = torch.rand(B, n, generator=gen, dtype=torch.float64)
    lower[torch.rand(B, n, generator=gen) < infinite_fraction] = -float("inf")
    upper[torch.rand(B, n, generator=gen) < infinite_fraction] = float("inf")
    Ht, ct = H.to(dtype), c.to(dtype)

    def fun(x: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        Hx = torch.bmm(Ht[index], x.unsqueeze(2)).squeeze(2)
        g = Hx - ct[index]
        return 0.5 * torch.linalg.vecdot(x, Hx) - torch.linalg.vecdot(ct[index], x), g

    def numpy_fun(b: int) -> NumpyFun:
        Hb, cb = H[b].numpy(), c[b].numpy()
        return lambda x: (0.5 * x @ Hb @ x - cb @ x, Hb @ x - cb)

    return Problem(fun, torch.zeros(B, n, dtype=dtype), lower.to(dtype), upper.to(dtype), numpy_fun)


def rosenbrock(B: int, n: int, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Problem:
    """The n-dimensional Rosenbrock function in a box that cuts off its minimum at (1, ..., 1)."""
    gen = torch.Generator().manual_seed(seed)
    x0 = (2.0 * torch.rand(B, n, generator=gen, dtype=torch.float64) - 1.5).to(dtype)
    lower = torch.full((B, n), -2.0, dtype=dtype)
    upper = (0.25 + 1.5 * torch.rand(B, n, generator=gen, dtype=torch.float64)).to(dtype)

    def fun(x: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x[:, :-1], x[:, 1:]
        t = b - a * a
        f = (100.0 * t * t + (1.0 - a) ** 2).sum(dim=1)
        g = torch.zeros_like(x)
        g[:, :-1] = -400.0 * a * t - 2.0 * (1.0 - a)
        g[:, 1:] += 200.0 * t
        return f, g

    def numpy_fun(b: int) -> NumpyFun:
        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            ft, gt = fun(torch.from_numpy(x)[None], torch.tensor([b]))
            return float(ft[0]), gt[0].numpy()

        return f

    return Problem(fun, x0, lower, upper, numpy_fun)


def softmax_attack(
    B: int, n: int = 784, classes: int = 10, *, c: float = 0.1, seed: int = 0, dtype: torch.dtype = torch.float64
) -> Problem:
    """The paper's attack objective on a linear softmax model, over the box [0, 1]^n:
    f_b(x) = c ||x - x_b||^2 + CE(W x + w0, l_b), with x_b in [0, 1] and a target l_b."""
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(classes, n, generator=gen, dtype=torch.float64) / n**0.5 * 4.0
    w0 = 0.1 * torch.randn(classes, generator=gen, dtype=torch.float64)
    images = torch.rand(B, n, generator=gen, dtype=torch.float64)
    targets = torch.randint(classes, (B,), generator=gen)
    Wt, w0t, xt = W.to(dtype), w0.to(dtype), images.to(dtype)

    def fun(x: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = x - xt[index]
        logp = torch.log_softmax(x @ Wt.T + w0t, dim=1)
        onehot = torch.nn.functional.one_hot(targets[index], classes).to(x.dtype)
        f = c * (r * r).sum(dim=1) - (logp * onehot).sum(dim=1)
        g = 2.0 * c * r + (logp.exp() - onehot) @ Wt
        return f, g

    def numpy_fun(b: int) -> NumpyFun:
        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            ft, gt = fun(torch.from_numpy(x).to(dtype)[None], torch.tensor([b]))
            return float(ft[0]), gt[0].double().numpy()

        return f

    return Problem(fun, xt.clone(), torch.zeros(B, n, dtype=dtype), torch.ones(B, n, dtype=dtype), numpy_fun)

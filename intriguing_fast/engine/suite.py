"""Single bound-constrained problems in seven families, for holding the engine against scipy's
L-BFGS-B problem by problem (bench/scipy_parity.py runs all of them, the tests a subset).

Each problem is a differentiable torch function of x [k, n] (one value per row), a start and a
box, all float64; `problem.fun` is the engine's callback and `problem.numpy_fun` scipy's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .objective import autograd_objective

INF = math.inf


@dataclass(frozen=True)
class SuiteProblem:
    name: str
    family: str
    func: Callable[[torch.Tensor], torch.Tensor]
    x0: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    convex: bool

    @property
    def fun(self):
        return autograd_objective(lambda x, index: self.func(x))

    def numpy_fun(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = self.fun(torch.from_numpy(np.asarray(x, dtype=np.float64))[None], torch.zeros(1, dtype=torch.long))
        return float(f[0]), g[0].numpy()


def _box(n: int, lo: float, hi: float) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((n,), lo, dtype=torch.float64), torch.full((n,), hi, dtype=torch.float64)


def _orthogonal(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))[0]


def _quadratic(H: torch.Tensor, u: torch.Tensor):
    return lambda x: 0.5 * torch.linalg.vecdot(x - u, (x - u) @ H)


def quadratics(gen: torch.Generator) -> list[SuiteProblem]:
    """0.5 (x - u)'H(x - u), condition 1e2 to 1e6, a box cutting off 0, 30 or 90% of u."""
    out = []
    for n in (20, 100):
        for cond in (1e2, 1e3, 1e4, 1e5, 1e6):
            for active in (0.0, 0.3, 0.9):
                for rep in range(2):
                    Q = _orthogonal(n, gen)
                    H = Q @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=torch.float64)) @ Q.T
                    u = torch.randn(n, generator=gen, dtype=torch.float64)
                    width = 1.0 + torch.rand(n, generator=gen, dtype=torch.float64)
                    lower, upper = u - width, u + width
                    cut = torch.rand(n, generator=gen) < active
                    gap = 0.2 + 0.7 * torch.rand(n, generator=gen, dtype=torch.float64)
                    upper = torch.where(cut & (u > 0), u - gap, upper)
                    lower = torch.where(cut & (u <= 0), u + gap, lower)
                    x0 = lower + (upper - lower) * torch.rand(n, generator=gen, dtype=torch.float64)
                    out.append(
                        SuiteProblem(
                            f"quadratic n={n} cond={cond:.0e} cut={active:.0%} #{rep}",
                            "quadratic",
                            _quadratic(H, u),
                            x0,
                            lower,
                            upper,
                            True,
                        )
                    )
    return out


def _rosenbrock(x: torch.Tensor) -> torch.Tensor:
    a, b = x[:, :-1], x[:, 1:]
    return (100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2).sum(dim=1)


def rosenbrocks(gen: torch.Generator) -> list[SuiteProblem]:
    """Rosenbrock in a loose box, a tight one, one cutting off the optimum, one with it on a corner."""
    out = []
    for n in (2, 5, 10, 50, 100, 1000):
        boxes = {
            "loose": _box(n, -5.0, 5.0),
            "tight": _box(n, -0.5, 0.5),
            "on a corner": _box(n, -2.0, 1.0),
            "cut": (
                torch.full((n,), -2.0, dtype=torch.float64),
                0.25 + 0.7 * torch.rand(n, generator=gen, dtype=torch.float64),
            ),
        }
        for box, (lower, upper) in boxes.items():
            for rep in range(2):
                x0 = lower.clamp_min(-2) + (upper - lower.clamp_min(-2)) * torch.rand(
                    n, generator=gen, dtype=torch.float64
                )
                out.append(
                    SuiteProblem(f"rosenbrock n={n} {box} #{rep}", "rosenbrock", _rosenbrock, x0, lower, upper, False)
                )
    return out


def logistic_regressions(gen: torch.Generator) -> list[SuiteProblem]:
    """L2-regularised logistic regression on 200 separable-ish points, weights in [-a, a]."""
    out = []
    for d in (10, 50):
        for lam in (1e-3, 1e-1):
            for a in (0.1, 1.0, 10.0):
                for rep in range(2):
                    A = torch.randn(200, d, generator=gen, dtype=torch.float64)
                    w = 3.0 * torch.randn(d, generator=gen, dtype=torch.float64)
                    y = torch.where(A @ w + 0.5 * torch.randn(200, generator=gen, dtype=torch.float64) > 0, 1.0, -1.0)

                    def func(x, A=A, y=y, lam=lam):
                        return torch.nn.functional.softplus(-y * (x @ A.T)).mean(dim=1) + 0.5 * lam * (x * x).sum(dim=1)

                    lower, upper = _box(d, -a, a)
                    out.append(
                        SuiteProblem(
                            f"logistic d={d} lam={lam:g} box={a:g} #{rep}",
                            "logistic",
                            func,
                            torch.zeros(d, dtype=torch.float64),
                            lower,
                            upper,
                            True,
                        )
                    )
    return out


def nonnegative_least_squares(gen: torch.Generator) -> list[SuiteProblem]:
    """0.5 ||Ax - b||^2 over x >= 0, over- and underdetermined."""
    out = []
    for n in (20, 100):
        for rows in (n // 2, 2 * n):
            for rep in range(4):
                A = torch.randn(rows, n, generator=gen, dtype=torch.float64)
                b = torch.randn(rows, generator=gen, dtype=torch.float64)
                lower, upper = _box(n, 0.0, INF)
                out.append(
                    SuiteProblem(
                        f"nnls {rows}x{n} #{rep}",
                        "nnls",
                        lambda x, A=A, b=b: 0.5 * ((x @ A.T - b) ** 2).sum(dim=1),
                        torch.ones(n, dtype=torch.float64),
                        lower,
                        upper,
                        True,
                    )
                )
    return out


def nonconvex(gen: torch.Generator) -> list[SuiteProblem]:
    """Styblinski-Tang and a trigonometric sum in boxes (local minima everywhere)."""
    out = []
    for n in (2, 5, 10, 20, 50, 100):
        for rep in range(2):
            lower, upper = _box(n, -5.0, 4.0)
            x0 = -4 + 8 * torch.rand(n, generator=gen, dtype=torch.float64)
            out.append(
                SuiteProblem(
                    f"styblinski-tang n={n} #{rep}",
                    "nonconvex",
                    lambda x: 0.5 * (x**4 - 16 * x**2 + 5 * x).sum(dim=1),
                    x0.clamp(lower, upper),
                    lower,
                    upper,
                    False,
                )
            )
            shift = torch.randn(n, generator=gen, dtype=torch.float64)
            lower, upper = _box(n, -2.0, 3.0)
            x0 = -2 + 5 * torch.rand(n, generator=gen, dtype=torch.float64)
            out.append(
                SuiteProblem(
                    f"trigonometric n={n} #{rep}",
                    "nonconvex",
                    lambda x, s=shift: (torch.sin(3 * (x - s)) + 0.1 * (x - s) ** 2).sum(dim=1),
                    x0,
                    lower,
                    upper,
                    False,
                )
            )
    return out


def far_outside(gen: torch.Generator) -> list[SuiteProblem]:
    """Minimisers far outside the box: quadratics centred 100 away, and linear objectives
    c.x on [-L, L]^100 (no curvature at all: only a step that lengthens gets anywhere)."""
    out = []
    for n in (10, 100):
        for cond in (1e2, 1e4):
            for rep in range(3):
                Q = _orthogonal(n, gen)
                H = Q @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=torch.float64)) @ Q.T
                u = 100.0 * torch.randn(n, generator=gen, dtype=torch.float64)
                lower, upper = _box(n, -1.0, 1.0)
                out.append(
                    SuiteProblem(
                        f"far quadratic n={n} cond={cond:.0e} #{rep}",
                        "far outside",
                        _quadratic(H, u),
                        torch.zeros(n, dtype=torch.float64),
                        lower,
                        upper,
                        True,
                    )
                )
    for L in (1.0, 10.0, 100.0, 1000.0):
        for rep in range(2):
            c = torch.randn(100, generator=gen, dtype=torch.float64)
            lower, upper = _box(100, -L, L)
            out.append(
                SuiteProblem(
                    f"linear L={L:g} #{rep}",
                    "far outside",
                    lambda x, c=c: x @ c,
                    torch.zeros(100, dtype=torch.float64),
                    lower,
                    upper,
                    True,
                )
            )
    return out


def at_a_bound(gen: torch.Generator) -> list[SuiteProblem]:
    """Optima on a bound with zero gradient there, and objectives that are infinite or NaN on
    part of the box (Poisson likelihood, log barrier, entropy): trials there must be shortened."""
    out = []
    for n in (2, 10, 100):
        for rep in range(2):
            lower = -torch.rand(n, generator=gen, dtype=torch.float64)
            w = torch.logspace(0, 2, n, dtype=torch.float64)
            centre = torch.where(
                torch.rand(n, generator=gen) < 0.5, lower, lower + torch.rand(n, generator=gen, dtype=torch.float64)
            )
            out.append(
                SuiteProblem(
                    f"zero gradient at bound n={n} #{rep}",
                    "at a bound",
                    lambda x, w=w, c=centre: (w * (x - c) ** 2).sum(dim=1),
                    lower + 1.5,
                    lower,
                    torch.full((n,), INF, dtype=torch.float64),
                    True,
                )
            )
            k = 1.0 + torch.poisson(5.0 * torch.rand(n, generator=gen, dtype=torch.float64), generator=gen)
            out.append(
                SuiteProblem(
                    f"poisson n={n} #{rep}",
                    "at a bound",
                    lambda x, k=k: (x - torch.xlogy(k, x)).sum(dim=1),
                    torch.full((n,), 0.5, dtype=torch.float64),
                    *_box(n, 0.0, INF),
                    True,
                )
            )
            c = 4.0 * torch.randn(n, generator=gen, dtype=torch.float64)
            out.append(
                SuiteProblem(
                    f"log barrier n={n} #{rep}",
                    "at a bound",
                    lambda x, c=c: (x @ c) - (torch.log(x) + torch.log1p(-x)).sum(dim=1),
                    torch.full((n,), 0.5, dtype=torch.float64),
                    *_box(n, 0.0, 1.0),
                    True,
                )
            )
            out.append(
                SuiteProblem(
                    f"entropy n={n} #{rep}",
                    "at a bound",
                    lambda x, c=c: (torch.xlogy(x, x) + x * c).sum(dim=1),
                    torch.full((n,), 0.5, dtype=torch.float64),
                    *_box(n, 0.0, 1.0),
                    True,
                )
            )
    return out


FAMILIES = (
    quadratics,
    rosenbrocks,
    logistic_regressions,
    nonnegative_least_squares,
    nonconvex,
    far_outside,
    at_a_bound,
)


def suite(seed: int = 0) -> list[SuiteProblem]:
    """Every problem of every family, the same for a given seed."""
    gen = torch.Generator().manual_seed(seed)
    return [problem for family in FAMILIES for problem in family(gen)]

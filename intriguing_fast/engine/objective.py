"""Build the engine's (f, grad) callback from a differentiable torch function."""

from __future__ import annotations

from collections.abc import Callable

import torch

Objective = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


def autograd_objective(func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Objective:
    """Wrap `func(x, index) -> f [k]` into `fun(x, index) -> (f [k], grad [k, n])`.

    Problems are independent, so the gradient of f.sum() gives every row its own gradient
    in one backward pass.
    """
    if not callable(func):
        raise TypeError(f"func: expected a callable func(x, index) -> f [k], got {type(func).__name__}")

    def fun(x: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            f = _check_output(func(xr, index), x)
            (grad,) = torch.autograd.grad(f.sum(), xr, allow_unused=True) if f.requires_grad else (None,)
        if grad is None:
            raise ValueError(
                f"func: its output (shape {tuple(f.shape)}) does not depend on x through autograd "
                "(no gradient): is it constant, detached from x, or computed outside torch?"
            )
        return f.detach(), grad

    return fun


def _check_output(f: object, x: torch.Tensor) -> torch.Tensor:
    """func's output must be one value per row of x, in x's dtype."""
    if not isinstance(f, torch.Tensor) or f.shape != (x.shape[0],):
        got = f"shape {tuple(f.shape)}" if isinstance(f, torch.Tensor) else type(f).__name__
        raise ValueError(
            f"func: expected its output to be a tensor of shape ({x.shape[0]},), one value per row, got {got}"
        )
    if f.dtype != x.dtype:
        raise TypeError(f"func: expected its output in x's dtype {x.dtype}, got {f.dtype}")
    return f

"""Build the engine's (f, grad) callback from a differentiable torch function."""
from __future__ import annotations

from typing import Callable

import torch

Objective = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


def autograd_objective(func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Objective:
    """Wrap `func(x, index) -> f [k]` into `fun(x, index) -> (f [k], grad [k, n])`.

    Problems are independent, so the gradient of f.sum() gives every row its own gradient
    in one backward pass.
    """

    def fun(x: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            f = func(xr, index)
            if not isinstance(f, torch.Tensor) or f.shape != (x.shape[0],):
                got = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
                raise ValueError(f"func: expected a tensor of shape ({x.shape[0]},), one value per row, got {got}")
            if not f.requires_grad:
                raise ValueError("func: its result does not depend on x through autograd (no gradient)")
            (grad,) = torch.autograd.grad(f.sum(), xr)
        return f.detach(), grad

    return fun

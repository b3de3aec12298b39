"""CPU backend: the three steps as fused C++/OpenMP kernels of the native core `_C`."""
from __future__ import annotations

import torch

from ..engine.state import BatchState, Options
from .native import native

# The BatchState fields the kernels read or write in place.
FIELDS = ("lower", "upper", "x", "f", "g", "S", "Y", "rho", "gamma", "hist_len", "head", "d", "gd", "t",
          "x_trial", "slope", "ls_iter", "need_dir", "status", "nit", "nfev", "pg_norm")


def numpy_view(t: torch.Tensor):
    """A zero-copy NumPy view of a CPU tensor; bfloat16 (unknown to NumPy) as its int16 bits."""
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()


def state_views(st: BatchState) -> dict:
    return {name: numpy_view(getattr(st, name)) for name in FIELDS}


class CppKernels:
    """Fused kernels for CPU tensors; same contract as `TorchKernels`, state updated in place."""

    name = "cpp"

    def __init__(self) -> None:
        self._C = native()

    def direction(self, st: BatchState, rows: torch.Tensor) -> None:
        self._C.direction(state_views(st), rows.numpy())

    def trial(self, st: BatchState, rows: torch.Tensor) -> None:
        self._C.trial(state_views(st), rows.numpy())

    def accept(self, st: BatchState, rows: torch.Tensor, f_t: torch.Tensor, g_t: torch.Tensor, opt: Options) -> None:
        self._C.accept(state_views(st), rows.numpy(), f_t.contiguous().numpy(), g_t.contiguous().numpy(),
                       opt.max_iter, opt.max_fun, opt.max_ls, opt.gtol, opt.ftol, opt.c1)

"""CPU backend: the three steps as fused C++/OpenMP kernels of the native core `_C`."""

from __future__ import annotations

import torch

from ..state import BatchState, LBFGSBOptions
from .base import Kernels
from .native import native

# The BatchState fields the kernels read or write in place.
FIELDS = (
    "lower",
    "upper",
    "x",
    "f",
    "g",
    "S",
    "Y",
    "gamma",
    "hist_len",
    "head",
    "d",
    "gd",
    "t",
    "x_trial",
    "slope",
    "ls_iter",
    "need_dir",
    "box_first",
    "status",
    "nit",
    "nfev",
    "pg_norm",
)


def numpy_view(t: torch.Tensor):
    """A zero-copy NumPy view of a CPU tensor; bfloat16 (unknown to NumPy) as its int16 bits."""
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()


def state_views(st: BatchState) -> dict:
    return {name: numpy_view(getattr(st, name)) for name in FIELDS}


class CppKernels(Kernels):
    """Fused kernels for CPU tensors; same contract as `TorchKernels`, state updated in place.
    `propose` runs direction and trial in one pass per problem."""

    name = "cpp"

    def __init__(self) -> None:
        self._C = native()
        self._views: tuple[tuple, dict] = ((), {})

    def views(self, st: BatchState) -> dict:
        """The state's NumPy views, made once per state: a solve calls the kernels thousands of
        times on the same tensors. Keyed by the fields' identities (each view keeps its tensor
        alive), so a field replaced by another tensor gets a new view."""
        key = tuple(id(getattr(st, name)) for name in FIELDS)
        if key != self._views[0]:
            self._views = (key, state_views(st))
        return self._views[1]

    def direction(self, st: BatchState, rows: torch.Tensor) -> None:
        self._C.direction(self.views(st), rows.numpy())

    def trial(self, st: BatchState, rows: torch.Tensor) -> None:
        self._C.trial(self.views(st), rows.numpy())

    def propose(self, st: BatchState, rows: torch.Tensor) -> None:
        self._C.propose(self.views(st), rows.numpy())

    def accept(
        self, st: BatchState, rows: torch.Tensor, f_t: torch.Tensor, g_t: torch.Tensor, opt: LBFGSBOptions
    ) -> None:
        self._C.accept(
            self.views(st),
            rows.numpy(),
            f_t.contiguous().numpy(),
            g_t.contiguous().numpy(),
            opt.max_iter,
            opt.max_fun,
            opt.max_ls,
            opt.gtol,
            opt.ftol,
            opt.c1,
            opt.c2,
        )

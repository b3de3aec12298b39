"""The proof on CPU that a round can run on CUDA without waiting for the host and be captured as a
CUDA graph: every operator a round dispatches, with the shapes it sees (issue 29)."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# Operators that make a CUDA stream wait for the host: a data-dependent size (nonzero, boolean
# masks, unique), a value read on the host (_local_scalar_dense: item, bool, int), or a result
# of Python type.
SYNCHRONISING = {
    "nonzero",
    "nonzero_static",
    "_local_scalar_dense",
    "masked_select",
    "masked_scatter",
    "unique",
    "_unique",
    "_unique2",
    "unique_dim",
    "unique_consecutive",
    "is_nonzero",
    "equal",
    "allclose",
    "repeat_interleave",
}


def _shapes(value: object) -> object:
    if isinstance(value, torch.Tensor):
        return (tuple(value.shape), str(value.dtype))
    if isinstance(value, (list, tuple)):
        return tuple(_shapes(v) for v in value)
    return None


def _bool_index(func: object, args: tuple) -> bool:
    """aten.index / index_put with a bool index: a data-dependent selection."""
    if func.__name__.split(".")[0] not in ("index", "index_put", "index_put_", "_index_put_impl_"):
        return False
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices or ())


class RoundRecorder(TorchDispatchMode):
    """Records (operator, input shapes, output shapes) of everything dispatched inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, object, object]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        self.calls.append((str(func), _shapes(args), _shapes(out)))
        if _bool_index(func, args):
            self.calls[-1] = ("bool-index " + str(func), *self.calls[-1][1:])
        return out

    def synchronising(self) -> list[str]:
        return sorted(
            {name for name, _, _ in self.calls if name.startswith("bool-index") or name.split(".")[1] in SYNCHRONISING}
        )


def record(step) -> RoundRecorder:  # noqa: ANN001
    """Run step() under a recorder."""
    with RoundRecorder() as recorder:
        step()
    return recorder

"""Checks of the engine's inputs; every error names the argument and what was expected."""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable
from numbers import Real

import torch

from ..errors import IntriguingFastError

FLOAT_DTYPES = (torch.float32, torch.float64)
# [B, n] tensors of x's dtype a solve holds besides its history: x, g and fun's g, d, x_trial,
# lower, upper, and one spare for the caller's x0 and fun's temporaries.
STATE_VECTORS = 8


class StateMemoryError(IntriguingFastError, MemoryError):
    """The solver's state would not fit in the memory available on its device."""


def check_fun(fun: object) -> Callable:
    if not callable(fun):
        raise TypeError(f"fun: expected a callable fun(x, index) -> (f, grad), got {type(fun).__name__}")
    try:
        signature = inspect.signature(fun)
    except (TypeError, ValueError):  # a builtin without one: the call will tell
        return fun
    try:
        signature.bind(None, None)
    except TypeError:
        raise TypeError(
            f"fun: expected fun(x, index) -> (f, grad), called with a batch x [k, n] and the k problem "
            f"ids, got a callable of signature {signature} (scipy's one-argument fun(x) takes one "
            "problem: wrap it, e.g. lambda x, index: ...)"
        ) from None
    return fun


def check_x0(x0: torch.Tensor) -> torch.Tensor:
    if not isinstance(x0, torch.Tensor):
        raise TypeError(f"x0: expected a torch.Tensor of shape [B, n], got {type(x0).__name__}")
    if x0.dtype not in FLOAT_DTYPES:
        raise TypeError(f"x0: expected dtype float32 or float64, got {x0.dtype}")
    if x0.device.type not in ("cpu", "cuda"):
        raise ValueError(f"x0: expected a tensor on a CPU or CUDA device, got {x0.device}")
    if x0.dim() != 2 or x0.shape[0] == 0 or x0.shape[1] == 0:
        raise ValueError(
            f"x0: expected a non-empty 2-D tensor [B, n] (one row per problem; "
            f"use x0[None] for a single problem), got shape {tuple(x0.shape)}"
        )
    if not torch.isfinite(x0).all():
        bad = (~torch.isfinite(x0)).any(dim=1).nonzero().squeeze(1)[:5].tolist()
        raise ValueError(f"x0: contains NaN or inf (rows {bad}...)")
    return x0.detach()


def check_bound(bound: float | torch.Tensor, name: str, x0: torch.Tensor) -> torch.Tensor:
    """A scalar or a tensor broadcastable to x0's shape, as a dense tensor like x0: [1, n] when
    every problem has the same bound (a scalar, or a tensor with no batch extent of its own), so
    the kernels read one row from cache instead of B rows from memory; [B, n] otherwise."""
    if isinstance(bound, Real) and not isinstance(bound, bool):
        if math.isnan(bound):
            raise ValueError(f"{name}: is NaN")
        if math.isfinite(bound) and abs(bound) > torch.finfo(x0.dtype).max:
            raise ValueError(
                f"{name}: {bound!r} lies beyond the range of x0's dtype {x0.dtype} "
                f"(max {torch.finfo(x0.dtype).max:.4g}); use +-inf for no bound"
            )
        return torch.full_like(x0[:1], float(bound))
    if not isinstance(bound, torch.Tensor):
        raise TypeError(f"{name}: expected a float or a torch.Tensor, got {type(bound).__name__}")
    if bound.device != x0.device:
        raise ValueError(f"{name}: expected a tensor on {x0.device} like x0, got {bound.device}")
    if bound.dtype != x0.dtype:
        raise TypeError(f"{name}: expected dtype {x0.dtype} like x0, got {bound.dtype}")
    try:
        dense = bound.expand(x0.shape)
    except RuntimeError:
        raise ValueError(
            f"{name}: shape {tuple(bound.shape)} does not broadcast to x0's shape {tuple(x0.shape)}"
        ) from None
    if torch.isnan(dense).any():
        raise ValueError(f"{name}: contains NaN")
    return (dense[:1] if dense.stride(0) == 0 else dense).contiguous()


def check_bounds(lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Checks the pair; if only one of them is shared by all problems, expands it like the other."""
    if (lower > upper).any():
        bad = (lower > upper).nonzero()[0].tolist()
        raise ValueError(f"lower, upper: lower > upper at (problem, variable) {tuple(bad)}")
    if torch.isposinf(lower).any() or torch.isneginf(upper).any():
        raise ValueError("lower, upper: lower must not be +inf and upper must not be -inf")
    if lower.shape != upper.shape:
        lower, upper = (b.contiguous() for b in torch.broadcast_tensors(lower, upper))
    return lower, upper


def check_history_dtype(history_dtype: torch.dtype | None, x0: torch.Tensor) -> None:
    if history_dtype not in (None, x0.dtype, torch.bfloat16):
        raise TypeError(
            f"history_dtype: expected None, {x0.dtype} (x0's dtype) or torch.bfloat16, got {history_dtype!r}"
        )


def check_fun_output(out: object, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fun must return (f [k], grad [k, n]) with x's dtype and device."""
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError(f"fun: expected a tuple (f, grad), got {type(out).__name__}")
    f, g = out
    k, n = x.shape
    for name, value, shape in (("f", f, (k,)), ("grad", g, (k, n))):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"fun: returned {name} of type {type(value).__name__}, expected a torch.Tensor")
        if tuple(value.shape) != shape:
            raise ValueError(f"fun: returned {name} of shape {tuple(value.shape)}, expected {shape}")
        if value.dtype != x.dtype:
            raise TypeError(f"fun: returned {name} of dtype {value.dtype}, expected {x.dtype} like x0")
        if value.device != x.device:
            raise ValueError(f"fun: returned {name} on {value.device}, expected {x.device} like x0")
    return f.detach(), g.detach().contiguous()


def available_bytes(device: torch.device) -> int | None:
    """Bytes that new tensors on `device` can take: the kernel's MemAvailable on the CPU (else its
    free pages), the driver's free memory plus torch's cached blocks on CUDA; None if unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(x0: torch.Tensor, history: int, history_dtype: torch.dtype | None) -> None:
    """Refuse, before allocating it, a solver state larger than the memory available: 2 history
    curvature vectors per problem in history_dtype and STATE_VECTORS in x0's dtype."""
    B, n = x0.shape
    pair_bytes = torch.finfo(history_dtype or x0.dtype).bits // 8
    need = B * n * (2 * history * pair_bytes + STATE_VECTORS * x0.element_size())
    free = available_bytes(x0.device)
    if free is None or need <= free:
        return
    bf16 = "" if history_dtype == torch.bfloat16 else ", or keep the pairs in bfloat16 (history_dtype=torch.bfloat16)"
    raise StateMemoryError(
        f"history: the solver state of {B} problems x {n} variables with history={history} "
        f"needs {need / 1e9:.3g} GB, but {free / 1e9:.3g} GB is available on {x0.device}: "
        f"lower history, or solve fewer problems at once (the batch size, {B}){bf16}"
    )

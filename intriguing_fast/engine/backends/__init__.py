"""Backends for the engine's per-iteration steps: a torch reference and fused kernels."""

from __future__ import annotations

import importlib.util
import os

import torch

from ..state import BACKENDS, ROUNDS, BatchState, LBFGSBOptions, projected_gradient_norm, start_status
from ..status import Status
from .base import Kernels
from .cpp import CppKernels
from .native import native_available
from .reference import TorchKernels


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def triton_interpreted() -> bool:
    """Triton's interpreter runs kernels on CPU tensors (for tests; slow)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def resolve_backend(backend: str, device: torch.device) -> Kernels:
    """The kernels for `backend` on `device`; asking for one that cannot run is an error, never a fallback.

    auto: triton for CUDA tensors when triton imports, cpp for CPU tensors when the native
    extension is built, torch otherwise.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        if device.type == "cuda" and triton_available():
            backend = "triton"
        elif device.type == "cpu" and native_available():
            backend = "cpp"
        else:
            backend = "torch"
    if backend == "cpp":
        if device.type != "cpu":
            raise ValueError(f"backend='cpp' runs on CPU tensors, got tensors on {device}")
        return CppKernels()
    if backend == "triton":
        if not triton_available():
            raise ValueError("backend='triton' needs the triton package, which is not installed")
        if device.type != "cuda" and not (device.type == "cpu" and triton_interpreted()):
            raise ValueError(
                f"backend='triton' runs on CUDA tensors, got tensors on {device} "
                "(CPU tensors only in Triton's interpreter, TRITON_INTERPRET=1)"
            )
        from .triton_backend import TritonKernels  # imports triton: only when asked for

        return TritonKernels()
    return TorchKernels()


__all__ = [
    "BACKENDS",
    "ROUNDS",
    "BatchState",
    "CppKernels",
    "Kernels",
    "LBFGSBOptions",
    "Status",
    "TorchKernels",
    "native_available",
    "projected_gradient_norm",
    "resolve_backend",
    "start_status",
    "triton_available",
]

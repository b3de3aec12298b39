"""GPU backend: the three steps as Triton kernels (engine/backends/triton_direction.py,
engine/backends/triton_steps.py), one program per problem of the step's row list (the running ones in
compact rounds, every one in fixed-shape rounds, where a stopped problem's program returns at
once): no host synchronisation inside a step."""

from __future__ import annotations

import contextlib

import torch
import triton

from ..state import BatchState, LBFGSBOptions
from .base import Kernels
from .triton_direction import direction_block_kernel, direction_chunked_kernel
from .triton_steps import accept_kernel, trial_kernel

# Rows up to this length keep q in registers; longer rows sweep BLOCK_CHUNK-sized chunks.
MAX_BLOCK = 4096
BLOCK_CHUNK = 1024
DEFAULT_OPTIONS = LBFGSBOptions()  # the settings the direction kernels read (tiny, eps): the defaults


class TritonKernels(Kernels):
    """Fused Triton kernels for CUDA tensors (or CPU tensors under TRITON_INTERPRET=1)."""

    name = "triton"
    every_row = True  # a program whose problem is not running returns at once (trial: x_trial = x)

    def __init__(self, max_block: int = MAX_BLOCK, block_chunk: int = BLOCK_CHUNK) -> None:
        self.max_block = max_block
        self.block_chunk = block_chunk
        self._settings: dict[tuple, torch.Tensor] = {}

    def settings(self, x: torch.Tensor, opt: LBFGSBOptions = DEFAULT_OPTIONS) -> torch.Tensor:
        """[c1, ftol, gtol, tiny, eps, c2] in x's dtype on x's device, cached (one copy to the
        device). The direction kernels read only tiny and eps, so they take the default settings."""
        key = (x.dtype, x.device, opt.c1, opt.ftol, opt.gtol, opt.c2)
        if key not in self._settings:
            fi = torch.finfo(x.dtype)
            self._settings[key] = torch.tensor(
                [opt.c1, opt.ftol, opt.gtol, fi.tiny, fi.eps, opt.c2], dtype=x.dtype, device=x.device
            )
        return self._settings[key]

    def launch(self, kernel, grid: tuple[int, ...], *args, **meta) -> None:
        """One kernel launch, on the device of the step's rows (args[0]) rather than the
        current CUDA device. engine/backends/triton_aot.py overrides it to compile without launching."""
        with device_guard(args[0].device):
            kernel[grid](*args, **meta)

    def block(self, n: int) -> int:
        return min(triton.next_power_of_2(n), self.block_chunk)

    def direction(self, st: BatchState, rows: torch.Tensor) -> None:
        _, m, n = st.S.shape
        args = (
            rows,
            st.x,
            st.g,
            st.lower,
            st.upper,
            st.S,
            st.Y,
            st.gamma,
            st.hist_len,
            st.head,
            st.d,
            st.gd,
            st.t,
            st.ls_iter,
            st.need_dir,
            st.status,
            st.nit,
            st.box_first,
            self.settings(st.x),
        )
        if triton.next_power_of_2(n) <= self.max_block:
            block = triton.next_power_of_2(n)
            kernel = direction_block_kernel
        else:  # the free sets go to a scratch buffer, row i for problem rows[i]
            block = self.block_chunk
            kernel = direction_chunked_kernel
            args += (torch.empty(len(rows), n, dtype=torch.bool, device=st.x.device),)
        self.launch(
            kernel,
            (len(rows),),
            *args,
            n,
            m,
            bound_stride(st),
            BLOCK=block,
            M_PAD=triton.next_power_of_2(m),
            num_warps=num_warps(block),
        )

    def trial(self, st: BatchState, rows: torch.Tensor) -> None:
        n = st.x.shape[1]
        block = self.block(n)
        self.launch(
            trial_kernel,
            (len(rows),),
            rows,
            st.x,
            st.g,
            st.lower,
            st.upper,
            st.d,
            st.t,
            st.x_trial,
            st.slope,
            st.status,
            n,
            bound_stride(st),
            BLOCK=block,
            num_warps=num_warps(block),
        )

    def accept(
        self, st: BatchState, rows: torch.Tensor, f_t: torch.Tensor, g_t: torch.Tensor, opt: LBFGSBOptions
    ) -> None:
        _, m, n = st.S.shape
        block = self.block(n)
        self.launch(
            accept_kernel,
            (len(rows),),
            rows,
            f_t.contiguous(),
            g_t.contiguous(),
            st.x,
            st.f,
            st.g,
            st.lower,
            st.upper,
            st.S,
            st.Y,
            st.gamma,
            st.hist_len,
            st.head,
            st.d,
            st.gd,
            st.t,
            st.x_trial,
            st.slope,
            st.ls_iter,
            st.need_dir,
            st.status,
            st.nit,
            st.nfev,
            st.pg_norm,
            self.settings(st.x, opt),
            n,
            m,
            bound_stride(st),
            opt.max_iter,
            opt.max_fun,
            opt.max_ls,
            BLOCK=block,
            num_warps=num_warps(block),
        )


def device_guard(device: torch.device) -> contextlib.AbstractContextManager:
    """Makes `device` the current CUDA device for a launch (Triton launches on the current one)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def bound_stride(st: BatchState) -> int:
    """Elements between two problems' bounds: 0 when they all share one row."""
    return 0 if st.lower.shape[0] == 1 else st.lower.shape[1]


def num_warps(block: int) -> int:
    """Enough warps that each thread holds a few elements of a BLOCK-wide row (needs GPU tuning)."""
    return max(1, min(8, block // 256))

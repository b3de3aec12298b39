"""`python -m intriguing_fast.engine.backends.triton_aot`: compile every Triton launch of the backend
ahead of time for a CUDA target, down to a cubin, with no GPU present.

Each step of `TritonKernels` runs on a CPU state as the engine would call it, and each launch
goes through Triton's real launch path (`JITFunction.run`: the argument binder, the
specialisation of every argument with its alignment and divisibility hints, the compiler)
with a driver that names the target and stops short of loading the binary. This checks what
the interpreter cannot: that the launcher accepts the arguments (a kernel parameter named
like one of the launcher's own locals breaks every launch) and that the variants that will
really run lower through Triton's compiler.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.backends.driver import DriverBase
from triton.runtime.driver import driver

from ..state import BatchState, LBFGSBOptions
from .triton_backend import TritonKernels


class CompileOnlyDriver(DriverBase):
    """A Triton driver for a CUDA target that is not there: enough for binding and compiling."""

    def __init__(self, arch: int) -> None:
        self.target = GPUTarget("cuda", arch, 32)

    @classmethod
    def is_active(cls) -> bool:
        return False

    def get_current_target(self) -> GPUTarget:
        return self.target

    def get_current_device(self) -> int:
        return 0

    def get_current_stream(self, device: int | None = None) -> int:
        return 0

    def get_active_torch_device(self) -> torch.device:
        return torch.device("cpu")

    def map_python_to_cpp_type(self, ty: str) -> str:
        raise NotImplementedError("compile-only driver")

    def get_benchmarker(self):
        raise NotImplementedError("compile-only driver")


class CompileOnlyKernels(TritonKernels):
    """The Triton backend with every launch replaced by `warmup`: bind, specialise, compile."""

    def __init__(self, **layout) -> None:
        super().__init__(**layout)
        self.compiled: list[str] = []

    def launch(self, kernel, grid: tuple[int, ...], *args, **meta) -> None:
        out = kernel.warmup(*args, grid=grid, **meta)
        hints = sum(1 for attr in out.src.attrs.values() if attr)
        self.compiled.append(
            f"{kernel.fn.__name__}: cubin {len(out.asm['cubin'])} bytes, "
            f"{hints} arguments with alignment/divisibility hints"
        )


@dataclass(frozen=True)
class Case:
    """One configuration of the engine, as the attack and the tests use it."""

    n: int
    dtype: torch.dtype
    history_dtype: torch.dtype | None
    shared_bounds: bool

    def state(self, B: int = 8, m: int = 10) -> BatchState:
        x = torch.rand(B, self.n, dtype=self.dtype)
        rows = 1 if self.shared_bounds else B
        lower, upper = torch.zeros(rows, self.n, dtype=self.dtype), torch.ones(rows, self.n, dtype=self.dtype)
        return BatchState.start(x, (x * x).sum(1), x.clone(), lower, upper, m, self.history_dtype)


CASES = tuple(
    Case(n, dtype, history, shared)
    for n in (784, 5000)  # one register block; chunked rows
    for dtype, history in ((torch.float32, None), (torch.float64, None), (torch.float32, torch.bfloat16))
    for shared in (True, False)
)


def compile_all(arch: int) -> list[str]:
    """Every step of every case, compiled through the launch path; one line per launch.
    Makes the compile-only driver Triton's active one: run it in a process of its own."""
    driver.set_active(CompileOnlyDriver(arch))
    lines = []
    for case in CASES:
        kernels = CompileOnlyKernels()
        st = case.state()
        rows = torch.arange(st.x.shape[0])
        kernels.direction(st, rows)
        kernels.trial(st, rows)
        kernels.accept(st, rows, st.f.clone(), st.g.clone(), LBFGSBOptions(max_iter=100, max_fun=200))
        history = case.history_dtype or case.dtype
        lines += [
            f"n={case.n} {case.dtype}/{history} shared_bounds={case.shared_bounds} {line}" for line in kernels.compiled
        ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m intriguing_fast.engine.backends.triton_aot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability x 10 (default 90: H100, H200)")
    args = parser.parse_args(argv)
    print(f"triton {triton.__version__}, target sm_{args.arch}")
    for line in compile_all(args.arch):
        print(line)


if __name__ == "__main__":
    main()

"""`python -m intriguing_fast.kernels.triton_aot`: compile every Triton kernel ahead of time
for a CUDA target, down to a cubin, with no GPU present. This checks what the interpreter
cannot: that the kernels lower through Triton's real compiler (layouts, types, control flow)."""
from __future__ import annotations

import argparse
import inspect

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from . import triton_steps as k

INTS = {"rows", "hist_len", "head", "ls_iter", "status", "nit", "nfev"}
MASKS = {"need_dir"}
SCALARS = {"n", "m", "bound_stride", "max_iter", "max_fun", "max_ls"}


def signature(fn, dtype: str, history: str) -> dict[str, str]:
    """Triton argument types of a step kernel for compute dtype and history dtype ("fp32", "bf16", ...)."""
    sig = {}
    for name, p in inspect.signature(fn.fn).parameters.items():
        if p.annotation is not inspect.Parameter.empty:
            sig[name] = "constexpr"
        elif name in SCALARS:
            sig[name] = "i32"
        elif name in MASKS:
            sig[name] = "*i1"
        elif name in INTS:
            sig[name] = "*i64"
        else:
            sig[name] = f"*{history}" if name in ("S", "Y") else f"*{dtype}"
    return sig


def compile_all(arch: int, n: int = 784, m: int = 10) -> list[str]:
    """Compile each kernel for each dtype pairing; returns one line per compiled kernel."""
    block = triton.next_power_of_2(n)
    cases = [(k.direction_block_kernel, dict(BLOCK=block, M_PAD=triton.next_power_of_2(m))),
             (k.direction_chunked_kernel, dict(BLOCK=1024, M_PAD=triton.next_power_of_2(m))),
             (k.trial_kernel, dict(BLOCK=min(block, 1024))),
             (k.accept_kernel, dict(BLOCK=min(block, 1024)))]
    lines = []
    for dtype, history in (("fp32", "fp32"), ("fp64", "fp64"), ("fp32", "bf16")):
        for fn, consts in cases:
            src = ASTSource(fn=fn, signature=signature(fn, dtype, history), constexprs=consts)
            out = triton.compile(src, target=GPUTarget("cuda", arch, 32))
            lines.append(f"{fn.fn.__name__} {dtype}/{history} {consts}: cubin {len(out.asm['cubin'])} bytes")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m intriguing_fast.kernels.triton_aot", description=__doc__)
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability x 10 (90: H100)")
    args = parser.parse_args(argv)
    for line in compile_all(args.arch):
        print(line)


if __name__ == "__main__":
    main()

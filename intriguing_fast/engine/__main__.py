"""`python -m intriguing_fast.engine`: solve a batch of box-constrained problems and check them
against scipy's L-BFGS-B, problem by problem."""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.optimize
import torch

from ..errors import IntriguingFastError
from ..seeds import seed_int
from ..threads import THREADS_HELP, set_threads
from .backends import native_available
from .lbfgsb import minimize_lbfgsb
from .problems import softmax_attack
from .state import LBFGSBOptions
from .validation import check_memory

PROG = "python -m intriguing_fast.engine"
SIZES = ("batch", "dim", "check", "threads")  # options that must be >= 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("--batch", type=int, default=256, help="number of problems B (default: %(default)s)")
    parser.add_argument("--dim", type=int, default=784, help="variables per problem n (default: %(default)s)")
    parser.add_argument(
        "--check", type=int, default=32, help="problems re-solved with scipy, one by one (default: %(default)s)"
    )
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of the random problems (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help=THREADS_HELP)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an expected failure")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse and check the options, then run the demo; an expected failure is one line, exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in SIZES:
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name}: expected an int >= 1, got {getattr(args, name)}")
    set_threads(args.threads)
    try:
        demo(args.batch, args.dim, args.check, args.seed)
    except IntriguingFastError as exc:
        if args.debug:
            raise
        parser.exit(2, f"{PROG}: error: {exc}\n")


def demo(batch: int, dim: int, check: int, seed: int) -> None:
    """Solve `batch` softmax-attack problems at once, then `check` of them with scipy, and compare."""
    # Refuse a batch too large for memory before building it (no allocation: a zero-stride view).
    check_memory(torch.zeros(1, 1, dtype=torch.float64).expand(batch, dim), LBFGSBOptions().history, None)
    problem = softmax_attack(batch, dim, c=0.05, seed=seed)
    print(
        f"{batch} problems: c||x - x_b||^2 + CE(Wx + w0, l_b) over [0,1]^{dim} (float64); "
        f"native core: {'built' if native_available() else 'missing'}"
    )
    start = time.perf_counter()
    res = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper)
    batched = time.perf_counter() - start
    print(f"batched engine : {batched:.3f} s  {res}")

    k = min(check, batch)
    start = time.perf_counter()
    ref = [
        scipy.optimize.minimize(
            problem.numpy_fun(b), problem.x0[b].numpy(), jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * dim
        )
        for b in range(k)
    ]
    per_problem = (time.perf_counter() - start) / k
    gap = np.array([(res.fun[b].item() - r.fun) / abs(r.fun) for b, r in enumerate(ref)])
    print(
        f"scipy, one by one: {per_problem * batch:.3f} s for all {batch} (timed on {k})  "
        f"-> speed-up {per_problem * batch / batched:.1f}x"
    )
    print(
        f"objective vs scipy on {k} problems: max relative gap {gap.max():+.2e} (negative = ours lower), "
        f"mean {gap.mean():+.2e}"
    )


if __name__ == "__main__":
    main()

"""`python -m intriguing_fast.engine`: solve a batch of box-constrained problems and check them
against scipy's L-BFGS-B, problem by problem."""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.optimize

from ..kernels import native_available
from .problems import softmax_attack
from .lbfgsb import minimize_lbfgsb


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m intriguing_fast.engine", description=__doc__)
    parser.add_argument("--batch", type=int, default=256, help="number of problems B")
    parser.add_argument("--dim", type=int, default=784, help="variables per problem n")
    parser.add_argument("--check", type=int, default=32, help="problems re-solved with scipy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("batch", "dim", "check"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected an int >= 1, got {getattr(args, name)}")

    problem = softmax_attack(args.batch, args.dim, c=0.05, seed=args.seed)
    print(f"{args.batch} problems: c||x - x_b||^2 + CE(Wx + w0, l_b) over [0,1]^{args.dim} (float64); "
          f"native core: {'built' if native_available() else 'missing'}")
    start = time.perf_counter()
    res = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper)
    batched = time.perf_counter() - start
    print(f"batched engine : {batched:.3f} s  {res}")

    k = min(args.check, args.batch)
    start = time.perf_counter()
    ref = [scipy.optimize.minimize(problem.numpy_fun(b), problem.x0[b].numpy(), jac=True, method="L-BFGS-B",
                                   bounds=[(0.0, 1.0)] * args.dim) for b in range(k)]
    per_problem = (time.perf_counter() - start) / k
    gap = np.array([(res.fun[b].item() - r.fun) / abs(r.fun) for b, r in enumerate(ref)])
    print(f"scipy, one by one: {per_problem * args.batch:.3f} s for all {args.batch} (timed on {k})  "
          f"-> speed-up {per_problem * args.batch / batched:.1f}x")
    print(f"objective vs scipy on {k} problems: max relative gap {gap.max():+.2e} (negative = ours lower), "
          f"mean {gap.mean():+.2e}")


if __name__ == "__main__":
    main()

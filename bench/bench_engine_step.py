"""Per-iteration cost of the optimizer (everything but `fun`) per backend, its memory-traffic
bound, scipy's L-BFGS-B problem by problem, and the share of an attack's wall time spent
outside the model. Everything is measured side by side in one run.

    flock /tmp/heavy.lock python bench/bench_engine_step.py --scipy 256 2048

Method. The optimizer's time per iteration is the gap between one call of fun returning and
the next one starting, on iterations where all B problems are resident and the history is
full (a cheap separable quadratic with gtol = ftol = 0 keeps them all running); the median
over those iterations, best of --repeats interleaved rounds (one round at B > 2048). The traffic
bound is the bytes the fused steps must move per problem and iteration (each array read once
and written once per step, direction and trial counted as the one pass the cpp backend makes:
14 n values of x's dtype plus 2 m + 2 history rows, or 10 n values when the bounds are shared
by all problems and stored as one row that stays in cache: the default, scalar bounds [0, 1];
--bounds per-problem passes [B, n] tensors) divided by the copy bandwidth of a torch copy of
a buffer of the same size, measured here. Attack table: wall time and share outside fun of one
solve, the median of --repeats interleaved rounds after a warm-up solve of the same size.
"""

from __future__ import annotations

import argparse
import statistics
import time

import scipy.optimize
import torch
import torch.nn.functional as F

from intriguing_fast import autograd_objective, minimize_lbfgsb
from intriguing_fast.models.architectures import MLP

N, HISTORY = 784, 10


def quadratic(B: int, seed: int = 0, n: int = N):
    """f_b(x) = 0.5 sum_i a_bi (x_i - c_bi)^2 over [0, 1]^n, curvatures 1e-2..1e2: slow to solve, cheap to evaluate."""
    gen = torch.Generator().manual_seed(seed)
    a = 10.0 ** (4 * torch.rand(B, n, generator=gen) - 2)
    c = 1.5 * torch.rand(B, n, generator=gen) - 0.25

    def fun(x: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = x - c[index]
        g = a[index] * r
        return 0.5 * (g * r).sum(1), g

    def numpy_fun(b: int):
        ab, cb = a[b].double().numpy(), c[b].double().numpy()
        return lambda x: (0.5 * float((ab * (x - cb) ** 2).sum()), ab * (x - cb))

    return fun, numpy_fun, torch.full((B, n), 0.5)


class Timed:
    """Wraps fun; records when each call starts and ends and how many rows it got."""

    def __init__(self, fun) -> None:
        self.fun, self.calls = fun, []

    def __call__(self, x: torch.Tensor, index: torch.Tensor):
        start = time.perf_counter()
        out = self.fun(x, index)
        self.calls.append((start, time.perf_counter(), x.shape[0]))
        return out

    def inside(self) -> float:
        return sum(end - start for start, end, _ in self.calls)

    def gaps(self, B: int, skip: int) -> list[float]:
        """Optimizer time between consecutive calls made with all B rows, after `skip` calls."""
        c = self.calls
        return [c[i + 1][0] - c[i][1] for i in range(skip, len(c) - 1) if c[i][2] == B and c[i + 1][2] == B]


def step_time(
    B: int, backend: str, history_dtype, iters: int, shared_bounds: bool, n: int = N, history: int = HISTORY
) -> tuple[float, float]:
    """(median optimizer seconds per iteration, fraction of trials accepted)."""
    fun, _, x0 = quadratic(B, n=n)
    timed = Timed(fun)
    lower, upper = (0.0, 1.0) if shared_bounds else (torch.zeros(B, n), torch.ones(B, n))
    res = minimize_lbfgsb(
        timed,
        x0,
        lower,
        upper,
        history=history,
        max_iter=iters,
        gtol=0.0,
        ftol=0.0,
        backend=backend,
        history_dtype=history_dtype,
    )
    accepted = res.nit.sum().item() / (res.nfev - 1).sum().item()
    return statistics.median(timed.gaps(B, skip=history + 2)), accepted


STEP_BACKENDS = (("torch", None), ("cpp", None), ("cpp", torch.bfloat16))


def step_bytes(B: int, elem: int, hist_elem: int, shared_bounds: bool, n: int = N, history: int = HISTORY) -> int:
    """Bytes per iteration with direction and trial fused (the engine's propose step): x, g,
    lower, upper and 2mn history read, d and x_trial written (the trial pass reads x, d, g from
    cache); accept: x_trial, g_t, x, g, lower, upper read, x, g written, 2n history written.
    Shared bounds come from cache: 4n values fewer."""
    return B * n * ((10 if shared_bounds else 14) * elem + (2 * history + 2) * hist_elem)


def copy_bandwidth(nbytes: int, reps: int = 10) -> float:
    """Bytes moved per second (read + write) by a torch copy of nbytes / 2 into another buffer."""
    src = torch.rand(nbytes // 8)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    return nbytes / best


def mlp_attack(B: int, seed: int = 0):
    """The paper's attack objective on a 784-100-100-10 sigmoid MLP, f_b(x) = c ||x - x_b||^2 +
    CE(model(x), l_b) over [0, 1]^n with c = 0.01, random targets and sparse random images. No
    trained model is assumed: random weights scaled by 8 make the attack take ~30 iterations."""
    torch.manual_seed(seed)
    model = MLP((784, 100, 100, 10)).requires_grad_(False)
    for layer in model.layers:
        layer.weight.mul_(8.0)
    images = (torch.rand(B, N) > 0.8) * torch.rand(B, N)
    targets = torch.randint(10, (B,))
    fun = autograd_objective(
        lambda x, i: 0.01 * ((x - images[i]) ** 2).sum(1) + F.cross_entropy(model(x), targets[i], reduction="none")
    )
    return fun, images, lambda x: model(x).argmax(1) == targets


def attack(B: int, backend: str, max_iter: int, history_dtype=None):
    """(result, wall seconds, fraction of wall time outside fun, success mask) of one attack solve."""
    fun, x0, success = mlp_attack(B)
    timed = Timed(fun)
    start = time.perf_counter()
    res = minimize_lbfgsb(timed, x0, 0.0, 1.0, max_iter=max_iter, backend=backend, history_dtype=history_dtype)
    wall = time.perf_counter() - start
    res.distortion = (res.x - x0).norm(dim=1)
    return res, wall, 1 - timed.inside() / wall, success(res.x)


def scipy_vs_engine(B: int) -> dict[str, float]:
    """Wall seconds to solve the B quadratics to scipy's default tolerances: scipy one by one, the engine batched."""
    fun, numpy_fun, x0 = quadratic(B)
    out = {}
    start = time.perf_counter()
    for b in range(B):
        scipy.optimize.minimize(
            numpy_fun(b), x0[b].double().numpy(), jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * N
        )
    out["scipy"] = time.perf_counter() - start
    for backend in ("torch", "cpp"):
        start = time.perf_counter()
        minimize_lbfgsb(fun, x0, 0.0, 1.0, backend=backend)
        out[backend] = time.perf_counter() - start
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 2048, 16384])
    parser.add_argument("--iters", type=int, default=24, help="iterations per step measurement")
    parser.add_argument(
        "--bounds",
        choices=["shared", "per-problem"],
        default="shared",
        help="step table: scalar bounds (one shared row) or [B, n] bound tensors",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="interleaved rounds per measurement at B <= 2048 (steps: best kept; attack: median)",
    )
    parser.add_argument("--attack-iters", type=int, default=100, help="max_iter of the attack solves")
    parser.add_argument("--scipy", type=int, nargs="*", default=[], help="batch sizes for the scipy comparison")
    parser.add_argument("--skip", nargs="*", default=[], choices=["steps", "attack"], help="tables to leave out")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, n = {N}, history = {HISTORY}, float32, "
        f"{args.bounds} bounds in the step table\n"
    )
    if "steps" not in args.skip:
        step_table(args)
    if "attack" not in args.skip:
        attack_table(args)
    scipy_table(args)


def step_table(args: argparse.Namespace) -> None:
    print(
        "| B | torch ms/it | cpp ms/it | cpp bf16-hist ms/it | torch/cpp | MB/it (fp32 hist) | copy GB/s "
        "| bound ms/it | cpp/bound | bf16/bound | accepted | cpp us/problem/it |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for B in args.batch:
        # Rounds interleave the backends and the best median is kept: the CPU is shared.
        shared = args.bounds == "shared"
        rounds = [
            [step_time(B, backend, hist, args.iters, shared) for backend, hist in STEP_BACKENDS]
            for _ in range(args.repeats if B <= 2048 else 1)
        ]
        (t_torch, _), (t_cpp, acc), (t_bf16, _) = [min(r[i] for r in rounds) for i in range(len(STEP_BACKENDS))]
        nbytes, nbytes16 = step_bytes(B, 4, 4, shared), step_bytes(B, 4, 2, shared)
        bw = copy_bandwidth(nbytes)
        bound, bound16 = nbytes / bw, nbytes16 / bw
        print(
            f"| {B} | {1e3 * t_torch:.2f} | {1e3 * t_cpp:.2f} | {1e3 * t_bf16:.2f} | {t_torch / t_cpp:.1f}x "
            f"| {nbytes / 1e6:.0f} | {bw / 1e9:.1f} | {1e3 * bound:.2f} | {t_cpp / bound:.2f} | {t_bf16 / bound16:.2f} "
            f"| {acc:.3f} | {1e6 * t_cpp / B:.2f} |",
            flush=True,
        )


def attack_table(args: argparse.Namespace) -> None:
    print(
        "\n| B | backend | attack wall s | outside fun | mean nit | targets reached | distortion vs cpp: median, max rel. diff |"
    )
    print("|---|---|---|---|---|---|---|")
    attack(8, "cpp", 2)  # warm-up: the first forward/backward pays one-time library setup
    backends = (("cpp", None), ("cpp", torch.bfloat16), ("torch", None))
    for B in args.batch:
        # Warm-up at this size: a VM's first touch of fresh memory (page faults in the host) is
        # paid once per process, not by whichever backend happens to run first.
        attack(B, "cpp", 2)
        # Rounds interleave the backends; each row reports its median round (one round at B > 2048).
        rounds = [
            [attack(B, backend, args.attack_iters, hist) for backend, hist in backends]
            for _ in range(args.repeats if B <= 2048 else 1)
        ]
        base = None
        for j, (backend, hist) in enumerate(backends):
            res, wall, share, hit = sorted((r[j] for r in rounds), key=lambda run: run[1])[len(rounds) // 2]
            base = res if base is None else base
            rel = (res.distortion - base.distortion).abs() / base.distortion.clamp_min(1e-12)
            name = backend + (" bf16-hist" if hist else "")
            print(
                f"| {B} | {name} | {wall:.2f} | {100 * share:.1f}% | {res.nit.double().mean():.1f} "
                f"| {100 * hit.double().mean():.1f}% | {rel.median():.1e}, {rel.max():.1e} |",
                flush=True,
            )


def scipy_table(args: argparse.Namespace) -> None:
    if args.scipy:
        print("\n| B | scipy one by one s | engine torch s | engine cpp s | scipy/torch | scipy/cpp |")
        print("|---|---|---|---|---|---|")
    for B in args.scipy:
        t = scipy_vs_engine(B)
        print(
            f"| {B} | {t['scipy']:.2f} | {t['torch']:.2f} | {t['cpp']:.2f} | {t['scipy'] / t['torch']:.1f}x "
            f"| {t['scipy'] / t['cpp']:.1f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Benchmark of the L-BFGS attack: 1,000 MNIST test images, random targets, a 784-100-100-10
sigmoid MLP; images per second and mean distortion of

  (a) lbfgs_attack (batched engine, warm starts, best-of-all-evaluations), also cold-started,
  (b) per-image scipy fmin_l_bfgs_b with the same c search (timed on a seeded subset),
  (c) one scipy call per c step over the flattened batch (the cleverhans/advertorch way).

All three minimise the same objective with the same c search, steps and per-solve iteration
limit. Run:  flock /tmp/heavy.lock python bench/bench_attack.py [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from intriguing_fast.attack import LBFGSAttack, lbfgs_attack, random_targets
from intriguing_fast.attack.reference.scipy_baselines import scipy_flat_batch, scipy_per_image
from intriguing_fast.data import load_mnist

from sections import emit
from subjects import quick_mlp

HEADING = "## L-BFGS attack (bench/bench_attack.py)"


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run(args: argparse.Namespace) -> str:
    torch.set_num_threads(args.threads)
    model = quick_mlp(Path(args.model_cache), args.epochs).eval()
    test = load_mnist("test")
    images, labels = test.images[: args.count], test.labels[: args.count]
    err = float((model(test.images).argmax(1) != test.labels).double().mean())
    targets = random_targets(labels, 10, seed=0)
    subset = torch.randperm(args.count, generator=torch.Generator().manual_seed(args.seed))[: args.subset]

    # the baselines' objective and search: T = 0.1 throughout from c = 10, every solve warm (no pull back)
    same = dict(temperature=0.1, c_init=10.0, pull_back=0.0)
    ours, t_a = timed(lambda: lbfgs_attack(model, images, targets, **same))
    cold, t_cold = timed(lambda: lbfgs_attack(model, images, targets, warm_start=False, **same))
    (_, d_b, nfev_b), t_b = timed(lambda: scipy_per_image(model, images[subset], targets[subset]))
    (_, d_c, nfev_c), t_c = timed(lambda: scipy_flat_batch(model, images, targets))

    ips_a, ips_b, ips_c = args.count / t_a, args.subset / t_b, args.count / t_c
    rows = [
        (
            "(a) lbfgs_attack",
            args.count,
            t_a,
            ips_a,
            ours.success_rate,
            ours.mean_distortion,
            ours.distortion[subset].nanmean().item(),
            ours.nfev.double().mean().item(),
        ),
        (
            "(a) lbfgs_attack, cold starts",
            args.count,
            t_cold,
            args.count / t_cold,
            cold.success_rate,
            cold.mean_distortion,
            cold.distortion[subset].nanmean().item(),
            cold.nfev.double().mean().item(),
        ),
        (
            "(b) scipy per image",
            args.subset,
            t_b,
            ips_b,
            torch.isfinite(d_b).double().mean().item(),
            d_b[torch.isfinite(d_b)].mean().item(),
            d_b[torch.isfinite(d_b)].mean().item(),
            nfev_b / args.subset,
        ),
        (
            "(c) scipy, flattened batch",
            args.count,
            t_c,
            ips_c,
            torch.isfinite(d_c).double().mean().item(),
            d_c[torch.isfinite(d_c)].mean().item(),
            d_c[subset][torch.isfinite(d_c[subset])].mean().item(),
            nfev_c / args.count,
        ),
    ]
    lines = [
        HEADING,
        "",
        f"{args.count} MNIST test images, random targets (seed 0), FC100-100-10 sigmoid MLP trained "
        f"{args.epochs} epochs with Adam (test error {err:.2%}); every method: T = 0.1, c from 10, "
        f"{LBFGSAttack().resolved()[1]} c steps (x10 then regula falsi in log c), at most 100 L-BFGS iterations per "
        f"solve, history 10; (a) also keeps each image's curvature pairs across c steps. "
        f"(b) is timed on a seeded subset of {args.subset} images (seed {args.seed}); its throughput is per image. "
        f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} intra-op thread(s), one run (`{args.command}`).",
        "",
        "| method | images | seconds | images/s | success | mean distortion | on (b)'s subset | evaluations/image |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {k} | {t:.1f} | {ips:.1f} | {s:.1%} | {d:.5f} | {ds:.5f} | {ev:.0f} |"
        for name, k, t, ips, s, d, ds, ev in rows
    ]
    lines += [
        "",
        f"Throughput of (a): {ips_a / ips_b:.0f}x (b), {ips_a / ips_c:.0f}x (c). "
        f"Warm starts save {1 - ours.nfev.sum().item() / cold.nfev.sum().item():.0%} of the evaluations "
        f"({t_cold / t_a:.2f}x time) at mean distortion {ours.mean_distortion:.4f} vs {cold.mean_distortion:.4f} cold.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--subset", type=int, default=50, help="images for (b)")
    p.add_argument("--seed", type=int, default=0, help="seed of (b)'s subset")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model-cache", default=".benchmarks/bench_attack_fc100-100-10_state.pt")
    p.add_argument("--write", help="replace this benchmark's section of this markdown file")
    args = p.parse_args()
    args.command = "python bench/bench_attack.py" + (f" --write {args.write}" if args.write else "")
    emit(run(args), HEADING, args.write)


if __name__ == "__main__":
    main()

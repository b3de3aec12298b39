"""The attack with subnormal floats flushed to zero (the default, `flush_denormals=True`) and
kept (IEEE), side by side on one zoo model: wall time, mean distortion, model evaluations.

AE400-10's sigmoid encoder saturates, and its subnormal activations and gradients are what x86
cores compute slowly (intriguing_fast/engine/backends/denormals.py). The model is the one `reproduce
--scale SCALE` trains (from the checkpoint cache, or trained first); the attacked images are
the first COUNT training images. Run:
  flock /tmp/heavy.lock python bench/bench_denormals.py [--model AE400-10] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from intriguing_fast import LBFGSAttack
from intriguing_fast.data import load_mnist
from intriguing_fast.experiments import SCALES
from intriguing_fast.models import get_spec, trained_model

from sections import commit, emit, table_section

HEADING = "## Subnormal floats flushed to zero in the attack (bench/bench_denormals.py)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="AE400-10")
    parser.add_argument("--scale", choices=sorted(SCALES), default="paper", help="whose recipe trained the model")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each setting, alternating")
    parser.add_argument("--write", default=None, help="put the section into this markdown file")
    args = parser.parse_args()
    scale = SCALES[args.scale]
    train = load_mnist("train")
    if scale.data_subset is not None:
        train = train.subset(range(min(len(train), scale.data_subset)))
    model = trained_model(args.model, train, recipe=scale.recipe(get_spec(args.model).recipe)).eval()
    images, labels = train.images[: args.count], train.labels[: args.count]
    times: dict[bool, list[float]] = {True: [], False: []}
    results = {}
    for _ in range(args.repeats):
        for flush in (True, False):
            start = time.perf_counter()
            results[flush] = LBFGSAttack(flush_denormals=flush)(model, images, "random", labels=labels)
            times[flush].append(time.perf_counter() - start)
    rows = []
    for flush, label in ((True, "flushed to zero (default)"), (False, "kept (IEEE)")):
        res, best = results[flush], min(times[flush])
        rows.append(
            f"| {label} | {best:.2f} | {best / min(times[True]):.2f}x | {res.mean_distortion:.6f} | "
            f"{res.success.float().mean().item():.3f} | {res.nfev.float().mean().item():.1f} |"
        )
    text = table_section(
        HEADING,
        f"`python bench/bench_denormals.py --model {args.model} --scale {args.scale} --count {args.count}` "
        f"({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, commit {commit()}, "
        f"{time.strftime('%Y-%m-%d')}): {args.model} as `reproduce --scale {args.scale}` trains it, its first "
        f"{args.count} training images, random targets, default attack; best of {args.repeats} runs each.",
        ["subnormals", "seconds", "time", "mean distortion", "success", "evaluations per image"],
        rows,
    )
    emit(text, HEADING, args.write)


if __name__ == "__main__":
    main()

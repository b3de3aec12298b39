"""Host time per model call: the attack's bookkeeping against DDN's step, on a model that costs
next to nothing (a linear softmax layer, 784 -> 10, trained here seeded), so that the wall time is
the host's work around the model: per round, the engine's step and the c search's bookkeeping
for ours, the step and projection for adv_lib's DDN. On a small MLP the model costs about as
much again per call (bench/attackbench.py), so this share sets which of the two is faster
there. Same images and targets for every method, one thread, best of --repeats runs each, in
one run.

    python bench/bench_host.py --write BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

os.environ["OMP_NUM_THREADS"] = "1"

import torch  # noqa: E402

from intriguing_fast import random_targets  # noqa: E402
from intriguing_fast.data import load_mnist  # noqa: E402

import peers  # noqa: E402
from sections import commit, emit, table_section  # noqa: E402

HEADING = "## Host time per model call (bench/bench_host.py; issue 28)"


class Calls(torch.nn.Module):
    """The model, counting its calls (a round of ours, a step of DDN's, a forward pass)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.model(x)


def linear_model(seed: int = 0) -> torch.nn.Module:
    """784 -> 10 softmax regression, 300 Adam steps of 256 training images (seeded)."""
    torch.manual_seed(seed)
    train = load_mnist("train")
    model = torch.nn.Linear(784, 10)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(300):
        batch = torch.randint(0, len(train.labels), (256,))
        loss = torch.nn.functional.cross_entropy(model(train.images[batch].flatten(1)), train.labels[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval().requires_grad_(False)


def timed(method: peers.Method, model: torch.nn.Module, x, y, t, repeats: int) -> tuple[float, int]:
    """Best wall time of `repeats` runs after a warm-up, and the model calls of one run."""
    method.run(model, x, y, t)
    counted, best = Calls(model), float("inf")
    for _ in range(repeats):
        counted.calls = 0
        start = time.perf_counter()
        method.run(counted, x, y, t)
        best = min(best, time.perf_counter() - start)
    return best, counted.calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=100, help="correctly classified test images (default 100)")
    p.add_argument("--repeats", type=int, default=15, help="timed runs per method, the best kept (default 15)")
    p.add_argument("--write", help="replace this benchmark's section of this markdown file")
    args = p.parse_args()
    torch.set_num_threads(1)
    model = linear_model()
    test = load_mnist("test")
    images, labels = test.images.flatten(1), test.labels
    right = (model(images).argmax(1) == labels).nonzero().squeeze(1)[: args.count]
    x, y = images[right], labels[right]
    methods = [peers.ours(), peers.ours(3, 7)]
    methods += [] if peers.unavailable()["adv_lib"] else [peers.adv_lib_ddn(100)]
    rows = []
    for mode in ("untargeted", "targeted"):
        t = random_targets(y, 10, seed=0) if mode == "targeted" else None
        for method in methods:
            wall, calls = timed(method, model, x, y, t, args.repeats)
            rows.append(
                f"| {method.family}, {method.budget} | {mode} | {wall * 1e3:.1f} | {calls} | {wall / calls * 1e3:.3f} |"
            )
            print(rows[-1], flush=True)
    text = table_section(
        HEADING,
        f"`python bench/bench_host.py{f' --write {args.write}' if args.write else ''}`, "
        f"{datetime.date.today()}, commit {commit()}, {platform.machine()}, torch "
        f"{torch.__version__}, one thread: {len(x)} correctly classified MNIST test images, a linear softmax "
        f"layer (784 -> 10), random targets (seed 0), best of {args.repeats} runs per method.",
        ["method", "mode", "ms (all images)", "model calls", "ms per call"],
        rows,
    )
    emit(text, HEADING, args.write)


if __name__ == "__main__":
    main()

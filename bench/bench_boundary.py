"""The boundary search that ends the attack (`boundary_steps`, attack/boundary.py), at several
budgets of the c search: mean L2, success, evaluations per image and wall time against the c
search alone (`boundary_steps=0`, the paper's attack), and whether the adversarials keep their
target when the model sees them again one at a time and in chunks of 7 (the rounding slack).

The subject is bench/frontier.py's: FC100-100-10 trained 20 epochs with Adam, its first 500
correctly classified MNIST test images, random targets (seed 0), one thread. Run:
  flock /tmp/heavy.lock python bench/bench_boundary.py [--write BENCHMARKS.md]    # about 2 minutes
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # before torch loads

import torch  # noqa: E402

from intriguing_fast import LBFGSAttack, attack_engine  # noqa: E402
from intriguing_fast.attack import random_targets  # noqa: E402
from intriguing_fast.data import load_mnist  # noqa: E402

from sections import commit, emit, table_section  # noqa: E402
from subjects import quick_mlp  # noqa: E402

HEADING = "## The boundary search that ends the attack (bench/bench_boundary.py)"
ROOT = Path(__file__).resolve().parents[1]
# (c steps, iterations per solve, temperature): the default and three of bench/frontier.py's budgets.
BUDGETS = ((7, 100, 0.1), (3, 20, 0.1), (3, 10, 0.3), (2, 12, 0.3))


def flips(model: torch.nn.Module, adversarial: torch.Tensor, targets: torch.Tensor) -> int:
    """Adversarials whose class is not their target when evaluated alone or in chunks of 7."""
    with torch.no_grad():
        alone = torch.cat([model(a[None]) for a in adversarial]).argmax(1)
        sevens = torch.cat([model(adversarial[i : i + 7]) for i in range(0, len(adversarial), 7)]).argmax(1)
    return int(((alone != targets) | (sevens != targets)).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--steps", default="0,2,4,8,16", help="boundary_steps to compare (default 0,2,4,8,16)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each setting (the best is shown)")
    parser.add_argument("--model-cache", type=Path, default=ROOT / ".benchmarks" / "frontier_fc100-100-10_state.pt")
    parser.add_argument("--write", help="replace this benchmark's section of this markdown file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = quick_mlp(args.model_cache, 20).eval()
    test = load_mnist("test")
    with torch.no_grad():
        right = (model(test.images).argmax(1) == test.labels).nonzero().squeeze(1)[: args.count]
    images, labels = test.images[right], test.labels[right]
    targets = random_targets(labels, 10, seed=0)
    lines = []
    for steps, max_iter, temperature in BUDGETS:
        for boundary in (int(s) for s in args.steps.split(",")):
            attack = LBFGSAttack(
                steps=steps, temperature=temperature, engine=attack_engine(max_iter), boundary_steps=boundary
            )
            attack(model, images[:8], targets[:8], progress=False)
            walls = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                res = attack(model, images, targets, progress=False)
                walls.append(time.perf_counter() - start)
            adv = res.adversarial
            with torch.no_grad():
                ok = (model(adv).argmax(1) == targets) & ((adv >= 0) & (adv <= 1)).flatten(1).all(1)
            l2 = (adv - images).flatten(1).norm(dim=1)
            line = (
                f"| {steps} x {max_iter}, T = {temperature:g} | {boundary} | {min(walls):.2f} | "
                f"{ok.double().mean():.1%} | {l2[ok].mean():.4f} | {res.nfev.double().median():.0f} | "
                f"{flips(model, adv, targets)} |"
            )
            print(line, flush=True)
            lines.append(line)
    text = table_section(
        HEADING,
        f"`python bench/bench_boundary.py` ({time.strftime('%Y-%m-%d')}, commit {commit()}, "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, one thread): bench/frontier.py's "
        f"model, its first {len(images)} correctly classified MNIST test images, random targets (seed 0). Success "
        f"checked here (the target is the arg-max, every pixel in [0, 1]); mean L2 over the successes; evaluations: "
        f"the attack's own count, a boundary step's forward pass counted as one (plus one pass to find the rounding "
        f"slack); re-evaluated: adversarials whose class is not their target when the model sees them one at a "
        f"time or in chunks of 7. Seconds: best of {args.repeats}.",
        [
            "c steps x iterations",
            "boundary steps",
            "seconds",
            "success",
            "mean L2",
            "evaluations/image (median)",
            "re-evaluated, not the target",
        ],
        lines,
    )
    emit(text, HEADING, args.write)


if __name__ == "__main__":
    main()

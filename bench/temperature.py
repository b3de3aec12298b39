"""How close the attack lands to the exact minimal perturbation, by temperature: on softmax
regression (the zoo's FC10(1e-4), trained on MNIST), whose minimal targeted perturbation is an
exactly solvable QP (intriguing_fast.attack.reference.exact_linear). The figures quoted in README.md,
docs/attack.md and LBFGSAttack's docstring come from this script.

    python bench/temperature.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from intriguing_fast.attack import LBFGSAttack
from intriguing_fast.attack.reference.exact_linear import minimal_distortion
from intriguing_fast.data import load_mnist
from intriguing_fast.models import get_spec, trained_model

MODEL = "FC10(1e-4)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=1000, help="MNIST test images attacked (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random targets (default: 0)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    p.add_argument("--epochs", type=int, help="cap the training epochs, for a quick check (default: the recipe's)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = trained_model(
        MODEL, load_mnist("train"), recipe=get_spec(MODEL).recipe.capped(args.epochs), progress=False
    ).double()
    test = load_mnist("test")
    images, labels = test.images[: args.count].double(), test.labels[: args.count]
    W, b = (t.detach().numpy() for t in (model.layers[0].weight, model.layers[0].bias))
    capped = f" (training capped at {args.epochs} epochs)" if args.epochs else ""
    print(
        f"{MODEL}{capped} on the first {args.count} MNIST test images ({test.source}), random targets "
        f"(seed {args.seed}); ratio = attack's distortion / exact minimal distortion"
    )
    print(
        f"{'temperature':>11} {'mean ratio':>10} {'worst':>7} {'success':>8} {'evaluations/image':>18} {'seconds':>8}"
    )
    for temperature in (0.1, 1.0):
        start = time.perf_counter()
        res = LBFGSAttack(temperature=temperature, seed=args.seed)(model, images, "random", labels=labels)
        seconds = time.perf_counter() - start
        exact = np.array(
            [minimal_distortion(W, b, images[i].flatten().numpy(), int(res.targets[i])) for i in range(args.count)]
        )
        moved = exact > 0  # an image the model already gives the target needs no perturbation
        ratio = res.distortion.numpy()[moved] / exact[moved]
        print(
            f"{temperature:>11} {ratio.mean():>10.4f} {ratio.max():>7.4f} {res.success_rate:>8.3f} "
            f"{res.nfev.double().mean().item():>18.1f} {seconds:>8.1f}"
        )


if __name__ == "__main__":
    main()

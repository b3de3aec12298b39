"""One timed run of an attack method (bench/peers.py), judged here the same way for every method."""

from __future__ import annotations

import time

import torch

from intriguing_fast.attack import distortion

import peers


class Counted(torch.nn.Module):
    """The model, counting the rows it is evaluated on."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.rows = model, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        return self.model(x)


def measure(
    method: peers.Method,
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    targets: torch.Tensor | None,
    subset: int | None = None,
    best_of_under: float = 0.0,
) -> dict:
    """One timed run of `method` after a warm-up on a few images; success judged here: the target
    is the arg-max (untargeted, `targets` None: the label is not), and every pixel lies in [0, 1].
    With `subset`, only the first `subset` images are attacked and the wall time is scaled to all
    of them (for a method that takes one image at a time: its time is linear in the count).
    A run under `best_of_under` seconds is timed twice more and the best of the three kept (one
    run of a fraction of a second varies by tens of percent); the results are the first run's.
    `l2`: each image's L2, NaN where the method failed (or was not run)."""

    def pick(t, k):
        return None if t is None else t[:k]

    method.run(model, images[:8], labels[:8], pick(targets, 8))
    counted = Counted(model).eval()
    count = len(images)
    images, labels, targets = images[:subset], labels[:subset], pick(targets, subset)
    start = time.perf_counter()
    adv, evals = method.run(counted, images, labels, targets)
    wall = time.perf_counter() - start
    if wall < best_of_under:
        for _ in range(2):
            start = time.perf_counter()
            method.run(model, images, labels, targets)
            wall = min(wall, time.perf_counter() - start)
    wall *= count / len(images)
    adv = adv.detach().reshape(images.shape).to(images.dtype)
    with torch.no_grad():
        predicted = model(adv).argmax(1)
    hit = predicted == targets if targets is not None else predicted != labels
    in_box = ((adv >= 0) & (adv <= 1)).flatten(1).all(1)
    ok = hit & in_box
    l2 = (adv - images).flatten(1).norm(dim=1)
    zero = adv.flatten(1).abs().amax(1) == 0  # Carlini-Wagner's starting "best" when nothing better was found
    return {
        "family": method.family,
        "budget": method.budget,
        "wall_s": wall,
        "images_per_s": count / wall,
        "timed_on": len(images),
        "success": float(ok.double().mean()),
        "outside_box": int((~in_box).sum()),
        "zero_images": int(zero.sum()),
        "zero_successes": int((zero & ok).sum()),
        "mean_l2": float(l2[ok].mean()) if ok.any() else float("nan"),
        "median_l2": float(l2[ok].median()) if ok.any() else float("nan"),
        "paper_distortion": float(distortion(adv - images)[ok].mean()) if ok.any() else float("nan"),
        "evals_per_image": counted.rows / len(images),
        "median_evals": float(evals.double().median()) if evals is not None else None,
        "l2": torch.where(ok, l2, float("nan")).tolist() + [float("nan")] * (count - len(images)),
    }

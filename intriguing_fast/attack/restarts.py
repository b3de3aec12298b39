"""Where an image's restarts begin: random points around it, at a scale of its own.

On a ReLU network the distance from an image to the target's region (or to any other class's)
has many local minima, and a c search ends in the one its path from the image leads to; a
search from another starting point often ends in another. Each restart of an image (the
attack's `restarts`) is one more c search from a random point of the sphere about the image of
radius `RESTART_SCALE` times its distance to the model's boundary linearised at the image
(|margin| / ||grad margin||, DeepFool's first step), projected onto the box: a radius that
follows the image and the model, where a fixed one would suit one data set's scale only. The
direction is drawn from a generator seeded by the image's bytes, the attack's seed and the
restart's number, so an image's starts do not depend on its batch-mates, the chunking or the
order of the images.
"""

from __future__ import annotations

import hashlib

import torch

# Radius of the restarts' starting points, in units of the linearised distance: on the
# SmallCNN of bench/attackbench.py (100 images, random targets, the default budget, one
# restart) 1, 2, 3 and 5 gave a mean L2 of 2.1318, 2.1278, 2.1304 and 2.1324 (no restart:
# 2.1528), on its L2-PGD twin 3.0767, 3.0734, 3.0687 and 3.0745 (3.1055).
RESTART_SCALE = 2.0


def random_starts(
    images: torch.Tensor,
    restart: torch.Tensor,
    distance: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    seed: int,
) -> torch.Tensor:
    """Rows [k, n]: for each of `images` [k, n] its restart number `restart` [k] (0: the image
    itself), a point at RESTART_SCALE * `distance` [k] from it in a seeded random direction,
    projected onto the box [`lower`, `upper`]. A distance that is not finite (a flat logit)
    gives the box's diameter, or the image itself where that is not finite either."""
    diameter = (upper - lower).norm()
    radius = (RESTART_SCALE * distance).nan_to_num(nan=float("inf")).clamp(max=diameter).nan_to_num(posinf=0.0)
    starts = images.clone()
    for row in (restart > 0).nonzero().squeeze(1).tolist():
        image = images[row].detach().cpu().contiguous()
        key = hashlib.blake2b(image.numpy().tobytes() + f"|{seed}|{int(restart[row])}".encode(), digest_size=8)
        gen = torch.Generator().manual_seed(int.from_bytes(key.digest(), "little") & (2**63 - 1))
        direction = torch.randn(image.shape, generator=gen, dtype=torch.float64)
        step = (radius[row].double().cpu() * direction / direction.norm()).to(images.dtype).to(images.device)
        starts[row] = torch.minimum(torch.maximum(images[row] + step, lower), upper)
    return starts

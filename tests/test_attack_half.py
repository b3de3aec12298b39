"""Half-precision models (float16, bfloat16) against their float32 twins: the attack's own
variables stay in the inputs' dtype, and the rounding slack a success must clear is sized for
16-bit logits (attack/boundary.py), so their adversarials succeed and stay adversarial."""

import copy

import pytest
import torch
from test_attack import data, mlp, one_thread  # noqa: F401

from intriguing_fast.attack import lbfgs_attack


@pytest.mark.parametrize("targets", ["random", "untargeted"])
@pytest.mark.parametrize("dtype, within", [(torch.float16, 0.01), (torch.bfloat16, 0.05)])
def test_half_precision_models_are_attacked_like_their_float32_twins(mlp, data, targets, dtype, within):
    images, labels = data
    twin = lbfgs_attack(mlp, images, targets, labels=labels)
    half = copy.deepcopy(mlp).to(dtype)
    res = lbfgs_attack(half, images, targets, labels=labels)
    assert res.success.all() and res.adversarial.dtype == images.dtype
    with torch.no_grad():  # still adversarial seen again, alone and in another batch
        alone = torch.cat([half(x[None].to(dtype)).argmax(1) for x in res.adversarial])
        batch = half(res.adversarial.flip(0).to(dtype)).argmax(1).flip(0)
    for predicted in (alone, batch):
        assert (predicted != labels).all() if targets == "untargeted" else torch.equal(predicted, res.targets)
    ratio = float(res.l2.mean() / twin.l2.mean())
    assert 1 - within < ratio < 1 + within, ratio

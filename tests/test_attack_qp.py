"""On a linear softmax model the minimal targeted perturbation is a convex QP; the attack's
distortion must be within 2% of its exact optimum, found here independently via the dual."""

import numpy as np
import pytest
import torch

from intriguing_fast.attack import lbfgs_attack
from intriguing_fast.attack.reference.exact_linear import minimal_distortion


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine a second one mostly spins and waits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def linear_model(n: int, classes: int, seed: int) -> torch.nn.Linear:
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Linear(n, classes).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(classes, n, generator=gen, dtype=torch.float64) * 4.0 / n**0.5)
        model.bias.copy_(0.1 * torch.randn(classes, generator=gen, dtype=torch.float64))
    return model


def test_linear_model_matches_exact_qp():
    n, classes, B = 784, 10, 60
    model = linear_model(n, classes, seed=1)
    gen = torch.Generator().manual_seed(2)
    inputs = torch.rand(B, n, generator=gen, dtype=torch.float64)
    res = lbfgs_attack(model, inputs, "random", seed=3)
    assert bool(res.success.all())
    assert int(res.already_adversarial.sum()) == 0
    W, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    exact = np.array([minimal_distortion(W, b, inputs[i].numpy(), int(res.targets[i])) for i in range(B)])
    ratio = res.distortion.numpy() / exact
    assert ratio.min() >= 1.0 - 1e-6, "the attack cannot beat the exact optimum"
    assert ratio.mean() <= 1.02, ratio

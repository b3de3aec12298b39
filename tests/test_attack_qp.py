"""On a linear softmax model the minimal targeted perturbation is a convex QP; the attack's
distortion must be within 2% of its exact optimum, found here independently via the dual."""
import numpy as np
import pytest
import scipy.optimize
import torch

from intriguing_fast.attack import lbfgs_attack


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


def minimal_perturbation_sq(W: np.ndarray, b: np.ndarray, x: np.ndarray, target: int) -> float:
    """min ||r||^2 s.t. (w_l - w_j).(x + r) + b_l - b_j >= 0 for all j != l, 0 <= x + r <= 1.

    The dual over lambda >= 0 (one multiplier per other class) is smooth and concave:
    r(lambda) = clip(D' lambda / 2, -x, 1 - x), g = ||r||^2 - lambda.(D r + e). We maximise
    it and require the primal point it gives to be feasible and to close the duality gap,
    which certifies the optimum.
    """
    others = [j for j in range(W.shape[0]) if j != target]
    D = W[target] - W[others]
    e = D @ x + b[target] - b[others]

    def r_of(lam: np.ndarray) -> np.ndarray:
        return np.clip(D.T @ lam / 2.0, -x, 1.0 - x)

    def neg_dual(lam: np.ndarray) -> tuple[float, np.ndarray]:
        r = r_of(lam)
        slack = D @ r + e
        return -(r @ r - lam @ slack), slack

    lam, neg_g, _ = scipy.optimize.fmin_l_bfgs_b(neg_dual, np.zeros(len(others)), bounds=[(0, None)] * len(others),
                                                 m=20, factr=10.0, pgtol=1e-12, maxiter=10000)
    r = r_of(lam)
    assert (D @ r + e).min() >= -1e-6 * np.abs(e).max(), "dual solution is not primal feasible"
    assert r @ r - (-neg_g) <= 1e-6 * (r @ r), "duality gap not closed"
    return -neg_g  # a lower bound on the optimum, equal to it up to the gap checked above


def test_linear_model_matches_exact_qp():
    n, classes, B = 784, 10, 60
    model = linear_model(n, classes, seed=1)
    gen = torch.Generator().manual_seed(2)
    inputs = torch.rand(B, n, generator=gen, dtype=torch.float64)
    res = lbfgs_attack(model, inputs, "random", seed=3)
    assert bool(res.success.all())
    assert int(res.already_adversarial.sum()) == 0
    W, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    exact = np.array([np.sqrt(minimal_perturbation_sq(W, b, inputs[i].numpy(), int(res.targets[i])) / n)
                      for i in range(B)])
    ratio = res.distortion.numpy() / exact
    assert ratio.min() >= 1.0 - 1e-6, "the attack cannot beat the exact optimum"
    assert ratio.mean() <= 1.02, ratio

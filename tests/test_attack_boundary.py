"""The boundary search that ends the attack (attack/boundary.py): regula falsi on the margin along
the segment from a successful point to a failing one, against exact crossings, and on a linear
softmax model against the exact minimal perturbation (a convex QP)."""

import numpy as np
import pytest
import torch
from test_attack_qp import linear_model, one_thread  # noqa: F401  (one_thread: autouse fixture)

from intriguing_fast import attack_engine
from intriguing_fast.attack import lbfgs_attack
from intriguing_fast.attack.boundary import BOUNDARY_STEPS, search_boundary
from intriguing_fast.attack.objective import rounding_slack
from intriguing_fast.attack.reference.exact_linear import minimal_distortion


def segments(k: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(k, n, generator=gen, dtype=torch.float64), torch.rand(k, n, generator=gen, dtype=torch.float64)


def classifier(margin_of):
    """margins(x) for a margin function, with the rounding slack of two float64 logits whose
    difference it is; counts its calls."""
    calls = []

    def margins(x):
        calls.append(x.shape[0])
        m = margin_of(x)
        return m, rounding_slack(torch.stack([m, torch.zeros_like(m)], dim=1), torch.float64)

    return margins, calls


def crossing(margin_of, inside, outside, iterations=200):
    """The crossing of the margin along each segment by plain bisection to machine precision."""
    lo, hi = torch.zeros(len(inside), dtype=torch.float64), torch.ones(len(inside), dtype=torch.float64)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        ok = margin_of(inside + mid[:, None] * (outside - inside)) >= 0
        lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
    return lo


def fraction(point, inside, outside):
    return ((point - inside) * (outside - inside)).sum(1) / (outside - inside).square().sum(1)


def test_a_linear_margin_is_crossed_in_a_few_steps():
    """The first step lands on the crossing, where rounding may make it fail; the next ones then
    close 99% of what is left of the segment on its successful side."""
    inside, outside = segments(64, 5, seed=0)
    w = torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    b = -(((inside + outside) / 2) @ w)  # the crossing inside every segment
    flip = (inside @ w + b) < 0
    inside, outside = torch.where(flip[:, None], outside, inside), torch.where(flip[:, None], inside, outside)
    margin_of = lambda x: x @ w + b  # noqa: E731
    classify, calls = classifier(margin_of)
    point = search_boundary(classify, inside, outside, margin_of(outside), 4)
    assert calls == [64] * 5
    slack = 1024 * torch.finfo(torch.float64).eps  # the rounding slack: logits [m, 0] with |m| < 1
    assert torch.allclose(fraction(point, inside, outside), crossing(margin_of, inside, outside), atol=1e-6)
    assert (margin_of(point) >= slack).all()


def test_a_curved_margin_is_crossed_to_high_precision_and_never_left():
    """A margin far from linear along the segment (plain regula falsi would keep one end for
    ever): the Illinois rule still closes in, and every point returned succeeds."""
    inside, outside = segments(64, 3, seed=2)
    shift = torch.linspace(0.05, 0.95, 64, dtype=torch.float64)

    def margin_of(x):
        return torch.tanh(8 * (shift - fraction(x, inside, outside))) + 0.2 * (shift - fraction(x, inside, outside))

    classify, calls = classifier(margin_of)
    exact = crossing(margin_of, inside, outside)
    errors = []
    for steps in (2, 4, 8, 16):
        point = search_boundary(classify, inside, outside, margin_of(outside), steps)
        assert (margin_of(point) >= 1024 * torch.finfo(torch.float64).eps).all()  # the rounding slack
        t = fraction(point, inside, outside)
        assert (t <= exact + 1e-12).all()  # on the successful side of the crossing
        errors.append(float((exact - t).max()))
    assert errors[-1] < 1e-7 and errors == sorted(errors, reverse=True), errors
    assert len(calls) == 4 + 2 + 4 + 8 + 16


@pytest.fixture(scope="module")
def linear_problem():
    n, classes, B = 784, 10, 60
    model = linear_model(n, classes, seed=1)
    inputs = torch.rand(B, n, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    return model, inputs


@pytest.mark.parametrize("steps, max_iter, without, within", [(None, 100, 1.02, 1.01), (2, 10, 1.04, 1.02)])
def test_closer_to_the_exact_minimal_perturbation(linear_problem, steps, max_iter, without, within):
    """On a linear softmax model: the c search alone and with the boundary search, against the
    exact optimum; 2 c steps x 10 iterations leave much more for it than the default."""
    model, inputs = linear_problem
    engine = attack_engine(max_iter)
    alone = lbfgs_attack(model, inputs, "random", seed=3, steps=steps, engine=engine, boundary_steps=0)
    searched = lbfgs_attack(model, inputs, "random", seed=3, steps=steps, engine=engine)
    W, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    exact = np.array([minimal_distortion(W, b, inputs[i].numpy(), int(t)) for i, t in enumerate(searched.targets)])
    assert alone.success.all() and searched.success.all()
    before, after = alone.distortion.numpy() / exact, searched.distortion.numpy() / exact
    assert after.min() >= 1 - 1e-6 and (after <= before + 1e-12).all()
    assert before.mean() > after.mean() and after.mean() <= within and (before.mean() > without or steps is None)
    assert torch.equal(searched.nfev, alone.nfev + 1 + BOUNDARY_STEPS)  # one pass to find the rounding slack
    assert searched.rounds == alone.rounds + 1 + BOUNDARY_STEPS


def test_what_it_finds_stays_adversarial_in_other_batches_and_threads():
    """The boundary search stops a rounding slack past the threshold: the adversarials keep
    their target when the model sees them one at a time, in reverse order, or with 2 threads."""
    from test_attack import toy_data, toy_mlp

    model = toy_mlp(hidden=48, seed=1)
    images, labels = toy_data(64, seed=11)
    res = lbfgs_attack(model, images, "random", labels=labels)
    assert res.success.all()
    with torch.no_grad():
        alone = torch.cat([model(a[None]) for a in res.adversarial]).argmax(1)
        reverse = model(res.adversarial.flip(0)).argmax(1).flip(0)
        before = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            threads = model(res.adversarial).argmax(1)
        finally:
            torch.set_num_threads(before)
    for predicted in (alone, reverse, threads):
        assert torch.equal(predicted, res.targets)


def test_a_success_within_rounding_of_the_threshold_does_not_count():
    """A point whose target logit wins by less than the rounding slack (1024 eps x the largest
    |logit| in float32: 1.2e-4 here) is neither a success for the search nor a candidate."""
    from intriguing_fast.attack.objective import AttackObjective

    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # logits = x
    images = torch.tensor([[0.5, 0.1]])
    obj = AttackObjective(model, images, (2,), torch.tensor([1]), True, 0.0, 0.1, torch.float32)
    rows = torch.tensor([0])
    for gap, counts in ((1e-5, False), (1e-3, True)):
        success, margin = obj.classify(torch.tensor([[0.5, 0.5 + gap]]), rows)
        assert margin.item() > 0 and success.item() == counts
        assert torch.isfinite(obj.best_sq).item() == counts

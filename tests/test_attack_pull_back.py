"""The pulled-back solve (AttackOptions.pull_back): one solve of each c search starts between the
image and its best adversarial, and the solves before it stop at a looser ftol (early_ftol). Both
are held against the lock-step reference in tests/test_attack_rounds.py; here, the attack with
them against the exact minimal perturbation of a linear softmax model (one region per target, so
nothing nearer to find), and their independence from batch-mates, chunking, hedges and restarts."""

import numpy as np
import pytest
import torch
from test_attack import RowwiseMLP, assert_rows_match, data, mlp, one_thread  # noqa: F401
from test_attack_qp import linear_model

from intriguing_fast.attack import LBFGSAttack, lbfgs_attack
from intriguing_fast.attack.reference.exact_linear import minimal_distortion
from intriguing_fast.attack.search import DEFAULT_PULL_BACK, EARLY_FTOL


def test_on_a_linear_model_it_ends_at_the_exact_optimum_as_the_warm_search_does():
    """A linear model's target region is convex: the pulled-back solve comes back to the same
    minimiser, so the attack stays as near the QP's optimum as without it (measured on these 40
    images: mean ratios 1.00696 without, 1.00702 with 0.5, for 51.7 evaluations against 43.9)."""
    model = linear_model(784, 10, seed=1)
    inputs = torch.rand(40, 784, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    W, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    runs = {p: lbfgs_attack(model, inputs, "random", seed=3, pull_back=p) for p in (0.0, 0.5)}
    exact = np.array([minimal_distortion(W, b, inputs[i].numpy(), int(t)) for i, t in enumerate(runs[0.0].targets)])
    ratios = {p: res.distortion.numpy() / exact for p, res in runs.items()}
    assert all(res.success.all() for res in runs.values())
    assert ratios[0.5].min() >= 1 - 1e-6 and ratios[0.5].mean() <= ratios[0.0].mean() + 1e-3
    assert not torch.equal(runs[0.0].nfev, runs[0.5].nfev)  # the solve went another way


@pytest.mark.parametrize("options", [dict(), dict(hedges=1, targets="untargeted"), dict(restarts=1)])
def test_it_does_not_depend_on_batch_mates_or_chunking(mlp, data, options):
    images, labels = data
    model = RowwiseMLP(mlp)
    targets = options.pop("targets", "random")
    full = lbfgs_attack(model, images, targets, labels=labels, pull_back=0.5, **options)
    assert full.success.all()
    mates = torch.tensor([4, 11, 1])
    mate_targets = full.targets[mates] if targets == "random" else targets
    parts = [
        (
            lbfgs_attack(model, images[mates], mate_targets, labels=labels[mates], pull_back=0.5, **options),
            mates.tolist(),
        ),
        (
            lbfgs_attack(model, images, targets, labels=labels, pull_back=0.5, batch_size=6, **options),
            list(range(len(images))),
        ),
    ]
    assert_rows_match(parts, full, exact=True)


def test_the_default_pulls_back_where_a_solve_would_start_pulled_back(mlp, data):
    """None (the default): 0.5 with our search, warm starts and more than 3 c steps, else none;
    the cache key holds the fraction used, so the default and its explicit value share results."""
    assert LBFGSAttack().resolved_pull_back == DEFAULT_PULL_BACK == 0.5
    for options in (dict(steps=3), dict(warm_start=False), dict(search="cleverhans"), dict(pull_back=0.0)):
        assert LBFGSAttack(**options).resolved_pull_back == 0.0, options
    assert LBFGSAttack.paper().resolved_pull_back == 0.0
    assert LBFGSAttack().key() == LBFGSAttack(pull_back=0.5).key() != LBFGSAttack(pull_back=0.0).key()
    images, labels = data
    default, explicit = (lbfgs_attack(mlp, images, "random", labels=labels, **o) for o in ({}, dict(pull_back=0.5)))
    assert torch.equal(default.adversarial, explicit.adversarial) and torch.equal(default.nfev, explicit.nfev)


def test_the_solves_before_the_pulled_back_one_stop_at_the_early_ftol(mlp, data):
    """None (the default): 1e-3 wherever a solve starts pulled back, else none; the key holds the
    value used. A looser one stops the early solves sooner (the lock-step reference in
    tests/test_attack_rounds.py holds where), and an explicit 0 is the search without it."""
    assert LBFGSAttack().resolved_early_ftol == EARLY_FTOL == 1e-3
    for options in (dict(steps=3), dict(pull_back=0.0), dict(search="cleverhans")):
        assert LBFGSAttack(**options).resolved_early_ftol == 0.0, options
    assert LBFGSAttack.paper().resolved_early_ftol == 0.0
    assert LBFGSAttack().key() == LBFGSAttack(early_ftol=1e-3).key() != LBFGSAttack(early_ftol=0.0).key()
    for bad in (1.0, -1e-3, "1e-3"):
        with pytest.raises(ValueError, match="early_ftol: expected None or a float in \\[0, 1\\)"):
            LBFGSAttack(early_ftol=bad)
    images, labels = data
    runs = {e: lbfgs_attack(mlp, images, "random", labels=labels, early_ftol=e) for e in (None, 1e-3, 0.0, 1e-2)}
    assert torch.equal(runs[None].adversarial, runs[1e-3].adversarial) and torch.equal(runs[None].nfev, runs[1e-3].nfev)
    assert all(res.success.all() for res in runs.values())
    assert runs[1e-2].nfev.sum() < runs[1e-3].nfev.sum() < runs[0.0].nfev.sum()

"""A solve that restarts at its problem's best adversarial takes the evaluation recorded there
(attack/objective.py: `best_known`, `at_best`) instead of calling the model again: the same
results as evaluating it afresh, for fewer model calls, and the evaluations reported are those
the model made."""

import pytest
import torch
from test_attack import CLASSES, RowwiseMLP, one_thread, toy_data, toy_mlp  # noqa: F401

from intriguing_fast.attack import LBFGSAttack, lbfgs_attack, random_targets


def attacked(model, images, targets, labels, **options):
    """The attack's result, and the rows its model evaluated (a hook counts them)."""
    rows = []
    hook = model.register_forward_pre_hook(lambda _module, inputs: rows.append(inputs[0].shape[0]))
    try:
        return lbfgs_attack(model, images, targets, labels=labels, **options), sum(rows)
    finally:
        hook.remove()


@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("options", [{}, {"pull_back": 0.0}, {"restarts": 1, "walk_steps": 1}])
def test_restarts_at_the_best_adversarial_reuse_its_evaluation_with_the_results_of_a_fresh_one(options, targeted):
    """With a model whose rows are bitwise independent of their batch-mates, a recorded evaluation
    is exactly what the model would give again: the attack's results are those of one that calls
    the model at each restart (`reuse_evaluations=False`), its evaluations fewer, and each run
    reports the evaluations its model made (bar the input checks' few, the same in both)."""
    model = RowwiseMLP(toy_mlp())
    images, labels = toy_data(24, seed=2)
    targets = random_targets(labels, CLASSES, seed=1) if targeted else "untargeted"
    reused, reused_rows = attacked(model, images, targets, labels, **options)
    fresh, fresh_rows = attacked(model, images, targets, labels, reuse_evaluations=False, **options)
    for field in ("adversarial", "l2", "c", "nit", "success", "predicted"):
        assert torch.equal(getattr(reused, field).nan_to_num(-1), getattr(fresh, field).nan_to_num(-1)), field
    saved = int(fresh.nfev.sum() - reused.nfev.sum())
    assert saved >= len(images)  # at least one restart per image on average took the recorded evaluation
    assert fresh_rows - reused_rows == saved
    assert reused_rows - int(reused.nfev.sum()) == fresh_rows - int(fresh.nfev.sum())


def test_the_papers_attack_evaluates_every_start():
    """`AttackOptions.paper` calls the model at each restart, as it always has: the reproduction's
    results do not move in their last bits."""
    assert LBFGSAttack.paper().reuse_evaluations is False and LBFGSAttack().reuse_evaluations is True

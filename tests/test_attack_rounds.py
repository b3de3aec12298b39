"""The attack's rounds: each image moves to its next c as soon as its own solve stops. That is a
schedule, not another algorithm: every image gets the same results as in lock-step c steps (one
engine run per c step, every image waiting for the slowest), in fewer rounds."""

import pytest
import torch
from test_attack import CLASSES, RowwiseMLP, one_thread, toy_data, toy_mlp  # noqa: F401  (one_thread: autouse)

from intriguing_fast import LBFGSAttack, random_targets
from intriguing_fast.attack.reference.lockstep import lockstep_attack


@pytest.mark.parametrize("pull_back, early_ftol", [(0.0, None), (0.5, None), (0.5, 1e-2)])
def test_rounds_give_lockstep_results_in_fewer_rounds(pull_back, early_ftol):
    """Also with `pull_back`: the fourth solve of each image starts halfway back to it in both; and
    with the early solves' looser ftol, which the rounds apply between rounds and lock step as the
    engine's own ftol."""
    model = RowwiseMLP(toy_mlp())  # each row's output is bitwise independent of its batch-mates
    images, labels = toy_data(24, seed=2)
    targets = random_targets(labels, CLASSES, seed=1)
    # lock step: each c step afresh, one T
    attack = LBFGSAttack(reuse_curvature=False, temperature=0.1, pull_back=pull_back, early_ftol=early_ftol)
    res = attack(model, images, targets)
    best, c_ok, nit, rounds, active = lockstep_attack(model, images, targets, attack)
    assert torch.equal(res.adversarial.flatten(1)[active], best)
    assert torch.equal(res.c[active], torch.where(c_ok > 0, c_ok, float("nan")))
    assert torch.equal(res.nit[active], nit)
    assert res.success.all() and 1 <= res.rounds < rounds
    print(f"rounds {res.rounds} against {rounds} in lock step")


def test_rounds_count_every_chunk():
    model = toy_mlp()
    images, labels = toy_data(12, seed=3)
    whole = LBFGSAttack()(model, images, "random", labels=labels)
    chunked = LBFGSAttack(batch_size=4)(model, images, "random", labels=labels)
    assert chunked.rounds > whole.rounds > 0
    assert whole.rounds >= int((whole.nfev - 2).max())  # an image's evaluations all take rounds of their own

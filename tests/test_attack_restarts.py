"""Restarts (AttackOptions.restarts): more c searches per image, each at its own temperature,
the nearest adversarial of all returned."""
import pytest
import torch

from intriguing_fast.attack import LBFGSAttack, lbfgs_attack
from intriguing_fast.attack.lockstep import lockstep_attack
from intriguing_fast.attack.search import RESTART_TEMPERATURES
from test_attack import RowwiseMLP, assert_rows_match, data, mlp, one_thread  # noqa: F401


@pytest.mark.parametrize("targets", ["random", "untargeted"])
def test_restarts_return_the_nearest_of_the_searches_run_alone(mlp, data, targets):
    """Each restart is the attack at its temperature, run on its own: the same adversarials
    (bitwise, with a batch-invariant model), the nearest kept, every evaluation counted."""
    images, labels = data
    model = RowwiseMLP(mlp)
    both = lbfgs_attack(model, images, targets, labels=labels, restarts=2)
    alone = [lbfgs_attack(model, images, targets, labels=labels, temperature=t)
             for t in (None,) + RESTART_TEMPERATURES[:2]]
    l2 = torch.stack([r.l2.nan_to_num(float("inf")) for r in alone])
    assert torch.equal(both.l2.nan_to_num(float("inf")), l2.amin(dim=0))
    assert torch.equal(both.success, torch.stack([r.success for r in alone]).any(dim=0))
    assert (l2[1:].amin(dim=0) < l2[0]).any()  # some restart found a nearer adversarial here
    # Each run alone counts the clean image's and the final check's evaluations once.
    assert torch.equal(both.nfev, sum(r.nfev for r in alone) - 2 * 2)


def test_restarts_do_not_depend_on_batch_mates_or_chunking(mlp, data):
    images, labels = data
    model = RowwiseMLP(mlp)
    full = lbfgs_attack(model, images, "random", labels=labels, restarts=1)
    mates = torch.tensor([4, 11, 1])
    parts = [(lbfgs_attack(model, images[mates], full.targets[mates], labels=labels[mates], restarts=1), mates.tolist()),
             (lbfgs_attack(model, images, "random", labels=labels, restarts=1, batch_size=6), list(range(len(images))))]
    assert_rows_match(parts, full, exact=True)


def test_restarts_are_checked_and_count_in_the_chunk(mlp, data):
    with pytest.raises(ValueError, match=rf"restarts: expected an int in \[0, {len(RESTART_TEMPERATURES)}\]"):
        LBFGSAttack(restarts=len(RESTART_TEMPERATURES) + 1)
    with pytest.raises(ValueError, match="restarts"):
        LBFGSAttack(restarts=True)
    images, _ = data
    attack = LBFGSAttack(memory_budget=2**22)
    one = attack.images_per_chunk(mlp, images)
    assert LBFGSAttack(memory_budget=2**22, restarts=2).images_per_chunk(mlp, images) == max(1, one // 3)
    assert LBFGSAttack(memory_budget=2**22, restarts=1).images_per_chunk(mlp, images, targeted=False) == max(1, one // 4)
    with pytest.raises(ValueError, match="restarts=0"):
        lockstep_attack(mlp, images, torch.zeros(len(images), dtype=torch.long),
                        LBFGSAttack(temperature=0.1, reuse_curvature=False, restarts=1))

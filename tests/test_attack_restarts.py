"""Restarts (AttackOptions.restarts, attack/restarts.py): more c searches per image from random
points about it, the nearest adversarial of all returned."""

import pytest
import torch
from test_attack import RowwiseMLP, assert_rows_match, data, mlp, one_thread  # noqa: F401

from intriguing_fast.attack import LBFGSAttack, lbfgs_attack
from intriguing_fast.attack.reference.lockstep import lockstep_attack
from intriguing_fast.attack.restarts import RESTART_SCALE, random_starts


@pytest.mark.parametrize("targets", ["random", "untargeted"])
def test_restarts_keep_the_search_from_the_image_and_add_nearer_ones(mlp, data, targets):
    """The first of an image's searches is the attack without restarts, bitwise with a
    batch-invariant model, so no image ends farther; the restarts' evaluations are counted."""
    images, labels = data
    model = RowwiseMLP(mlp)
    plain = lbfgs_attack(model, images, targets, labels=labels)
    restarted = lbfgs_attack(model, images, targets, labels=labels, restarts=2)
    assert torch.equal(restarted.success, plain.success) and plain.success.all()
    assert (restarted.l2 <= plain.l2).all() and (restarted.l2 < plain.l2).any()
    attacked = ~plain.already_adversarial
    assert (restarted.nfev[attacked] > 2 * plain.nfev[attacked]).all()
    assert torch.equal(restarted.nfev[~attacked], plain.nfev[~attacked])


def test_restarts_do_not_depend_on_batch_mates_or_chunking(mlp, data):
    images, labels = data
    model = RowwiseMLP(mlp)
    full = lbfgs_attack(model, images, "random", labels=labels, restarts=1)
    mates = torch.tensor([4, 11, 1])
    parts = [
        (lbfgs_attack(model, images[mates], full.targets[mates], labels=labels[mates], restarts=1), mates.tolist()),
        (lbfgs_attack(model, images, "random", labels=labels, restarts=1, batch_size=6), list(range(len(images)))),
    ]
    assert_rows_match(parts, full, exact=True)


def test_random_starts_lie_in_the_box_at_the_radius_and_depend_on_the_image_alone():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(6, 50, generator=gen, dtype=torch.float64)
    lower, upper = torch.zeros(50, dtype=torch.float64), torch.ones(50, dtype=torch.float64)
    restart = torch.tensor([0, 1, 2, 1, 1, 1])
    distance = torch.tensor([0.3, 0.3, 0.3, 0.05, float("nan"), float("inf")], dtype=torch.float64)
    starts = random_starts(images, restart, distance, lower, upper, seed=0)
    assert torch.equal(starts[0], images[0])  # restart 0: the image itself
    assert ((starts >= lower) & (starts <= upper)).all()
    step = (starts - images).norm(dim=1)
    assert (step[1:4] <= RESTART_SCALE * distance[1:4] + 1e-12).all()
    assert step[3] == pytest.approx(RESTART_SCALE * 0.05)  # a short step stays inside [0, 1]
    assert (step[4:] > 1.0).all()  # no finite scale: the box's diameter, projected
    assert not torch.equal(starts[1], starts[2])  # another restart, another direction
    alone = random_starts(images[3:4], restart[3:4], distance[3:4], lower, upper, seed=0)
    assert torch.equal(alone[0], starts[3])
    assert not torch.equal(random_starts(images[3:4], restart[3:4], distance[3:4], lower, upper, seed=1)[0], starts[3])
    unbounded = random_starts(images[4:5], restart[4:5], distance[4:5], lower - float("inf"), upper, seed=0)
    assert torch.equal(unbounded, images[4:5])  # no scale at all: the image


def test_restarts_are_checked_and_count_in_the_chunk(mlp, data):
    for bad in (-1, True, 1.5):
        with pytest.raises((ValueError, TypeError), match="restarts: expected an int >= 0"):
            LBFGSAttack(restarts=bad)
    images, _ = data
    one = LBFGSAttack(memory_budget=2**22).images_per_chunk(mlp, images)
    assert LBFGSAttack(memory_budget=2**22, restarts=2).images_per_chunk(mlp, images) == max(1, one // 3)
    assert LBFGSAttack(memory_budget=2**22, restarts=1).images_per_chunk(mlp, images, targeted=False) == max(
        1, one // 6
    )  # 2 copies of the image, each with its 2 hedges
    with pytest.raises(ValueError, match="restarts=0"):
        lockstep_attack(
            mlp,
            images,
            torch.zeros(len(images), dtype=torch.long),
            LBFGSAttack(temperature=0.1, reuse_curvature=False, restarts=1),
        )

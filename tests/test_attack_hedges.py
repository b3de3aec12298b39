"""The untargeted attack's class choice (attack/hedges.py): an untargeted first solve, then the
c search targeted at the class it found, hedged by targeted problems at the next classes."""

import numpy as np
import pytest
import torch
from test_attack import CLASSES, RowwiseMLP, assert_rows_match, data, mlp, one_thread  # noqa: F401
from test_attack_qp import linear_model

from intriguing_fast.attack import LBFGSAttack, chunk, lbfgs_attack
from intriguing_fast.attack.hedges import HEDGE_FTOL_FACTOR
from intriguing_fast.attack.objective import margin_and_loss
from intriguing_fast.attack.reference.exact_linear import minimal_distortion


class TwoWays(torch.nn.Module):
    """Logits of 3 classes on [0, 1]^2 from the centre: class 0 (the label) 0; class 1 the
    runner-up at the centre (-1) with a gentle slope along x0, its boundary 1/3 away; class 2
    far lower (-6) but steep along x1, its boundary only 0.3 away."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1) - 0.5
        return torch.stack([torch.zeros_like(x[:, 0]), -1 + 3 * x[:, 0], -6 + 20 * x[:, 1]], dim=1)


def test_a_hedge_finds_the_nearer_class_the_untargeted_loss_passes_by():
    images, labels = torch.full((1, 2), 0.5, dtype=torch.float64), torch.zeros(1, dtype=torch.long)
    alone = lbfgs_attack(TwoWays(), images, "untargeted", labels=labels, hedges=0)
    hedged = lbfgs_attack(TwoWays(), images, "untargeted", labels=labels)
    assert int(alone.predicted) == 1 and float(alone.l2) == pytest.approx(1 / 3, rel=1e-3)
    assert int(hedged.predicted) == 2 and float(hedged.l2) == pytest.approx(0.3, rel=1e-3)
    assert int(hedged.nfev) > int(alone.nfev)  # the hedge's solves are counted


def test_hedges_beyond_the_other_classes_are_the_other_classes():
    """Hedges take the classes other than the label and the untargeted solve's: asking for more
    gives those (a binary classifier: none), never a hedge targeted at the label, which its
    image satisfies with r = 0 and which would win every image and fail its check."""
    images, labels = torch.full((1, 2), 0.5, dtype=torch.float64), torch.zeros(1, dtype=torch.long)
    every = lbfgs_attack(TwoWays(), images, "untargeted", labels=labels, hedges=1)
    for more in (2, 5):
        res = lbfgs_attack(TwoWays(), images, "untargeted", labels=labels, hedges=more)
        assert bool(res.success) and torch.equal(res.adversarial, every.adversarial)
        assert int(res.nfev) == int(every.nfev)
    binary = linear_model(2, 2, seed=3)
    inputs = torch.rand(6, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    none = lbfgs_attack(binary, inputs, "untargeted", hedges=0)
    for more in (1, 3):
        res = lbfgs_attack(binary, inputs, "untargeted", hedges=more)
        assert torch.equal(res.success, none.success) and torch.equal(res.adversarial, none.adversarial)


@pytest.mark.parametrize("hedges", [None, 0, 1, 2])
def test_untargeted_on_a_linear_model_against_the_exact_qp(hedges):
    """The minimal untargeted perturbation of a linear model is the least of the per-class QPs.
    The untargeted loss alone at T = 1 ends 8-10% above it here (third classes pull at the
    boundary); going on targeted at T = 0.1 after the first solve brings it within 1%."""
    n, B = 784, 30
    model = linear_model(n, CLASSES, seed=1)
    inputs = torch.rand(B, n, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    W, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    labels = model(inputs).argmax(1)
    exact = np.array(
        [
            min(minimal_distortion(W, b, inputs[i].numpy(), k) for k in range(CLASSES) if k != labels[i])
            for i in range(B)
        ]
    )
    res = lbfgs_attack(model, inputs, "untargeted", hedges=hedges, temperature=1.0 if hedges is None else None)
    ratio = res.distortion.numpy() / exact
    assert res.success.all() and ratio.min() >= 1 - 1e-6
    assert ratio.mean() <= (1.12 if hedges is None else 1.01), ratio.mean()


def test_untargeted_result_does_not_depend_on_batch_mates_or_chunking(mlp, data):
    """Bitwise with a batch-invariant model, hedges and all (each image's problems are its own)."""
    images, labels = data
    model = RowwiseMLP(mlp)
    full = lbfgs_attack(model, images, "untargeted", labels=labels, hedges=2)
    mates = torch.tensor([3, 17, 0, 9])
    parts = [
        (lbfgs_attack(model, images[3:4], "untargeted", labels=labels[3:4], hedges=2), [3]),
        (lbfgs_attack(model, images[mates], "untargeted", labels=labels[mates], hedges=2), mates.tolist()),
        (lbfgs_attack(model, images, "untargeted", labels=labels, hedges=2, batch_size=5), list(range(len(images)))),
    ]
    assert_rows_match(parts, full, exact=True)


def test_hedges_are_checked_and_count_in_the_chunk(mlp, data):
    with pytest.raises(ValueError, match="hedges: expected None or an int >= 0, got -1"):
        LBFGSAttack(hedges=-1)
    images, _ = data
    attack = LBFGSAttack(memory_budget=2**22)
    targeted, untargeted = attack.images_per_chunk(mlp, images), attack.images_per_chunk(mlp, images, targeted=False)
    assert untargeted == max(1, targeted // 3)  # two hedges by default


def test_margin_and_loss_per_row_matches_each_mode():
    gen = torch.Generator().manual_seed(0)
    logits, classes = torch.randn(6, 5, generator=gen), torch.tensor([0, 1, 2, 3, 4, 0])
    targeted = torch.tensor([True, False, True, False, False, True])
    temperature = torch.tensor([0.1, 1.0, 0.3, 0.1, 2.0, 1.0])
    success, margin, loss = margin_and_loss(logits, classes, targeted, 0.5, temperature)
    for i in range(6):
        one = margin_and_loss(logits[i : i + 1], classes[i : i + 1], bool(targeted[i]), 0.5, float(temperature[i]))
        assert bool(success[i]) == bool(one[0]) and torch.allclose(margin[i], one[1][0])
        assert torch.allclose(loss[i], one[2][0])


def test_paper_attack_is_the_reproductions():
    paper = LBFGSAttack.paper(20, seed=3, steps=4)
    assert (paper.temperature, paper.hedges, paper.boundary_steps, paper.seed, paper.steps) == (0.1, None, 0, 3, 4)
    assert (paper.engine.max_iter, paper.engine.ftol) == (20, 1e-6)
    assert LBFGSAttack.paper().first_temperature == 0.1 and LBFGSAttack.paper().resolved() == (0.1, 7, 10.0)


def test_a_hedge_starts_at_the_c_its_untargeted_problem_found_one_at_and_stops_if_it_fails_there(
    mlp, data, monkeypatch
):
    """Each problem's solves, seen as they end (their c and whether they found an adversarial):
    a hedge's first solve runs at the c of its untargeted problem's first success, so where
    that one failed at the first c the hedges skip it, and the scores still compare alike; a
    hedge that fails there is farther, and makes no other solve."""
    ended: dict[int, list[tuple[float, bool]]] = {}
    count = chunk._CSearchRun._count

    def spy(self, rows):
        for p in rows.nonzero().squeeze(1).tolist():
            ended.setdefault(p, []).append((float(self.obj.c[p]), bool(self.at_x_success[p])))
        count(self, rows)

    monkeypatch.setattr(chunk._CSearchRun, "_count", spy)
    images, labels = data
    res = lbfgs_attack(mlp, images, "untargeted", labels=labels, hedges=2, steps=4, temperature=0.1, c_init=300)
    assert res.success.all()
    M, skipped, lost = int((~res.already_adversarial).sum()), 0, 0  # the problems of the images not adversarial already
    for i in range(M):
        found_at = next(c for c, success in ended[i] if success)
        skipped += found_at < ended[i][0][0]
        for hedge in (i + M, i + 2 * M):
            assert ended[hedge][0][0] == found_at, (i, ended[i], ended[hedge])
            if not ended[hedge][0][1]:
                lost += 1
                assert len(ended[hedge]) == 1, (i, ended[hedge])
    assert 0 < skipped < M  # some images' untargeted problem failed at the first c, some did not
    assert lost > 0


def test_a_hedges_solves_before_its_score_stop_at_a_multiple_of_the_early_ftol(mlp, data, monkeypatch):
    """A hedge's solves before its score only rank its class: they stop at HEDGE_FTOL_FACTOR
    times the early solves' ftol (none looser than the engine's where early_ftol is 0)."""
    images, labels = data
    runs = {}
    for factor in (HEDGE_FTOL_FACTOR, 1.0):
        monkeypatch.setattr(chunk, "HEDGE_FTOL_FACTOR", factor)
        for early_ftol in (None, 0.0):
            runs[factor, early_ftol] = lbfgs_attack(mlp, images, "untargeted", labels=labels, early_ftol=early_ftol)
    assert HEDGE_FTOL_FACTOR == 3.0 and all(bool(res.success.all()) for res in runs.values())
    assert int(runs[3.0, None].nfev.sum()) < int(runs[1.0, None].nfev.sum())
    assert torch.equal(runs[3.0, 0.0].adversarial, runs[1.0, 0.0].adversarial)
    assert torch.equal(runs[3.0, 0.0].nfev, runs[1.0, 0.0].nfev)

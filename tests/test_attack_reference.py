"""The batched attack against straightforward scipy implementations of the same attack."""

import pytest
import torch
from test_attack import CLASSES, one_thread, toy_data, toy_mlp  # noqa: F401  (one_thread: autouse fixture)

from intriguing_fast.attack import attack_engine, lbfgs_attack, random_targets
from intriguing_fast.attack.boundary import BOUNDARY_STEPS
from intriguing_fast.attack.options import PAPER_FTOL
from intriguing_fast.attack.reference.scipy_baselines import scipy_flat_batch, scipy_per_image


@pytest.fixture(scope="module")
def setup():
    model = toy_mlp(hidden=48, seed=1)
    images, labels = toy_data(8, seed=7)
    return model, images, random_targets(labels, CLASSES, seed=2)


# Without the boundary search, the solves of the c search against scipy's; with it, both end on
# the decision boundary and differ in the fourth digit (float32 against scipy's float64: with
# scipy 1.17's L-BFGS-B ours was 1.9e-4 above, on main before this test was loosened too). Both
# stop a solve at the tight ftol of the paper's attack, where the solvers' precision shows.
BOUNDARY = [(0, 1.0), (BOUNDARY_STEPS, 1 + 5e-4)]
ENGINE = attack_engine(ftol=PAPER_FTOL)


@pytest.mark.parametrize("boundary_steps, tolerance", BOUNDARY)
def test_no_larger_than_per_image_scipy(setup, boundary_steps, tolerance):
    model, images, targets = setup
    ours = lbfgs_attack(model, images, targets, boundary_steps=boundary_steps, engine=ENGINE)
    _, distortion, _ = scipy_per_image(model, images, targets, boundary_steps=boundary_steps, ftol=PAPER_FTOL)
    assert ours.success.all() and torch.isfinite(distortion).all()
    assert ours.mean_distortion <= float(distortion.mean()) * tolerance


@pytest.mark.parametrize("boundary_steps, tolerance", BOUNDARY)
def test_no_larger_than_flat_batch_scipy(setup, boundary_steps, tolerance):
    model, images, targets = setup
    ours = lbfgs_attack(model, images, targets, boundary_steps=boundary_steps, engine=ENGINE)
    _, distortion, _ = scipy_flat_batch(model, images, targets, boundary_steps=boundary_steps, ftol=PAPER_FTOL)
    assert ours.success.all() and torch.isfinite(distortion).all()
    assert ours.mean_distortion <= float(distortion.mean()) * tolerance

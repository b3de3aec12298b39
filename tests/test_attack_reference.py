"""The batched attack against straightforward scipy implementations of the same attack."""
import pytest
import torch

from intriguing_fast.attack import lbfgs_attack, random_targets
from intriguing_fast.attack.scipy_baselines import scipy_flat_batch, scipy_per_image
from test_attack import CLASSES, one_thread, toy_data, toy_mlp  # noqa: F401  (one_thread: autouse fixture)


@pytest.fixture(scope="module")
def setup():
    model = toy_mlp(hidden=48, seed=1)
    images, labels = toy_data(8, seed=7)
    return model, images, random_targets(labels, CLASSES, seed=2)


def test_no_larger_than_per_image_scipy(setup):
    model, images, targets = setup
    ours = lbfgs_attack(model, images, targets)
    _, distortion, _ = scipy_per_image(model, images, targets)
    assert ours.success.all() and torch.isfinite(distortion).all()
    assert ours.mean_distortion <= float(distortion.mean())


def test_no_larger_than_flat_batch_scipy(setup):
    model, images, targets = setup
    ours = lbfgs_attack(model, images, targets)
    _, distortion, _ = scipy_flat_batch(model, images, targets)
    assert ours.success.all() and torch.isfinite(distortion).all()
    assert ours.mean_distortion <= float(distortion.mean())

"""Error rates of models on clean, noisy, adversarial and amplified images."""

from __future__ import annotations

import torch
from torch import nn

from ..attack import distortion as perturbation_distortion
from .stats import Rate


@torch.no_grad()
def predictions(model: nn.Module, images: torch.Tensor, batch_size: int = 10_000) -> torch.Tensor:
    return torch.cat([model(images[i : i + batch_size]).argmax(dim=1) for i in range(0, images.shape[0], batch_size)])


def error(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> Rate:
    """How many of `images` the model does not classify as `labels`."""
    return Rate(int((predictions(model, images) != labels).sum()), int(labels.shape[0]))


# Ten classes: chance is 90% error. A model that errs on half of its own training data did not
# learn (a stalled run, a recipe that does not fit the data): its attack numbers mean nothing.
FAILED_TRAINING_ERROR = 0.5


def training_failed(train_error: Rate) -> bool:
    """Whether a model's error on the data it was trained on marks a failed training run."""
    return train_error.errors >= FAILED_TRAINING_ERROR * train_error.total


def distortion(original: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
    """The paper's per-image distortion of `perturbed` from `original`, in float64."""
    return perturbation_distortion((perturbed - original).double())


def gaussian_noise(images: torch.Tensor, stddev: float, seed: int) -> torch.Tensor:
    """images + N(0, stddev^2), not clipped: the paper's control, whose distortion is the stddev.

    Clipping to [0, 1] would turn the noise on the black background into a positive shift.
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn(images.shape, generator=gen, dtype=images.dtype).to(images.device)
    return images + stddev * noise


def amplify(original: torch.Tensor, adversarial: torch.Tensor, target: float) -> torch.Tensor:
    """x + (x' - x) magnified so each image's distortion is at least `target`, clipped to [0, 1].

    Perturbations already larger than `target` are kept as they are (shrinking them would
    undo the attack); zero perturbations (failed or unneeded attacks) stay zero.
    """
    d = distortion(original, adversarial).to(original.dtype)
    scale = torch.where(d > 0, (target / d.clamp_min(1e-12)).clamp_min(1.0), torch.zeros_like(d))
    shape = (-1,) + (1,) * (original.dim() - 1)
    return (original + (adversarial - original) * scale.view(shape)).clamp(0.0, 1.0)

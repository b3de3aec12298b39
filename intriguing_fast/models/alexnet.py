"""AlexNet (Krizhevsky et al. 2012) as the paper's Table 5 describes it, and torchvision's layout
with its state-dict names, so its published weights load unchanged. Weights are never
downloaded: :func:`load_alexnet` reads a local state dict the user supplies.

Both take ``[N, 3, 224, 224]`` images. Table 5's layers: conv 3x11x11x96 stride 4, 96x5x5x256,
256x3x3x384, 384x3x3x384, 384x3x3x256, FC 9216x4096, 4096x4096, 4096x1000. The paper's net has
local response normalisation after the first two convolutions (Krizhevsky's k=2, n=5,
alpha=1e-4, beta=0.75; torch's LocalResponseNorm divides alpha by n, hence alpha=5e-4 here) and
overlapping 3x3 stride-2 max-pooling; conv1 is padded by 2 as in torchvision (55x55 outputs from
224x224 inputs). No grouping: Table 5 lists conv2 as 96x5x5x256, one tower.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..storage import load_weights_only

PAPER_WIDTHS = (96, 256, 384, 384, 256)
TORCHVISION_WIDTHS = (64, 192, 384, 256, 256)
INPUT_SHAPE = (3, 224, 224)


class AlexNet(nn.Module):
    """``features`` (convolutions), ``avgpool`` (to 6x6), flatten, ``classifier`` (three FC layers),
    laid out as torchvision's AlexNet so the state-dict names are its names. Smaller `widths` and
    `hidden` give AlexNet-shaped nets for tests."""

    def __init__(
        self,
        widths: Sequence[int] = TORCHVISION_WIDTHS,
        lrn: bool = False,
        num_classes: int = 1000,
        dropout: float = 0.5,
        hidden: int = 4096,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(*_features(widths, lrn))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(widths[-1] * 36, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _features(widths: Sequence[int], lrn: bool) -> list[nn.Module]:
    """conv1 11x11/4 - pool - conv2 5x5 - pool - conv3, conv4, conv5 3x3 - pool, each conv with
    ReLU; with `lrn`, a local response normalisation after the ReLUs of conv1 and conv2."""
    c1, c2, c3, c4, c5 = widths
    return [
        nn.Conv2d(3, c1, 11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        *_lrn(lrn),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(c1, c2, 5, padding=2),
        nn.ReLU(inplace=True),
        *_lrn(lrn),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(c2, c3, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c3, c4, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c4, c5, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
    ]


def _lrn(on: bool) -> list[nn.Module]:
    """Krizhevsky's local response normalisation (k=2, n=5, alpha=1e-4, beta=0.75), if `on`."""
    return [nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)] if on else []


def alexnet_paper() -> AlexNet:
    """The paper's AlexNet (Table 5 widths, LRN), randomly initialised by torch's defaults."""
    return AlexNet(PAPER_WIDTHS, lrn=True)


def alexnet_torchvision() -> AlexNet:
    """torchvision's AlexNet layout (widths 64-192-384-256-256, no LRN), randomly initialised."""
    return AlexNet(TORCHVISION_WIDTHS, lrn=False)


def load_alexnet(path: str | Path) -> AlexNet:
    """An AlexNet with the weights of a local state-dict file (``torch.load(weights_only=True)``):
    torchvision's layout when conv1 has 64 filters, the paper's when it has 96. Nothing is downloaded."""
    state = load_weights_only(Path(path))
    if not isinstance(state, dict) or not isinstance(state.get("features.0.weight"), torch.Tensor):
        raise ValueError(f"{path}: expected an AlexNet state dict with 'features.0.weight' (torchvision names)")
    width = state["features.0.weight"].shape[0]
    builders = {TORCHVISION_WIDTHS[0]: alexnet_torchvision, PAPER_WIDTHS[0]: alexnet_paper}
    if width not in builders:
        raise ValueError(f"{path}: conv1 has {width} filters; expected 64 (torchvision) or 96 (the paper's)")
    model = builders[width]()
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # missing, unexpected or mis-shaped tensors
        raise ValueError(f"{path}: state dict does not match AlexNet: {err}") from None
    return model.eval()

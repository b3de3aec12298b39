"""The paper's MNIST architectures. Every model maps ``[N, 1, 28, 28]`` or ``[N, 784]`` to logits."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def flatten_images(x: torch.Tensor) -> torch.Tensor:
    """``[N, 1, 28, 28]``, ``[N, 28, 28]`` or ``[N, 784]`` -> ``[N, 784]``; anything else is an error."""
    if x.ndim >= 2 and x.shape[1:].numel() == 784 and x.shape[1:] in ((784,), (28, 28), (1, 28, 28)):
        return x.reshape(x.shape[0], 784)
    raise ValueError(f"x: expected images of shape [N, 1, 28, 28] or [N, 784], got {tuple(x.shape)}")


class MLP(nn.Module):
    """Fully connected net ``sizes[0] -> ... -> sizes[-1]`` with sigmoid hidden units.

    ``MLP((784, 10))`` is softmax regression (FC10); ``MLP((784, 100, 100, 10))`` is FC100-100-10.
    """

    def __init__(self, sizes: Sequence[int]) -> None:
        super().__init__()
        if len(sizes) < 2 or sizes[0] != 784 or any(s < 1 for s in sizes):
            raise ValueError(f"sizes: expected (784, ..., n_classes) of positive widths, got {tuple(sizes)}")
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations of every hidden layer (the paper's phi(x) for each layer)."""
        h = flatten_images(x)
        out = []
        for layer in self.layers[:-1]:
            h = torch.sigmoid(layer(h))
            out.append(h)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.hidden(x)
        return self.layers[-1](hidden[-1] if hidden else flatten_images(x))


class AutoencoderClassifier(nn.Module):
    """AE400-10: a 784-400 sigmoid autoencoder's code fed to a softmax layer.

    The decoder is used only while the autoencoder is trained (unsupervised); the classifier is
    ``head(encode(x))`` with the encoder frozen (the paper does not fine-tune it).
    """

    def __init__(self, code_size: int = 400) -> None:
        super().__init__()
        self.encoder = nn.Linear(784, code_size)
        self.decoder = nn.Linear(code_size, 784)
        self.head = nn.Linear(code_size, 10)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The sigmoid code, ``[N, code_size]``."""
        return torch.sigmoid(self.encoder(flatten_images(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x))


class ConvNet(nn.Module):
    """Small ReLU convolutional net for the unit probing of Section 3.

    conv5x5(16) - maxpool2 - conv5x5(32) - maxpool2 - fc(100) - fc(10); :meth:`features` is the
    100-unit layer, the phi(x) whose units and random directions are compared.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.fc = nn.Linear(32 * 4 * 4, 100)
        self.out = nn.Linear(100, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate ReLU activations, ``[N, 100]``."""
        h = flatten_images(x).view(-1, 1, 28, 28)
        h = torch.max_pool2d(torch.relu(self.conv1(h)), 2)
        h = torch.max_pool2d(torch.relu(self.conv2(h)), 2)
        return torch.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))

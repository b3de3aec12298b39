"""Weight decay as the paper's lambda: the convention that reproduces Table 1 (docs/models.md).

The objective is ``mean cross-entropy + sum_layers lambda_l / 2 * ||params_l||^2``, where a
layer's parameters are its weights and its bias: classic (coupled) weight decay, the update
``p <- p - lr * (grad + lambda * p)`` applied to every parameter. With it, full-batch training
to convergence gives FC10 test errors 7.37%, 9.18%, 19.95% (paper: 7.4%, 9.4%, 20%).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

WEIGHT_DECAY_CONVENTION = "mean-ce + sum_l lambda_l/2 * (|W_l|^2 + |b_l|^2)"


def weight_decay_penalty(layers: Sequence[nn.Module], lambdas: Sequence[float]) -> torch.Tensor:
    """``sum_l lambdas[l] / 2 * ||params of layers[l]||^2`` (weights and biases)."""
    if len(layers) != len(lambdas):
        raise ValueError(f"lambdas: expected one per layer ({len(layers)}), got {len(lambdas)}")
    terms = [lam / 2 * sum(p.pow(2).sum() for p in layer.parameters()) for layer, lam in zip(layers, lambdas) if lam]
    return torch.stack(terms).sum() if terms else torch.zeros(())

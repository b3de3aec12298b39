"""A classifier split at a layer into a lower part (x -> h) and an upper part (h -> logits), so
that adversarial examples can be made for a hidden layer's output h (Szegedy et al., Sec. 4.2:
"a pool per layer, used to train the layers above"): the attack works on any classifier, so
``lbfgs_attack(split.upper, split.codes(x), ..., bounds=split.bounds)`` perturbs h in its box.

Layer names: ``"input"`` (no split: the pixels, in [0, 1]) for every model; ``"hidden1"`` ...
``"hiddenK"`` for the zoo's :class:`~intriguing_fast.models.architectures.MLP` (sigmoid
outputs, box [0, 1]); the child names of an ``nn.Sequential`` (box [0, 1] after an
``nn.Sigmoid``, else the bounds the caller gives). Any other split: build a `LayerSplit` directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..architectures import MLP, flatten_images

INPUT = "input"
Bounds = tuple[float, float]


@dataclass(frozen=True, eq=False)
class LayerSplit:
    """``upper(lower(x))`` is the model's logits; the attack perturbs ``lower(x)`` inside `bounds`.
    Both parts share the model's parameters: training `upper` trains the model's upper layers."""

    layer: str
    lower: nn.Module
    upper: nn.Module
    bounds: Bounds

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's output h = lower(x), without gradients (what a pool of this layer holds)."""
        return self.lower(x)

    def check(self, x: torch.Tensor) -> None:
        """Raise a ValueError naming the layer if `upper` does not accept `lower(x)`, does not give
        logits [N, classes], or the layer's outputs leave `bounds` (the attack's box)."""
        try:
            h = self.codes(x)
            with torch.no_grad():
                logits = self.upper(h)
        except Exception as exc:  # the parts' own errors, whatever they are, name the split
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ValueError(
                f"layer {self.layer!r}: the upper part does not accept the lower part's output "
                f"({type(exc).__name__}: {first})"
            ) from exc
        if logits.dim() != 2 or logits.shape[0] != x.shape[0]:
            raise ValueError(
                f"layer {self.layer!r}: the upper part gives shape {tuple(logits.shape)}, expected "
                f"logits [{x.shape[0]}, classes]"
            )
        low, high = self.bounds
        if h.numel() and (h.min() < low or h.max() > high):
            raise ValueError(
                f"layer {self.layer!r}: its outputs range over [{float(h.min()):.4g}, "
                f"{float(h.max()):.4g}], outside the bounds {self.bounds}; give bounds that hold them"
            )


class _MLPLower(nn.Module):
    """x -> the MLP's k-th hidden activations (k >= 1)."""

    def __init__(self, mlp: MLP, k: int) -> None:
        super().__init__()
        self.layers = mlp.layers[:k]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = flatten_images(x)
        for layer in self.layers:
            h = torch.sigmoid(layer(h))
        return h


class _MLPUpper(nn.Module):
    """The MLP's k-th hidden activations -> its logits."""

    def __init__(self, mlp: MLP, k: int) -> None:
        super().__init__()
        self.hidden, self.out = mlp.layers[k:-1], mlp.layers[-1]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            h = torch.sigmoid(layer(h))
        return self.out(h)


def layer_names(model: nn.Module) -> tuple[str, ...]:
    """The layers `split_model` can split `model` at, lowest first."""
    if isinstance(model, MLP):
        return (INPUT, *(f"hidden{k}" for k in range(1, len(model.layers))))
    if isinstance(model, nn.Sequential):
        return (INPUT, *list(model._modules)[:-1])
    return (INPUT,)


def split_model(model: nn.Module, layer: str, bounds: Bounds | None = None) -> LayerSplit:
    """`model` split after `layer` (see the module's doc for names); `bounds` overrides the box of
    the layer's outputs (default: [0, 1] for the input and for sigmoid layers)."""
    names = layer_names(model)
    if layer not in names:
        more = "" if len(names) > 1 else " (other models: build a LayerSplit(layer, lower, upper, bounds))"
        raise ValueError(f"layer: {type(model).__name__} has no layer {layer!r}; expected one of {list(names)}{more}")
    if layer == INPUT:
        return LayerSplit(layer, nn.Identity(), model, bounds or (0.0, 1.0))
    k = names.index(layer)
    if isinstance(model, MLP):
        return LayerSplit(layer, _MLPLower(model, k), _MLPUpper(model, k), bounds or (0.0, 1.0))
    sigmoid = isinstance(model[k - 1], nn.Sigmoid)
    if bounds is None and not sigmoid:
        raise ValueError(
            f"bounds: layer {layer!r} ({type(model[k - 1]).__name__}) is not a sigmoid; give the "
            "(lower, upper) range its adversarial outputs must stay in"
        )
    return LayerSplit(layer, model[:k], model[k:], bounds or (0.0, 1.0))

"""Checks of the attack's inputs; every error names the argument and what was expected."""
from __future__ import annotations

from numbers import Real

import torch


def check_model(model: object) -> torch.nn.Module:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module returning logits, got {type(model).__name__}")
    return model


def check_inputs(inputs: object) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs: expected a torch.Tensor [B, ...], got {type(inputs).__name__}")
    if inputs.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"inputs: expected dtype float32 or float64, got {inputs.dtype}")
    if inputs.dim() < 2 or inputs.shape[0] == 0 or inputs[0].numel() == 0:
        raise ValueError(f"inputs: expected a non-empty batch [B, ...] with B >= 1 (use x[None] for one image), "
                         f"got shape {tuple(inputs.shape)}")
    if not torch.isfinite(inputs).all():
        bad = (~torch.isfinite(inputs.flatten(1))).any(dim=1).nonzero().squeeze(1)[:5].tolist()
        raise ValueError(f"inputs: contain NaN or inf (images {bad})")
    return inputs.detach()


def check_bounds(bounds: tuple[float | torch.Tensor, float | torch.Tensor], inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(lower, upper) scalars or tensors broadcastable to one image; inputs must lie inside."""
    if not isinstance(bounds, tuple) or len(bounds) != 2:
        raise TypeError(f"bounds: expected a pair (lower, upper), got {bounds!r}")
    out = []
    for name, b in zip(("lower", "upper"), bounds):
        if isinstance(b, Real) and not isinstance(b, bool):
            b = torch.tensor(float(b))
        if not isinstance(b, torch.Tensor):
            raise TypeError(f"bounds: {name} must be a float or a tensor, got {type(b).__name__}")
        try:
            b = b.to(inputs.dtype).to(inputs.device).expand(inputs.shape[1:]).reshape(-1)
        except RuntimeError:
            raise ValueError(f"bounds: {name} of shape {tuple(b.shape)} does not broadcast to one image "
                             f"{tuple(inputs.shape[1:])}") from None
        if torch.isnan(b).any():
            raise ValueError(f"bounds: {name} contains NaN")
        out.append(b)
    lower, upper = out
    if (lower > upper).any():
        raise ValueError("bounds: lower > upper somewhere")
    flat = inputs.flatten(1)
    outside = ((flat < lower) | (flat > upper)).any(dim=1)
    if outside.any():
        bad = outside.nonzero().squeeze(1)[:5].tolist()
        raise ValueError(f"inputs: images {bad} lie outside bounds [{float(lower.min())}, {float(upper.max())}]")
    return lower, upper


def check_labels(labels: object, name: str, batch: int, num_classes: int, device: torch.device) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name}: expected a LongTensor [{batch}] of class indices, got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"{name}: expected an integer tensor of class indices, got dtype {labels.dtype}")
    if tuple(labels.shape) != (batch,):
        raise ValueError(f"{name}: expected shape ({batch},), one label per input, got {tuple(labels.shape)}")
    if batch and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name}: class indices must lie in [0, {num_classes - 1}] (the model has {num_classes} "
                         f"classes), got values in [{int(labels.min())}, {int(labels.max())}]")
    return labels.to(device=device, dtype=torch.long)

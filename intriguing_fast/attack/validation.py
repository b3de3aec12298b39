"""Checks of the attack's inputs; every error names the argument and what was expected."""

from __future__ import annotations

from numbers import Real

import torch

from ..storage import one_line
from .objective import check_logits


def check_model(model: object) -> torch.nn.Module:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module returning logits, got {type(model).__name__}")
    return model


def check_inputs(inputs: object) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs: expected a torch.Tensor [B, ...], got {type(inputs).__name__}")
    if inputs.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"inputs: expected dtype float32 or float64, got {inputs.dtype}")
    if inputs.device.type not in ("cpu", "cuda"):
        raise ValueError(f"inputs: expected a tensor on a CPU or CUDA device, got {inputs.device}")
    if inputs.dim() < 2 or inputs.shape[0] == 0 or inputs[0].numel() == 0:
        raise ValueError(
            f"inputs: expected a non-empty batch [B, ...] with B >= 1 (use x[None] for one image), "
            f"got shape {tuple(inputs.shape)}"
        )
    if not torch.isfinite(inputs).all():
        bad = (~torch.isfinite(inputs.flatten(1))).any(dim=1).nonzero().squeeze(1)[:5].tolist()
        raise ValueError(f"inputs: contain NaN or inf (images {bad})")
    return inputs.detach()


def check_bounds(
    bounds: tuple[float | torch.Tensor, float | torch.Tensor], inputs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
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
            raise ValueError(
                f"bounds: {name} of shape {tuple(b.shape)} does not broadcast to one image {tuple(inputs.shape[1:])}"
            ) from None
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
        raise ValueError(
            f"{name}: class indices must lie in [0, {num_classes - 1}] (the model has {num_classes} "
            f"classes), got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    return labels.to(device=device, dtype=torch.long)


def check_targets_differ(targets: torch.Tensor, labels: torch.Tensor) -> None:
    """Explicit targets against explicit labels: a row whose target is its label would count as
    a success of distortion 0."""
    same = (targets == labels).nonzero().squeeze(1)
    if same.numel():
        more = f"... ({same.numel()} rows)" if same.numel() > 5 else ""
        raise ValueError(
            f"targets: rows {same[:5].tolist()}{more} equal the image's label; a target must differ from "
            "the image's label (drop those rows, or pass targets='random')"
        )


def check_c_init(c_init: float, dtype: torch.dtype) -> None:
    info = torch.finfo(dtype)
    if not info.tiny <= c_init <= info.max:
        raise ValueError(
            f"c_init: expected a float in [{info.tiny:.4g}, {info.max:.4g}], the range of the images' "
            f"dtype {dtype}, got {c_init!r}"
        )


def model_dtype(model: torch.nn.Module, inputs: torch.Tensor) -> torch.dtype:
    """The dtype the model computes in: its first floating-point parameter's, else the inputs'."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), inputs.dtype)


def check_model_device(model: torch.nn.Module, inputs: torch.Tensor) -> None:
    devices = {t.device for t in (*model.parameters(), *model.buffers())}
    if devices and inputs.device not in devices:
        raise ValueError(
            f"model: its parameters are on {', '.join(sorted(map(str, devices)))} but inputs on "
            f"{inputs.device}: move one of them (model.to(inputs.device))"
        )


def check_forward(model: torch.nn.Module, inputs: torch.Tensor, model_dtype: torch.dtype) -> None:
    """The attack's first forward pass, on a copy of the first input: an error of the model's own
    on inputs of this shape comes back as a ValueError that names the shape, and a model that
    changes its input in place (autograd refuses that on the attack's points) is named."""
    check_model_device(model, inputs)
    x = inputs[:1].to(model_dtype, copy=True)
    try:
        with torch.no_grad():
            model(x)
    except (MemoryError, torch.cuda.OutOfMemoryError):
        raise
    except Exception as exc:
        hint = (
            "does it expect flattened images? then pass inputs.flatten(1) or put torch.nn.Flatten() first"
            if inputs.dim() > 2
            else "does it expect images [B, C, H, W]? then reshape inputs"
        )
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(
            f"model: failed on inputs of shape {tuple(inputs.shape)} ({hint}; it runs in {model_dtype}): {first}"
        ) from exc
    if not torch.equal(x, inputs[:1].to(model_dtype)):
        raise ValueError(
            "model: it changes its input in place (an in-place operation such as x.clamp_(0, 1) on "
            "its argument); the attack differentiates through the input: use the out-of-place form "
            "(x = x.clamp(0, 1))"
        )


def clean_logits(model: torch.nn.Module, inputs: torch.Tensor, dtype: torch.dtype, chunk: int) -> torch.Tensor:
    """The model's logits on the unperturbed inputs, `chunk` at a time with the model computing in
    `dtype`, in the inputs' dtype; checked as the model's output (`check_logits`) and as logits
    of clean images (`check_clean_logits`)."""
    out = []
    with torch.no_grad():
        for start in range(0, inputs.shape[0], chunk):
            x = inputs[start : start + chunk]
            out.append(check_logits(model(x.to(dtype)), x.shape[0], out[0].shape[1] if out else None).to(inputs.dtype))
    return check_clean_logits(torch.cat(out))


def check_clean_logits(logits: torch.Tensor) -> torch.Tensor:
    """The logits of the unperturbed inputs must be finite, or no success can be decided, and must
    not be probabilities: a softmax at the model's end flattens the loss the attack descends (and
    a margin in probability is not one in logits), so kappa and the c search lose their meaning."""
    bad = (~torch.isfinite(logits)).any(dim=1).nonzero().squeeze(1)
    if bad.numel():
        raise ValueError(
            f"model: gives NaN or inf logits on inputs {bad[:5].tolist()}{'...' if bad.numel() > 5 else ''}"
        )
    sums = logits.double().sum(dim=1)
    if logits.shape[0] and ((logits >= 0) & (logits <= 1)).all() and ((sums - 1).abs() <= 1e-3).all():
        raise ValueError(
            f"model: its outputs on the {logits.shape[0]} inputs are probabilities (every row in [0, 1], "
            "summing to 1: a softmax at its end?); the attack needs logits, the scores before a softmax: "
            "remove the final softmax, or attack a wrapper that returns their log (torch.log(p) is a "
            "valid set of logits)"
        )
    return logits


def num_classes(model: torch.nn.Module, images: torch.Tensor) -> int:
    """Classes of the model's logits on one image: a model that does not fit the data fails here,
    before anything is written."""
    try:
        with torch.no_grad():
            logits = model(images[:1].to(model_dtype(model, images)))
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ValueError(f"the model fails on images of shape {tuple(images.shape[1:])}: {one_line(exc)}") from None
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"the model must return logits [N, classes >= 2], got {getattr(logits, 'shape', logits)}")
    return logits.shape[1]

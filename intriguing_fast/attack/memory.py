"""How many images fit in one chunk of the attack under a memory budget."""

from __future__ import annotations

import torch

from ..engine import StateMemoryError, available_bytes


def activation_bytes(model: torch.nn.Module, image: torch.Tensor) -> int:
    """Bytes of the outputs of every leaf module in one forward pass of one image."""
    total = 0

    def hook(_module, _inputs, output):
        nonlocal total
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model(image[None])
    finally:
        for h in handles:
            h.remove()
    return total


def chunk_size(
    model: torch.nn.Module, image: torch.Tensor, history: int, budget: int, batch_size: int | None = None
) -> int:
    """Images per chunk so that solver state and autograd activations fit in `budget` bytes
    (`batch_size` instead, where the user chose one).

    Per image: the engine's history (2 * history vectors) and ~25 more image-sized vectors
    (iterate, gradient, direction, trial point, bounds, best adversarial, last failing point,
    ...), plus three copies of the model's activations (forward values, saved tensors, their
    gradients). Refuses a history with which not even one image fits in the memory available.
    """
    if batch_size is not None:
        return batch_size
    per_image = image.numel() * image.element_size() * (2 * history + 25) + 3 * activation_bytes(model, image)
    free = available_bytes(image.device)
    if free is not None and per_image > free:
        raise StateMemoryError(
            f"engine.history: one image with history={history} needs {per_image / 1e9:.3g} GB of "
            f"solver state and activations, but {free / 1e9:.3g} GB is available on "
            f"{image.device}: lower the history (attack_engine(history=...))"
        )
    return max(1, budget // per_image)

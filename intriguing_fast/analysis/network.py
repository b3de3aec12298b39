"""A network as the chain of its leaf modules, in the order its forward calls them, with the
shape each one sees: what the spectral bounds and the measured gains walk.

A network is a module (its forward must be the composition of its leaf modules, each called
once, with only reshapes between them: true of ``nn.Sequential`` and of torchvision's AlexNet)
or a list of layers, ``nn.Module`` or ``(name, module)``, applied in order. Functional steps
inside a forward (``torch.sigmoid(x)``) are invisible to hooks: give such models as a list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

Layers = nn.Module | Sequence[nn.Module | tuple[str, nn.Module]]
Hook = Callable[[str, nn.Module, torch.Tensor, torch.Tensor], None]


@dataclass(frozen=True)
class Traced:
    """One leaf layer: its path, the module, and the shapes of one sample in and out."""

    path: str
    module: nn.Module
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


def parts(layers: Layers) -> list[tuple[str, nn.Module]]:
    """The network's named top-level parts: the module itself, or the list's entries."""
    if isinstance(layers, nn.Module):
        return [("", layers)]
    return [entry if isinstance(entry, tuple) else (str(i), entry) for i, entry in enumerate(layers)]


def forward(layers: Layers, x: torch.Tensor) -> torch.Tensor:
    """The network's output: the module's forward, or the list's layers in order."""
    for _, module in parts(layers):
        x = module(x)
    return x


def leaves(layers: Layers) -> list[tuple[str, nn.Module]]:
    """Every leaf module (no children) with its dotted path."""
    found = []
    for prefix, part in parts(layers):
        for name, module in part.named_modules():
            if not any(True for _ in module.children()):
                found.append((".".join(p for p in (prefix, name) if p), module))
    return found


@contextmanager
def hooked(layers: Layers, on_call: Hook) -> Iterator[None]:
    """Call ``on_call(path, module, input, output)`` after each leaf runs; the input is taken
    before the module runs, so an in-place module (``ReLU(inplace=True)``) cannot change it first."""
    handles, inputs = [], {}
    for path, module in leaves(layers):

        def pre(mod: nn.Module, args: tuple, path: str = path) -> None:
            inputs[path] = args[0].clone()

        def post(mod: nn.Module, args: tuple, out: torch.Tensor, path: str = path) -> None:
            on_call(path, mod, inputs.pop(path), out)

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _dtype(layers: Layers) -> torch.dtype:
    """The floating dtype of the first parameter (the default one for parameter-free networks)."""
    params = (p for _, part in parts(layers) for p in part.parameters() if p.is_floating_point())
    return next(params, torch.empty(0)).dtype


def require_eval(layers: Layers) -> None:
    """Batch norm and dropout must be in eval mode (with running statistics): in training mode their
    output depends on the batch or on chance, and a forward pass would change running statistics."""
    for path, m in leaves(layers):
        batch_stats = isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or m.running_var is None)
        if batch_stats or (isinstance(m, nn.modules.dropout._DropoutNd) and m.training):
            raise ValueError(
                f"{path}: {type(m).__name__} in training mode or without running statistics: its "
                "output depends on the batch or on chance; call .eval()"
            )


def trace(layers: Layers, input_shape: Sequence[int]) -> list[Traced]:
    """The leaf layers in call order with their shapes, from one forward pass on zeros; a leaf
    called twice (shared) or never (outside the forward's path) is an error naming it."""
    require_eval(layers)
    seen: list[Traced] = []

    def record(path: str, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        seen.append(Traced(path, module, tuple(x.shape[1:]), tuple(y.shape[1:])))

    with hooked(layers, record), torch.no_grad():
        forward(layers, torch.zeros(1, *input_shape, dtype=_dtype(layers)))
    paths = [t.path for t in seen]
    twice = sorted({p for p in paths if paths.count(p) > 1})
    never = [p for p, _ in leaves(layers) if p not in paths]
    if twice or never:
        raise ValueError(
            f"layers: not a chain of leaf modules: called more than once {twice}, never called {never}; "
            "give the layers that compute the output, in order, as a list"
        )
    return seen

"""Unit probing (the paper's Section 3): the images of a held-out set that maximise a
layer's activation along a direction, <phi(x), e_i> for a unit, <phi(x), v> for a random v.

Works on any torch model: the layer is named as in ``dict(model.named_modules())`` and its
output captured by a forward hook; conv outputs are flattened per image. The dataset is
streamed in batches and each direction keeps a running top-k (each batch's scores merged with
it by ``torch.topk`` over the concatenation), so memory stays bounded for any dataset size.
A hook sees a module's output, not what a model's forward does to it next with a functional
call (``torch.relu(self.fc(h))``): ``transform`` applies that step (phi = transform(output)).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

Data = torch.Tensor | Iterable[torch.Tensor | Sequence[torch.Tensor]]
Transform = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Probe:
    """The top-k images of a dataset for each direction, best first (all tensors on the CPU).

    indices [D, k]: positions in the dataset (in the order it was streamed); values [D, k]: the
    projections <phi(x), v>; labels [D, k]: their labels when the batches carried labels, else
    None; mean [width]: phi averaged over the dataset; count: the images streamed."""

    layer: str
    directions: torch.Tensor
    indices: torch.Tensor
    values: torch.Tensor
    labels: torch.Tensor | None
    mean: torch.Tensor
    count: int

    def images(self, dataset: torch.Tensor) -> torch.Tensor:
        """The top-k images themselves, [D, k, *image shape], from the dataset tensor that was probed."""
        if dataset.shape[0] != self.count:
            raise ValueError(f"dataset: expected the {self.count} images that were probed, got {dataset.shape[0]}")
        return dataset[self.indices.to(dataset.device)]

    def constant(self, k: int | None = None) -> torch.Tensor:
        """[D] bool: directions whose top-k projections (k <= the probe's; default: all) are all
        equal, e.g. a dead ReLU unit: their top-k is an arbitrary pick among ties, not a ranking."""
        return self.values[:, 0] == self.values[:, (k or self.values.shape[1]) - 1]


def unit_directions(width: int, units: Sequence[int]) -> torch.Tensor:
    """The natural-basis vectors e_i of the given units, [len(units), width]."""
    bad = [u for u in units if not 0 <= u < width]
    if bad:
        raise ValueError(f"units: expected indices in [0, {width}), got {bad}")
    return torch.eye(width)[list(units)]


def random_directions(width: int, count: int, seed: int) -> torch.Tensor:
    """count directions uniform on the unit sphere of R^width, [count, width]: standard normal
    vectors (a CPU generator seeded with `seed`, so any device gives the same ones) normalised."""
    if width < 1 or count < 0:
        raise ValueError(f"width, count: expected width >= 1 and count >= 0, got {width}, {count}")
    v = torch.randn(count, width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (v / v.norm(dim=1, keepdim=True)).float()


def probe(
    model: nn.Module,
    layer: str,
    data: Data,
    directions: torch.Tensor,
    k: int,
    *,
    batch_size: int = 512,
    transform: Transform | None = None,
) -> Probe:
    """The top-k images of `data` for each row of `directions` [D, width] in phi = transform(the
    output of `layer`), flattened per image; ties are broken arbitrarily. `data` is an image
    tensor (batched here by `batch_size`) or an iterable of batches: tensors or (images, labels).
    The model runs in eval mode under no_grad on its own device; its mode is restored after."""
    if k < 1:
        raise ValueError(f"k: expected at least 1, got {k}")
    if directions.ndim != 2 or directions.shape[0] < 1:
        raise ValueError(f"directions: expected a [D, width] matrix with D >= 1, got shape {tuple(directions.shape)}")
    if isinstance(data, torch.Tensor) and data.shape[0] < k:
        raise ValueError(f"k: {k} is larger than the dataset ({data.shape[0]} images)")
    device = _device(model)
    dirs = directions.to(device)
    top = _TopK(k, dirs.shape[0], device)
    total = torch.zeros(dirs.shape[1], dtype=torch.float64, device=device)
    for images, labels in _batches(data, batch_size):
        phi = _phi(model, layer, images.to(device), transform)
        if phi.shape[1] != dirs.shape[1]:
            raise ValueError(f"directions: layer {layer!r} has width {phi.shape[1]}, directions have {dirs.shape[1]}")
        top.add(phi @ dirs.to(phi.dtype).T, None if labels is None else labels.to(device))
        total += phi.sum(0, dtype=torch.float64)
    if top.count < k:
        raise ValueError(f"k: {k} is larger than the dataset ({top.count} images)")
    return Probe(
        layer,
        directions.detach().cpu().float(),
        top.indices.cpu(),
        top.values.cpu(),
        None if top.labels is None else top.labels.cpu(),
        (total / top.count).float().cpu(),
        top.count,
    )


def features(
    model: nn.Module, layer: str, images: torch.Tensor, transform: Transform | None = None, batch_size: int = 512
) -> torch.Tensor:
    """phi(images) at `layer` (its first call, if the forward calls it more than once), flattened
    per image, [N, width] (float64 if the transform gives float64, else float32), batch by batch
    (eval mode, no_grad, on the model's device)."""
    device = _device(model)
    return torch.cat(
        [
            _phi(model, layer, images[i : i + batch_size].to(device), transform)
            for i in range(0, images.shape[0], batch_size)
        ]
    )


class _Captured(Exception):
    """Raised by the hook to end the forward pass once the layer's output is in hand."""


def _phi(model: nn.Module, layer: str, images: torch.Tensor, transform: Transform | None) -> torch.Tensor:
    """One batch's phi: the forward runs only up to the layer."""
    captured: list[object] = []

    def hook(module: nn.Module, args: tuple, out: object) -> None:
        captured.append(out)
        raise _Captured

    handle = _module(model, layer).register_forward_hook(hook)
    try:
        with _evaluating(model), torch.no_grad():
            model(images)
    except _Captured:
        pass
    finally:
        handle.remove()
    if not captured:
        raise ValueError(f"layer: {layer!r} was not called by the model's forward")
    out = captured[0]
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"layer: the output of {layer!r} is a {type(out).__name__}, not a tensor")
    phi = (out if transform is None else transform(out)).flatten(1)
    return phi if phi.dtype == torch.float64 else phi.float()


def layer_width(model: nn.Module, layer: str, example: torch.Tensor, transform: Transform | None = None) -> int:
    """The width of phi at `layer` (what directions must have), from a forward pass on one example [1, ...]."""
    return _phi(model, layer, example.to(_device(model)), transform).shape[1]


class _TopK:
    """A running top-k per direction over streamed scores: indices, values and labels [D, <=k]."""

    def __init__(self, k: int, count: int, device: torch.device) -> None:
        self.k, self.count = k, 0
        self.values = torch.empty(count, 0, device=device)
        self.indices = torch.empty(count, 0, dtype=torch.long, device=device)
        self.labels: torch.Tensor | None = None

    def add(self, scores: torch.Tensor, labels: torch.Tensor | None) -> None:
        """Merge one batch's scores [B, D] (and its labels [B]) into the running top-k."""
        n, d = scores.shape
        if self.count and (labels is None) != (self.labels is None):
            raise ValueError("data: some batches carry labels and some do not")
        values = torch.cat([self.values, scores.T], dim=1)
        indices = torch.cat(
            [self.indices, torch.arange(self.count, self.count + n, device=scores.device).expand(d, n)], 1
        )
        self.values, pos = values.topk(min(self.k, values.shape[1]), dim=1)
        self.indices = indices.gather(1, pos)
        if labels is not None:
            running = self.labels if self.labels is not None else labels.new_empty(d, 0)
            self.labels = torch.cat([running, labels.expand(d, n)], dim=1).gather(1, pos)
        self.count += n


def _batches(data: Data, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """(images, labels or None) batch by batch, from a tensor or an iterable of batches."""
    if isinstance(data, torch.Tensor):
        for start in range(0, data.shape[0], batch_size):
            yield data[start : start + batch_size], None
        return
    for batch in data:
        if isinstance(batch, torch.Tensor):
            yield batch, None
        elif isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch):
            yield batch[0], batch[1]
        else:
            raise ValueError(
                f"data: expected batches that are tensors or (images, labels) pairs, got {type(batch).__name__}"
            )


def _module(model: nn.Module, layer: str) -> nn.Module:
    modules = dict(model.named_modules())
    if layer not in modules:
        known = ", ".join(repr(name) for name in modules)  # '' is the model itself: its output
        raise ValueError(f"layer: {layer!r} is not a module of the model; known layers: {known}")
    return modules[layer]


def _device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """The model in eval mode (no dropout, running batch-norm statistics), its mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)

"""Table 5 (Sec. 4.3): per-layer upper bounds of the Lipschitz constant and their product for
each zoo model, beside the instability measured on the attack's adversarial pairs (and on random
perturbations of the same norm), and the bounds of AlexNet beside the paper's."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch import nn

from ..analysis import (
    Gains,
    LayerBound,
    PowerIteration,
    gain_table,
    layer_bounds,
    log_shares,
    measure_gains,
    network_bound,
    summary,
)
from ..models import MLP, AutoencoderClassifier, ConvNet
from ..models.alexnet import INPUT_SHAPE, PAPER_WIDTHS, alexnet_paper, load_alexnet
from .context import Run
from .stage import Stage

TABLE5_ROWS = ("Conv. 1", "Conv. 2", "Conv. 3", "Conv. 4", "Conv. 5", "FC. 1", "FC. 2", "FC. 3")


@dataclass(frozen=True)
class SpectralSettings:
    pairs: Mapping[str, tuple[str, ...]]  # image set -> the models whose gains are measured on its attacks
    power_rtol: float  # the power iterations' relative tolerance on a layer's norm
    power_max_iter: int


class ModelBounds(TypedDict):
    """A zoo model's layer bounds and their product, beside the gains measured on its adversarial
    pairs and on random ones of the same norms (`network` None and no pairs: not attacked)."""

    pairs: int
    bound: float
    bound_exact: float | None  # with the convolutions' exact norms, where the model has any
    layers: list[dict[str, Any]]  # per layer, `LayerBound.row` (with its gains where measured)
    network: dict[str, Any] | None
    looseness: float  # the bound over the largest measured gain


class AlexNetBounds(TypedDict):
    weights: str  # where they came from
    layout: str  # "paper" or "torchvision" widths
    input_shape: list[int]
    layers: list[dict[str, Any]]  # per layer, `LayerBound.row`, with Table 5's row where it has one
    bound: float
    bound_exact: float


class SpectralResult(TypedDict):
    models: dict[str, ModelBounds]
    alexnet: AlexNetBounds
    power_iteration: dict[str, float]


def spectral_table(run: Run, stage: Stage) -> SpectralResult:
    """Per zoo model: layer bounds, with the gains measured on its adversarial pairs where the run
    attacks it (settings "pairs": image set -> models); AlexNet's bounds with the paper's."""
    s = stage.settings
    power = PowerIteration(s.power_rtol, s.power_max_iter, run.cfg.seed)
    image_sets = {name: image_set for image_set, names in s.pairs.items() for name in names}
    models = {name: _zoo_model(run, name, image_sets.get(name), power) for name in stage.models}
    return {
        "models": models,
        "alexnet": _alexnet(run.cfg.alexnet_weights, stage.paper, power, run.cfg.seed),
        "power_iteration": {"rtol": power.rtol, "max_iter": power.max_iter, "seed": power.seed},
    }


def zoo_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """A zoo model as the chain of layers its forward computes, named after its parameters
    (the functional sigmoid, ReLU and pooling of its forward become modules)."""
    if isinstance(model, MLP):
        linears = [(f"layers.{i}", layer) for i, layer in enumerate(model.layers)]
        hidden = [part for i, pair in enumerate(linears[:-1]) for part in (pair, (f"sigmoid.{i}", nn.Sigmoid()))]
        return [("flatten", nn.Flatten()), *hidden, linears[-1]]
    if isinstance(model, AutoencoderClassifier):
        return [("flatten", nn.Flatten()), ("encoder", model.encoder), ("sigmoid", nn.Sigmoid()), ("head", model.head)]
    if isinstance(model, ConvNet):
        return [
            ("flatten", nn.Flatten()),
            ("unflatten", nn.Unflatten(1, (1, 28, 28))),
            ("conv1", model.conv1),
            ("relu1", nn.ReLU()),
            ("pool1", nn.MaxPool2d(2)),
            ("conv2", model.conv2),
            ("relu2", nn.ReLU()),
            ("pool2", nn.MaxPool2d(2)),
            ("flatten2", nn.Flatten()),
            ("fc", model.fc),
            ("relu3", nn.ReLU()),
            ("out", model.out),
        ]
    raise ValueError(
        f"model: no layer chain for {type(model).__name__}; expected MLP, AutoencoderClassifier or ConvNet"
    )


def _zoo_model(run: Run, name: str, image_set: str | None, power: PowerIteration) -> ModelBounds:
    """Bounds of one zoo model and, with an image set, the gains on its successful, really
    perturbed adversarial pairs there (None: bounds only, the model is not attacked)."""
    model = copy.deepcopy(run.model(name)).cpu().eval()
    layers = zoo_layers(model)
    if image_set is None:
        x = run.splits["test"].images[:64]
    else:
        attacked = run.attacked(name, image_set)
        keep = (attacked.success & (attacked.distortion > 0)).cpu()
        x, x_adv = attacked.images.cpu()[keep], attacked.adversarial.cpu()[keep]
    with torch.no_grad():
        chain, direct = nn.Sequential(*(m for _, m in layers))(x), model(x)
    if not torch.allclose(chain, direct, rtol=1e-4, atol=1e-5):
        raise RuntimeError(
            f"{name}: its layer chain does not compute the model (max diff {(chain - direct).abs().max()})"
        )
    bounds = layer_bounds(layers, tuple(x.shape[1:]), power)
    if image_set is None:
        return _bounds_record(bounds)
    adversarial = measure_gains(layers, x, x_adv)
    noise = measure_gains(layers, x, x + _same_norm_noise(x_adv - x, run.cfg.seed))
    return _model_record(bounds, adversarial, noise)


def _same_norm_noise(r: torch.Tensor, seed: int) -> torch.Tensor:
    """Gaussian directions with each pair's norm ||r|| (seeded; not clipped to the pixel box)."""
    noise = torch.randn(r.shape, generator=torch.Generator().manual_seed(seed), dtype=r.dtype)
    scale = r.flatten(1).norm(dim=1) / noise.flatten(1).norm(dim=1)
    return noise * scale.view(-1, *[1] * (r.ndim - 1))


def _bounds_record(bounds: list[LayerBound]) -> ModelBounds:
    """A model's bounds alone (no adversarial pairs to measure gains on)."""
    has_conv = any(b.exact is not None for b in bounds)
    return {
        "pairs": 0,
        "bound": network_bound(bounds),
        "layers": [b.row() for b in bounds],
        "network": None,
        "bound_exact": network_bound(bounds, exact=True) if has_conv else None,
        "looseness": math.nan,
    }


def _model_record(bounds: list[LayerBound], adversarial: Gains, noise: Gains) -> ModelBounds:
    """The layers' bounds beside the gains on the adversarial pairs and on the random ones."""
    bound = network_bound(bounds)
    rows = gain_table(bounds, adversarial)
    for row, ratios, share in zip(rows, noise.layers, log_shares(noise)):
        row["random"], row["random_mean_log_gain"] = summary(ratios), share
    measured = summary(adversarial.network)
    has_conv = any(b.exact is not None for b in bounds)
    return {
        "pairs": int(adversarial.network.numel()),
        "bound": bound,
        "bound_exact": network_bound(bounds, exact=True) if has_conv else None,
        "layers": rows,
        "network": {"adversarial": measured, "random": summary(noise.network)},
        "looseness": bound / measured["max"] if measured["max"] > 0 else math.nan,
    }


def _alexnet(path: Path | None, paper: Mapping[str, tuple], power: PowerIteration, seed: int) -> AlexNetBounds:
    """AlexNet's bounds at 224x224 beside the `paper`'s Table 5: the weights file at `path`, else
    a seeded random initialisation."""
    if path is None:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = alexnet_paper().eval()
        weights = (
            f"random: torch's default initialisation, seed {seed} (no trained weights configured; set the "
            "reproduce option --alexnet-weights to a state-dict file): compare the layers, not the values"
        )
    else:
        model, weights = load_alexnet(path), f"file {path}"
    bounds = layer_bounds(model, INPUT_SHAPE, power)
    rows = [b.row() for b in bounds]
    modules = dict(model.named_modules())
    weighted = [row for row in rows if row["kind"] in ("Conv2d", "Linear")]
    for row, name in zip(weighted, TABLE5_ROWS):
        size, stride, bound = paper[name]
        row["table5"], row["size"] = name, _size(modules[row["path"]])
        row["paper"] = {"size": size, "stride": stride, "bound": bound}
    layout = "paper" if model.features[0].out_channels == PAPER_WIDTHS[0] else "torchvision"
    return {
        "weights": weights,
        "layout": layout,
        "input_shape": list(INPUT_SHAPE),
        "layers": rows,
        "bound": network_bound(bounds),
        "bound_exact": network_bound(bounds, exact=True),
    }


def _size(layer: nn.Module) -> str:
    """Table 5's notation: in x kh x kw x out for a convolution, in x out for a fully connected layer."""
    w = layer.weight
    return f"{w.shape[1]}x{w.shape[2]}x{w.shape[3]}x{w.shape[0]}" if w.ndim == 4 else f"{w.shape[1]}x{w.shape[0]}"

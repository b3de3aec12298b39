"""Section 3: are a unit's top images on the held-out set more "semantic" than a random
direction's? The paper's Figures 1-2 (grids of top images), and a test of its claim on
numbers: the coherence of many directions' top-k images, units against random directions.

Per probed layer: `directions` units (all of them when the layer is narrower, else a seeded
sample) and as many random directions (uniform on the sphere, seeded by the run's seed); the
MNIST test set is the held-out set. Directions whose top-k projections are all equal (a dead
ReLU unit) rank nothing and are left out of that k's statistics (their count is kept).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

import torch
from torch import nn

from ..analysis.probing import Probe, Transform, features, layer_width, probe, random_directions, unit_directions
from ..analysis.probing_stats import compare, cosine_gram, majority_share, mean_off_diagonal
from .context import Run
from .stage import Stage


def _relu_pool(h: torch.Tensor) -> torch.Tensor:
    return torch.max_pool2d(torch.relu(h), 2)


def _sigmoid64(h: torch.Tensor) -> torch.Tensor:
    """In float64: float32 rounds sigmoid(z) to 1 for z > 16.6, which ties the top images of
    about a quarter of FC100-100-10's first-layer units."""
    return torch.sigmoid(h.double())


# What the zoo's forwards apply to a hooked module's output (functionally, so hooks miss it).
ACTIVATIONS: dict[str, Transform] = {"relu": torch.relu, "relu_pool": _relu_pool, "sigmoid": _sigmoid64}


@dataclass(frozen=True)
class ProbingSettings:
    layers: Mapping[str, Mapping[str, str]]  # model -> its probed layers -> their activation (ACTIVATIONS)
    grid_layers: Mapping[str, str]  # model -> the layer whose top images are drawn (the paper's phi)
    directions: int  # units and random directions per layer
    ks: tuple[int, ...]  # the top-k sizes whose coherence is measured
    grid: tuple[int, int]  # directions of each kind, images per direction


SETTINGS = ProbingSettings(
    layers={
        "ConvNet": {"conv1": "relu_pool", "conv2": "relu_pool", "fc": "relu"},
        "FC100-100-10": {"layers.0": "sigmoid", "layers.1": "sigmoid"},
    },
    grid_layers={"ConvNet": "fc", "FC100-100-10": "layers.1"},  # the last hidden layer
    directions=100,
    ks=(8, 32, 128),
    grid=(4, 8),
)
METRICS = ("majority", "layer_cosine", "pixel_cosine")
CHUNK = 20  # directions whose top images' cosines are computed at once (bounds memory)


class ProbedLayer(TypedDict):
    model: str
    layer: str
    activation: str
    width: int
    units: list[int]  # the units probed
    by_k: list[dict[str, Any]]  # per k: the directions left out, each measure's values and test


class ProbingResult(TypedDict):
    held_out: str
    images: int
    ks: list[int]
    metrics: list[str]
    directions: str  # what the two kinds of direction are
    layers: dict[str, ProbedLayer]  # "model/layer" -> its probe
    grids: dict[str, dict[str, Any]]  # "model/layer" -> its top images (`_grid`)


def unit_probing(run: Run, stage: Stage) -> ProbingResult:
    """Per probed layer: the coherence of every direction's top-k images for each k, units
    against random directions with their test; grids of top images for the grid layers."""
    s = stage.settings
    test = run.splits["test"]
    images, labels = test.images.to(run.cfg.device), test.labels
    ks = [k for k in s.ks if k <= len(test)]
    layers, grids = {}, {}
    for name in stage.models:
        model = run.model(name)
        for layer, activation in s.layers[name].items():
            units, found = _probe_layer(
                model, layer, ACTIVATIONS[activation], images, s.directions, max(ks), run.cfg.seed
            )
            coherence = _coherence(model, layer, ACTIVATIONS[activation], found, images, labels, ks)
            layers[f"{name}/{layer}"] = {
                "model": name,
                "layer": layer,
                "activation": activation,
                "width": found.mean.numel(),
                "units": units,
                "by_k": [_by_k(found, coherence[k], len(units), k, run.cfg.seed) for k in ks],
            }
            if s.grid_layers.get(name) == layer:
                grids[f"{name}/{layer}"] = _grid(found, images, labels, units, *s.grid)
    return {
        "held_out": "MNIST test",
        "images": len(test),
        "ks": ks,
        "metrics": list(METRICS),
        "directions": "units: natural basis e_i; random: standard normal, normalised (uniform on the sphere)",
        "layers": layers,
        "grids": grids,
    }


def _probe_layer(
    model: nn.Module, layer: str, activation: Transform, images: torch.Tensor, count: int, k: int, seed: int
) -> tuple[list[int], Probe]:
    """The probed units (a seeded sample when the layer has more than `count`) and the probe
    of those units followed by as many random directions."""
    width = layer_width(model, layer, images[:1], activation)
    n = min(count, width)
    units = torch.randperm(width, generator=torch.Generator().manual_seed(seed + 1))[:n].sort().values.tolist()
    directions = torch.cat([unit_directions(width, units), random_directions(width, n, seed)])
    return units, probe(model, layer, images, directions, k, transform=activation)


def _coherence(
    model: nn.Module,
    layer: str,
    activation: Transform,
    found: Probe,
    images: torch.Tensor,
    labels: torch.Tensor,
    ks: list[int],
) -> dict[int, dict[str, torch.Tensor]]:
    """Per k and coherence measure: the value for each direction's top-k images, [D]."""
    shown, where = found.indices.unique(return_inverse=True)  # phi once per image that is in some top-k
    pictures = images[shown.to(images.device)]
    spaces = {
        "layer_cosine": (features(model, layer, pictures, activation).cpu(), found.mean),
        "pixel_cosine": (pictures.flatten(1).cpu(), images.mean(0).cpu()),
    }
    grams = {
        m: torch.cat(
            [cosine_gram(x[where[start : start + CHUNK]], center) for start in range(0, where.shape[0], CHUNK)]
        )
        for m, (x, center) in spaces.items()
    }
    return {
        k: {
            "majority": majority_share(labels[found.indices[:, :k]]),
            **{m: mean_off_diagonal(g[:, :k, :k]) for m, g in grams.items()},
        }
        for k in ks
    }


def _by_k(found: Probe, coherence: dict[str, torch.Tensor], n_units: int, k: int, seed: int) -> dict:
    """One k's entry: per measure the values of the ranking directions of each kind and their test."""
    ranking = ~found.constant(k)
    kinds = {"units": slice(0, n_units), "random": slice(n_units, None)}
    keep = {kind: ranking[rows] for kind, rows in kinds.items()}
    metrics = {}
    for m, values in coherence.items():
        groups = {kind: values[rows][keep[kind]].tolist() for kind, rows in kinds.items()}
        shown = {kind: [round(v, 4) for v in group] for kind, group in groups.items()}  # for the plots
        enough = min(map(len, groups.values())) >= 2
        metrics[m] = {**shown, "test": compare(groups["units"], groups["random"], seed).as_dict() if enough else None}
    return {"k": k, "excluded": {kind: int((~keep[kind]).sum()) for kind in kinds}, "metrics": metrics}


def _grid(found: Probe, images: torch.Tensor, labels: torch.Tensor, units: list[int], per_kind: int, k: int) -> dict:
    """The paper's Figures 1-2 for one layer: the top-k images (uint8 pixels, as hex strings) of the
    first `per_kind` ranking units and of the first `per_kind` random directions, with their
    labels, projections and names (a unit's index in the layer, a random direction's number)."""
    ranking = (~found.constant(k)).nonzero().squeeze(1)
    n_units = len(units)
    rows = {"units": ranking[ranking < n_units][:per_kind], "random": ranking[ranking >= n_units][:per_kind]}
    names = {"units": lambda i: units[i], "random": lambda i: i - n_units}
    out: dict = {"shape": list(images.shape[-2:])}
    for kind, chosen in rows.items():
        top = found.indices[chosen, :k]
        pixels = (images[top.to(images.device)].cpu() * 255).round().clamp(0, 255).to(torch.uint8)
        out[kind] = {
            "directions": [names[kind](i) for i in chosen.tolist()],
            "images": [[img.numpy().tobytes().hex() for img in row] for row in pixels],
            "labels": labels[top].tolist(),
            "values": found.values[chosen, :k].tolist(),
        }
    return out

"""Measured instability: how much each layer, and the whole network, amplifies the difference
between clean inputs x and perturbed ones x + r, beside the layers' upper bounds.

Per layer k and pair: ||phi_k(x + r) - phi_k(x)|| / ||phi_{k-1}(x + r) - phi_{k-1}(x)||, each
layer's input and output captured by hooks as it runs; for the network ||f(x + r) - f(x)|| / ||r||.
Along a chain the layer ratios of one pair multiply to the network's ratio, so their logarithms
split the network's gain into the layers' shares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .network import Layers, forward, hooked, require_eval
from .spectral import LayerBound

QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class Gains:
    """Per-pair ratios: `layers` [L, N] (NaN where the layer's input difference is zero), `network` [N]."""

    paths: list[str]
    layers: torch.Tensor
    network: torch.Tensor


def measure_gains(layers: Layers, x: torch.Tensor, x_perturbed: torch.Tensor) -> Gains:
    """Each leaf layer's and the network's gain on the pairs (x[i], x_perturbed[i]), in one
    forward pass on both halves (eval-mode layers only: batch statistics would mix the pairs)."""
    require_eval(layers)
    n = x.shape[0]
    paths: list[str] = []
    ratios: list[torch.Tensor] = []

    def record(path: str, module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> None:
        paths.append(path)
        ratios.append(_ratio(_diff_norm(out, n), _diff_norm(inp, n)))

    with hooked(layers, record), torch.no_grad():
        y = forward(layers, torch.cat([x, x_perturbed]))
    network = _ratio(_diff_norm(y, n), _diff_norm(torch.cat([x, x_perturbed]), n))
    return Gains(paths, torch.stack(ratios) if ratios else torch.empty(0, n, dtype=torch.float64), network)


def _ratio(out: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
    """out / inp, NaN where the input difference is zero (no perturbation reached the layer)."""
    return torch.where(inp > 0, out / inp.clamp_min(1e-300), math.nan)


def _diff_norm(batch: torch.Tensor, n: int) -> torch.Tensor:
    """||second half - first half|| per pair, in float64."""
    diff = (batch[n:] - batch[:n]).double()
    return diff.reshape(n, -1).norm(dim=1)


def summary(ratios: torch.Tensor) -> dict:
    """Count, quantiles, max and geometric mean of the finite ratios (NaN when there are none)."""
    finite = ratios[torch.isfinite(ratios)].double()
    if finite.numel() == 0:
        return {
            "pairs": 0,
            "max": math.nan,
            "geo_mean": math.nan,
            **{f"q{round(q * 100)}": math.nan for q in QUANTILES},
        }
    return {
        "pairs": int(finite.numel()),
        "max": float(finite.max()),
        "geo_mean": float(finite.clamp_min(1e-300).log().mean().exp()),
        **{f"q{round(q * 100)}": float(finite.quantile(q)) for q in QUANTILES},
    }


def log_shares(gains: Gains) -> list[float]:
    """Mean log gain of each layer over the pairs where every layer's ratio is finite and positive:
    these sum to the mean log gain of the network on those pairs (the chain telescopes)."""
    ok = torch.isfinite(gains.layers).all(0) & (gains.layers > 0).all(0)
    if not ok.any():
        return [math.nan] * len(gains.paths)
    return gains.layers[:, ok].log().mean(1).tolist()


def gain_table(bounds: Sequence[LayerBound], gains: Gains) -> list[dict]:
    """Per layer: its bound row, the measured ratios' summary and mean log gain, and the
    looseness bound / max measured ratio."""
    if [b.path for b in bounds] != gains.paths:
        raise ValueError(f"bounds and gains are for different layers: {[b.path for b in bounds]} vs {gains.paths}")
    rows = []
    for b, ratios, share in zip(bounds, gains.layers, log_shares(gains)):
        measured = summary(ratios)
        rows.append(
            {
                **b.row(),
                "measured": measured,
                "mean_log_gain": share,
                "looseness": math.inf if measured["max"] == 0 else b.bound / measured["max"],
            }
        )
    return rows

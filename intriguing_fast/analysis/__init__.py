"""Analyses of trained torch models, importing torch only: unit probing (Sec. 3: probing.py,
probing_stats.py, imported by module) and the spectral bounds of Sec. 4.3 exported here (per-layer
Lipschitz upper bounds, their product, and the gains measured on perturbed pairs beside them)."""

from .instability import Gains, gain_table, log_shares, measure_gains, summary
from .network import Layers, Traced, forward, leaves, trace
from .operator_norms import (
    PowerIteration,
    PowerResult,
    conv_fourier_norm,
    conv_zero_padded_norm,
    fourier_size_for_zero_padding,
    largest_singular_value,
    linear_map_norm,
    power_iteration,
)
from .spectral import LayerBound, layer_bounds, network_bound

__all__ = [
    "Gains",
    "LayerBound",
    "Layers",
    "PowerIteration",
    "PowerResult",
    "Traced",
    "conv_fourier_norm",
    "conv_zero_padded_norm",
    "forward",
    "fourier_size_for_zero_padding",
    "gain_table",
    "largest_singular_value",
    "layer_bounds",
    "leaves",
    "linear_map_norm",
    "log_shares",
    "measure_gains",
    "network_bound",
    "power_iteration",
    "summary",
    "trace",
]

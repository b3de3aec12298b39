"""Upper bounds of each layer's Lipschitz constant (L2 to L2) and their product, the network's
bound (Szegedy et al. 2014, Sec. 4.3, Table 5), for any chain of torch layers (analysis/network.py).

Per layer: the largest singular value of fully connected layers; for convolutions the paper's
Fourier construction (exact for the circular convolution) on a periodic size that contains the
zero-padded layer, so it bounds the layer as PyTorch computes it, beside that layer's exact norm
by power iteration; 1-Lipschitz activations and reshapes 1, sigmoid 1/4; max-pooling the square
root of the most windows a pixel belongs to; normalisations as derived in docs/spectral.md.
Anything else is an error naming the layer: nothing is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial

import torch
from torch import nn

from .network import Layers, Traced, trace
from .operator_norms import (
    DEFAULT_POWER,
    PowerIteration,
    PowerResult,
    conv_fourier_norm,
    conv_zero_padded_norm,
    fourier_size_for_zero_padding,
    largest_singular_value,
    linear_map_norm,
)


@dataclass(frozen=True)
class LayerBound:
    """One layer's bound. For convolutions `exact` is the operator norm of the layer as PyTorch
    computes it, by power iteration (`iterations`, `converged`); `bound` is the Fourier one."""

    path: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    bound: float
    method: str
    exact: float | None = None
    iterations: int | None = None
    converged: bool | None = None

    def row(self) -> dict:
        """A JSON-friendly dict (shapes as lists)."""
        return {**asdict(self), "in_shape": list(self.in_shape), "out_shape": list(self.out_shape)}


Found = tuple[float, str, "PowerResult | None"]  # bound, method, the exact norm's power iteration
Rule = Callable[[Traced, PowerIteration], Found]


def layer_bounds(
    layers: Layers, input_shape: Sequence[int], settings: PowerIteration = DEFAULT_POWER
) -> list[LayerBound]:
    """Every leaf layer's bound, in call order, for one input of `input_shape` (no batch dim)."""
    out = []
    for t in trace(layers, input_shape):
        bound, method, power = _rule(t)(t, settings)
        out.append(
            LayerBound(
                t.path,
                type(t.module).__name__,
                t.in_shape,
                t.out_shape,
                bound,
                method,
                *((power.sigma, power.iterations, power.converged) if power else ()),
            )
        )
    return out


def network_bound(bounds: Sequence[LayerBound], exact: bool = False) -> float:
    """The product of the layers' bounds; with `exact`, convolutions count with their exact
    (zero-padded, power-iteration) norm instead of the Fourier bound."""
    return math.prod(b.exact if exact and b.exact is not None else b.bound for b in bounds)


def _conv2d(t: Traced, settings: PowerIteration) -> Found:
    """Fourier bound on a periodic size containing the layer, and the exact norm of the layer."""
    m: nn.Conv2d = t.module
    w = m.weight.detach()
    in_size, out_size = t.in_shape[1:], t.out_shape[1:]
    if m.padding_mode == "circular":
        if any(n % s or o > n // s for n, o, s in zip(in_size, out_size, m.stride)):
            raise ValueError(
                f"{t.path}: circular Conv2d with outputs {out_size} not a subset of the periodic ones "
                f"on {in_size} with stride {m.stride}"
            )
        bias_free = partial(m._conv_forward, weight=w.double(), bias=None)
        return (
            conv_fourier_norm(w, in_size, m.stride, m.dilation, m.groups),
            f"Fourier: circular convolution on {in_size[0]}x{in_size[1]} (exact)",
            linear_map_norm(bias_free, (1, *t.in_shape), settings),
        )
    if m.padding_mode != "zeros":
        raise ValueError(
            f"{t.path}: Conv2d with padding_mode={m.padding_mode!r}: only 'zeros' and 'circular' are bounded"
        )
    padding = _numeric_padding(t)
    size = fourier_size_for_zero_padding(in_size, out_size, padding, m.stride)
    return (
        conv_fourier_norm(w, size, m.stride, m.dilation, m.groups),
        f"Fourier: circular convolution on {size[0]}x{size[1]} (contains the zero-padded layer)",
        conv_zero_padded_norm(w, t.in_shape, m.stride, padding, m.dilation, m.groups, settings),
    )


def _numeric_padding(t: Traced) -> tuple[int, int]:
    """The layer's padding as numbers; 'same' only when it is symmetric."""
    m: nn.Conv2d = t.module
    if m.padding == "valid":
        return (0, 0)
    if m.padding == "same":
        total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
        if any(x % 2 for x in total):
            raise ValueError(
                f"{t.path}: Conv2d padding='same' is asymmetric here (kernel {m.kernel_size}); give numbers"
            )
        return (total[0] // 2, total[1] // 2)
    return tuple(m.padding)


def _max_pool(t: Traced, settings: PowerIteration) -> Found:
    """sqrt(c), c the most windows one pixel belongs to: |max u - max v| <= ||u - v|| per window,
    summed over windows each pixel counts c times; attained by raising one such pixel over zeros."""
    m: nn.MaxPool2d = t.module
    counts = [
        _most_windows(n, o, k, s, p, d)
        for n, o, k, s, p, d in zip(
            t.in_shape[1:],
            t.out_shape[1:],
            _pair(m.kernel_size),
            _pair(m.stride or m.kernel_size),
            _pair(m.padding),
            _pair(m.dilation),
        )
    ]
    c = counts[0] * counts[1]
    return math.sqrt(c), f"max-pooling: sqrt(windows per pixel) = sqrt({c})", None


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return value if isinstance(value, tuple) else (value, value)


def _most_windows(n: int, out: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Along one axis of length n: the most of the `out` windows that contain one position."""
    count = [0] * n
    for i in range(out):
        for a in range(kernel):
            j = i * stride + a * dilation - padding
            if 0 <= j < n:
                count[j] += 1
    return max(count)


def _linear_pool(t: Traced, settings: PowerIteration) -> Found:
    """Average pooling is linear and acts on each channel alike: power iteration on one channel."""
    one = (1, 1, *t.in_shape[1:])
    found = linear_map_norm(t.module, one, settings)
    return found.sigma, f"linear: power iteration on one channel ({found.iterations} iterations)", None


def _batch_norm(t: Traced, settings: PowerIteration) -> Found:
    """In eval mode (network.require_eval) an affine map per channel: max |gamma| / sqrt(running_var + eps)."""
    m = t.module
    gamma = m.weight.detach().abs() if m.affine else torch.ones_like(m.running_var)
    return float((gamma / (m.running_var + m.eps).sqrt()).max()), "eval mode: max |gamma| / sqrt(var + eps)", None


def _local_response_norm(t: Traced, settings: PowerIteration) -> Found:
    """b_c = a_c / (k + alpha/n sum_{window(c)} a^2)^beta (docs/spectral.md derives both bounds).
    Windows covering every channel (the paper's contrast normalisation) and beta <= 1: k^-beta,
    the paper's eps^-gamma. Otherwise k^-beta (1 + 2 beta sqrt(min(n, C)) beta^beta / (1+beta)^(1+beta))."""
    m: nn.LocalResponseNorm = t.module
    k, beta, size, channels = float(m.k), float(m.beta), m.size, t.in_shape[0]
    if (size - 1) // 2 >= channels - 1 and beta <= 1:
        return k**-beta, "contrast normalisation over all channels: k^-beta (the paper's eps^-gamma)", None
    cross = 2 * beta * math.sqrt(min(size, channels)) * beta**beta / (1 + beta) ** (1 + beta)
    return k**-beta * (1 + cross), "local response normalisation: k^-beta (1 + 2b sqrt(n) b^b / (1+b)^(1+b))", None


_ONE = (1.0, "elementwise, slope at most 1", None)
_RESHAPE = (1.0, "reshape or identity: norm-preserving", None)
CONSTANT: dict[type, Found] = {
    nn.Identity: _RESHAPE,
    nn.Flatten: _RESHAPE,
    nn.Unflatten: _RESHAPE,
    nn.ReLU: _ONE,
    nn.ReLU6: _ONE,
    nn.Hardtanh: _ONE,
    nn.Tanh: _ONE,
    nn.Softplus: _ONE,
    nn.Sigmoid: (0.25, "elementwise, slope at most 1/4", None),
}
RULES: dict[type, Rule] = {
    nn.LeakyReLU: lambda t, s: (max(1.0, abs(t.module.negative_slope)), "elementwise, slope max(1, |slope|)", None),
    nn.ELU: lambda t, s: (max(1.0, abs(t.module.alpha)), "elementwise, slope max(1, |alpha|)", None),
    nn.Linear: lambda t, s: (largest_singular_value(t.module.weight.detach()), "largest singular value of W", None),
    nn.Conv2d: _conv2d,
    nn.MaxPool2d: _max_pool,
    nn.AvgPool2d: _linear_pool,
    nn.AdaptiveAvgPool2d: _linear_pool,
    nn.LocalResponseNorm: _local_response_norm,
}


def _rule(t: Traced) -> Rule:
    """The layer's rule, by exact type (a subclass may compute something else), except for
    torch's dropout and batch-norm families (eval mode: identity and a per-channel affine map)."""
    kind = type(t.module)
    if kind in CONSTANT:
        return lambda t, s: CONSTANT[kind]
    if kind in RULES:
        return RULES[kind]
    if isinstance(t.module, nn.modules.dropout._DropoutNd):
        return lambda t, s: (1.0, "dropout in eval mode: identity", None)
    if isinstance(t.module, nn.modules.batchnorm._BatchNorm):
        return _batch_norm
    raise ValueError(
        f"{t.path}: no Lipschitz bound for {kind.__name__}; supported: "
        f"{', '.join(sorted(k.__name__ for k in (*CONSTANT, *RULES)))}, dropout and batch norm (eval)"
    )

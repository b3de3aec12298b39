"""Operator norms (largest singular values) of linear maps: power iteration on any map and its
adjoint, and the paper's Fourier construction for (strided) convolutions.

The Fourier construction (Szegedy et al. 2014, Sec. 4.3) is exact for the periodic (circular)
convolution: on an ``N1 x N2`` periodic input, a stride-``(s1, s2)`` convolution maps frequency
``w`` of the input to frequency ``w mod (N/s)`` of the output, so each output frequency ``v``
collects the ``s1 * s2`` aliased input frequencies ``v + t * N/s``. Stacking the kernels'
2-D transforms at those frequencies gives one ``C_out x (s1 s2 C_in)`` matrix ``A(v)`` per output
frequency, and the operator norm is ``max_v sigma_max(A(v)) / sqrt(s1 s2)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Pair = tuple[int, int]


@dataclass(frozen=True)
class PowerIteration:
    """Settings of the power iteration: stop when the estimate changes by less than `rtol`
    (relative) from one iteration to the next, or after `max_iter`; the start is seeded."""

    rtol: float = 1e-6
    max_iter: int = 500
    seed: int = 0


DEFAULT_POWER = PowerIteration()


@dataclass(frozen=True)
class PowerResult:
    """sigma: the estimate (from below: a Rayleigh quotient); whether `rtol` was reached."""

    sigma: float
    iterations: int
    converged: bool


def power_iteration(
    forward: Callable[[torch.Tensor], torch.Tensor],
    adjoint: Callable[[torch.Tensor], torch.Tensor],
    shape: tuple[int, ...],
    settings: PowerIteration = DEFAULT_POWER,
    dtype: torch.dtype = torch.float64,
) -> PowerResult:
    """Largest singular value of the linear map `forward` on inputs of `shape`, iterating
    v <- A^T A v; `adjoint` must be A^T (checked by the tests, not here)."""
    gen = torch.Generator().manual_seed(settings.seed)
    v = torch.randn(shape, generator=gen, dtype=dtype)
    v /= v.norm()
    sigma = 0.0
    for it in range(1, settings.max_iter + 1):
        u = forward(v)
        new = float(u.norm())
        w = adjoint(u)
        norm = w.norm()
        if new == 0.0 or norm == 0.0:
            return PowerResult(0.0, it, True)
        v = w / norm
        if abs(new - sigma) <= settings.rtol * new:
            return PowerResult(new, it, True)
        sigma = new
    return PowerResult(sigma, settings.max_iter, False)


def autograd_adjoint(
    forward: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...], dtype: torch.dtype
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The adjoint of the linear map `forward` (inputs of `shape`), as its vector-Jacobian product."""
    _, vjp = torch.func.vjp(forward, torch.zeros(shape, dtype=dtype))
    return lambda u: vjp(u)[0]


def linear_map_norm(
    forward: Callable[[torch.Tensor], torch.Tensor],
    shape: tuple[int, ...],
    settings: PowerIteration = DEFAULT_POWER,
    dtype: torch.dtype = torch.float64,
) -> PowerResult:
    """Operator norm of any linear map (pooling, padded convolutions) with its adjoint by autograd."""
    return power_iteration(forward, autograd_adjoint(forward, shape, dtype), shape, settings, dtype)


def conv_zero_padded_norm(
    weight: torch.Tensor,
    in_shape: tuple[int, int, int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int = 1,
    settings: PowerIteration = DEFAULT_POWER,
) -> PowerResult:
    """Operator norm of ``conv2d`` with zero padding (as PyTorch computes it) on ``in_shape = (C, H, W)``:
    power iteration with ``conv_transpose2d`` as the adjoint (``output_padding`` restores H x W)."""
    shape = (1, *in_shape)
    out = F.conv2d(torch.zeros(shape, dtype=weight.dtype), weight, None, stride, padding, dilation, groups).shape
    out_pad = tuple(
        n + 2 * p - d * (k - 1) - 1 - (m - 1) * s
        for n, p, d, k, m, s in zip(in_shape[1:], padding, dilation, weight.shape[2:], out[2:], stride)
    )

    def forward(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, weight, None, stride, padding, dilation, groups)

    def adjoint(y: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(y, weight, None, stride, padding, out_pad, groups, dilation)

    return power_iteration(forward, adjoint, shape, settings, weight.dtype)


def conv_fourier_norm(
    weight: torch.Tensor, size: Pair, stride: Pair = (1, 1), dilation: Pair = (1, 1), groups: int = 1
) -> float:
    """Exact operator norm of the circular (periodic) convolution with `weight` on a ``size``
    periodic input, stride folded in: needs ``size`` divisible by ``stride``. Padding only
    shifts a periodic signal, so it does not enter. Computed in the weight's precision."""
    if any(n % s for n, s in zip(size, stride)):
        raise ValueError(f"size: the periodic input {size} must be divisible by the stride {stride}")
    (n1, n2), (s1, s2) = size, stride
    m1, m2, half = n1 // s1, n2 // s2, n2 // s2 // 2 + 1
    c_out, c_in, k1, k2 = weight.shape
    # A real kernel's A(-v) is A(v) conjugated with its columns permuted: the output frequencies
    # v2 <= m2 / 2 cover every singular value. Their aliases t * m2 + v2 in the second axis:
    cols = (torch.arange(s2)[:, None] * m2 + torch.arange(half)[None, :]).reshape(-1)
    kernel = weight.reshape(groups, c_out // groups, c_in, k1, k2).to(_complex(weight.dtype))
    spectrum = torch.einsum(
        "xa,goiab,yb->gxyoi",
        _dft(torch.arange(n1), k1, dilation[0], n1, kernel.dtype),
        kernel,
        _dft(cols, k2, dilation[1], n2, kernel.dtype),
    )  # [g, N1, s2 * half, Co/g, Ci/g]
    blocks = spectrum.reshape(groups, s1, m1, s2, half, c_out // groups, c_in)
    stacked = blocks.permute(0, 2, 4, 5, 1, 3, 6).reshape(groups, m1 * half, c_out // groups, s1 * s2 * c_in)
    return largest_singular_value(stacked) / math.sqrt(s1 * s2)


def _dft(freqs: torch.Tensor, taps: int, dilation: int, n: int, dtype: torch.dtype) -> torch.Tensor:
    """``exp(-2 pi i f d a / n)`` for the frequencies f and taps a: the kernel's transform on the
    n-torus without laying it out there (a dilated tap sits at d * a)."""
    phase = torch.outer(freqs.double(), dilation * torch.arange(taps).double()) * (-2 * math.pi / n)
    return torch.polar(torch.ones_like(phase), phase).to(dtype)


def _complex(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def largest_singular_value(matrices: torch.Tensor) -> float:
    """The largest singular value of a matrix (a fully connected layer's weight), or the largest over
    a batch of them, as sqrt(top eigenvalue) of the smaller Gram matrix: equal to
    ``torch.linalg.matrix_norm(W, 2)`` to rounding, and faster than its SVD (no singular vectors)."""
    gram = matrices.mH @ matrices if matrices.shape[-1] <= matrices.shape[-2] else matrices @ matrices.mH
    return float(torch.linalg.eigvalsh(gram)[..., -1].max().clamp_min(0).sqrt())


def fourier_size_for_zero_padding(in_size: Pair, out_size: Pair, padding: Pair, stride: Pair) -> Pair:
    """The smallest periodic size N (a multiple of the stride) on which the zero-padded convolution
    is a restriction of the circular one: the input embedded in N x N zeros (N >= n + p, so no
    wrapped tap reaches it) and the outputs a subset of the N/s periodic ones (N/s >= m).
    Then ||zero-padded|| <= ||circular on N||: the Fourier norm on N is a certified bound."""
    return tuple(s * max(-(-(n + p) // s), m) for n, m, p, s in zip(in_size, out_size, padding, stride))

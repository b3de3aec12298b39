"""Subnormal floats flushed to zero on every thread of torch's pool, only inside the block."""

from __future__ import annotations

import platform

import pytest
import torch
from torch import nn

from intriguing_fast import LBFGSAttack
from intriguing_fast.engine.backends import native_available
from intriguing_fast.engine.backends.denormals import flushed_denormals
from intriguing_fast.engine.backends.native import native

pytestmark = [
    pytest.mark.skipif(not native_available(), reason="the native extension intriguing_fast._C is not built"),
    pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64", "i686"), reason="x86 FTZ/DAZ flags"),
]
SUBNORMAL = 1e-39  # float32's smallest normal is 1.2e-38


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def zeros_after_multiply() -> int:
    """How many of 4M subnormals x * 1 gives as zero (a size torch splits over its threads)."""
    x = torch.full((1 << 22,), SUBNORMAL)
    return int((x * 1.0 == 0).sum())


def test_every_thread_flushes_inside_and_none_after(two_threads):
    zeros_after_multiply()  # the pool's workers exist before the block, as in a running program
    assert zeros_after_multiply() == 0
    with flushed_denormals() as flushing:
        assert flushing and native().flushing_denormals()
        assert zeros_after_multiply() == 1 << 22  # the workers' halves too, not only the calling thread's
    assert not native().flushing_denormals()
    assert zeros_after_multiply() == 0


def test_a_flushing_caller_stays_flushing(two_threads):
    native().set_flush_denormals(True)
    try:
        with flushed_denormals():
            pass
        assert native().flushing_denormals() and zeros_after_multiply() == 1 << 22
    finally:
        native().set_flush_denormals(False)


def test_off_changes_nothing(two_threads):
    with flushed_denormals(False) as flushing:
        assert not flushing and zeros_after_multiply() == 0


class Saturated(nn.Module):
    """A linear classifier (each class reached by raising its pixel) plus a unit whose value
    and gradient are subnormal, as a saturated sigmoid's are."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 3)
        nn.init.eye_(self.linear.weight), nn.init.zeros_(self.linear.bias)
        self.linear.weight.data *= 4
        self.seen_subnormal = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tiny = (x.sum(dim=1, keepdim=True) + 1) * SUBNORMAL  # subnormal unless flushed to zero
        self.seen_subnormal |= bool((tiny > 0).any())
        return self.linear(x) + tiny


@pytest.mark.parametrize("flush", [True, False])
def test_the_attack_flushes_only_while_it_runs(flush):
    torch.manual_seed(0)
    model, images = Saturated(), torch.rand(6, 3)
    result = LBFGSAttack(flush_denormals=flush)(model, images, "random")
    assert result.success.all()
    assert model.seen_subnormal is not flush
    assert not native().flushing_denormals()

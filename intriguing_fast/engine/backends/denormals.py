"""Subnormal floats treated as zero on every CPU thread torch computes on, for the span of a
`with` block.

A sigmoid unit that saturates makes subnormal activations and gradients (below 1.2e-38 in
float32), and x86 cores compute with those many times slower: attacking AE400-10, whose
encoder saturates, is several times faster with them flushed to zero, at the same distortion
(BENCHMARKS.md, bench/bench_denormals.py). ``torch.set_flush_denormal`` sets the CPU's flags on the calling
thread only, and torch's OpenMP workers keep theirs; the native core sets them on the whole
pool. Without the native core, or on a CPU without the flags, nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .native import native, native_available


@contextmanager
def flushed_denormals(on: bool = True) -> Iterator[bool]:
    """Inside the block, every thread of torch's CPU pool treats subnormal inputs and results
    as zero (when `on`); the calling thread's state before the block comes back after it, on
    every thread. Yields whether flushing is in effect."""
    if not on or not native_available():
        yield False
        return
    core = native()
    before = core.flushing_denormals()
    flushing = core.set_flush_denormals(True)
    try:
        yield flushing
    finally:
        core.set_flush_denormals(before)

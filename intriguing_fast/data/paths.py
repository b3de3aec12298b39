"""Where MNIST and trained checkpoints live on disk.

The MNIST lookup chain, highest priority first: an explicit directory, ``$INTRIGUING_FAST_MNIST``,
the repository's sibling ``../shared/data/mnist`` (the project's original files), and the cache
``<cache root>/mnist``. The cache root is ``$INTRIGUING_FAST_CACHE`` or
``~/.cache/intriguing_fast``; trained checkpoints go under it too, never into the git tree.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..storage import cache_root

MNIST_DIR_ENV = "INTRIGUING_FAST_MNIST"

# intriguing_fast/data/paths.py -> the repository checkout is three levels up.
_REPO_ROOT = Path(__file__).resolve().parents[2]


def mnist_cache_dir() -> Path:
    """Where downloaded MNIST files are cached."""
    return cache_root() / "mnist"


def mnist_search_dirs() -> list[Path]:
    """Directories searched for MNIST when none is given, highest priority first."""
    dirs = []
    override = os.environ.get(MNIST_DIR_ENV)
    if override:
        dirs.append(Path(override).expanduser())
    dirs.append(_REPO_ROOT.parent / "shared" / "data" / "mnist")
    dirs.append(mnist_cache_dir())
    return dirs


def mnist_download_dir() -> Path:
    """Where missing files are downloaded to when no directory is given."""
    override = os.environ.get(MNIST_DIR_ENV)
    return Path(override).expanduser() if override else mnist_cache_dir()

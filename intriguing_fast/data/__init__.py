"""MNIST for the reproduction: idx loading with lookup, MD5 checks, download, the embedded offline subset; P1/P2 split."""

from .checksums import MnistChecksumError
from .dataset import MnistSplit, p1_p2_split
from .download import MIRRORS, MnistDownloadError, download_mnist
from .embedded import SUBSET_SOURCE
from .idx import IdxFormatError, read_idx
from .mnist import SPLITS, MnistSubsetWarning, MnistUnavailableError, load_mnist
from .paths import MNIST_DIR_ENV, mnist_search_dirs

__all__ = [
    "MIRRORS",
    "MNIST_DIR_ENV",
    "SPLITS",
    "SUBSET_SOURCE",
    "IdxFormatError",
    "MnistChecksumError",
    "MnistDownloadError",
    "MnistSplit",
    "MnistSubsetWarning",
    "MnistUnavailableError",
    "download_mnist",
    "load_mnist",
    "mnist_search_dirs",
    "p1_p2_split",
    "read_idx",
]

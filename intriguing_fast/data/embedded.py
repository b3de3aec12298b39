"""The real-MNIST subset shipped inside the package: what `load_mnist` serves when the full
dataset is neither found nor downloadable, so a fresh offline machine still gets a report.

Provenance: the first 1,000 digits of each class of the original training file and the first
200 of each class of the original test file, in their original order (10,000 training and
2,000 test digits), cut from the published files whose MD5s are in `download.FILES` by
:func:`build_subset` and stored as xz-compressed idx files (1.7 MB). Their SHA-256s are checked
on every load.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges
(http://yann.lecun.com/exdb/mnist/), derived from NIST Special Databases 1 and 3; it is made
available under the terms of the Creative Commons Attribution-Share Alike 3.0 licence, and
this subset is redistributed under the same terms.
"""

from __future__ import annotations

import hashlib
import lzma
import struct
from pathlib import Path

import numpy as np

from .idx import IMAGES_MAGIC, LABELS_MAGIC, IdxFormatError, read_idx

SUBSET_DIR = Path(__file__).resolve().parent / "mnist_subset"
PER_CLASS = {"train": 1000, "test": 200}
SUBSET_SOURCE = "embedded MNIST subset (10,000 train / 2,000 test digits of the original files)"
# SHA-256 of the shipped files, as build_subset wrote them.
SUBSET_FILES = {
    "train-images": ("train-images-idx3-ubyte.xz", "24a98a01493c53355f9d96ce3db1cf66a120303638fcefa41a36e67c3f69d60a"),
    "train-labels": ("train-labels-idx1-ubyte.xz", "3c014d4055b8e6a1e98d86a9af25c79a6a29ab25a5762a3845f35d3f53fa05ac"),
    "test-images": ("t10k-images-idx3-ubyte.xz", "3046a6d8a02f2955117ea1c2b35586ff4c4d7bc48e31eeeda21984ed616b88e8"),
    "test-labels": ("t10k-labels-idx1-ubyte.xz", "4fc383cf88a7554c78cad3898e974b719b53a5c019f14781ba16a96c66c2e351"),
}


def read_subset(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 28, 28]`` and labels ``[N]`` (uint8) of the embedded "train" or "test" split."""
    part = "train" if split == "train" else "test"
    arrays = []
    for kind, magic in (("images", IMAGES_MAGIC), ("labels", LABELS_MAGIC)):
        name, sha256 = SUBSET_FILES[f"{part}-{kind}"]
        path = SUBSET_DIR / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
            raise IdxFormatError(
                f"{path}: the embedded MNIST subset is missing or altered (SHA-256 mismatch); reinstall intriguing_fast"
            )
        arrays.append(read_idx(path, magic))
    return arrays[0], arrays[1]


def build_subset(images: dict[str, np.ndarray], labels: dict[str, np.ndarray], out: Path) -> dict[str, str]:
    """Write the subset of the full "train" and "test" arrays to `out`; returns the SHA-256 per file key."""
    digests = {}
    for part, per_class in PER_CLASS.items():
        rows = np.sort(np.concatenate([np.flatnonzero(labels[part] == k)[:per_class] for k in range(10)]))
        for kind, array in (("images", images[part][rows]), ("labels", labels[part][rows])):
            header = struct.pack(">i", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
            payload = lzma.compress(header + array.astype(np.uint8).tobytes(), preset=9 | lzma.PRESET_EXTREME)
            name = SUBSET_FILES[f"{part}-{kind}"][0]
            (Path(out) / name).write_bytes(payload)
            digests[f"{part}-{kind}"] = hashlib.sha256(payload).hexdigest()
    return digests

"""Download the four MNIST idx files from the usual mirrors, verify their MD5, cache atomically."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

from ..errors import IntriguingFastError
from ..storage import atomic_write_bytes

MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


class MnistFile(NamedTuple):
    """One of the four distributed files: its name without ``.gz``, the MD5 of the ``.gz``, and
    the MD5 of the uncompressed idx file (for directories holding the files unpacked)."""

    stem: str
    md5: str
    raw_md5: str


# md5: the published sums of the distributed .gz files. raw_md5: computed here from the genuine
# files (whose .gz MD5s match the published ones) with `zcat NAME.gz | md5sum`.
FILES: dict[str, MnistFile] = {
    "train-images": MnistFile(
        "train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"
    ),
    "train-labels": MnistFile(
        "train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"
    ),
    "test-images": MnistFile(
        "t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"
    ),
    "test-labels": MnistFile(
        "t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"
    ),
}


class MnistDownloadError(IntriguingFastError, RuntimeError):
    """No mirror delivered a file with the right checksum (offline, blocked or corrupt)."""


def download_mnist(directory: Path, *, mirrors: tuple[str, ...] | None = None, timeout: float = 10.0) -> None:
    """Fetch every missing ``<stem>.gz`` into ``directory``, trying ``mirrors`` (default :data:`MIRRORS`) in order.

    A file is written only after its MD5 matches, through a temporary file and an atomic rename,
    so an interrupted download never leaves a partial file under the final name.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for file in FILES.values():
        target = directory / f"{file.stem}.gz"
        if target.exists() or (directory / file.stem).exists():
            continue
        failures = []
        for mirror in MIRRORS if mirrors is None else mirrors:
            url = mirror + target.name
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    payload = response.read()
            except (urllib.error.URLError, OSError, ValueError) as exc:
                failures.append(f"{url}: {exc}")
                continue
            digest = hashlib.md5(payload).hexdigest()
            if digest != file.md5:
                failures.append(f"{url}: MD5 {digest} does not match the published {file.md5}")
                continue
            atomic_write_bytes(target, payload)
            break
        else:
            raise MnistDownloadError(f"could not download {target.name}: " + "; ".join(failures))

"""Parse and validate idx files (the MNIST container format), gzip- or xz-compressed or raw.

Every failure raises :class:`IdxFormatError` naming the file and what is wrong with it
(gzip damage or CRC mismatch, magic number, header dimensions, payload size).
"""

from __future__ import annotations

import gzip
import lzma
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import IntriguingFastError

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension


class IdxFormatError(IntriguingFastError, ValueError):
    """An idx file is corrupt, truncated or not the kind of file expected."""


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read an unsigned-byte idx file whose header must carry ``magic``; returns a uint8 array."""
    data = _read_bytes(Path(path))
    if len(data) < 4:
        raise IdxFormatError(f"{path}: truncated, {len(data)} bytes is shorter than the 4-byte magic number")
    (found,) = struct.unpack(">i", data[:4])
    if found != magic:
        raise IdxFormatError(f"{path}: bad magic number {found}, expected {magic}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxFormatError(f"{path}: truncated header, {len(data)} bytes but {ndim} dimensions need {header}")
    shape = struct.unpack(f">{ndim}i", data[4:header])
    if any(d < 0 for d in shape):
        raise IdxFormatError(f"{path}: negative header dimensions {shape}")
    expected = math.prod(shape)  # a Python int: huge dimensions cannot overflow, they fail the size check
    got = len(data) - header
    if got != expected:
        problem = "truncated" if got < expected else "has trailing bytes"
        raise IdxFormatError(f"{path}: {problem}: header dimensions {shape} need {expected} data bytes, file has {got}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix == ".xz":
        try:
            return lzma.decompress(raw)
        except lzma.LZMAError as exc:
            raise IdxFormatError(f"{path}: corrupt or truncated xz data ({exc})") from exc
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as exc:
        raise IdxFormatError(f"{path}: truncated gzip stream ({exc})") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        # gzip reports a CRC or length mismatch of the decompressed data as BadGzipFile.
        raise IdxFormatError(f"{path}: corrupt gzip data or checksum mismatch ({exc})") from exc

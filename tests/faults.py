"""Damage done to stored files in the fault-injection tests, and the error each must give."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

# What each kind of damage must be reported as (a regex over the error's or warning's message).
EXPECTED = {
    "bit flip": "does not match its stored SHA-256",
    "truncated": "does not match its stored SHA-256|truncated",
    "empty": "empty",
    "random": "no verified header",
    "pickle": "no verified header",
    "unverified": "no verified header",
}
DAMAGES = tuple(EXPECTED)


class Planted:
    """Unpickling this runs `touch MARKER`: a file must never be loaded with pickle's full powers."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"state_dict": Planted(marker), "key": Planted(marker)}))


def damage_file(path: Path, kind: str) -> str:
    """Damage `path` in place; returns the regex its error must match."""
    data = path.read_bytes()
    if kind == "bit flip":
        flipped = bytearray(data)
        flipped[len(data) * 3 // 4] ^= 0x01
        path.write_bytes(bytes(flipped))
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(os.urandom(len(data)))
    elif kind == "pickle":
        malicious_pickle(path, path.with_name("PLANTED_PICKLE_RAN"))
    elif kind == "unverified":
        import torch

        torch.save({"format": 2, "key": {}, "state_dict": {}, "value": {}}, path)
    else:
        raise ValueError(f"kind: expected one of {DAMAGES}, got {kind!r}")
    return EXPECTED[kind]

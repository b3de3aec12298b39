"""Checkpoint cache: trained weights stored under a key (model, recipe, data fingerprint).

Files are written to a temporary name and renamed into place (atomic on POSIX), so a killed
run never leaves a half-written checkpoint under the final name, and carry the SHA-256 of their
bytes, so a damaged one is never loaded (:class:`CheckpointCorruptError`). A checkpoint whose
stored key differs from the expected one raises :class:`CheckpointKeyError` instead of being
silently used; `load_or_train` moves either aside and retrains.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import CorruptFileError
from ..storage import json_digest, load_verified, save_verified

CACHE_FORMAT = 2  # 2: verified files (storage.save_verified)


class CheckpointKeyError(CorruptFileError):
    """A checkpoint file exists but was trained for a different model, recipe or data."""


class CheckpointCorruptError(CorruptFileError):
    """A checkpoint file exists but cannot be read, or fails its digest."""


def checkpoint_path(cache_dir: Path, name: str, key: Mapping[str, Any]) -> Path:
    """``cache_dir/<name slug>-<key digest>.pt``: readable, and distinct for distinct keys."""
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_")
    return Path(cache_dir) / f"{slug}-{json_digest(key)[:16]}.pt"


def save_checkpoint(path: Path, key: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor], info: Mapping[str, Any]) -> None:
    """Atomically write ``state_dict`` with its ``key`` and free-form ``info`` (e.g. timings)."""
    save_verified({"format": CACHE_FORMAT, "key": dict(key), "info": dict(info), "state_dict": dict(state_dict)},
                  Path(path))


def load_checkpoint(path: Path, key: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict and info stored at ``path``, after checking its key equals ``key``."""
    try:
        payload = load_verified(path)
    except CorruptFileError as exc:
        raise CheckpointCorruptError(path, f"unreadable checkpoint: {exc.reason}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CACHE_FORMAT or not isinstance(payload.get("key"), dict):
        raise CheckpointCorruptError(path, f"not a checkpoint of format {CACHE_FORMAT}")
    stored = payload["key"]
    if stored != dict(key):
        differ = sorted(k for k in set(stored) | set(key) if stored.get(k) != key.get(k))
        raise CheckpointKeyError(path, f"checkpoint key differs from the expected key in {differ}")
    return payload["state_dict"], payload["info"]

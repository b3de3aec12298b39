"""Checkpoint cache: trained weights stored under a key (model, recipe, data fingerprint).

Files are written to a temporary name and renamed into place (atomic on POSIX), so a killed
run never leaves a half-written checkpoint under the final name. A checkpoint whose stored key
differs from the expected one raises :class:`CheckpointKeyError` instead of being silently
replaced: the caller decides whether to delete it and retrain.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..storage import atomic_torch_save, json_digest

CACHE_FORMAT = 1


class CheckpointKeyError(RuntimeError):
    """A checkpoint file exists but was trained for a different model, recipe or data."""


class CheckpointCorruptError(RuntimeError):
    """A checkpoint file exists but cannot be read."""


def checkpoint_path(cache_dir: Path, name: str, key: Mapping[str, Any]) -> Path:
    """``cache_dir/<name slug>-<key digest>.pt``: readable, and distinct for distinct keys."""
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_")
    return Path(cache_dir) / f"{slug}-{json_digest(key)[:16]}.pt"


def save_checkpoint(path: Path, key: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor], info: Mapping[str, Any]) -> None:
    """Atomically write ``state_dict`` with its ``key`` and free-form ``info`` (e.g. timings)."""
    atomic_torch_save({"format": CACHE_FORMAT, "key": dict(key), "info": dict(info), "state_dict": dict(state_dict)},
                      Path(path))


def load_checkpoint(path: Path, key: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict and info stored at ``path``, after checking its key equals ``key``."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged archives
        raise CheckpointCorruptError(f"{path}: unreadable checkpoint ({exc}); delete it to retrain") from exc
    if not isinstance(payload, dict) or payload.get("format") != CACHE_FORMAT:
        raise CheckpointCorruptError(f"{path}: not a checkpoint of format {CACHE_FORMAT}; delete it to retrain")
    stored = payload["key"]
    if stored != dict(key):
        differ = sorted(k for k in set(stored) | set(key) if stored.get(k) != key.get(k))
        raise CheckpointKeyError(f"{path}: checkpoint key differs from the expected key in {differ}; delete it to retrain")
    return payload["state_dict"], payload["info"]

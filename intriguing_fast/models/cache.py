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
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch

from ..errors import CorruptFileError
from ..storage import exclusive_lock, json_digest, load_verified, quarantine, save_verified

CACHE_FORMAT = 2  # 2: verified files (storage.save_verified)


class CheckpointKeyError(CorruptFileError):
    """A checkpoint file exists but was trained for a different model, recipe or data."""


class CheckpointCorruptError(CorruptFileError):
    """A checkpoint file exists but cannot be read, or fails its digest."""


def checkpoint_path(cache_dir: Path, name: str, key: Mapping[str, Any]) -> Path:
    """``cache_dir/<name slug>-<key digest>.pt``: readable, and distinct for distinct keys."""
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_")
    return Path(cache_dir) / f"{slug}-{json_digest(key)[:16]}.pt"


def training_lock(path: Path) -> AbstractContextManager[None]:
    """Held while the checkpoint at `path` is looked up and, if missing, trained and saved: a second
    process wanting the same model (another run on a shared cold cache) waits, then loads it."""
    return exclusive_lock(path.with_name(path.name + ".lock"), wait=True)


def save_checkpoint(
    path: Path, key: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor], info: Mapping[str, Any]
) -> None:
    """Atomically write ``state_dict`` with its ``key`` and free-form ``info`` (e.g. timings)."""
    save_verified(
        {"format": CACHE_FORMAT, "key": dict(key), "info": dict(info), "state_dict": dict(state_dict)}, Path(path)
    )


def load_checkpoint(path: Path, key: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict and info stored at ``path``, after checking its key equals ``key``."""
    try:
        payload = load_verified(path)
    except CorruptFileError as exc:
        raise CheckpointCorruptError(path, f"unreadable checkpoint: {exc.reason}") from exc
    if (
        not isinstance(payload, dict)
        or payload.get("format") != CACHE_FORMAT
        or not isinstance(payload.get("key"), dict)
    ):
        raise CheckpointCorruptError(path, f"not a checkpoint of format {CACHE_FORMAT}")
    stored = payload["key"]
    if stored != dict(key):
        differ = sorted(k for k in set(stored) | set(key) if stored.get(k) != key.get(k))
        raise CheckpointKeyError(path, f"checkpoint key differs from the expected key in {differ}")
    return payload["state_dict"], payload["info"]


def load_cached(
    path: Path, key: Mapping[str, Any], model: torch.nn.Module, name: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """(state dict, info) of the checkpoint at `path`, its weights loaded into `model`; None if
    there is none, or if it is damaged, holds another key or does not fit `model` (named `name`):
    such a file is moved aside (``NAME.corrupt``, with a warning) for the caller to retrain."""
    if not path.exists():
        return None
    try:
        state, info = load_checkpoint(path, key)
        model.load_state_dict(state)
        return state, info
    except CorruptFileError as exc:
        quarantine(path, exc)
    except RuntimeError as exc:  # load_state_dict: names or shapes that do not fit the architecture
        quarantine(path, CorruptFileError(path, f"weights do not fit {name}: {str(exc).splitlines()[0]}"))
    return None

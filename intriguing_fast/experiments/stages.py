"""Cached, resumable pipeline stages: a killed run restarts where it stopped."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch

T = TypeVar("T")


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class StageRecord:
    name: str
    wall_s: float
    cached: bool
    finished_at: str


@dataclass
class StageStore:
    """Stores each stage's value under `root`, keyed by what the stage depends on.

    A stage whose stored key matches is loaded instead of recomputed; a different key
    (another scale, seed or data source) recomputes it and replaces the old value.
    """

    root: Path
    records: list[StageRecord] = field(default_factory=list)

    def path(self, name: str) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        return self.root / f"{safe}.pt"

    def note(self, name: str, wall_s: float, cached: bool) -> None:
        """Record a stage that caches itself elsewhere (trained models have their own cache)."""
        self.records.append(StageRecord(name, wall_s, cached, time.strftime("%Y-%m-%dT%H:%M:%S%z")))

    def run(self, name: str, key: dict, compute: Callable[[], T]) -> T:
        path = self.path(name)
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        if path.exists():
            stored = torch.load(path, weights_only=True)
            if stored.get("key") == digest:
                self.records.append(StageRecord(name, stored["wall_s"], True, stored["finished_at"]))
                return stored["value"]
        start = time.perf_counter()
        value = compute()
        wall = time.perf_counter() - start
        finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        atomic_torch_save({"key": digest, "value": value, "wall_s": wall, "finished_at": finished}, path)
        self.records.append(StageRecord(name, wall, False, finished))
        return value

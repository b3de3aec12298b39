"""Cached, resumable stages: each value stored under OUT/stages with the key it was computed
for, written atomically with its digest, so a killed run restarts where it stopped and a
damaged file is moved aside and recomputed, never loaded."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from ..errors import CorruptFileError
from ..storage import json_digest, load_verified, quarantine, save_verified

T = TypeVar("T")


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
    (other weights, images, options, scale or seed) recomputes it and replaces the old value;
    a damaged file (truncated, altered, foreign) is moved aside with a warning and recomputed.
    """

    root: Path
    records: list[StageRecord] = field(default_factory=list)

    def path(self, name: str) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        return self.root / f"{safe}.pt"

    def note(self, name: str, wall_s: float, cached: bool) -> None:
        """Record a stage that caches itself elsewhere (trained models have their own cache)."""
        self.records.append(StageRecord(name, wall_s, cached, time.strftime("%Y-%m-%dT%H:%M:%S%z")))

    def run(self, name: str, key: Any, compute: Callable[[], T]) -> T:
        path = self.path(name)
        digest = json_digest(key)
        stored = self._load(path)
        if stored is not None and stored["key"] == digest:
            self.records.append(StageRecord(name, stored["wall_s"], True, stored["finished_at"]))
            return stored["value"]
        start = time.perf_counter()
        value = compute()
        wall = time.perf_counter() - start
        finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        save_verified({"key": digest, "value": value, "wall_s": wall, "finished_at": finished}, path)
        self.records.append(StageRecord(name, wall, False, finished))
        return value

    @staticmethod
    def _load(path: Path) -> dict | None:
        """The stored record at `path`; None when there is none or it was damaged (moved aside)."""
        if not path.exists():
            return None
        try:
            stored = load_verified(path)
            if not isinstance(stored, dict) or not {"key", "value", "wall_s", "finished_at"} <= stored.keys():
                raise CorruptFileError(path, "not a stage record")
        except CorruptFileError as exc:
            quarantine(path, exc)
            return None
        return stored

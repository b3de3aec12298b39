"""Cached, resumable stages: each value stored under OUT/stages with the key it was computed
for, written atomically with its digest, so a killed run restarts where it stopped and a
damaged file is moved aside and recomputed, never loaded."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

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
        """Record a stage that caches itself elsewhere (trained models have their own cache), once."""
        if not any(r.name == name for r in self.records):
            self.records.append(StageRecord(name, wall_s, cached, time.strftime("%Y-%m-%dT%H:%M:%S%z")))

    def run(self, name: str, key: Any, compute: Callable[[], T]) -> T:
        stored = self._load(self.path(name))
        if stored is not None and stored["key"] == json_digest(key):
            if not any(r.name == name for r in self.records):  # a stage saved earlier in this run keeps its record
                self.records.append(StageRecord(name, stored["wall_s"], True, stored["finished_at"]))
            return stored["value"]
        start = time.perf_counter()
        value = compute()
        self.save(name, key, value, time.perf_counter() - start)
        return value

    def holds(self, name: str, key: Any) -> bool:
        """Whether a sound value of stage `name` is stored for `key`."""
        stored = self._load(self.path(name))
        return stored is not None and stored["key"] == json_digest(key)

    def save(self, name: str, key: Any, value: Any, wall_s: float) -> None:
        """Store `value` of stage `name`, computed for `key` in `wall_s` seconds."""
        finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        save_verified(
            {"key": json_digest(key), "value": value, "wall_s": wall_s, "finished_at": finished}, self.path(name)
        )
        self.records.append(StageRecord(name, wall_s, False, finished))

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

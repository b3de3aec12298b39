"""What a stage of the reproduction is (experiments/table.py holds the table of them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .context import Run


@dataclass(frozen=True)
class Stage:
    name: str  # --only name, results.json key
    title: str  # the report section's heading
    section: str  # its renderer in report/sections.py
    models: tuple[str, ...]  # zoo models it evaluates
    image_set: str | None  # what its models are attacked on (context.IMAGE_SETS); None: no attacks
    compute: Callable[[Run, Stage], dict]
    settings: Mapping[str, Any] = field(default_factory=dict)
    paper: Mapping[str, Any] = field(default_factory=dict)  # the paper's numbers, by row
    # Independent pieces of work `compute` needs beyond the zoo models and attacks, each caching
    # its result (e.g. training a model variant), which the ranks of a torchrun launch share out.
    jobs: Callable[[Run, Stage], list[Callable[[], object]]] | None = None

    def key(self, run: Run) -> dict:
        """Everything the stage's value depends on, by content."""
        return {
            "stage": self.name,
            "settings": dict(self.settings),
            "run": run.settings(),
            "data": run.fingerprints,
            "models": {name: run.trained(name).weights for name in self.models},
            "attacks": {name: run.attacked(name, self.image_set).key for name in self.models}
            if self.image_set is not None
            else {},
        }

"""What a stage of the reproduction is (experiments/table.py holds the table of them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from enum import Enum
from typing import Any

from .context import Run


class StageKind(str, Enum):
    """What a stage computes: the shape of its results.json entry, and so the report section that
    renders it (report/sections.py maps every kind to its renderer). The value is what
    results.json records."""

    DISTORTION_TABLE = "distortion_table"
    TRANSFER_TABLE = "transfer_table"
    UNIT_PROBING = "unit_probing"
    SPECTRAL_TABLE = "spectral_table"
    ADVERSARIAL_TRAINING = "adversarial_training"


@dataclass(frozen=True)
class Stage:
    name: str  # --only name, results.json key
    title: str  # the report section's heading
    kind: StageKind  # what it computes, and which report section renders it
    models: tuple[str, ...]  # zoo models it evaluates
    image_set: str | None  # what its models are attacked on (context.IMAGE_SETS); None: no attacks
    compute: Callable[[Run, Stage], Mapping[str, Any]]
    # Its typed settings (a frozen dataclass of its module's), or a mapping from scale name to them.
    settings: Any = None
    paper: Mapping[str, Any] = field(default_factory=dict)  # the paper's numbers, by row
    # Independent pieces of work `compute` needs beyond the zoo models and attacks, each caching
    # its result (e.g. training a model variant), which the ranks of a torchrun launch share out.
    jobs: Callable[[Run, Stage], list[Callable[[], object]]] | None = None

    def key(self, run: Run) -> dict:
        """Everything the stage's value depends on, by content."""
        return {
            "stage": self.name,
            "settings": plain(self.settings),
            "run": run.settings(),
            "data": run.fingerprints,
            "models": {name: run.trained(name).weights for name in self.models},
            "attacks": {name: run.attacked(name, self.image_set).key for name in self.models}
            if self.image_set is not None
            else {},
        }


def plain(settings: object) -> object:
    """Settings as the plain values a key is hashed from: a dataclass as a dict of its fields, a
    mapping of them entry by entry, None as {}."""
    if settings is None:
        return {}
    if is_dataclass(settings) and not isinstance(settings, type):
        return asdict(settings)
    if isinstance(settings, Mapping):
        return {k: plain(v) for k, v in settings.items()}
    return settings

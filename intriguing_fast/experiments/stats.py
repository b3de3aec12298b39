"""Error rates with confidence intervals (the paper gives none)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile: two-sided 95% intervals


class RateEntry(TypedDict):
    """A `Rate` as results.json holds it (`Rate.as_dict`)."""

    errors: int
    total: int
    percent: float
    ci95: list[float]


@dataclass(frozen=True)
class Rate:
    """k errors out of n, as a percentage with a Wilson 95% interval."""

    errors: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.errors / self.total if self.total else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson score interval at 95%, in percent: sound at 0% and 100% too."""
        n, z = self.total, Z95
        if n == 0:
            return float("nan"), float("nan")
        p = self.errors / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)

    def __str__(self) -> str:
        lo, hi = self.interval
        return f"{self.percent:.1f}% [{lo:.1f}, {hi:.1f}]"

    def as_dict(self) -> RateEntry:
        lo, hi = self.interval
        return {"errors": self.errors, "total": self.total, "percent": self.percent, "ci95": [lo, hi]}

    @classmethod
    def of(cls, entry: RateEntry) -> Rate:
        """The rate an entry of results.json records."""
        return cls(entry["errors"], entry["total"])

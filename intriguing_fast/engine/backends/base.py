"""What every backend implements: the steps of an iteration, defined by engine/backends/reference.py."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from ..state import BatchState, LBFGSBOptions


class Kernels(ABC):
    """The three steps of an iteration, and `propose`, the first two as the engine runs them."""

    name: str
    # Whether the steps take every problem of a batch, the stopped ones left untouched by masks
    # (the engine's fixed-shape rounds), or only running ones.
    every_row: bool = False

    @abstractmethod
    def direction(self, st: BatchState, rows: torch.Tensor) -> None: ...

    @abstractmethod
    def trial(self, st: BatchState, rows: torch.Tensor) -> None: ...

    @abstractmethod
    def accept(
        self, st: BatchState, rows: torch.Tensor, f_t: torch.Tensor, g_t: torch.Tensor, opt: LBFGSBOptions
    ) -> None: ...

    def propose(self, st: BatchState, rows: torch.Tensor) -> None:
        """The next trial point of every problem of `rows`: a new direction where one is
        needed, then x_trial. A backend may fuse the two (cpp does, row by row)."""
        self.direction(st, rows)
        self.trial(st, rows)

"""The plain result object of `minimize_lbfgsb`, in the manner of scipy's OptimizeResult."""
from __future__ import annotations

import enum
from dataclasses import dataclass

import torch


class Status(enum.IntEnum):
    """Why a problem stopped. Values >= 0 are final; RUNNING is internal to the engine."""

    RUNNING = -1
    CONVERGED_GTOL = 0
    CONVERGED_FTOL = 1
    MAX_ITER = 2
    MAX_FUN = 3
    LINE_SEARCH_FAILED = 4
    NONFINITE = 5

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    Status.RUNNING: "RUNNING",
    Status.CONVERGED_GTOL: "CONVERGENCE: NORM OF PROJECTED GRADIENT <= GTOL",
    Status.CONVERGED_FTOL: "CONVERGENCE: REL_REDUCTION_OF_F <= FTOL",
    Status.MAX_ITER: "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
    Status.MAX_FUN: "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT",
    Status.LINE_SEARCH_FAILED: "ABNORMAL: LINE SEARCH FAILED FROM A GRADIENT STEP",
    Status.NONFINITE: "ABNORMAL: OBJECTIVE OR GRADIENT NOT FINITE (x is the last finite point)",
}


@dataclass
class LBFGSBResult:
    """Per-problem outcome of a batched solve; every field has the batch as first dimension.

    x: [B, n] solutions (always inside the box); fun: [B] objective at x; grad: [B, n]
    gradient at x; pg_norm: [B] infinity norm of the projected gradient P(x - g) - x;
    nit, nfev: [B] iterations and function evaluations; status: [B] `Status` codes.
    """

    x: torch.Tensor
    fun: torch.Tensor
    grad: torch.Tensor
    pg_norm: torch.Tensor
    nit: torch.Tensor
    nfev: torch.Tensor
    status: torch.Tensor

    @property
    def success(self) -> torch.Tensor:
        """[B] bool: the problem met gtol or ftol."""
        return self.status <= Status.CONVERGED_FTOL

    @property
    def message(self) -> list[str]:
        """One human-readable message per problem."""
        return [Status(int(s)).message for s in self.status.tolist()]

    def __repr__(self) -> str:
        counts = torch.bincount(self.status.cpu() + 1, minlength=len(Status))
        summary = ", ".join(f"{Status(i - 1).name}={int(c)}" for i, c in enumerate(counts.tolist()) if c)
        return (
            f"LBFGSBResult(B={self.x.shape[0]}, n={self.x.shape[1]}, dtype={self.x.dtype}, "
            f"status: {summary}, mean nit={self.nit.double().mean():.1f}, "
            f"mean nfev={self.nfev.double().mean():.1f})"
        )

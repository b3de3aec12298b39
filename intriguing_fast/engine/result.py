"""The plain result object of `minimize_lbfgsb`, in the manner of scipy's OptimizeResult."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..kernels.status import Status


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

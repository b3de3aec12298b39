"""The plain result object of `minimize_lbfgsb`, in the manner of scipy's OptimizeResult."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .status import Status

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult


@dataclass
class LBFGSBResult:
    """Per-problem outcome of a batched solve; every field has the batch as first dimension.

    x: [B, n] solutions (always inside the box); fun: [B] objective at x; grad (or jac, scipy's
    name): [B, n] gradient at x; pg_norm: [B] infinity norm of the projected gradient
    P(x - g) - x; nit, nfev: [B] iterations and function evaluations; status: [B] `Status` codes.
    `res[i]` is problem i as scipy's `OptimizeResult`.
    """

    x: torch.Tensor
    fun: torch.Tensor
    grad: torch.Tensor
    pg_norm: torch.Tensor
    nit: torch.Tensor
    nfev: torch.Tensor
    status: torch.Tensor

    @property
    def jac(self) -> torch.Tensor:
        """[B, n]: `grad`, under scipy's name."""
        return self.grad

    def problem(self, i: int) -> OptimizeResult:
        """Problem i alone as scipy's `OptimizeResult` (NumPy arrays and floats; scipy's status
        codes 0/1/2 and messages, `engine_status` our `Status`), as scipy's L-BFGS-B returns it."""
        from scipy.optimize import OptimizeResult  # noqa: PLC0415  (scipy only where asked for)

        B = self.x.shape[0]
        if isinstance(i, bool) or not isinstance(i, int) or not -B <= i < B:
            raise IndexError(f"i: expected a problem index in [-{B}, {B - 1}], got {i!r}")
        status = Status(int(self.status[i]))
        return OptimizeResult(
            x=self.x[i].detach().cpu().numpy(),
            fun=float(self.fun[i]),
            jac=self.grad[i].detach().cpu().numpy(),
            nit=int(self.nit[i]),
            nfev=int(self.nfev[i]),
            njev=int(self.nfev[i]),
            status=status.scipy_status,
            success=status.scipy_status == 0,
            message=status.message,
            engine_status=status,
            pg_norm=float(self.pg_norm[i]),
        )

    def __getitem__(self, i: int) -> OptimizeResult:
        """`res[i]`: `problem(i)`."""
        return self.problem(i)

    def __len__(self) -> int:
        return self.x.shape[0]

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

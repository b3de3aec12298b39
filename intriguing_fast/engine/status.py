"""Why a problem stopped: the status codes every backend writes (csrc/batch.h mirrors them)."""

from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """Why a problem stopped. Values >= 0 are final; RUNNING is internal to the engine."""

    RUNNING = -1
    CONVERGED_GTOL = 0
    CONVERGED_FTOL = 1
    MAX_ITER = 2
    MAX_FUN = 3
    LINE_SEARCH_FAILED = 4
    NONFINITE = 5
    STOPPED = 6

    @property
    def message(self) -> str:
        """scipy's L-BFGS-B message where scipy has this outcome (its texts of scipy 1.15+), ours else."""
        return _MESSAGES[self]

    @property
    def scipy_status(self) -> int:
        """scipy's `status`: 0 converged, 1 a limit reached (or stopped), 2 abnormal."""
        return 0 if self <= Status.CONVERGED_FTOL else 2 if self in (Status.LINE_SEARCH_FAILED, Status.NONFINITE) else 1


_MESSAGES = {
    Status.RUNNING: "RUNNING",
    Status.CONVERGED_GTOL: "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL",
    Status.CONVERGED_FTOL: "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH",
    Status.MAX_ITER: "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
    Status.MAX_FUN: "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT",
    Status.LINE_SEARCH_FAILED: "ABNORMAL: LINE SEARCH FAILED FROM A GRADIENT STEP",
    Status.NONFINITE: "ABNORMAL: OBJECTIVE OR GRADIENT NOT FINITE (x is the last finite point)",
    Status.STOPPED: "STOP: STOPPED BY THE CALLER, OR NOT STARTED",
}

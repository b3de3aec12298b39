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
        return _MESSAGES[self]


_MESSAGES = {
    Status.RUNNING: "RUNNING",
    Status.CONVERGED_GTOL: "CONVERGENCE: NORM OF PROJECTED GRADIENT <= GTOL",
    Status.CONVERGED_FTOL: "CONVERGENCE: REL_REDUCTION_OF_F <= FTOL",
    Status.MAX_ITER: "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
    Status.MAX_FUN: "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT",
    Status.LINE_SEARCH_FAILED: "ABNORMAL: LINE SEARCH FAILED FROM A GRADIENT STEP",
    Status.NONFINITE: "ABNORMAL: OBJECTIVE OR GRADIENT NOT FINITE (x is the last finite point)",
    Status.STOPPED: "STOP: STOPPED BY THE CALLER, OR NOT STARTED",
}

"""The batched projected L-BFGS-B engine."""

from ..kernels import LBFGSBOptions, Status
from .lbfgsb import minimize_lbfgsb
from .objective import autograd_objective
from .result import LBFGSBResult
from .validation import StateMemoryError

__all__ = ["minimize_lbfgsb", "autograd_objective", "LBFGSBOptions", "LBFGSBResult", "StateMemoryError", "Status"]

"""The batched projected L-BFGS-B engine."""
from .lbfgsb import minimize_lbfgsb
from .objective import autograd_objective
from .result import LBFGSBResult, Status

__all__ = ["minimize_lbfgsb", "autograd_objective", "LBFGSBResult", "Status"]

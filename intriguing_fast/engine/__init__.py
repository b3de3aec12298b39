"""The batched projected L-BFGS-B engine: its contract (options, status codes, the batch state:
`state.py`, `status.py`), the solver and its rounds, and the backends of its per-iteration steps
(`backends/`: a torch reference, the C++ core, Triton)."""

from .backends.denormals import flushed_denormals
from .fixed_rounds import batch_solver
from .lbfgsb import minimize_lbfgsb
from .objective import autograd_objective
from .result import LBFGSBResult
from .solver import BatchSolver
from .state import BACKENDS, ROUNDS, LBFGSBOptions
from .status import Status
from .validation import StateMemoryError, available_bytes

__all__ = [
    "BACKENDS",
    "ROUNDS",
    "BatchSolver",
    "LBFGSBOptions",
    "LBFGSBResult",
    "StateMemoryError",
    "Status",
    "autograd_objective",
    "available_bytes",
    "batch_solver",
    "flushed_denormals",
    "minimize_lbfgsb",
]

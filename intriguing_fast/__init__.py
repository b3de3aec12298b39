"""intriguing_fast: batched minimal adversarial examples (Szegedy et al., ICLR 2014)."""
from .attack import (
    AttackResult,
    LBFGSAttack,
    all_other_targets,
    lbfgs_attack,
    least_likely_targets,
    random_targets,
)
from .engine import LBFGSBResult, Status, autograd_objective, minimize_lbfgsb

__version__ = "0.1.0"

__all__ = [
    "minimize_lbfgsb",
    "autograd_objective",
    "LBFGSBResult",
    "Status",
    "lbfgs_attack",
    "LBFGSAttack",
    "AttackResult",
    "random_targets",
    "all_other_targets",
    "least_likely_targets",
    "__version__",
]

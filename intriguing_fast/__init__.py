"""intriguing_fast: batched minimal adversarial examples (Szegedy et al., ICLR 2014)."""
from ._version import __version__
from .attack import (
    AttackResult,
    LBFGSAttack,
    all_other_targets,
    attack_engine,
    lbfgs_attack,
    least_likely_targets,
    random_targets,
)
from .engine import LBFGSBOptions, LBFGSBResult, Status, autograd_objective, minimize_lbfgsb

__all__ = [
    "minimize_lbfgsb",
    "autograd_objective",
    "LBFGSBOptions",
    "LBFGSBResult",
    "Status",
    "lbfgs_attack",
    "LBFGSAttack",
    "attack_engine",
    "AttackResult",
    "random_targets",
    "all_other_targets",
    "least_likely_targets",
    "__version__",
]

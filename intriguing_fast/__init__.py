"""intriguing_fast: batched minimal adversarial examples (Szegedy et al., ICLR 2014)."""

from .threads import bound_spinning, set_threads

bound_spinning()  # before anything below imports torch: OpenMP reads it once, when it starts

from ._version import __version__  # noqa: E402
from .attack import (  # noqa: E402
    AttackProgress,
    AttackResult,
    LBFGSAttack,
    all_other_targets,
    attack_engine,
    lbfgs_attack,
    least_likely_targets,
    random_targets,
    robust_accuracy,
    robustness_curve,
)
from .engine import LBFGSBOptions, LBFGSBResult, Status, autograd_objective, minimize_lbfgsb  # noqa: E402

__all__ = [
    "set_threads",
    "minimize_lbfgsb",
    "autograd_objective",
    "LBFGSBOptions",
    "LBFGSBResult",
    "Status",
    "lbfgs_attack",
    "LBFGSAttack",
    "attack_engine",
    "AttackResult",
    "AttackProgress",
    "random_targets",
    "all_other_targets",
    "least_likely_targets",
    "robust_accuracy",
    "robustness_curve",
    "__version__",
]

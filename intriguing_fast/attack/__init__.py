"""The L-BFGS attack of Szegedy et al. (2014): minimal adversarial examples, batched."""

from .curves import RobustnessCurve, minimal_distances, robust_accuracy, robustness_curve
from .lbfgs_attack import LBFGSAttack, lbfgs_attack
from .options import AttackOptions, attack_engine
from .progress import AttackProgress
from .result import AttackResult, distortion
from .targets import all_other_targets, least_likely_targets, random_targets

__all__ = [
    "AttackOptions",
    "AttackProgress",
    "AttackResult",
    "LBFGSAttack",
    "RobustnessCurve",
    "all_other_targets",
    "attack_engine",
    "distortion",
    "lbfgs_attack",
    "least_likely_targets",
    "minimal_distances",
    "random_targets",
    "robust_accuracy",
    "robustness_curve",
]

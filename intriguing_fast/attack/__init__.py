"""The L-BFGS attack of Szegedy et al. (2014): minimal adversarial examples, batched."""
from .lbfgs import LBFGSAttack, lbfgs_attack
from .result import AttackResult
from .targets import all_other_targets, least_likely_targets, random_targets

__all__ = ["lbfgs_attack", "LBFGSAttack", "AttackResult", "random_targets", "all_other_targets",
           "least_likely_targets"]

"""The L-BFGS attack of Szegedy et al. (2014): minimal adversarial examples, batched."""
from .lbfgs_attack import LBFGSAttack, lbfgs_attack
from .options import AttackOptions, attack_engine
from .result import AttackResult, distortion
from .targets import all_other_targets, least_likely_targets, random_targets

__all__ = ["AttackOptions", "AttackResult", "LBFGSAttack", "all_other_targets", "attack_engine", "distortion", "lbfgs_attack",
           "least_likely_targets", "random_targets"]

"""Adversarial training with pools of adversarial examples (Section 4.2): a model split at a
layer (`split`), one layer's pool (`pool`), the training loop and its recipe (`training`), and
the checkpoint cache (`checkpoints`, whose `load_or_train_adversarial` is the entry point)."""

from .checkpoints import AdversarialModel, load_or_train_adversarial
from .pool import AdversarialPool
from .training import AdversarialRecipe, PoolSettings, train_adversarial

__all__ = [
    "AdversarialModel",
    "AdversarialPool",
    "AdversarialRecipe",
    "PoolSettings",
    "load_or_train_adversarial",
    "train_adversarial",
]

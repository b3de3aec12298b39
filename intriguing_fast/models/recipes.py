"""Training recipes: what optimiser, how long, which weight decay, which seed."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from .regularization import WEIGHT_DECAY_CONVENTION


@dataclass(frozen=True)
class Phase:
    """One optimisation stage.

    ``epochs`` counts passes over the data: for ``"lbfgs"`` (full batch) it is the iteration cap,
    training stops earlier at convergence. ``weight_decay`` holds lambda per trained layer.
    ``sparsity`` (autoencoder phase only) is the target mean activation rho and the weight beta
    of the KL sparsity penalty of a sparse autoencoder; ``None`` for no penalty.
    """

    optimizer: Literal["lbfgs", "adam", "sgd"]
    epochs: int
    weight_decay: tuple[float, ...]
    lr: float = 1.0
    batch_size: int = 0
    sparsity: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in ("lbfgs", "adam", "sgd"):
            raise ValueError(f"optimizer: expected 'lbfgs', 'adam' or 'sgd', got {self.optimizer!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs: expected >= 1, got {self.epochs}")
        if self.optimizer != "lbfgs" and self.batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1 for {self.optimizer}, got {self.batch_size}")


@dataclass(frozen=True)
class Recipe:
    """How a model is trained: an optional unsupervised autoencoder phase, then the supervised one."""

    train: Phase
    seed: int = 0
    pretrain: Phase | None = None
    convention: str = WEIGHT_DECAY_CONVENTION

    def capped(self, epochs: int, *, minibatch_only: bool = False) -> Recipe:
        """The same recipe with its phases cut to at most ``epochs``: every phase, or only the
        minibatch ones (full-batch L-BFGS phases are cheap and run to convergence)."""
        if epochs < 1:
            raise ValueError(f"epochs: expected >= 1, got {epochs}")

        def cap(phase: Phase) -> Phase:
            if minibatch_only and phase.optimizer == "lbfgs":
                return phase
            return replace(phase, epochs=min(phase.epochs, epochs))

        return replace(self, train=cap(self.train), pretrain=cap(self.pretrain) if self.pretrain else None)

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
    of the KL sparsity penalty of a sparse autoencoder; ``None`` for no penalty. ``min_steps``
    (minibatch phases) raises the epochs until the phase takes at least that many optimizer
    steps: on a small training set the sigmoid nets otherwise stop at chance level.
    """

    optimizer: Literal["lbfgs", "adam", "sgd"]
    epochs: int
    weight_decay: tuple[float, ...]
    lr: float = 1.0
    batch_size: int = 0
    sparsity: tuple[float, float] | None = None
    min_steps: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in ("lbfgs", "adam", "sgd"):
            raise ValueError(f"optimizer: expected 'lbfgs', 'adam' or 'sgd', got {self.optimizer!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs: expected >= 1, got {self.epochs}")
        if self.optimizer != "lbfgs" and self.batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1 for {self.optimizer}, got {self.batch_size}")
        if self.min_steps < 0:
            raise ValueError(f"min_steps: expected >= 0, got {self.min_steps}")

    def epochs_for(self, examples: int) -> int:
        """Epochs over `examples` training examples: `epochs`, raised to reach `min_steps`."""
        batches = max(1, -(-examples // max(1, self.batch_size)))
        return max(self.epochs, -(-self.min_steps // batches))


@dataclass(frozen=True)
class Recipe:
    """How a model is trained: an optional unsupervised autoencoder phase, then the supervised one."""

    train: Phase
    seed: int = 0
    pretrain: Phase | None = None
    convention: str = WEIGHT_DECAY_CONVENTION

    def capped(self, epochs: int | None, *, minibatch_only: bool = False, min_steps: int | None = None) -> Recipe:
        """The same recipe with its phases cut to at most ``epochs`` (None: as they are): every
        phase, or only the minibatch ones (full-batch L-BFGS phases are cheap and run to
        convergence); with ``min_steps``, their step floors are cut to at most that too."""
        if epochs is not None and epochs < 1:
            raise ValueError(f"epochs: expected >= 1, got {epochs}")

        def cap(phase: Phase) -> Phase:
            if minibatch_only and phase.optimizer == "lbfgs":
                return phase
            floor = phase.min_steps if min_steps is None else min(phase.min_steps, min_steps)
            return replace(phase, epochs=phase.epochs if epochs is None else min(phase.epochs, epochs), min_steps=floor)

        return replace(self, train=cap(self.train), pretrain=cap(self.pretrain) if self.pretrain else None)

    def describe(self, examples: int) -> str:
        """Its phases and a rough duration on ``examples`` training examples, e.g. "sgd 60 epochs,
        batch 64; minutes on a CPU"."""
        phases = [p for p in (self.pretrain, self.train) if p is not None]
        steps = ", then ".join(
            f"L-BFGS up to {p.epochs} iterations"
            if p.optimizer == "lbfgs"
            else f"{p.optimizer} {p.epochs_for(examples)} epochs, batch {p.batch_size}"
            for p in phases
        )
        minibatch = any(p.optimizer != "lbfgs" for p in phases)
        return f"{steps}; {'minutes' if minibatch else 'a minute or less'} on a CPU"

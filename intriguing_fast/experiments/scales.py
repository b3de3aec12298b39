"""How big a reproduction run is: the quick default, the paper's protocol, or tiny for tests."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Recipe


@dataclass(frozen=True)
class Scale:
    """Sizes of one run. None means "all" (the paper's protocol)."""

    name: str
    train_images: int | None  # training images attacked per Table 1 model (Tables 1-2)
    test_images: int | None  # test images attacked per Table 3 model (Table 4)
    minibatch_epochs: int | None  # cap on the minibatch (Adam, SGD) epochs of every recipe
    data_subset: int | None = None  # keep only the first N train and N // 6 test images
    attack_max_iter: int = 100  # L-BFGS iterations per solve of the c search
    min_steps: int | None = None  # cap on the recipes' step floors (Phase.min_steps); None: theirs

    def recipe(self, recipe: Recipe) -> Recipe:
        """The registered recipe with its minibatch phases capped (full-batch L-BFGS phases are cheap)."""
        if self.minibatch_epochs is None and self.min_steps is None:
            return recipe
        return recipe.capped(self.minibatch_epochs, minibatch_only=True, min_steps=self.min_steps)


SCALES = {
    "quick": Scale("quick", train_images=1000, test_images=1000, minibatch_epochs=20),
    "paper": Scale("paper", train_images=None, test_images=None, minibatch_epochs=None),
    "tiny": Scale("tiny", train_images=20, test_images=20, minibatch_epochs=30, data_subset=1200, attack_max_iter=40),
}

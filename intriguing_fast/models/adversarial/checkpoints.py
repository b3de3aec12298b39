"""Adversarially trained models on demand: from the checkpoint cache, or trained (resuming a
killed run from its progress file) and cached, keyed by name, architecture, recipe and data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...storage import cache_root, state_dict_digest, tensor_digest
from ..cache import checkpoint_path, load_cached, save_checkpoint, training_lock
from .training import AdversarialRecipe, train_adversarial, training_key


@dataclass(frozen=True, eq=False)
class AdversarialModel:
    """A model in eval mode, whether it came from the cache, where it is stored, the digest of its
    weights, and its training info (seconds, the attack's seconds, examples generated, fooled)."""

    model: nn.Module
    from_cache: bool
    path: Path
    weights: str
    info: dict


def load_or_train_adversarial(
    name: str,
    build: Callable[[], nn.Module],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    recipe: AdversarialRecipe,
    cache_dir: str | Path | None = None,
    *,
    data_digest: str | None = None,
    progress: bool = True,
) -> AdversarialModel:
    """`train_adversarial(build, inputs, labels, recipe)`, cached under `cache_dir` (default
    ``<cache root>/models``) as ``NAME-<key digest>.pt``; while it trains, its state is saved
    after every epoch beside it (``.progress.pt``), so a killed run resumes where it stopped.
    A damaged or mismatched cached file is moved aside (``.corrupt``) and the model retrained."""
    digest = data_digest or tensor_digest(inputs, labels)
    with torch.random.fork_rng(devices=[]):
        model = build()  # for its architecture; the training builds its own under the recipe's seed
    key = {**training_key(model, digest, recipe), "model": name}
    path = checkpoint_path(Path(cache_dir) if cache_dir is not None else cache_root() / "models", name, key)
    with training_lock(path):  # another process training this very model: wait, then load it
        if (cached := load_cached(path, key, model, name)) is not None:
            state, info = cached
            return AdversarialModel(model.eval(), True, path, state_dict_digest(state), info)
        progress_file = path.with_name(f"{path.stem}.progress.pt")
        model, info = train_adversarial(
            build, inputs, labels, recipe, progress_file=progress_file, data_digest=digest, name=name, progress=progress
        )
        state = model.state_dict()
        save_checkpoint(path, key, state, info)
        progress_file.unlink(missing_ok=True)
        return AdversarialModel(model, False, path, state_dict_digest(state), info)

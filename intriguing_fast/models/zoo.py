"""Trained models on demand: from the checkpoint cache, or trained and cached."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from intriguing_fast.data import MnistSplit, cache_root, p1_p2_split

from .cache import CACHE_FORMAT, checkpoint_path, load_checkpoint, save_checkpoint
from .recipes import Recipe
from .registry import ModelSpec, get_spec
from .training import train_model


def training_data(spec: ModelSpec, train: MnistSplit, split_seed: int = 0) -> MnistSplit:
    """The part of the training split ``spec`` is trained on: all of it, P1 or P2."""
    if spec.subset == "train":
        return train
    p1, p2 = p1_p2_split(train, seed=split_seed)
    return p1 if spec.subset == "P1" else p2


def checkpoint_key(spec: ModelSpec, recipe: Recipe, data: MnistSplit) -> dict:
    """What a checkpoint must match: model name and architecture, recipe, and the data's fingerprint."""
    key = {
        "format": CACHE_FORMAT,
        "model": spec.name,
        "architecture": repr(_build(spec)),
        "recipe": asdict(recipe),
        "data": {"fingerprint": data.fingerprint(), "examples": len(data), "source": data.source},
    }
    return json.loads(json.dumps(key))  # canonical JSON types (tuples -> lists) so stored keys compare equal


def trained_model(
    name: str,
    train: MnistSplit,
    cache_dir: str | Path | None = None,
    *,
    recipe: Recipe | None = None,
    split_seed: int = 0,
    progress: bool = True,
) -> nn.Module:
    """The model ``name`` trained on ``train`` (or its P1/P2 half), loaded from cache when present.

    ``train`` is the training split (full MNIST or any subset for small-scale runs); ``recipe``
    overrides the registered one (e.g. ``spec.recipe.capped(1)``). Both, and the data's
    fingerprint, are in the cache key, so scaled-down runs never collide with full ones.
    ``cache_dir`` defaults to ``<cache root>/models``. A cached file with a different key raises
    :class:`~intriguing_fast.models.cache.CheckpointKeyError`.
    """
    spec = get_spec(name)
    recipe = recipe or spec.recipe
    data = training_data(spec, train, split_seed)
    key = checkpoint_key(spec, recipe, data)
    path = checkpoint_path(Path(cache_dir) if cache_dir is not None else cache_root() / "models", spec.name, key)
    if path.exists():
        state, _ = load_checkpoint(path, key)
        model = _build(spec)
        model.load_state_dict(state)
        return model.eval()
    start = time.perf_counter()
    model = train_model(spec.build, data, recipe, name=spec.name, progress=progress)
    save_checkpoint(path, key, model.state_dict(), {"train_seconds": time.perf_counter() - start, "torch": str(torch.__version__)})
    return model


def _build(spec: ModelSpec) -> nn.Module:
    """A fresh instance, without consuming the caller's global RNG (its init is overwritten anyway)."""
    with torch.random.fork_rng(devices=[]):
        return spec.build()


@torch.no_grad()
def error_rate(model: nn.Module, data: MnistSplit, batch_size: int = 10_000) -> float:
    """Fraction of ``data`` that ``model`` misclassifies."""
    wrong = 0
    for start in range(0, len(data), batch_size):
        logits = model(data.images[start : start + batch_size])
        wrong += (logits.argmax(1) != data.labels[start : start + batch_size]).sum().item()
    return wrong / max(1, len(data))

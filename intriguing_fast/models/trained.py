"""Trained models on demand: from the checkpoint cache, or trained and cached."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..data import MnistSplit, p1_p2_split
from ..storage import cache_root, state_dict_digest
from .cache import CACHE_FORMAT, checkpoint_path, load_cached, save_checkpoint, training_lock
from .recipes import Recipe
from .training import train_model
from .zoo import ModelSpec, get_spec


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A zoo model in eval mode, whether it came from the cache, where it is stored, and the
    digest of its weights (what results computed with it are keyed by)."""

    model: nn.Module
    from_cache: bool
    path: Path
    weights: str
    train_seconds: float


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


def load_or_train(
    name: str,
    train: MnistSplit,
    cache_dir: str | Path | None = None,
    *,
    recipe: Recipe | None = None,
    split_seed: int = 0,
    progress: bool = True,
    on_train: Callable[[Path, MnistSplit], None] | None = None,
) -> TrainedModel:
    """The model ``name`` trained on ``train`` (or its P1/P2 half), loaded from cache when present.

    ``train`` is the training split (full MNIST or any subset for small-scale runs); ``recipe``
    overrides the registered one (e.g. ``spec.recipe.capped(1)``). Both, and the data's
    fingerprint, are in the cache key, so scaled-down runs never collide with full ones.
    ``cache_dir`` defaults to ``<cache root>/models``. A cached file that is damaged or holds
    another key is moved aside (``NAME.corrupt``, with a warning naming it) and the model retrained.
    ``on_train(path, data)`` is called before a model is trained (e.g. to tell the user).
    """
    spec = get_spec(name)
    recipe = recipe or spec.recipe
    key = checkpoint_key(spec, recipe, training_data(spec, train, split_seed))
    path = checkpoint_path(Path(cache_dir) if cache_dir is not None else cache_root() / "models", spec.name, key)
    with training_lock(path):  # another process training this very model: wait, then load it
        model = _build(spec)
        if (cached := load_cached(path, key, model, spec.name)) is not None:
            state, info = cached
            return TrainedModel(
                model.eval(), True, path, state_dict_digest(state), info.get("train_seconds", float("nan"))
            )
        if on_train is not None:
            on_train(path, training_data(spec, train, split_seed))
        start = time.perf_counter()
        model = train_model(
            spec.build, training_data(spec, train, split_seed), recipe, name=spec.name, progress=progress
        )
        seconds = time.perf_counter() - start
        state = model.state_dict()
        save_checkpoint(path, key, state, {"train_seconds": seconds, "torch": str(torch.__version__)})
        return TrainedModel(model, False, path, state_dict_digest(state), seconds)


def trained_model(name: str, train: MnistSplit, cache_dir: str | Path | None = None, **options) -> nn.Module:
    """`load_or_train(...)`'s model alone."""
    return load_or_train(name, train, cache_dir, **options).model


def _build(spec: ModelSpec) -> nn.Module:
    """A fresh instance, without consuming the caller's global RNG (its init is overwritten anyway)."""
    with torch.random.fork_rng(devices=[]):
        return spec.build()

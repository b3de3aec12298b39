"""Adversarial training with pools (Szegedy et al. 2014, Sec. 4.2), for any classifier and data.

Minibatch training (the zoo's objective: mean cross-entropy plus the weight decay of
:mod:`~intriguing_fast.models.regularization`; SGD with Nesterov momentum or Adam, cosine
decay) in which every batch of clean examples is joined by examples drawn from one pool per
layer (:class:`PoolSettings`): after `warmup_epochs` plain epochs each pool is filled with
adversarial outputs of its layer, and every `refresh_every` steps a random `refresh_fraction`
of it is replaced by ones made for the model as it is then. An input pool trains the whole
model; a hidden layer's pool trains the layers above it. Optional dropout (a pre-hook on the
named modules). All randomness comes from the recipe's seed; the state (weights, optimiser,
pools, generator) is saved after every epoch, so a killed run resumes to the same weights.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ...attack import LBFGSAttack
from ...errors import CorruptFileError
from ...storage import quarantine, tensor_digest
from ..cache import CACHE_FORMAT, load_checkpoint, save_checkpoint
from ..recipes import Phase
from ..regularization import weight_decay_penalty
from .pool import POOL_TARGETS, AdversarialPool, seeded
from .split import INPUT, LayerSplit, split_model


@dataclass(frozen=True)
class PoolSettings:
    """One layer's pool: `size` slots, `refresh_fraction` of them replaced at each refresh, and
    `mix` examples drawn from it per clean example of a batch."""

    layer: str = INPUT
    size: int = 1000
    refresh_fraction: float = 0.1
    mix: float = 0.5

    def __post_init__(self) -> None:
        if self.size < 1 or not 0 < self.refresh_fraction <= 1 or not 0 < self.mix <= 10:
            raise ValueError(f"pool: expected size >= 1, refresh_fraction in (0, 1], mix in (0, 10], got {self}")


def default_pool_attack() -> LBFGSAttack:
    """A cheap attack for the pools: 4 c steps of at most 20 L-BFGS iterations each, the
    paper's attack (`LBFGSAttack.paper`)."""
    return LBFGSAttack.paper(20, steps=4)


@dataclass(frozen=True)
class AdversarialRecipe:
    """How a model is trained with pools (no pools: plain training, with `dropout` if given).

    `train` is a minibatch `Phase` (optimizer, epochs, lr, batch size, weight decay per layer);
    `targets` picks the attack's targets ("random", "least_likely" or "untargeted"); `dropout`
    pairs module names with the probability of dropping an entry of that module's input.
    """

    train: Phase
    pools: tuple[PoolSettings, ...] = ()
    refresh_every: int = 100
    warmup_epochs: int = 1
    targets: str = "random"
    attack: LBFGSAttack = field(default_factory=default_pool_attack)
    dropout: tuple[tuple[str, float], ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.train.optimizer == "lbfgs":
            raise ValueError("train: expected a minibatch phase ('sgd' or 'adam'), got 'lbfgs'")
        if self.refresh_every < 1 or self.warmup_epochs < 0:
            raise ValueError(
                f"refresh_every, warmup_epochs: expected >= 1 and >= 0, got {self.refresh_every}, {self.warmup_epochs}"
            )
        if self.targets not in POOL_TARGETS:
            raise ValueError(f"targets: expected one of {POOL_TARGETS}, got {self.targets!r}")
        if len({p.layer for p in self.pools}) != len(self.pools):
            raise ValueError("pools: expected at most one pool per layer")
        if any(not 0 <= p < 1 for _, p in self.dropout):
            raise ValueError(f"dropout: expected probabilities in [0, 1), got {self.dropout}")

    def key(self) -> dict:
        """Everything the trained weights depend on, as canonical JSON (the attack by its key)."""
        plain = {**asdict(self), "attack": self.attack.key()}
        return json.loads(json.dumps(plain))


@dataclass
class _State:
    """What a run carries from epoch to epoch (and what its progress file holds)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    pools: list[AdversarialPool]
    epoch: int = 0
    step: int = 0
    info: dict = field(
        default_factory=lambda: {"seconds": 0.0, "attack_seconds": 0.0, "generated": 0, "fooled": 0, "refreshes": 0}
    )


def train_adversarial(
    build: Callable[[], nn.Module],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    recipe: AdversarialRecipe,
    *,
    progress_file: Path | None = None,
    data_digest: str | None = None,
    name: str = "model",
    progress: bool = True,
) -> tuple[nn.Module, dict]:
    """Build a model under ``recipe.seed`` and train it on (inputs, labels) with the recipe's pools;
    returns it in eval mode and its info (seconds, the attack's seconds, refreshes, examples
    generated and how many fooled the model). With `progress_file`, the state is saved there after
    each epoch, and a run whose file holds the same key (`training_key`) resumes from it;
    `data_digest` is ``tensor_digest(inputs, labels)`` if known (e.g. ``MnistSplit.fingerprint()``)."""
    if inputs.shape[0] == 0 or inputs.shape[0] != labels.shape[0]:
        raise ValueError(
            f"inputs, labels: expected N >= 1 examples with one label each, got {inputs.shape[0]} and {labels.shape[0]}"
        )
    state = _fresh(build, inputs, recipe)
    key = training_key(state.model, data_digest or tensor_digest(inputs, labels), recipe) if progress_file else {}
    splits = [split_model(state.model, p.layer) for p in recipe.pools]
    for split, settings in zip(splits, recipe.pools):
        split.check(inputs[:2])
        state.pools.append(AdversarialPool.empty(settings.size, split.codes(inputs[:1])[0]))
    _resume(state, progress_file, key)
    hooks = _dropout_hooks(state.model, recipe.dropout, state.generator)
    try:
        _epochs(state, splits, inputs, labels, recipe, progress_file, key, f"train {name}", progress)
    finally:
        for hook in hooks:
            hook.remove()
    return state.model.eval(), state.info


def training_key(model: nn.Module, data_digest: str, recipe: AdversarialRecipe) -> dict:
    """What a trained model or a saved run must match: architecture, recipe and the data's digest."""
    return {"format": CACHE_FORMAT, "architecture": repr(model), "recipe": recipe.key(), "data": data_digest}


def _fresh(build: Callable[[], nn.Module], inputs: torch.Tensor, recipe: AdversarialRecipe) -> _State:
    """The model at its seeded initialisation, its optimiser and schedule (no pools yet)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = build()
    phase = recipe.train
    if phase.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=phase.lr)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=phase.lr, momentum=0.9, nesterov=True)
    steps = phase.epochs_for(inputs.shape[0]) * _batches(inputs.shape[0], phase)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    return _State(model, optimizer, schedule, torch.Generator().manual_seed(recipe.seed), [])


def _batches(n: int, phase: Phase) -> int:
    return -(-n // phase.batch_size)


def _resume(state: _State, path: Path | None, key: dict) -> None:
    """Load the state saved at `path` if it was saved for `key`; a damaged or foreign file is moved aside."""
    if path is None or not Path(path).exists():
        return
    try:
        weights, saved = load_checkpoint(path, key)
    except CorruptFileError as exc:
        quarantine(path, exc)
        return
    state.model.load_state_dict(weights)
    state.optimizer.load_state_dict(saved["optimizer"])
    state.schedule.load_state_dict(saved["schedule"])
    state.generator.set_state(saved["generator"])
    for pool, tensors in zip(state.pools, saved["pools"]):
        for name, value in tensors.items():
            getattr(pool, name).copy_(value)
    state.epoch, state.step, state.info = saved["epoch"], saved["step"], saved["info"]


def _save_progress(state: _State, path: Path, key: dict) -> None:
    """Atomically write everything a resumed run needs (digest-checked, keyed)."""
    save_checkpoint(
        path,
        key,
        state.model.state_dict(),
        {
            "optimizer": state.optimizer.state_dict(),
            "schedule": state.schedule.state_dict(),
            "generator": state.generator.get_state(),
            "pools": [pool.state() for pool in state.pools],
            "epoch": state.epoch,
            "step": state.step,
            "info": state.info,
        },
    )


def _epochs(
    state: _State,
    splits: list[LayerSplit],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    recipe: AdversarialRecipe,
    path: Path | None,
    key: dict,
    desc: str,
    progress: bool,
) -> None:
    phase, n = recipe.train, inputs.shape[0]
    layers = [m for m in state.model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    warm = recipe.warmup_epochs * _batches(n, phase)
    state.model.train()
    bar = tqdm(range(state.epoch, phase.epochs_for(n)), desc=desc, unit="epoch", disable=not progress, leave=False)
    for _ in bar:
        began = time.perf_counter()
        order = torch.randperm(n, generator=state.generator)
        for start in range(0, n, phase.batch_size):
            if splits and state.step >= warm and (state.step - warm) % recipe.refresh_every == 0:
                _refresh(state, splits, inputs, labels, recipe, full=state.step == warm)
            rows = order[start : start + phase.batch_size]
            loss = _loss(state, splits, recipe, inputs[rows], labels[rows]) + weight_decay_penalty(
                layers, phase.weight_decay
            )
            state.optimizer.zero_grad()
            loss.backward()
            state.optimizer.step()
            state.schedule.step()
            state.step += 1
        state.epoch += 1
        state.info["seconds"] += time.perf_counter() - began
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        if path is not None:
            _save_progress(state, path, key)


def _refresh(
    state: _State,
    splits: list[LayerSplit],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    recipe: AdversarialRecipe,
    full: bool,
) -> None:
    """Fill every pool (`full`) or replace a random `refresh_fraction` of each, with adversarials
    of randomly drawn training examples made for the model as it is now."""
    gen = state.generator
    state.model.eval()  # the layers' outputs as the attack sees them: no dropout
    for pool, split, settings in zip(state.pools, splits, recipe.pools):
        count = len(pool) if full else max(1, round(settings.refresh_fraction * len(pool)))
        slots = torch.randperm(len(pool), generator=gen)[:count]
        rows = torch.randint(inputs.shape[0], (count,), generator=gen)
        seconds = pool.refresh(
            split, inputs[rows], labels[rows], slots, seeded(recipe.attack, gen), recipe.targets, state.step
        )
        state.info["attack_seconds"] += seconds
        state.info["generated"] += count
        state.info["fooled"] += int(pool.fooled[slots].sum())
    state.info["refreshes"] += 1
    state.model.train()


def _loss(
    state: _State, splits: list[LayerSplit], recipe: AdversarialRecipe, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy over the clean batch and the examples drawn from each filled pool
    (a hidden layer's examples go through the layers above it only)."""
    total, count = F.cross_entropy(state.model(x), y, reduction="sum"), y.shape[0]
    for pool, split, settings in zip(state.pools, splits, recipe.pools):
        if pool.filled.any():
            examples, targets = pool.sample(max(1, round(settings.mix * y.shape[0])), state.generator)
            total = total + F.cross_entropy(split.upper(examples), targets, reduction="sum")
            count += targets.shape[0]
    return total / count


def _dropout_hooks(
    model: nn.Module, dropout: tuple[tuple[str, float], ...], generator: torch.Generator
) -> list[torch.utils.hooks.RemovableHandle]:
    """Pre-hooks that zero each entry of the named modules' inputs with its probability (scaling the
    rest by 1 / keep) in training mode only, with masks drawn from `generator`."""
    modules = dict(model.named_modules())
    unknown = [name for name, _ in dropout if name not in modules]
    if unknown:
        raise ValueError(
            f"dropout: {type(model).__name__} has no module {unknown}; expected names among {[n for n in modules if n]}"
        )

    def hook_for(p: float) -> Callable:
        def hook(module: nn.Module, args: tuple) -> tuple | None:
            if not module.training or p == 0:
                return None
            keep = torch.bernoulli(torch.full_like(args[0], 1 - p), generator=generator)
            return (args[0] * keep / (1 - p), *args[1:])

        return hook

    return [modules[name].register_forward_pre_hook(hook_for(p)) for name, p in dropout]

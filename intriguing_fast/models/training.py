"""Deterministic CPU training of the zoo's models from a :class:`Recipe`.

Objective: mean softmax cross-entropy plus the weight-decay penalty of
:mod:`~intriguing_fast.models.regularization`. ``"lbfgs"`` phases are full-batch and run to
convergence (the paper trains "until convergence"); ``"adam"`` and ``"sgd"`` (Nesterov momentum 0.9)
phases are minibatch with a cosine learning-rate decay to zero. All randomness (init, shuffling) comes from ``recipe.seed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data import MnistSplit
from .architectures import AutoencoderClassifier
from .recipes import Phase, Recipe
from .regularization import weight_decay_penalty


def train_model(
    build: Callable[[], nn.Module], data: MnistSplit, recipe: Recipe, *, name: str = "model", progress: bool = True
) -> nn.Module:
    """Build a model under ``recipe.seed`` and train it on ``data``; returns it in eval mode."""
    if len(data) == 0:
        raise ValueError("data: expected at least one training example")
    generator = torch.Generator().manual_seed(recipe.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = build()
    model.train()
    inputs = data.flat
    if isinstance(model, AutoencoderClassifier):
        if recipe.pretrain is None:
            raise ValueError(f"recipe: {name} needs a pretrain phase for its autoencoder")
        _pretrain_autoencoder(model, inputs, recipe.pretrain, generator, f"{name} autoencoder", progress)
        with torch.no_grad():
            inputs = model.encode(inputs)  # frozen code: only the softmax layer is trained below
        classifier, layers = model.head, [model.head]
    else:
        if recipe.pretrain is not None:
            raise ValueError(f"recipe: {name} has no autoencoder to pretrain")
        classifier, layers = model, [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    for p in model.parameters():
        p.requires_grad_(any(p is q for q in classifier.parameters()))
    loss_fn = lambda x, y: F.cross_entropy(classifier(x), y)  # noqa: E731
    _run_phase(recipe.train, classifier.parameters(), layers, loss_fn, inputs, data.labels, generator, name, progress)
    for p in model.parameters():
        p.requires_grad_(True)
    return model.eval()


def _pretrain_autoencoder(
    model: AutoencoderClassifier,
    inputs: torch.Tensor,
    phase: Phase,
    generator: torch.Generator,
    desc: str,
    progress: bool,
) -> None:
    """Unsupervised: cross-entropy reconstruction of the pixels, plus optional KL sparsity."""

    def loss_fn(x: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
        code = model.encode(x)
        loss = F.binary_cross_entropy_with_logits(model.decoder(code), x, reduction="sum") / len(x)
        if phase.sparsity is not None:
            rho, beta = phase.sparsity
            mean = code.mean(0).clamp(1e-6, 1 - 1e-6)
            loss = loss + beta * (rho * torch.log(rho / mean) + (1 - rho) * torch.log((1 - rho) / (1 - mean))).sum()
        return loss

    params = [*model.encoder.parameters(), *model.decoder.parameters()]
    _run_phase(phase, params, [model.encoder, model.decoder], loss_fn, inputs, inputs, generator, desc, progress)


def _run_phase(phase, params, layers, loss_fn, inputs, targets, generator, desc, progress) -> None:
    params = list(params)
    objective = lambda x, y: loss_fn(x, y) + weight_decay_penalty(layers, phase.weight_decay)  # noqa: E731
    if phase.optimizer == "lbfgs":
        _lbfgs(phase, params, objective, inputs, targets, desc, progress)
    else:
        _minibatch(phase, params, objective, inputs, targets, generator, desc, progress)


def _lbfgs(phase: Phase, params, objective, inputs, targets, desc: str, progress: bool) -> None:
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=phase.epochs,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
    )
    with tqdm(desc=f"train {desc} (L-BFGS)", unit="eval", disable=not progress, leave=False) as bar:

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = objective(inputs, targets)
            loss.backward()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            return loss

        optimizer.step(closure)


def _minibatch(phase: Phase, params, objective, inputs, targets, generator, desc: str, progress: bool) -> None:
    n = len(inputs)
    batches = max(1, math.ceil(n / phase.batch_size))
    epochs = phase.epochs_for(n)
    if phase.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=phase.lr)
    else:
        optimizer = torch.optim.SGD(params, lr=phase.lr, momentum=0.9, nesterov=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * batches)
    bar = tqdm(range(epochs), desc=f"train {desc} ({phase.optimizer})", unit="epoch", disable=not progress, leave=False)
    for _ in bar:
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, phase.batch_size):
            index = order[start : start + phase.batch_size]
            loss = objective(inputs[index], targets[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
        bar.set_postfix(loss=f"{total / n:.4f}", refresh=False)

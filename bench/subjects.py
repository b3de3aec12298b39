"""The benchmarks' subject models, each trained seeded once and cached by path: the paper's sigmoid
FC100-100-10, AttackBench's MNIST SmallCNN, its L2-PGD adversarially trained twin, and a ReLU MLP."""

from __future__ import annotations

from pathlib import Path

import torch

from intriguing_fast.data import load_mnist
from intriguing_fast.models import MLP


def quick_mlp(path: Path, epochs: int) -> torch.nn.Module:
    """FC100-100-10 trained briefly with Adam (not the paper's recipe: a benchmark subject only);
    its weights are cached at `path` as a state dict (loaded with weights_only=True)."""
    model = MLP((784, 100, 100, 10))
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model
    torch.manual_seed(0)
    train = load_mnist("train")
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(train))
        for i in range(0, len(train), 128):
            b = perm[i : i + 128]
            loss = torch.nn.functional.cross_entropy(model(train.images[b]), train.labels[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.eval().state_dict(), path)
    return model


def small_cnn() -> torch.nn.Module:
    """AttackBench's MNIST SmallCNN (as in TRADES): conv 32-32, pool, conv 64-64, pool, fc 200-200-10,
    ReLU, dropout 0.5 before the second fully connected layer."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1024, 200),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(200, 200),
        nn.ReLU(),
        nn.Linear(200, 10),
    )


def relu_mlp() -> torch.nn.Module:
    """FC200-200-10 with ReLU units: the paper's largest MLP, made piecewise linear."""
    nn = torch.nn
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, 10)
    )


def trained(name: str, path: Path, epochs: int, subset: int | None = None) -> torch.nn.Module:
    """Subject `name` ("small_cnn", "small_cnn_adv", "relu_mlp"), its weights cached at `path` as a state
    dict (loaded with weights_only=True), else trained seeded on MNIST train (its first `subset` images):
    the SmallCNN with SGD (Nesterov, one-cycle rate to 0.05) for `epochs`; its adversarially trained
    twin from it (read or trained at the path beside, `small_cnn.pt`) for `epochs` more on L2 PGD
    examples (eps 2, 5 steps of 2.5 eps / 5, random start); the ReLU MLP with Adam."""
    model = relu_mlp() if name == "relu_mlp" else small_cnn()
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    if name == "small_cnn_adv":
        model.load_state_dict(trained("small_cnn", path.with_name("small_cnn.pt"), epochs, subset).state_dict())
    train = load_mnist("train")
    images, labels = train.images[:subset], train.labels[:subset]
    torch.manual_seed(1 if name == "small_cnn_adv" else 0)
    steps = epochs * -(-len(images) // 128)
    if name == "relu_mlp":
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        schedule = None
    else:
        top = 0.02 if name == "small_cnn_adv" else 0.05
        opt = torch.optim.SGD(model.parameters(), top, momentum=0.9, nesterov=True)
        schedule = torch.optim.lr_scheduler.OneCycleLR(opt, top, total_steps=steps)
    for _ in range(epochs):
        perm = torch.randperm(len(images))
        for i in range(0, len(images), 128):
            x, y = images[perm[i : i + 128]], labels[perm[i : i + 128]]
            if name == "small_cnn_adv":
                x = l2_pgd(model, x, y, eps=2.0, steps=5)
            model.train()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.eval().state_dict(), path)
    return model


def l2_pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int) -> torch.Tensor:
    """Projected gradient ascent of the cross-entropy in the L2 ball of radius eps (and [0, 1]),
    from a random point of the ball; the model in eval mode while it runs."""
    model.eval()
    view = (-1,) + (1,) * (x.ndim - 1)
    d = torch.randn_like(x)
    d = d / d.flatten(1).norm(dim=1).view(view) * eps * torch.rand(len(x)).view(view)
    d = (x + d).clamp(0, 1) - x
    for _ in range(steps):
        d.requires_grad_(True)
        (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x + d), y), d)
        d = d.detach() + 2.5 * eps / steps * g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(view)
        d = d * (eps / d.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1).view(view)
        d = (x + d).clamp(0, 1) - x
    return (x + d).detach()

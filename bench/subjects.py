"""The benchmarks' subject model: a 784-100-100-10 sigmoid MLP trained briefly, cached by path."""
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
            b = perm[i:i + 128]
            loss = torch.nn.functional.cross_entropy(model(train.images[b]), train.labels[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.eval().state_dict(), path)
    return model

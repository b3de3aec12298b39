"""The reproduction of the paper's MNIST experiments (Tables 1-4), stage by stage.

Every expensive stage (training a model, attacking a set of images) is stored under
OUT/stages keyed by what it depends on, so a killed run resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..attack import lbfgs_attack
from ..data import MnistSplit, cache_root, load_mnist, p1_p2_split
from ..models import TABLE1, TABLE3, checkpoint_key, get_spec, trained_model, training_data
from ..models.cache import checkpoint_path
from . import paper
from .config import STAGES, Scale
from .evaluation import amplify, distortion, error, gaussian_noise
from .stages import StageStore
from .stats import Rate


@dataclass(frozen=True)
class RunConfig:
    scale: Scale
    out: Path
    data_dir: Path | None = None
    only: tuple[str, ...] = STAGES
    device: str = "cpu"
    seed: int = 0
    model_cache: Path | None = None
    progress: bool = True


@dataclass
class Attacked:
    """Adversarial examples made for one model on a fixed set of images."""

    images: torch.Tensor
    labels: torch.Tensor
    adversarial: torch.Tensor
    distortion: torch.Tensor
    success: torch.Tensor

    @classmethod
    def from_stage(cls, value: dict, images: torch.Tensor, labels: torch.Tensor) -> "Attacked":
        return cls(images, labels, value["adversarial"].to(images.device), value["distortion"], value["success"])


def run(cfg: RunConfig) -> dict:
    """Compute every table asked for in cfg.only; returns the results (also used by the report)."""
    for stage in cfg.only:
        if stage not in STAGES:
            raise ValueError(f"only: unknown stage {stage!r}; expected some of {STAGES}")
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    store = StageStore(cfg.out / "stages")
    train, test = _data(cfg)
    results: dict = {"meta": {
        "scale": cfg.scale.name, "scale_settings": vars(cfg.scale).copy(), "seed": cfg.seed, "device": cfg.device,
        "data_source": train.source, "train_examples": len(train), "test_examples": len(test),
        "versions": {"intriguing_fast": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version(), "platform": platform.platform()},
    }}
    need1 = {"table1", "table2"} & set(cfg.only)
    need3 = {"table3", "table4"} & set(cfg.only)
    examples: dict[str, Attacked] = {}
    if need1:
        models = {name: _model(cfg, store, name, train) for name in TABLE1}
        images, labels = _attack_set(train, cfg.scale.train_images, cfg.seed)
        attacked = {name: _attack(cfg, store, name, models[name], train, "train", images, labels) for name in TABLE1}
        examples.update(attacked)
        if "table1" in cfg.only:
            results["table1"] = _table1(cfg, models, train, test, attacked)
        if "table2" in cfg.only:
            results["table2"] = _transfer(models, attacked, images, labels, (0.1, 0.3), cfg.seed, amplified=False)
    if need3:
        p1, p2 = p1_p2_split(train, seed=cfg.seed)
        models = {name: _model(cfg, store, name, train) for name in TABLE3}
        images, labels = _attack_set(test, cfg.scale.test_images, cfg.seed + 1)
        attacked = {name: _attack(cfg, store, name, models[name], train, "test", images, labels) for name in TABLE3}
        examples.update(attacked)
        if "table3" in cfg.only:
            results["table3"] = _table3(cfg, models, p1, p2, test, attacked)
        if "table4" in cfg.only:
            results["table4"] = _transfer(models, attacked, images, labels, (0.06, 0.1), cfg.seed + 1, amplified=True)
    results["examples"] = {name: _examples(a) for name, a in examples.items()}
    results["meta"]["stages"] = [vars(r) for r in store.records]
    results["meta"]["wall_s"] = time.perf_counter() - start
    return results


def _data(cfg: RunConfig) -> tuple[MnistSplit, MnistSplit]:
    train = load_mnist("train", cfg.data_dir)
    test = load_mnist("test", cfg.data_dir)
    if cfg.scale.data_subset is not None:
        train = train.subset(range(min(len(train), cfg.scale.data_subset)))
        test = test.subset(range(min(len(test), max(1, cfg.scale.data_subset // 6))))
    return train, test


def _model(cfg: RunConfig, store: StageStore, name: str, train: MnistSplit) -> nn.Module:
    spec = get_spec(name)
    recipe = cfg.scale.recipe(spec.recipe)
    cache = cfg.model_cache if cfg.model_cache is not None else cache_root() / "models"
    cached = checkpoint_path(cache, name, _model_key(cfg, name, train)).exists()
    began = time.perf_counter()
    model = trained_model(name, train, cache, recipe=recipe, split_seed=cfg.seed, progress=cfg.progress)
    store.note(f"model/{name}", time.perf_counter() - began, cached)
    return model.to(cfg.device).eval()


def _model_key(cfg: RunConfig, name: str, train: MnistSplit) -> dict:
    spec = get_spec(name)
    return checkpoint_key(spec, cfg.scale.recipe(spec.recipe), training_data(spec, train, cfg.seed))


def _attack_set(split: MnistSplit, count: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of `split` (all of it when count is None), in a fixed order."""
    n = len(split) if count is None else min(count, len(split))
    rows = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return split.images[rows], split.labels[rows]


def _attack(cfg: RunConfig, store: StageStore, name: str, model: nn.Module, train: MnistSplit, where: str,
            images: torch.Tensor, labels: torch.Tensor) -> Attacked:
    images, labels = images.to(cfg.device), labels.to(cfg.device)
    key = {"model": _model_key(cfg, name, train), "images": _digest(images), "labels": _digest(labels),
           "seed": cfg.seed, "max_iter": cfg.scale.attack_max_iter, "targets": "random"}

    def compute() -> dict:
        res = lbfgs_attack(model, images, "random", labels=labels, seed=cfg.seed, max_iter=cfg.scale.attack_max_iter,
                           progress=cfg.progress)
        return {"adversarial": res.adversarial.cpu(), "distortion": res.distortion.cpu(), "success": res.success.cpu(),
                "targets": res.targets.cpu(), "c": res.c.cpu(), "nfev": res.nfev.cpu()}

    return Attacked.from_stage(store.run(f"attack/{name}/{where}", key, compute), images, labels)


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _table1(cfg: RunConfig, models: dict[str, nn.Module], train: MnistSplit, test: MnistSplit,
            attacked: dict[str, Attacked]) -> dict:
    rows = {}
    for name, model in models.items():
        a = attacked[name]
        rows[name] = {
            "train_error": error(model, train.images.to(cfg.device), train.labels.to(cfg.device)).as_dict(),
            "test_error": error(model, test.images.to(cfg.device), test.labels.to(cfg.device)).as_dict(),
            **_distortion_summary(a),
            "paper": dict(zip(("train_error", "test_error", "distortion"), paper.TABLE1[name])),
        }
    return rows


def _table3(cfg: RunConfig, models: dict[str, nn.Module], p1: MnistSplit, p2: MnistSplit, test: MnistSplit,
            attacked: dict[str, Attacked]) -> dict:
    rows = {}
    for name, model in models.items():
        ev = lambda s: error(model, s.images.to(cfg.device), s.labels.to(cfg.device)).as_dict()  # noqa: E731
        rows[name] = {"P1_error": ev(p1), "P2_error": ev(p2), "test_error": ev(test), **_distortion_summary(attacked[name]),
                      "paper": dict(zip(("P1_error", "P2_error", "test_error", "distortion"), paper.TABLE3[name]))}
    return rows


def _distortion_summary(a: Attacked) -> dict:
    d = a.distortion[a.success].double()
    return {"attacked": int(a.success.numel()), "success": Rate(int(a.success.sum()), int(a.success.numel())).as_dict(),
            "distortion": float(d.mean()) if d.numel() else float("nan"),
            "distortion_std": float(d.std()) if d.numel() > 1 else float("nan"),
            "distortions": a.distortion.tolist()}


def _transfer(models: dict[str, nn.Module], attacked: dict[str, Attacked], images: torch.Tensor, labels: torch.Tensor,
              noise: tuple[float, ...], seed: int, amplified: bool) -> dict:
    """Error of every model (columns) on each row's images: adversarials per source model, then controls."""
    labels = labels.to(images.device)
    sets: dict[str, tuple[torch.Tensor, str]] = {}
    for source, a in attacked.items():
        sets[source] = (a.adversarial, "adversarial")
    for std in noise[:1]:
        sets[f"Gaussian noise, stddev={std}"] = (gaussian_noise(images, std, seed), "noise")
    if amplified:
        for source, a in attacked.items():
            sets[f"{source} amplified to stddev {noise[-1]}"] = (amplify(images, a.adversarial, noise[-1]), "amplified")
    for std in noise[1:]:
        sets[f"Gaussian noise, stddev={std}"] = (gaussian_noise(images, std, seed + 7), "noise")
    rows = {}
    for row, (x, kind) in sets.items():
        rows[row] = {"kind": kind, "distortion": float(distortion(images, x).mean()),
                     "errors": {col: error(m, x, labels).as_dict() for col, m in models.items()}}
    return {"columns": list(models), "rows": rows}


def _examples(a: Attacked, count: int = 4) -> dict:
    """A few successful, really perturbed examples per model, for the figure grid."""
    rows = (a.success & (a.distortion > 0)).nonzero().squeeze(1)[:count]
    return {"original": a.images[rows].cpu(), "adversarial": a.adversarial[rows].cpu()}

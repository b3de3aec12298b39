"""Section 4.2: FC100-100-10 trained with weight decay only, with dropout, and with pools of
adversarial examples of its input or of its hidden layers (models/adversarial/training.py).

Every variant is trained from scratch with the same schedule on the run's training split and
cached in the checkpoint cache (keyed by recipe, pools and data), so a rerun only evaluates.
Per variant: test error (Wilson 95% interval) beside the paper's, the mean minimal distortion
the run's attack needs on a seeded subset of test images, the error it makes on the
adversarials made for the weight-decay-only model, and its training time with the share
spent making pool examples.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any, TypedDict

import torch

from ..attack import LBFGSAttack
from ..models import MLP, Phase
from ..models.adversarial.checkpoints import AdversarialModel, load_or_train_adversarial
from ..models.adversarial.training import AdversarialRecipe, PoolSettings
from ..storage import cache_root
from .context import Run
from .evaluation import error, training_failed
from .stage import Stage
from .stats import Rate, RateEntry

SIZES = (784, 100, 100, 10)
WEIGHT_DECAY = (1e-5, 1e-5, 1e-6)  # the paper's lambda for FC100-100-10 (Table 1)
PLAIN = "weight decay"
# variant -> the layers given a pool ("dropout": none, but dropout on every layer's input)
VARIANTS = {
    PLAIN: (),
    "dropout": (),
    "input pool": ("input",),
    "hidden 1 pool": ("hidden1",),
    "hidden 2 pool": ("hidden2",),
    "hidden 1+2 pools": ("hidden1", "hidden2"),
}
TEST_SEED_OFFSET = 2  # the attacked test images: drawn apart from the other stages' (offsets 0, 1)


@dataclass(frozen=True)
class AdvTrainSettings:
    """One scale's settings of the stage."""

    epochs: int  # the SGD schedule of every variant (cosine decay): epochs, batch size, learning rate
    batch_size: int
    lr: float
    pool_size: int  # slots per pool
    refresh_fraction: float  # of the slots, replaced every refresh_every steps after warmup_epochs plain epochs
    refresh_every: int
    mix: float  # adversarial examples per clean one in a batch (shared by a variant's pools)
    warmup_epochs: int
    targets: str  # the pool attack's targets
    attack_steps: int  # the pool attack's c search: attack_steps x attack_max_iter
    attack_max_iter: int
    # The dropout probability on the input and on each hidden layer (quick: the best of (0.2, 0.5),
    # (0.1, 0.25), (0.2, 0.2), (0, 0.1) after 5 epochs, docs/adversarial_training.md).
    dropout: tuple[float, float]
    attacked: int  # test images attacked per variant
    variants: tuple[str, ...]  # the variants trained (PLAIN first: its adversarials are fed to the others)


QUICK = AdvTrainSettings(
    epochs=5,
    batch_size=64,
    lr=0.4,
    pool_size=1000,
    refresh_fraction=0.1,
    refresh_every=100,
    mix=0.25,
    warmup_epochs=1,
    targets="random",
    attack_steps=3,
    attack_max_iter=15,
    dropout=(0.0, 0.1),
    attacked=500,
    variants=tuple(VARIANTS),
)
SETTINGS = {  # each scale: what differs from the quick one
    "quick": QUICK,
    "paper": replace(
        QUICK, epochs=40, pool_size=5000, attack_steps=4, attack_max_iter=20, dropout=(0.1, 0.25), attacked=2000
    ),
    "tiny": replace(
        QUICK,
        epochs=10,
        batch_size=32,
        pool_size=64,
        refresh_fraction=0.25,
        refresh_every=20,
        attack_steps=2,
        attack_max_iter=10,
        dropout=(0.2, 0.5),
        attacked=12,
        variants=(PLAIN, "dropout", "input pool", "hidden 2 pool"),
    ),
}


class VariantRow(TypedDict):
    """One variant: its errors, the run's attack on it, its error on the weight-decay-only model's
    adversarials, and its training (from the cache or not, time, pool examples made)."""

    test_error: RateEntry
    training_failed: bool
    paper: float | None  # the paper's test error, in percent
    success: RateEntry
    distortion: float
    distortions: list[float]
    plain_adversarials_error: RateEntry
    eval_attack_seconds: float
    pools: list[str]
    from_cache: bool
    seconds: float
    attack_seconds: float
    generated: int
    fooled: int
    refreshes: int


class AdvTrainResult(TypedDict):
    settings: dict[str, Any]  # the scale's `AdvTrainSettings`, field by field
    plain: str
    weight_decay: list[float]
    attacked: int
    train_examples: int
    rows: dict[str, VariantRow]


def adversarial_training(run: Run, stage: Stage) -> AdvTrainResult:
    """Train (or load) every variant of the run's scale, attack each on the same test images and
    feed each the weight-decay-only model's adversarials; one row per variant."""
    settings = scale_settings(run, stage)
    train, test = run.splits["train"], run.splits["test"]
    images, labels = attacked_images(run, settings.attacked)
    trained = {name: train_variant(run, name, settings) for name in settings.variants}
    plain_adversarials: torch.Tensor | None = None  # the first variant's (PLAIN: scale_settings checks)
    rows = {}
    for name, variant in trained.items():
        model = variant.model.to(run.cfg.device).eval()
        began = time.perf_counter()
        result = run.attack(model, images, "random", labels=labels, progress=run.cfg.progress and f"attack {name}")
        plain_adversarials = result.adversarial if plain_adversarials is None else plain_adversarials
        rows[name] = {
            "test_error": error(model, test.images.to(run.cfg.device), test.labels.to(run.cfg.device)).as_dict(),
            "training_failed": training_failed(
                error(model, train.images.to(run.cfg.device), train.labels.to(run.cfg.device))
            ),
            "paper": stage.paper.get(name),
            "success": Rate(int(result.success.sum()), len(result)).as_dict(),
            "distortion": result.mean_distortion,
            "distortions": result.distortion.tolist(),
            "plain_adversarials_error": error(model, plain_adversarials, labels).as_dict(),
            "eval_attack_seconds": time.perf_counter() - began,
            "pools": list(VARIANTS[name]),
            "from_cache": variant.from_cache,
            **{k: variant.info[k] for k in ("seconds", "attack_seconds", "generated", "fooled", "refreshes")},
        }
    return {
        "settings": asdict(settings),
        "plain": PLAIN,
        "weight_decay": list(WEIGHT_DECAY),
        "attacked": int(labels.shape[0]),
        "train_examples": len(train),
        "rows": rows,
    }


def variant_jobs(run: Run, stage: Stage) -> list[Callable[[], object]]:
    """Training every variant of the run's scale (into the checkpoint cache), one job each."""
    settings = scale_settings(run, stage)
    return [partial(train_variant, run, name, settings) for name in settings.variants]


def scale_settings(run: Run, stage: Stage) -> AdvTrainSettings:
    """The stage's settings for the run's scale; a scale without any is an error naming those with."""
    name = run.cfg.scale.name
    if name not in stage.settings:
        raise ValueError(f"scale: stage {stage.name} has settings for {sorted(stage.settings)}, not for {name!r}")
    settings = stage.settings[name]
    if settings.variants[0] != PLAIN:
        raise ValueError(f"variants: expected {PLAIN!r} first (its adversarials are fed to the others)")
    return settings


def attacked_images(run: Run, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of `count` test images (sorted), on the run's device."""
    test = run.splits["test"]
    gen = torch.Generator().manual_seed(run.cfg.seed + TEST_SEED_OFFSET)
    rows = torch.randperm(len(test), generator=gen)[:count].sort().values
    return test.images[rows].to(run.cfg.device), test.labels[rows].to(run.cfg.device)


def variant_recipe(name: str, settings: AdvTrainSettings) -> AdversarialRecipe:
    """The recipe of one variant: the shared schedule, its pools or its dropout."""
    layers = VARIANTS[name]
    phase = Phase(
        "sgd",
        epochs=settings.epochs,
        weight_decay=WEIGHT_DECAY,
        lr=settings.lr,
        batch_size=settings.batch_size,
    )
    pools = tuple(
        PoolSettings(layer, settings.pool_size, settings.refresh_fraction, settings.mix / len(layers))
        for layer in layers
    )
    p_input, p_hidden = settings.dropout
    dropout = (("layers.0", p_input), ("layers.1", p_hidden), ("layers.2", p_hidden)) if name == "dropout" else ()
    attack = LBFGSAttack.paper(settings.attack_max_iter, steps=settings.attack_steps)  # as in Run.attack
    return AdversarialRecipe(
        phase, pools, settings.refresh_every, settings.warmup_epochs, settings.targets, attack, dropout
    )


def train_variant(run: Run, name: str, settings: AdvTrainSettings) -> AdversarialModel:
    """One variant from the checkpoint cache, or trained (resumably) on the run's training split."""
    train = run.splits["train"]
    cache = run.cfg.model_cache if run.cfg.model_cache is not None else cache_root() / "models"
    began = time.perf_counter()
    variant = load_or_train_adversarial(
        f"FC100-100-10 {name}",
        partial(MLP, SIZES),
        train.images,
        train.labels,
        variant_recipe(name, settings),
        cache,
        data_digest=run.fingerprints["train"],
        progress=run.cfg.progress,
    )
    run.store.note(f"model/FC100-100-10 {name}", time.perf_counter() - began, variant.from_cache)
    return variant

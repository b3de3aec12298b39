"""What the stages of a run share: its settings, data, trained models and attacked image sets,
each made once per run and keyed by the content it was made from."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from ..attack import AttackResult, LBFGSAttack
from ..data import MnistSplit, load_mnist, p1_p2_split
from ..engine import LBFGSBOptions
from ..models import TrainedModel, get_spec, load_or_train
from ..storage import cache_root, file_digest, json_digest, tensor_digest
from .evaluation import predictions
from .scales import Scale
from .store import StageStore


@dataclass(frozen=True)
class RunConfig:
    scale: Scale
    out: Path
    data_dir: Path | None = None
    only: tuple[str, ...] | None = None  # stage names (experiments/table.py); None: every stage
    device: str = "cpu"
    seed: int = 0
    model_cache: Path | None = None
    progress: bool = True
    engine: LBFGSBOptions | None = (
        None  # the attack's engine settings; None: LBFGSAttack.paper's at scale.attack_max_iter
    )
    verify_data: bool = True  # False: use MNIST files that differ from the published ones (the report says so)
    alexnet_weights: Path | None = None  # a local AlexNet state dict for Table 5; None: a seeded random init


@dataclass
class Attacked:
    """Adversarial examples made for one model on a fixed set of images, and the key digest
    of the attack stage that made them (what stages built on them are keyed by)."""

    images: torch.Tensor
    labels: torch.Tensor
    adversarial: torch.Tensor
    distortion: torch.Tensor
    success: torch.Tensor
    key: str
    targets: torch.Tensor  # the class each image was attacked towards


@dataclass(frozen=True)
class ImageSet:
    """A seeded random subset of a split, in a fixed order, that models are attacked on."""

    split: str  # "train" or "test"
    seed_offset: int  # added to the run's seed, so the train and test subsets are drawn independently


IMAGE_SETS = {"train": ImageSet("train", 0), "test": ImageSet("test", 1)}


@dataclass
class Run:
    """One reproduction run: the stages ask it for data, models and attacks, and it makes
    each once (from the caches when their keys match)."""

    cfg: RunConfig
    store: StageStore = field(init=False)
    _models: dict[str, TrainedModel] = field(default_factory=dict, init=False)
    _attacks: dict[tuple[str, str], Attacked] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.store = StageStore(self.cfg.out / "stages")

    @cached_property
    def splits(self) -> dict[str, MnistSplit]:
        """train, test, and the paper's halves P1 and P2 of train (seeded by the run's seed)."""
        train = load_mnist("train", self.cfg.data_dir, verify=self.cfg.verify_data)
        test = load_mnist("test", self.cfg.data_dir, verify=self.cfg.verify_data)
        subset = self.cfg.scale.data_subset
        if subset is not None:
            train = train.subset(range(min(len(train), subset)))
            test = test.subset(range(min(len(test), max(1, subset // 6))))
        p1, p2 = p1_p2_split(train, seed=self.cfg.seed)
        return {"train": train, "test": test, "P1": p1, "P2": p2}

    @cached_property
    def fingerprints(self) -> dict[str, str]:
        return {name: split.fingerprint() for name, split in self.splits.items()}

    @property
    def attack(self) -> LBFGSAttack:
        paper = LBFGSAttack.paper(self.cfg.scale.attack_max_iter, seed=self.cfg.seed)
        return replace(paper, engine=self.cfg.engine) if self.cfg.engine else paper

    def trained(self, name: str) -> TrainedModel:
        """The zoo model `name` trained on this run's training data, noted in the stage records."""
        if name not in self._models:
            cache = self.cfg.model_cache if self.cfg.model_cache is not None else cache_root() / "models"
            began = time.perf_counter()
            trained = load_or_train(
                name,
                self.splits["train"],
                cache,
                recipe=self.cfg.scale.recipe(get_spec(name).recipe),
                split_seed=self.cfg.seed,
                progress=self.cfg.progress,
            )
            self.store.note(f"model/{name}", time.perf_counter() - began, trained.from_cache)
            self._models[name] = trained
        return self._models[name]

    def model(self, name: str) -> nn.Module:
        return self.trained(name).model.to(self.cfg.device).eval()

    def images(self, image_set: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and labels of an attacked set, on the run's device."""
        spec = IMAGE_SETS[image_set]
        split = self.splits[spec.split]
        count = self.cfg.scale.train_images if spec.split == "train" else self.cfg.scale.test_images
        n = len(split) if count is None else min(count, len(split))
        gen = torch.Generator().manual_seed(self.cfg.seed + spec.seed_offset)
        rows = torch.randperm(len(split), generator=gen)[:n].sort().values
        return split.images[rows].to(self.cfg.device), split.labels[rows].to(self.cfg.device)

    def attacked(self, name: str, image_set: str) -> Attacked:
        """Adversarials for model `name` on `image_set`, targeted at seeded random other classes;
        keyed by the model's weights, the images, labels and the attack's options."""
        if (name, image_set) not in self._attacks:
            images, labels = self.images(image_set)
            stage, key = self.attack_stage(name, image_set)

            def compute() -> dict:
                return stored_attack(
                    self.attack(
                        self.model(name),
                        images,
                        "random",
                        labels=labels,
                        progress=self.cfg.progress and f"attack {name} on {image_set}",
                    )
                )

            value = self.store.run(stage, key, compute)
            self._attacks[name, image_set] = Attacked(
                images,
                labels,
                value["adversarial"].to(images.device),
                value["distortion"],
                value["success"],
                json_digest(key),
                value["targets"],
            )
        return self._attacks[name, image_set]

    def attack_stage(self, name: str, image_set: str) -> tuple[str, dict]:
        """The stage name and key that the attack of model `name` on `image_set` is stored under."""
        images, labels = self.images(image_set)
        return f"attack/{name}/{image_set}", {
            "weights": self.trained(name).weights,
            "images": tensor_digest(images, labels),
            "targets": "random",
            "attack": self.attack.key(),
        }

    def examples(self, count: int = 4) -> dict[str, dict]:
        """A few successful, really perturbed examples per attacked model, for the figure grid, with
        their true classes, the attack's targets and the model's predictions on the adversarials."""
        out = {}
        for (name, _), a in self._attacks.items():
            rows = (a.success & (a.distortion > 0)).nonzero().squeeze(1)[:count]
            adversarial = a.adversarial[rows]
            out[name] = {
                "original": a.images[rows].cpu(),
                "adversarial": adversarial.cpu(),
                "labels": a.labels[rows].cpu(),
                "targets": a.targets[rows].cpu(),
                "predicted": predictions(self.model(name), adversarial).cpu(),
            }
        return out

    def settings(self) -> dict:
        """The run's settings every stage is keyed by (the AlexNet weights by their content)."""
        weights = self.cfg.alexnet_weights
        return {
            "scale": asdict(self.cfg.scale),
            "seed": self.cfg.seed,
            "attack": self.attack.key(),
            "alexnet_weights": file_digest(weights) if weights is not None else None,
        }


def stored_attack(result: AttackResult) -> dict:
    """What an attack stage stores of its result (on the CPU)."""
    return {
        "adversarial": result.adversarial.cpu(),
        "distortion": result.distortion.cpu(),
        "success": result.success.cpu(),
        "targets": result.targets.cpu(),
        "c": result.c.cpu(),
        "nfev": result.nfev.cpu(),
    }

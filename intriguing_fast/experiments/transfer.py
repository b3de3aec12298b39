"""Tables 2 and 4: how often adversarials made for one model fool the others, beside
Gaussian-noise controls (and, for Table 4, the adversarials magnified)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import torch

from .context import IMAGE_SETS, Run
from .evaluation import amplify, distortion, error, gaussian_noise
from .stage import Stage
from .stats import RateEntry


@dataclass(frozen=True)
class TransferSettings:
    noise: tuple[float, ...]  # stddevs of the Gaussian-noise controls (the last: the amplified adversarials' too)
    amplify: bool  # also rows of each model's adversarials magnified to the last noise's stddev


class TransferPaper(TypedDict):
    errors: dict[str, float]  # model fed -> the paper's error, in percent
    distortion: float


class TransferRow(TypedDict, total=False):
    """One row of Table 2 or 4: its images' kind ("adversarial", "noise" or "amplified"), their
    mean distortion, every model's error on them, and the paper's row where it has one."""

    kind: str
    distortion: float
    errors: dict[str, RateEntry]
    paper: TransferPaper


class TransferTable(TypedDict):
    columns: list[str]  # the models fed, in column order
    rows: dict[str, TransferRow]


def transfer_table(run: Run, stage: Stage) -> TransferTable:
    """Error of every model (columns) on each row's images: adversarials per source model,
    the first noise control, the amplified adversarials (if `amplify`), the other controls."""
    noise, amplified = stage.settings.noise, stage.settings.amplify
    seed = run.cfg.seed + IMAGE_SETS[stage.image_set].seed_offset
    images, labels = run.images(stage.image_set)
    attacked = {name: run.attacked(name, stage.image_set) for name in stage.models}
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
    models = {name: run.model(name) for name in stage.models}
    rows = {}
    for row, (x, kind) in sets.items():
        rows[row] = {
            "kind": kind,
            "distortion": float(distortion(images, x).mean()),
            "errors": {col: error(m, x, labels).as_dict() for col, m in models.items()},
        }
        if row in stage.paper:
            errors, dist = stage.paper[row]
            rows[row]["paper"] = {"errors": dict(zip(stage.models, errors)), "distortion": dist}
    return {"columns": list(models), "rows": rows}

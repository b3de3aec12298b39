"""Tables 1 and 3: each model's error rates and the minimal distortion of its adversarials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from ..models import get_spec
from .context import Attacked, Run
from .evaluation import error, training_failed
from .stage import Stage
from .stats import Rate, RateEntry


@dataclass(frozen=True)
class DistortionSettings:
    error_splits: tuple[str, ...]  # the splits each model's error is measured on (a column each)


class AttackSummary(TypedDict):
    """The attack's numbers on one model (`distortion_summary`)."""

    attacked: int
    success: RateEntry
    distortion: float  # the mean over the successes
    distortion_std: float
    distortions: list[float]  # every image's, NaN where the attack failed


class DistortionRow(AttackSummary, total=False):
    """One model's row of Table 1 or 3: its error on each split of the stage's `error_splits`
    (`<split>_error`), the attack's numbers, the paper's (by column) and whether training failed."""

    train_error: RateEntry
    test_error: RateEntry
    P1_error: RateEntry
    P2_error: RateEntry
    paper: dict[str, float | None]
    training_failed: bool


DistortionTable = dict[str, DistortionRow]  # model -> its row


def errors_and_distortion(run: Run, stage: Stage) -> DistortionTable:
    """Per model: its error on each split of `error_splits`, whether its training failed (error
    on its own training split), the attack's success and distortions."""
    splits = stage.settings.error_splits
    columns = [f"{split}_error" for split in splits] + ["distortion"]
    rows = {}
    device = run.cfg.device
    for name in stage.models:
        model = run.model(name)
        rows[name] = {
            **{
                f"{split}_error": error(
                    model, run.splits[split].images.to(device), run.splits[split].labels.to(device)
                ).as_dict()
                for split in splits
            },
            **distortion_summary(run.attacked(name, stage.image_set)),
            "paper": dict(zip(columns, stage.paper[name])),
        }
        own = run.splits[get_spec(name).subset]
        rows[name]["training_failed"] = training_failed(error(model, own.images.to(device), own.labels.to(device)))
    return rows


def distortion_summary(a: Attacked) -> AttackSummary:
    d = a.distortion[a.success].double()
    return {
        "attacked": int(a.success.numel()),
        "success": Rate(int(a.success.sum()), int(a.success.numel())).as_dict(),
        "distortion": float(d.mean()) if d.numel() else float("nan"),
        "distortion_std": float(d.std()) if d.numel() > 1 else float("nan"),
        "distortions": a.distortion.tolist(),
    }

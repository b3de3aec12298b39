"""The reproduction of the paper's MNIST experiments: the stages of `stages.STAGES` asked for,
each computed once and stored under OUT/stages keyed by the content of its inputs, so a killed
run resumes where it stopped and an unchanged stage is never recomputed."""

from __future__ import annotations

import platform
import time

import numpy as np
import torch

from .._version import __version__
from ..distributed import Group
from .context import Run, RunConfig
from .distributed import share_out
from .table import select


def run(cfg: RunConfig, group: Group | None = None) -> dict | None:
    """Compute every stage asked for in cfg.only; returns the results (also used by the report):
    one entry per stage under its name, "meta" (settings, data, versions, stage records) and
    "examples" (a few adversarials per attacked model, for the figures).

    Under torchrun (`group`), the ranks first share out the stages' training and attacks
    (distributed.py); then the group is closed, the other ranks return None, and rank 0 goes
    on alone."""
    stages = select(cfg.only)
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    ctx = Run(cfg)
    if group is not None:
        share_out(ctx, stages, group)
        group.sum(0)  # every rank is done with the group before any closes it
        group.close()
        if group.launch.rank != 0:
            return None
    train, test = ctx.splits["train"], ctx.splits["test"]
    results: dict = {
        "meta": {
            "scale": cfg.scale.name,
            "scale_settings": vars(cfg.scale).copy(),
            "seed": cfg.seed,
            "device": cfg.device,
            "data_source": train.source,
            "train_examples": len(train),
            "test_examples": len(test),
            "attack": repr(ctx.attack),
            "versions": {
                "intriguing_fast": __version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "sections": {stage.name: {"title": stage.title, "section": stage.kind.value} for stage in stages},
        }
    }
    for stage in stages:
        results[stage.name] = ctx.store.run(stage.name, stage.key(ctx), lambda: stage.compute(ctx, stage))
    results["examples"] = ctx.examples()
    results["meta"]["stages"] = [vars(r) for r in ctx.store.records]
    results["meta"]["wall_s"] = time.perf_counter() - start
    return results

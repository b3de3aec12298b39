"""The reproduction under torchrun: the ranks share out the heavy work of the stages asked for,
each result landing in the cache it would land in alone, and rank 0 then runs the stages by
itself, finding everything computed, so that its report is the one a single process writes.

Training a zoo model or a stage's job (e.g. an adversarially trained variant) is one piece of
work, done by rank k % world; each attack is split into the chunks one process attacks it in,
with the targets that process would draw, chunk k attacked by rank k % world and gathered, and
rank 0 stores it. What is cached already is not redone.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial

from ..attack import random_targets
from ..attack.validation import num_classes
from ..distributed import Group, distributed_attack
from .context import Run, stored_attack
from .stage import Stage


def share_out(run: Run, stages: tuple[Stage, ...], group: Group) -> None:
    """Every model, job and attack that `stages` need, computed by the ranks of `group` together."""
    rank, world = group.launch.rank, group.launch.world
    for job in work(run, stages)[rank::world]:
        job()
    group.sum(0)  # every model is in the checkpoint cache
    attacks = dict.fromkeys(
        (name, stage.image_set) for stage in stages if stage.image_set is not None for name in stage.models
    )
    for name, image_set in attacks:
        attack_together(run, name, image_set, group)


def work(run: Run, stages: tuple[Stage, ...]) -> list[Callable[[], object]]:
    """The independent pieces of work of `stages`, in the same order on every rank."""
    models = dict.fromkeys(name for stage in stages for name in stage.models)
    return [partial(run.trained, name) for name in models] + [
        job for stage in stages if stage.jobs is not None for job in stage.jobs(run, stage)
    ]


def attack_together(run: Run, name: str, image_set: str, group: Group) -> None:
    """The attack of model `name` on `image_set`, chunk by chunk over the ranks, stored by rank 0
    exactly as `Run.attacked` stores it in one process (unless it is stored already)."""
    stage, key = run.attack_stage(name, image_set)
    if group.broadcast(run.store.holds(stage, key) if group.launch.rank == 0 else None):
        return
    began = time.perf_counter()
    images, labels = run.images(image_set)
    model, attack = run.model(name), run.attack
    chunk = attack.images_per_chunk(model, images)
    if run.cfg.progress and group.launch.rank == 0:
        print(
            f"attack {name} on {image_set}: {images.shape[0]:,} images in chunks of {chunk:,} over "
            f"{group.launch.world} ranks",
            file=sys.stderr,
            flush=True,
        )
    targets = random_targets(labels, num_classes(model, images), attack.seed)  # what attack(..., "random") draws
    result = distributed_attack(attack, model, images, targets, group, labels=labels, chunk=chunk)
    if group.launch.rank == 0:
        run.store.save(stage, key, stored_attack(result), time.perf_counter() - began)

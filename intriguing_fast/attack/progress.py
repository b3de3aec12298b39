"""How an attack call reports its progress: nothing (the default), a tqdm bar, or a callback
given an `AttackProgress`, so that notebooks and services can follow a long call without tqdm.
The c search reports to a `Progress` and never sees a bar."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tqdm.auto import tqdm

from .result import AttackResult


@dataclass(frozen=True)
class AttackProgress:
    """Where an attack call stands. `done`: rows done so far, each counted in parts, one per
    finished solve of its c search (`steps` of them), so it moves within a chunk; `total`: the
    call's rows (its images, or image and target pairs for "all"); `finished`: the rows of the
    chunks finished so far, over which `succeeded` and `mean_distortion` (of the successes; NaN
    before the first) are counted."""

    done: float
    total: int
    finished: int
    succeeded: int
    mean_distortion: float


ProgressOption = bool | str | Callable[[AttackProgress], object] | None


def check_progress(progress: object) -> ProgressOption:
    if progress is None or isinstance(progress, (bool, str)) or callable(progress):
        return progress
    raise TypeError(
        f"progress: expected a bool, a str (the bar's description) or a callable taking an "
        f"AttackProgress, got {type(progress).__name__} {progress!r}"
    )


class Progress:
    """The sink of one attack call: the chunk in its search reports `advance`, the call each
    finished chunk (`chunk_done`); `quiet`: nobody listens, so nothing need be counted."""

    def __init__(
        self, total: int, bar: tqdm | None = None, callback: Callable[[AttackProgress], object] | None = None
    ) -> None:
        self.total, self.bar, self.callback = total, bar, callback
        self.quiet = bar is None and callback is None
        self.done, self.shown = 0.0, 0  # images done, and the whole ones the bar shows
        self.finished, self.succeeded, self.distortion_sum = 0, 0, 0.0

    def advance(self, images_done: float, note: str = "") -> None:
        """The current chunk has `images_done` images done (its finished solves / steps); `note`:
        what a bar shows beside them (the round and c step). The callback hears of changes only."""
        done = self.finished + float(images_done)
        moved, self.done = done != self.done, done
        if self.bar is not None:
            self._show(int(done))
            if note:
                self.bar.set_postfix_str(note, refresh=False)
        if self.callback is not None and moved:
            self.callback(self.state())

    def chunk_done(self, part: AttackResult) -> None:
        """The rows of a finished chunk (`part`): count them, their successes and distortions."""
        self.finished += part.success.shape[0]
        self.succeeded += int(part.success.sum())
        self.distortion_sum += float(part.distortion[part.success].double().sum())
        self.done = float(self.finished)
        state = self.state()
        if self.bar is not None:
            self._show(self.finished)
            self.bar.set_postfix(
                success=f"{state.succeeded / state.finished:.3f}", distortion=f"{state.mean_distortion:.4f}"
            )
        if self.callback is not None:
            self.callback(state)

    def _show(self, images: int) -> None:
        self.bar.update(images - self.shown)
        self.shown = images

    def state(self) -> AttackProgress:
        """What a callback is given now."""
        mean = self.distortion_sum / self.succeeded if self.succeeded else math.nan
        return AttackProgress(self.done, self.total, self.finished, self.succeeded, mean)


@contextmanager
def reporting(progress: ProgressOption, total: int) -> Iterator[Progress]:
    """The `Progress` that `progress` asks for over `total` rows: a bar (True, or its description)
    closed at the end (removed if it ran under another bar), a callback, or none (False, None)."""
    if callable(progress):
        yield Progress(total, callback=progress)
    elif progress or isinstance(progress, str):
        with tqdm(
            total=total,
            desc=progress if isinstance(progress, str) else None,
            unit="img",
            disable=False,
            dynamic_ncols=True,
            leave=None,
        ) as bar:
            yield Progress(total, bar=bar)
    else:
        yield Progress(total)

"""The box-constrained L-BFGS attack of Szegedy et al. (2014), batched over images and c:
its options made callable on data (`LBFGSAttack`), and the functional form `lbfgs_attack`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from ..engine import flushed_denormals
from .chunk import attack_chunk
from .memory import chunk_size
from .objective import attack_mode
from .options import AttackOptions
from .progress import ProgressOption, check_progress, reporting
from .result import AttackResult
from .targets import TARGET_MODES, all_other_targets, least_likely_targets, random_targets
from .validation import (
    check_bounds,
    check_c_init,
    check_forward,
    check_inputs,
    check_labels,
    check_model,
    check_targets_differ,
    clean_logits,
    model_dtype,
)


@dataclass(frozen=True)
class LBFGSAttack(AttackOptions):
    """Smallest perturbations r with x + r in bounds that make a model output the targets.

    For each image, minimises c ||r||^2 + CE(model(x + r) / T, l) with the batched L-BFGS-B
    engine and searches the LARGEST c whose minimiser is classified as l (a larger c gives
    a smaller r); every evaluation, line-search probes included, is a candidate, and the
    smallest successful one is returned. All images of a chunk and their c values are
    solved in one engine run per c step. The options (`AttackOptions`) are checked when the
    attack is built; data comes at call time:
    ``LBFGSAttack(kappa=1.0)(model, inputs, "random", labels=labels)``.
    """

    def __call__(
        self,
        model: torch.nn.Module,
        inputs: torch.Tensor,
        targets: torch.Tensor | str,
        *,
        labels: torch.Tensor | None = None,
        bounds: tuple[float | torch.Tensor, float | torch.Tensor] = (0.0, 1.0),
        progress: ProgressOption = False,
    ) -> AttackResult:
        """Attack `inputs` with `model`.

        Args:
            model: a classifier returning logits [B, num_classes]; used in eval mode, its
                parameters get no gradients (both restored afterwards).
            inputs: [B, ...] float32/float64 images inside `bounds`.
            targets: a LongTensor [B] of target classes, or "random" (a seeded class other
                than the label), "all" (every other class: B * (num_classes - 1) rows),
                "least_likely", or "untargeted" (any class other than the label).
            labels: true labels [B], for "random", "all" and "untargeted"; default: the
                model's predictions on inputs. Given with a targets tensor, every target
                must differ from its label.
            bounds: (lower, upper) floats or tensors broadcastable to one image.
            progress: False (the default) or None: silent; True, or a str (its description,
                e.g. "attack FC10 on train"): a tqdm bar on stderr; a callable: called with an
                `AttackProgress` (attack/progress.py) whenever the work moves, and after each
                chunk. Either counts each image done in `steps` parts, one per finished solve
                of its c search, so it moves within a chunk; a bar under another bar is
                removed when done.
        """
        progress = check_progress(progress)
        model = check_model(model)
        inputs = check_inputs(inputs)
        lower, upper = check_bounds(bounds, inputs)
        check_c_init(self.resolved()[2], inputs.dtype)
        if any(m.training and isinstance(m, MODE_DEPENDENT) for m in model.modules()):
            warnings.warn(
                "model: it is in train mode; the attack runs it in eval mode (dropout off, batch norm on its "
                "running statistics) and restores its mode afterwards",
                stacklevel=2,
            )
        with attack_mode(model), flushed_denormals(self.flush_denormals and inputs.device.type == "cpu"):
            dtype = model_dtype(model, inputs)
            check_forward(model, inputs, dtype)
            chunk = chunk_size(model, inputs[0].to(dtype), self.engine.history, self.memory_budget, self.batch_size)
            logits = clean_logits(model, inputs, dtype, chunk)
            num_classes = logits.shape[1]
            given = labels is not None
            labels = (
                check_labels(labels, "labels", inputs.shape[0], num_classes, inputs.device)
                if given
                else logits.argmax(dim=1)
            )
            index, classes, targeted = _resolve_targets(targets, labels, given, logits, self.seed)
            if self.batch_size is None:
                chunk = max(1, chunk // self.problems_per_image(targeted))
            N = index.shape[0]
            parts: list[AttackResult] = []
            with reporting(progress, N) as report:
                for start in range(0, N, chunk):
                    rows = index[start : start + chunk]
                    fields, rounds = attack_chunk(
                        self,
                        model,
                        dtype,
                        inputs[rows],
                        classes[start : start + chunk],
                        targeted,
                        lower,
                        upper,
                        report,
                        num_classes,
                    )
                    target = classes[start : start + chunk] if targeted else torch.full_like(rows, -1)
                    parts.append(
                        AttackResult(**fields, targets=target, labels=labels[rows], image_index=rows, rounds=rounds)
                    )
                    report.chunk_done(parts[-1])
        return AttackResult.concatenate(parts)

    def images_per_chunk(self, model: torch.nn.Module, inputs: torch.Tensor, targeted: bool = True) -> int:
        """How many of `inputs` this attack solves at once with `model`, targeted or not
        (`batch_size`, or as many as fit in `memory_budget`): attacking `inputs` in pieces of
        this size, with the targets the whole call would draw, gives the whole call's result row
        for row (distributed.py)."""
        model, inputs = check_model(model), check_inputs(inputs)
        with attack_mode(model):
            image = inputs[0].to(model_dtype(model, inputs))
            chunk = chunk_size(model, image, self.engine.history, self.memory_budget, self.batch_size)
        return chunk if self.batch_size is not None else max(1, chunk // self.problems_per_image(targeted))


def lbfgs_attack(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | str,
    *,
    labels: torch.Tensor | None = None,
    bounds: tuple[float | torch.Tensor, float | torch.Tensor] = (0.0, 1.0),
    progress: ProgressOption = False,
    **options,
) -> AttackResult:
    """``LBFGSAttack(**options)(model, inputs, targets, labels=..., bounds=..., progress=...)``:
    the attack in one call; `options` are the fields of `LBFGSAttack`."""
    return LBFGSAttack(**options)(model, inputs, targets, labels=labels, bounds=bounds, progress=progress)


# Layers whose output depends on train/eval mode: a model holding one in train mode gets a warning.
MODE_DEPENDENT = (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._NormBase)


def _resolve_targets(
    targets: torch.Tensor | str, labels: torch.Tensor, labels_given: bool, logits: torch.Tensor, seed: int
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(image_index, classes, targeted): classes are the targets, or the labels if untargeted.
    Explicit targets must differ from explicit labels (the predicted ones may already be a target)."""
    B, num_classes = logits.shape
    every = torch.arange(B, device=labels.device)
    if isinstance(targets, str):
        if targets not in TARGET_MODES:
            raise ValueError(f"targets: expected a LongTensor or one of {TARGET_MODES}, got {targets!r}")
        if targets == "untargeted":
            return every, labels, False
        if targets == "all":
            return (*all_other_targets(labels, num_classes), True)
        if targets == "random":
            return every, random_targets(labels, num_classes, seed), True
        return every, least_likely_targets(logits), True
    targets = check_labels(targets, "targets", B, num_classes, labels.device)
    if labels_given:
        check_targets_differ(targets, labels)
    return every, targets, True

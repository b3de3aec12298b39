"""The box-constrained L-BFGS attack of Szegedy et al. (2014), batched over images and c."""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
from tqdm.auto import tqdm

from ..engine import minimize_lbfgsb
from .memory import chunk_size
from .objective import AttackObjective, check_logits, margin_and_loss
from .result import AttackResult
from .search import DEFAULT_STEPS, DEFAULT_TEMPERATURE, CSearch, default_c
from .targets import TARGET_MODES, all_other_targets, least_likely_targets, random_targets
from .validation import check_bounds, check_inputs, check_labels, check_model, check_options

@contextlib.contextmanager
def attack_mode(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients for the attack; the caller's settings come back after."""
    training = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in grads:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for m, t in training:
            m.train(t)
        for p, r in grads:
            p.requires_grad_(r)


def lbfgs_attack(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | str,
    *,
    labels: torch.Tensor | None = None,
    bounds: tuple[float | torch.Tensor, float | torch.Tensor] = (0.0, 1.0),
    kappa: float = 0.0,
    temperature: float | None = None,
    search: str = "ours",
    steps: int | None = None,
    c_init: float | None = None,
    history: int = 10,
    max_iter: int = 100,
    gtol: float = 1e-5,
    ftol: float = 1e-6,
    warm_start: bool = True,
    seed: int = 0,
    batch_size: int | None = None,
    memory_budget: int = 2**30,
    progress: bool | None = None,
    backend: str = "auto",
) -> AttackResult:
    """Smallest perturbations r with x + r in bounds that make `model` output the targets.

    For each image, minimises c ||r||^2 + CE(model(x + r) / T, l) with the batched L-BFGS-B
    engine and searches the LARGEST c whose minimiser is classified as l (a larger c gives
    a smaller r); every evaluation, line-search probes included, is a candidate, and the
    smallest successful one is returned. All images of a chunk and their c values are
    solved in one engine run per c step.

    Args:
        model: a classifier returning logits [B, num_classes]; used in eval mode, its
            parameters get no gradients (both restored afterwards).
        inputs: [B, ...] float32/float64 images inside `bounds`.
        targets: a LongTensor [B] of target classes, or "random" (a seeded class other than
            the label), "all" (every other class: B * (num_classes - 1) rows), "least_likely",
            or "untargeted" (any class other than the label).
        labels: true labels [B], for "random", "all" and "untargeted"; default: the model's
            predictions on inputs.
        bounds: (lower, upper) floats or tensors broadcastable to one image.
        kappa: required margin of the target's logit over every other (untargeted: of some
            other logit over the label's); the loss is shifted by it too.
        temperature: T in the loss. T = 1 is the paper's objective literally; dividing the
            logits by T keeps the arg-max (the constraint) and, with T < 1, brings the
            minimiser at the critical c closer to the exact minimal perturbation (within
            0.3% instead of 4% of the exact optimum on softmax regression; docs/attack.md).
            Default 0.1, and 1 with search="cleverhans".
        search: "ours" (start at c = 1, x10 then log-bisection) or "cleverhans" (its
            convention: loss weight 1e-2 x10 then bisection, 9 steps) -- see `search`.
        steps: engine solves per image in the c search (default 8, cleverhans 9).
        c_init: first c (default 1 / T, cleverhans 100, i.e. loss weight 1e-2).
        history, max_iter, gtol, ftol: engine settings for each solve.
        warm_start: start each solve from the best adversarial so far (else the last
            minimiser) rather than from the input.
        seed: for targets="random".
        batch_size: images per chunk; default: as many as fit in `memory_budget` bytes.
        progress: show a progress bar; default: when there is more than one chunk.
        backend: the engine backend.
    """
    model = check_model(model)
    inputs = check_inputs(inputs)
    lower, upper = check_bounds(bounds, inputs)
    check_options(history, max_iter, steps, kappa, temperature, c_init, search, batch_size, memory_budget)
    steps = steps or DEFAULT_STEPS[search]
    temperature = temperature or DEFAULT_TEMPERATURE[search]
    c_init = c_init or default_c(search, temperature)
    shape = tuple(inputs.shape[1:])
    with attack_mode(model):
        model_dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), inputs.dtype)
        chunk = batch_size or chunk_size(model, inputs[0].to(model_dtype), history, memory_budget)
        logits = _logits(model, inputs, model_dtype, chunk)
        num_classes = logits.shape[1]
        labels = logits.argmax(dim=1) if labels is None else check_labels(labels, "labels", inputs.shape[0], num_classes, inputs.device)
        index, classes, targeted = _resolve_targets(targets, labels, logits, seed)
        N = index.shape[0]
        parts: list[AttackResult] = []
        succeeded, distortion_sum = 0, 0.0
        bar = tqdm(total=N, unit="img", disable=not (progress if progress is not None else N > chunk), dynamic_ncols=True)
        with bar:
            for start in range(0, N, chunk):
                rows = index[start:start + chunk]
                fields = _attack_chunk(model, model_dtype, inputs[rows].flatten(1), shape, classes[start:start + chunk],
                                       targeted, kappa, temperature, lower, upper, search, steps, c_init, warm_start,
                                       dict(history=history, max_iter=max_iter, max_fun=2 * max_iter, gtol=gtol,
                                            ftol=ftol, backend=backend), bar)
                target = classes[start:start + chunk] if targeted else torch.full_like(rows, -1)
                parts.append(AttackResult(**fields, targets=target, labels=labels[rows], image_index=rows))
                succeeded += int(parts[-1].success.sum())
                distortion_sum += float(parts[-1].distortion[parts[-1].success].double().sum())
                bar.update(rows.shape[0])
                bar.set_postfix(success=f"{succeeded / (start + rows.shape[0]):.3f}",
                                distortion=f"{distortion_sum / max(succeeded, 1):.4f}")
    return AttackResult.concatenate(parts)


class LBFGSAttack:
    """The attack with its options fixed: `LBFGSAttack(model, kappa=1.0)(inputs, targets)`.

    Keyword options are those of `lbfgs_attack`; a call may override any of them.
    """

    def __init__(self, model: torch.nn.Module, **options) -> None:
        self.model = check_model(model)
        self.options = options

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor | str, **overrides) -> AttackResult:
        return lbfgs_attack(self.model, inputs, targets, **{**self.options, **overrides})

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"LBFGSAttack({type(self.model).__name__}{', ' if opts else ''}{opts})"


def _logits(model: torch.nn.Module, inputs: torch.Tensor, model_dtype: torch.dtype, chunk: int) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for start in range(0, inputs.shape[0], chunk):
            x = inputs[start:start + chunk]
            out.append(check_logits(model(x.to(model_dtype)), x.shape[0]).to(inputs.dtype))
    return torch.cat(out)


def _resolve_targets(targets: torch.Tensor | str, labels: torch.Tensor, logits: torch.Tensor,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(image_index, classes, targeted): classes are the targets, or the labels if untargeted."""
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
    return every, check_labels(targets, "targets", B, num_classes, labels.device), True


def _attack_chunk(model: torch.nn.Module, model_dtype: torch.dtype, images: torch.Tensor, shape: tuple[int, ...],
                  classes: torch.Tensor, targeted: bool, kappa: float, temperature: float,
                  lower: torch.Tensor, upper: torch.Tensor,
                  search: str, steps: int, c_init: float, warm_start: bool, engine: dict, bar: tqdm) -> dict:
    """The c search for one chunk: `steps` engine runs, each over every image still attacked."""
    N = images.shape[0]
    obj = AttackObjective(model, images, shape, classes, targeted, kappa, temperature, model_dtype)
    already = obj.classify(images, torch.arange(N, device=images.device))
    active = (~already).nonzero().squeeze(1)
    obj.rows = active
    cs = CSearch(active.shape[0], search, c_init, images.dtype, images.device)
    nit = torch.zeros(N, dtype=torch.long, device=images.device)
    nfev = torch.ones(N, dtype=torch.long, device=images.device)
    x_start = images[active]
    for step in range(steps if active.numel() else 0):
        obj.c[active] = cs.c
        res = minimize_lbfgsb(obj, x_start, lower, upper, **engine)
        cs.update(obj.classify(res.x, active))
        nit[active] += res.nit
        nfev[active] += res.nfev + 1
        if warm_start:
            found = torch.isfinite(obj.best_sq[active])
            x_start = torch.where(found[:, None], obj.best_x[active], res.x)
        bar.set_postfix_str(f"c step {step + 1}/{steps}", refresh=True)
    return _finish(obj, images, shape, already, cs, active, nit, nfev)


def _finish(obj: AttackObjective, images: torch.Tensor, shape: tuple[int, ...], already: torch.Tensor,
            cs: CSearch, active: torch.Tensor, nit: torch.Tensor, nfev: torch.Tensor) -> dict:
    """Recheck the best adversarials with a fresh forward pass; the chunk's result fields."""
    N, n = images.shape
    with torch.no_grad():
        logits = obj.logits(obj.best_x)
    verified, _ = margin_and_loss(logits, obj.classes, obj.targeted, obj.kappa, obj.temperature)
    success = torch.isfinite(obj.best_sq) & verified
    adversarial = torch.where(success[:, None], obj.best_x, images)
    r = adversarial - images
    l2 = torch.where(success, r.norm(dim=1), torch.full_like(obj.best_sq, float("nan")))
    c = torch.full_like(obj.best_sq, float("nan"))
    c[active] = torch.where(cs.c_ok > 0, cs.c_ok, float("nan"))
    return dict(adversarial=adversarial.reshape(N, *shape), perturbation=r.reshape(N, *shape), l2=l2,
                distortion=l2 / math.sqrt(n), success=success, already_adversarial=already, c=c, nit=nit,
                nfev=nfev + 1, predicted=logits.argmax(dim=1))

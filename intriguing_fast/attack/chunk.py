"""One chunk of the attack: the c search of every image in one engine run, then the verified result."""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..engine.solver import BatchSolver
from .objective import AttackObjective, margin_and_loss
from .options import AttackOptions
from .result import distortion
from .search import CSearch


def attack_chunk(attack: AttackOptions, model: torch.nn.Module, model_dtype: torch.dtype, images: torch.Tensor,
                 classes: torch.Tensor, targeted: bool, lower: torch.Tensor, upper: torch.Tensor,
                 bar: tqdm) -> tuple[dict, int]:
    """The c search for one chunk of images [N, ...] in one engine run: each image moves to its
    next c as soon as its own solve stops (restarted from its best adversarial so far, or its
    last minimiser), so no image waits for the slowest of its c step; then the boundary is
    searched between each image's best adversarial and its last failing minimiser
    (attack/boundary.py). `bar` advances by one image per `steps` finished solves (an image
    already adversarial: one at once), so it moves while the images are in their c search.
    Returns the fields of its `AttackResult` but targets, labels and index, and the rounds it
    took (the engine's and the boundary search's)."""
    temperature, steps, c_init = attack.resolved()
    shape = tuple(images.shape[1:])
    images = images.flatten(1)
    N = images.shape[0]
    obj = AttackObjective(model, images, shape, classes, targeted, attack.kappa, temperature, model_dtype)
    already, clean_margin = obj.classify(images, torch.arange(N, device=images.device))
    active = (~already).nonzero().squeeze(1)
    nit = torch.zeros(N, dtype=torch.long, device=images.device)
    nfev = torch.ones(N, dtype=torch.long, device=images.device)
    cs = CSearch(clean_margin[active], attack.search, c_init)
    shown = _advance(bar, (N - active.numel()) * steps, steps, 0)  # the images already adversarial are done
    if not active.numel():
        return _finish(obj, images, shape, already, cs, active, nit, nfev), 0
    obj.rows = active
    obj.c[active] = cs.c
    solver = BatchSolver(obj, images[active], lower, upper, attack.engine)
    at_x_success = torch.zeros_like(active, dtype=torch.bool)  # whether each solve's current point succeeds
    at_x_margin = torch.zeros_like(active, dtype=images.dtype)  # and by how much
    solves = torch.zeros_like(active)
    outside = images[active]  # each image's last failing minimiser (the clean image until one fails)
    outside_margin = clean_margin[active]
    while True:
        moved = solver.moved
        at_x_success[solver.evaluated[moved]] = obj.last_success[moved]
        at_x_margin[solver.evaluated[moved]] = obj.last_margin[moved]
        stopped = solver.stopped()
        if stopped.numel():  # these images' solves at their current c are done
            cs.update(at_x_success[stopped], at_x_margin[stopped], stopped)
            st = solver.st
            failed = stopped[~at_x_success[stopped]]
            outside[failed], outside_margin[failed] = st.x[failed], at_x_margin[failed]
            nit[active[stopped]] += st.nit[stopped]
            nfev[active[stopped]] += st.nfev[stopped]
            solves[stopped] += 1
            shown = _advance(bar, (N - active.numel()) * steps + int(solves.sum()), steps, shown)
            again = stopped[solves[stopped] < steps]
            if again.numel():
                images_again = active[again]
                shift = 2 * (cs.c[again] - obj.c[images_again]) if attack.reuse_curvature else None
                obj.c[images_again] = cs.c[again]
                start = st.x[again]
                if attack.warm_start:
                    found = torch.isfinite(obj.best_sq[images_again])
                    start = torch.where(found[:, None], obj.best_x[images_again], start)
                else:
                    start = images[images_again]
                solver.restart(again, start, shift)
            if not bar.disable:
                bar.set_postfix_str(f"round {solver.rounds}, mean c step {float(solves.double().mean()) + 1:.1f}/{steps}",
                                    refresh=False)
        if not solver.round():
            break
    passes = obj.search_boundary(active, outside, outside_margin, attack.boundary_steps)
    nfev[active] += passes
    rounds = solver.rounds + int(passes.max())
    return _finish(obj, images, shape, already, cs, active, nit, nfev), rounds


def _advance(bar: tqdm, solves: int, steps: int, shown: int) -> int:
    """Move `bar` from `shown` to the images that `solves` finished solves amount to; returns them."""
    images = solves // steps
    bar.update(images - shown)
    return images


def _finish(obj: AttackObjective, images: torch.Tensor, shape: tuple[int, ...], already: torch.Tensor,
            cs: CSearch, active: torch.Tensor, nit: torch.Tensor, nfev: torch.Tensor) -> dict:
    """Recheck the best adversarials with a fresh forward pass; the chunk's result fields."""
    N = images.shape[0]
    with torch.no_grad():
        logits = obj.logits(obj.best_x)
    verified, _, _ = margin_and_loss(logits, obj.classes, obj.targeted, obj.kappa, obj.temperature)
    success = torch.isfinite(obj.best_sq) & verified
    adversarial = torch.where(success[:, None], obj.best_x, images)
    r = adversarial - images
    failed = torch.full_like(obj.best_sq, float("nan"))
    c = failed.clone()
    c[active] = torch.where(cs.c_ok > 0, cs.c_ok, float("nan"))
    return dict(adversarial=adversarial.reshape(N, *shape), perturbation=r.reshape(N, *shape),
                l2=torch.where(success, r.norm(dim=1), failed), distortion=torch.where(success, distortion(r), failed),
                success=success, already_adversarial=already, c=c, nit=nit, nfev=nfev + 1,
                predicted=logits.argmax(dim=1))

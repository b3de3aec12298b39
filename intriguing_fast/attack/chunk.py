"""One chunk of the attack: the c search over batched engine runs, then the verified result."""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..engine import minimize_lbfgsb
from .objective import AttackObjective, margin_and_loss
from .options import AttackOptions
from .result import distortion
from .search import CSearch


def attack_chunk(attack: AttackOptions, model: torch.nn.Module, model_dtype: torch.dtype, images: torch.Tensor,
                 classes: torch.Tensor, targeted: bool, lower: torch.Tensor, upper: torch.Tensor, bar: tqdm) -> dict:
    """The c search for one chunk of images [N, ...]: `steps` engine runs, each over every
    image still attacked; returns the fields of its `AttackResult` but targets, labels, index."""
    temperature, steps, c_init = attack.resolved()
    shape = tuple(images.shape[1:])
    images = images.flatten(1)
    N = images.shape[0]
    obj = AttackObjective(model, images, shape, classes, targeted, attack.kappa, temperature, model_dtype)
    already = obj.classify(images, torch.arange(N, device=images.device))
    active = (~already).nonzero().squeeze(1)
    obj.rows = active
    cs = CSearch(active.shape[0], attack.search, c_init, images.dtype, images.device)
    nit = torch.zeros(N, dtype=torch.long, device=images.device)
    nfev = torch.ones(N, dtype=torch.long, device=images.device)
    x_start = images[active]
    for step in range(steps if active.numel() else 0):
        obj.c[active] = cs.c
        res = minimize_lbfgsb(obj, x_start, lower, upper, **attack.engine.as_kwargs())
        cs.update(obj.classify(res.x, active))
        nit[active] += res.nit
        nfev[active] += res.nfev + 1
        if attack.warm_start:
            found = torch.isfinite(obj.best_sq[active])
            x_start = torch.where(found[:, None], obj.best_x[active], res.x)
        bar.set_postfix_str(f"c step {step + 1}/{steps}", refresh=True)
    return _finish(obj, images, shape, already, cs, active, nit, nfev)


def _finish(obj: AttackObjective, images: torch.Tensor, shape: tuple[int, ...], already: torch.Tensor,
            cs: CSearch, active: torch.Tensor, nit: torch.Tensor, nfev: torch.Tensor) -> dict:
    """Recheck the best adversarials with a fresh forward pass; the chunk's result fields."""
    N = images.shape[0]
    with torch.no_grad():
        logits = obj.logits(obj.best_x)
    verified, _ = margin_and_loss(logits, obj.classes, obj.targeted, obj.kappa, obj.temperature)
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

"""The c search in lock step, the attack's schedule before rounds: one engine run per c step
over all images, so each step lasts as long as its slowest image. Kept as the reference that
tests/test_attack_rounds.py holds the rounds against (same results, image by image) and the
baseline of bench/bench_rounds.py."""

from __future__ import annotations

import torch

from ...engine import flushed_denormals, minimize_lbfgsb
from ..objective import AttackObjective, attack_mode
from ..options import AttackOptions
from ..search import PULL_BACK_AFTER, CSearch


def lockstep_attack(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, attack: AttackOptions
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, torch.Tensor]:
    """Targeted attack of images [N, ...] (inside [0, 1]) with the options of `attack`; returns
    (best adversarials [k, n], c_ok [k], engine iterations [k], rounds, the k image indices not
    already adversarial). Each c step is a new engine run, so its history starts afresh: the
    attack's `reuse_curvature` must be off for the two schedules to agree."""
    if attack.reuse_curvature:
        raise ValueError("attack: lock step starts every c step's history afresh; pass reuse_curvature=False")
    if attack.first_temperature != attack.resolved()[0] or attack.restarts:
        raise ValueError("attack: lock step keeps one temperature; pass temperature=... explicitly and restarts=0")
    temperature, steps, c_init = attack.resolved()
    flat = images.flatten(1)
    with attack_mode(model), flushed_denormals(attack.flush_denormals and images.device.type == "cpu"):
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), flat.dtype)
        probe = AttackObjective(model, flat, tuple(images.shape[1:]), targets, True, attack.kappa, temperature, dtype)
        already, clean_margin = probe.classify(flat, torch.arange(len(flat), device=flat.device))
        active = (~already).nonzero().squeeze(1)
        obj = AttackObjective(
            model, flat[active], tuple(images.shape[1:]), targets[active], True, attack.kappa, temperature, dtype
        )
        problems = torch.arange(len(active), device=flat.device)
        cs = CSearch(clean_margin[active], attack.search, c_init)
        outside, outside_margin = flat[active], clean_margin[active]
        x_start, rounds, nit = flat[active], 0, torch.zeros(len(active), dtype=torch.long, device=flat.device)
        for solves in range(1, steps + 1 if len(active) else 0):
            obj.c.copy_(cs.c)
            engine = attack.engine.as_kwargs()
            if solves <= PULL_BACK_AFTER:  # the early solves' looser ftol, if any
                engine["ftol"] = max(engine["ftol"], attack.resolved_early_ftol)
            res = minimize_lbfgsb(obj, x_start, 0.0, 1.0, **engine)
            rounds += int(res.nfev.max())
            nit += res.nit
            success, margin = obj.classify(res.x, problems)
            cs.update(success, margin)
            outside = torch.where(success[:, None], outside, res.x)
            outside_margin = torch.where(success, outside_margin, margin)
            if attack.warm_start:
                found = torch.isfinite(obj.best_sq)
                best = obj.best_x
                if attack.resolved_pull_back and solves == PULL_BACK_AFTER:
                    best = best + attack.resolved_pull_back * (obj.images - best)
                x_start = torch.where(found[:, None], best, res.x)
        obj.search_boundary(problems, outside, outside_margin, attack.boundary_steps)
        box = (
            torch.zeros((), dtype=flat.dtype, device=flat.device),
            torch.ones((), dtype=flat.dtype, device=flat.device),
        )
        obj.walk_boundary(problems, *box, attack.walk_steps, attack.boundary_steps)
    return obj.best_x, cs.c_ok, nit, rounds, active

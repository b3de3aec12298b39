"""One chunk of the attack: the c search of every image in one engine run, then the verified result."""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..engine import Status, batch_solver
from .hedges import FIRST_SOLVES, HEDGE_FTOL_FACTOR, Hedges
from .objective import AttackObjective, rows_of
from .options import AttackOptions
from .progress import Progress
from .restarts import random_starts
from .result import distortion
from .search import PULL_BACK_AFTER, CSearch


def attack_chunk(
    attack: AttackOptions,
    model: torch.nn.Module,
    model_dtype: torch.dtype,
    images: torch.Tensor,
    classes: torch.Tensor,
    targeted: bool,
    lower: torch.Tensor,
    upper: torch.Tensor,
    report: Progress,
    num_classes: int | None = None,
) -> tuple[dict, int]:
    """The c search for one chunk of images [N, ...] in one engine run: each problem (an image and
    a class) moves to its next c as soon as its own solve stops (restarted from its best
    adversarial so far, or its last minimiser), so none waits for the slowest of its c step; an
    untargeted image's hedges start when its own first solve ends, and once every problem of the
    image has made its first solve only the nearest goes on (attack/hedges.py). Then the boundary
    is searched between each remaining problem's best adversarial and its last failing minimiser
    (attack/boundary.py). `report` hears of the images done, each counted 1/`steps` per finished
    solve of it (an image already adversarial: whole, from the first round), unless it is quiet.
    `num_classes`: the model's, which every call must give.
    Returns the fields of its `AttackResult` but targets, labels and index, and the rounds it took
    (the engine's and the boundary search's)."""
    shape = tuple(images.shape[1:])
    images = images.flatten(1)
    N = images.shape[0]
    probe = AttackObjective(
        model, images, shape, classes, targeted, attack.kappa, attack.resolved()[0], model_dtype, num_classes
    )
    already, clean_margin = probe.classify(images, torch.arange(N, device=images.device))
    active = (~already).nonzero().squeeze(1)
    searched = (
        _search(attack, probe, images, clean_margin, active, targeted, lower, upper, report) if active.numel() else None
    )
    return _finish(probe, searched, images, already, active), searched.rounds if searched else 0


class _Searched(NamedTuple):
    """What the c searches of a chunk's active images left: their problems' objective (best
    adversarials), each problem's image in `active`, their c searches, iterations and
    evaluations, and the rounds it took (the engine's and the boundary search's)."""

    obj: AttackObjective
    image: torch.Tensor
    cs: CSearch
    nit: torch.Tensor
    nfev: torch.Tensor
    rounds: int


def _search(
    attack: AttackOptions,
    probe: AttackObjective,
    images: torch.Tensor,
    clean_margin: torch.Tensor,
    active: torch.Tensor,
    targeted: bool,
    lower: torch.Tensor,
    upper: torch.Tensor,
    report: Progress,
) -> _Searched:
    """The c searches of the `active` images of a chunk of `images` [N, n] (flattened), then
    the boundary search of each; `probe` holds every image's class and clean logits."""
    temperature, steps, c_init = attack.resolved()
    explore = attack.first_temperature != temperature
    shape, classes, N = probe.shape, probe.classes, images.shape[0]
    A, copies = active.numel(), 1 + attack.restarts
    hedged = not targeted and attack.hedges is not None
    # An image's c searches are copies of it (copy a + A s: active image a's s-th restart), each with its hedges.
    hedges = Hedges(
        probe.last_logits[active].repeat(copies, 1),
        classes[active].repeat(copies),
        min(attack.hedges, probe.num_classes - 2) if hedged else 0,  # no more classes than the label and A leave
        attack.kappa,
    )
    copy = hedges.image(torch.arange(hedges.problems, device=images.device))
    image = copy % A  # each problem's image in `active`
    if hedged:  # the untargeted problems, then the targeted hedges
        targeted = hedges.targeted()
    if hedged or explore:  # a temperature per problem, the first one until it changes
        temperature = torch.full_like(clean_margin[image], attack.first_temperature)
    obj = AttackObjective(
        probe.model,
        images[active][image],
        shape,
        classes[active][image],
        targeted,
        attack.kappa,
        temperature,
        probe.model_dtype,
        probe.num_classes,
    )
    origin = obj.images
    if attack.restarts:  # each copy's problems start where its restart does (the first copy: the image)
        first = torch.arange(A, device=images.device)  # the first copy's own problems
        distance = obj.linear_distance(first).repeat(copies)
        origin = random_starts(
            images[active].repeat(copies, 1),
            torch.arange(A * copies, device=images.device) // A,
            distance,
            lower,
            upper,
            attack.seed,
        )[copy]
    cs = CSearch(clean_margin[active][image], attack.search, c_init)
    run = _CSearchRun(attack, steps, explore, obj, cs, hedges if hedged else None, origin, lower, upper)
    solver = run.solver
    while True:  # in fixed-shape rounds progress is read at the engine's looks only (a read waits for the device)
        if run.after_round() and not report.quiet and (not solver.fixed or solver.rounds % solver.opt.check_every == 0):
            done = torch.zeros_like(active).scatter_reduce_(0, image, run.solves, "amax").clamp_(max=steps).double()
            step = float((done + 1).clamp_(max=steps).mean())  # each image's c step (a finished one: its last)
            report.advance(N - A + float(done.sum()) / steps, f"round {solver.rounds}, mean c step {step:.1f}/{steps}")
        if not solver.round():
            break
    obj.counted = None  # the boundary search's calls count, every one
    rows = run.go_on.nonzero().squeeze(1)
    passes = torch.zeros_like(run.nfev)
    passes[rows] = obj.search_boundary(rows, run.outside[rows], run.outside_margin[rows], attack.boundary_steps)
    passes[rows] += obj.walk_boundary(rows, lower, upper, attack.walk_steps, attack.boundary_steps)
    rounds = run.solver.rounds + int(passes.max())
    if attack.restarts:  # the gradient that scaled the image's restarts
        run.nfev[:A] += 1
    return _Searched(obj, image, cs, run.nit, run.nfev + passes, rounds)


class _CSearchRun:
    """The engine run of a chunk's problems and their c searches, between rounds."""

    def __init__(
        self,
        attack: AttackOptions,
        steps: int,
        explore: bool,
        obj: AttackObjective,
        cs: CSearch,
        hedges: Hedges | None,
        origin: torch.Tensor,
        lower: torch.Tensor,
        upper: torch.Tensor,
    ) -> None:
        """`explore`: each problem's temperature changes from the first to the final one once a
        solve of it finds an adversarial. `hedges`: the class choice of an untargeted attack
        (None: none, every problem keeps its loss and class). `origin` [P, n]: where each
        problem's first solve starts (its image, or its restart's starting point)."""
        self.attack, self.steps, self.obj, self.cs, self.hedges, self.origin = attack, steps, obj, cs, hedges, origin
        self.t_final = attack.resolved()[0]
        P = obj.images.shape[0]
        obj.c.copy_(cs.c)
        problem = self.problem = torch.arange(P, device=cs.c.device)
        self.solver = batch_solver(
            obj, origin, lower, upper, attack.engine, start=problem < hedges.M if hedges is not None else None
        )  # the hedges wait
        if self.solver.fixed:  # every round evaluates every problem: only the live ones count
            obj.counted = self.solver.live
        self.at_x_success = torch.zeros(P, dtype=torch.bool, device=cs.c.device)  # each solve's current point: success,
        self.at_x_margin = torch.zeros_like(cs.c)  # its margin,
        self.at_x_other = torch.zeros_like(problem)  # and the other class nearest it
        self.nit, self.nfev, self.solves = (
            torch.zeros_like(problem),
            torch.zeros_like(problem),
            torch.zeros_like(problem),
        )
        self.go_on = torch.ones_like(problem, dtype=torch.bool)  # not stopped by its image's choice
        self.fresh = torch.zeros_like(self.go_on)  # its objective changed: its next solve drops its curvature pairs
        self.explore, self.exploring = explore, torch.full_like(self.go_on, explore)  # still at the first T
        self.outside, self.outside_margin = obj.images.clone(), cs.clean_margin.clone()  # last failing minimiser
        self.early_ftol = attack.resolved_early_ftol
        if self.early_ftol:  # each problem's f and iterations before the round: the decrease of its step
            self.f_before, self.nit_before = (self.solver.problem_state(name).clone() for name in ("f", "nit"))

    def after_round(self) -> bool:
        """Fold the last round into the c searches and restart the problems whose solve stopped
        at their next c; False if none stopped (known in compact rounds only). Masks over every
        problem, not selections: in fixed-shape rounds, no host synchronisation."""
        solver, obj, cs = self.solver, self.obj, self.cs
        if self.early_ftol:
            self._stop_early()
        evaluated, moved = solver.evaluated, solver.moved
        tracked = [(self.at_x_success, obj.last_success), (self.at_x_margin, obj.last_margin)]
        if self.hedges is not None:  # the nearest other class: the hedges' choice, no other
            tracked.append((self.at_x_other, obj.last_other))
        for mine, last in tracked:
            mine[evaluated] = torch.where(moved, last, mine[evaluated])
        stopped = solver.just_stopped
        if not solver.fixed and not stopped.any():
            return False
        x = solver.problem_state("x")
        cs.update(self.at_x_success, self.at_x_margin, stopped)
        failed = stopped & ~self.at_x_success
        rows = rows_of(failed, solver.fixed)
        self.outside.index_copy_(
            0, rows, torch.where(failed[rows, None], x.index_select(0, rows), self.outside.index_select(0, rows))
        )
        self.outside_margin[rows] = torch.where(failed[rows], self.at_x_margin[rows], self.outside_margin[rows])
        self._count(stopped)
        self.solves += stopped
        again = stopped & (self.solves < self.steps) & self.go_on
        started = torch.zeros_like(again)
        if self.hedges is not None:
            again, started = self._hedge(stopped, again)
        if self.explore:
            self._refine(stopped & self.exploring & torch.isfinite(obj.best_sq))
        restart = again | started
        rows = rows_of(restart, solver.fixed)
        shift = None
        if self.attack.reuse_curvature:  # a started hedge, or an objective that changed: new pairs
            shift = torch.where((self.fresh | started)[rows], float("nan"), 2 * (cs.c[rows] - obj.c[rows]))
            self.fresh &= ~again
        obj.c.copy_(torch.where(restart, cs.c, obj.c))
        start = self.origin.index_select(0, rows)
        if self.attack.warm_start:
            best, last = obj.best_x.index_select(0, rows), x.index_select(0, rows)
            if self.attack.resolved_pull_back:
                back = (self.solves[rows] == PULL_BACK_AFTER)[:, None]
                # a product and a sum, not lerp: its vector body and scalar tail round apart (the batch's size would show)
                pulled = best + self.attack.resolved_pull_back * (obj.images.index_select(0, rows) - best)
                best = torch.where(back, pulled, best)
            start = torch.where(
                started[rows, None], start, torch.where(torch.isfinite(obj.best_sq[rows])[:, None], best, last)
            )
        solver.restart(restart if solver.fixed else rows, start, shift)
        solver.retire(~self.go_on | (self.solves >= self.steps))  # never to restart: may leave the engine's bucket
        return True

    def _stop_early(self) -> None:
        """Stop the problems in their first `PULL_BACK_AFTER` solves whose step of the last round
        lowered f by no more than `early_ftol` of it: the engine's ftol test, looser."""
        solver = self.solver
        f, nit = solver.problem_state("f"), solver.problem_state("nit")
        scale = torch.maximum(torch.maximum(self.f_before.abs(), f.abs()), torch.ones_like(f))
        stepped = (nit == self.nit_before + 1) & (solver.problem_state("status") == int(Status.RUNNING))
        ftol = torch.full_like(f, self.early_ftol)
        if self.hedges is not None:  # a hedge before its score only ranks its class
            ftol.masked_fill_(
                (self.problem >= self.hedges.M) & ~self.hedges.scored, HEDGE_FTOL_FACTOR * self.early_ftol
            )
        slow = stepped & (self.solves < PULL_BACK_AFTER) & (self.f_before - f <= ftol * scale)
        solver.stop(slow)
        self.f_before.copy_(f)
        self.nit_before.copy_(nit)

    def _count(self, rows: torch.Tensor) -> None:
        """Add the iterations and evaluations of the solves of problems `rows` ([P] bool) that end now."""
        self.nit += torch.where(rows, self.solver.problem_state("nit"), 0)
        self.nfev += torch.where(rows, self.solver.problem_state("nfev"), 0)

    def _hedge(self, stopped: torch.Tensor, again: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The class choice of an untargeted attack (attack/hedges.py) after a round whose solves
        `stopped` ([P] bool): score the problems whose first solve with an adversarial (or
        `FIRST_SOLVES`-th, or a hedge's first if its untargeted problem has one) just ended; an
        untargeted one scored starts its hedges and, if it found
        an adversarial, goes on targeted at its class; choose for each image whose problems are
        all scored (the others stop). Returns the problems that go on (those of `again` that may,
        and the winning hedges that waited for the choice) and the hedges that start."""
        hedges = self.hedges
        found = torch.isfinite(self.obj.best_sq)
        hedge = self.problem >= hedges.M
        # A hedge that failed at the c its untargeted problem found an adversarial at is farther: scored (inf) now.
        lost = hedge & found[self.problem % hedges.M]
        now = stopped & ~hedges.scored & (found | (self.solves >= FIRST_SOLVES) | lost)
        started = winners = torch.zeros_like(stopped)
        if self.solver.fixed or now.any():  # compact rounds skip it where nothing is scored (the same result)
            started, winners = self._score(now, found)
        again = again & self.go_on & ~(hedge & hedges.waiting())
        waited = winners & hedge & (self.solves < self.steps) & ~again
        return again | waited, started

    def _score(self, now: torch.Tensor, found: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score problems `now` ([P] bool; `found`: which have an adversarial): an untargeted one
        starts its hedges and, if it found one, goes on targeted at its class; the images whose
        problems are all scored choose, and their losers stop. Returns the hedges that start
        and the winners."""
        hedges, solver, obj, cs, M = self.hedges, self.solver, self.obj, self.cs, self.hedges.M
        own, succeeded = now[:M], found[:M]
        nearest = torch.where(succeeded, obj.best_class[:M], self.at_x_other[:M])
        rows, classes, margin = hedges.classes(nearest, torch.arange(M, device=now.device))
        hedge_of = torch.arange(1 + hedges.hedges, device=now.device)[None, :] > 0  # the rows' [M, 1 + hedges] layout
        targeted = (own[:, None] & (hedge_of | succeeded[:, None])).reshape(-1)
        obj.classes[rows] = torch.where(targeted, classes, obj.classes[rows])
        obj.targeted[rows] = obj.targeted[rows] | targeted
        margin = margin.to(cs.c.dtype)
        cs.clean_margin[rows] = torch.where(targeted, margin, cs.clean_margin[rows])
        self.outside_margin[rows] = torch.where(targeted, margin, self.outside_margin[rows])
        self.fresh[:M] |= own & succeeded  # a new objective: their curvature pairs go
        started = torch.zeros_like(now)
        started[rows] = targeted & (rows >= M)
        # A hedge starts at the c its untargeted problem found an adversarial at (else that one's next c):
        # scored alike, without the solves at the larger c that failed it.
        untargeted = rows % M
        found_at = torch.where(cs.c_ok[untargeted] > 0, cs.c_ok[untargeted], cs.c[untargeted])
        cs.c[rows] = torch.where(started[rows], found_at, cs.c[rows])
        winners, losers = hedges.decide(now, obj.best_sq)
        self.go_on &= ~losers
        running = losers & (solver.problem_state("status") == int(Status.RUNNING))
        self._count(running)
        solver.stop(running)
        return started, winners

    def _refine(self, rows: torch.Tensor) -> None:
        """Problems `rows` ([P] bool) found an adversarial in the solve that just ended: from now on
        at the final temperature, their c (and bracket) scaled alike (c T weighs the penalty
        against the loss), and a new objective whose curvature pairs go."""
        obj, cs = self.obj, self.cs
        scale = torch.where(rows, obj.temperature / self.t_final, 1.0)
        for bracket in (cs.c, cs.c_ok, cs.c_fail):
            bracket.mul_(scale)
        obj.temperature.masked_fill_(rows, self.t_final)
        self.fresh |= rows
        self.exploring &= ~rows


def _finish(
    probe: AttackObjective,
    searched: _Searched | None,
    images: torch.Tensor,
    already: torch.Tensor,
    active: torch.Tensor,
) -> dict:
    """Each image's nearest adversarial over its problems (the first of equals; none where
    `searched` is None: every image was adversarial already), rechecked with a fresh forward
    pass of every image of the chunk at once; the chunk's result fields."""
    N = images.shape[0]
    best_x, best_sq = images.clone(), torch.where(already, 0.0, float("inf")).to(images.dtype)
    c = torch.full_like(best_sq, float("nan"))
    nit_image = torch.zeros(N, dtype=torch.long, device=images.device)
    nfev_image = torch.ones(N, dtype=torch.long, device=images.device)  # the clean image's evaluation
    if searched is not None:
        obj, image, cs, nit, nfev, _ = searched
        P = image.numel()
        problem = torch.arange(P, device=images.device)
        nearest = torch.full_like(obj.best_sq[: active.numel()], float("inf")).scatter_reduce_(
            0, image, obj.best_sq, "amin"
        )
        pick = torch.full_like(active, P).scatter_reduce_(
            0, image, torch.where(obj.best_sq == nearest[image], problem, P), "amin"
        )
        best_x[active], best_sq[active] = obj.best_x[pick], obj.best_sq[pick]
        c[active] = torch.where(cs.c_ok[pick] > 0, cs.c_ok[pick], float("nan"))
        nit_image[active] = torch.zeros_like(active).index_add_(0, image, nit)
        nfev_image[active] += torch.zeros_like(active).index_add_(0, image, nfev)
    with torch.no_grad():
        logits = probe.logits(best_x)
    verified = probe.margin_and_loss(logits, torch.arange(N, device=images.device))[0]
    success = torch.isfinite(best_sq) & verified
    adversarial = torch.where(success[:, None], best_x, images)
    r = adversarial - images
    failed = torch.full_like(best_sq, float("nan"))
    shape = probe.shape
    return dict(
        adversarial=adversarial.reshape(N, *shape),
        perturbation=r.reshape(N, *shape),
        l2=torch.where(success, r.norm(dim=1), failed),
        distortion=torch.where(success, distortion(r), failed),
        success=success,
        already_adversarial=already,
        c=c,
        nit=nit_image,
        nfev=nfev_image + 1,
        predicted=logits.argmax(dim=1),
    )

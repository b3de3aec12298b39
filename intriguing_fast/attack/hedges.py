"""Which class an untargeted attack goes to: its own untargeted search, hedged by targeted ones.

An untargeted solve heads for the class its loss favours from the image, which was the nearest
boundary for 61-86% of the images of the MNIST models of bench/ (a targeted attack at every
class, 9 per image, told which was nearest); the c search then refines that class, never
another. So each image of an untargeted attack has `hedges` more problems, waiting until its
untargeted problem's first solve ends near class A: then they attack, targeted, the classes the
model ranks highest on the clean image after its label and A, starting at the c the untargeted
problem found its adversarial at (the larger c that failed it would most likely fail them too).
Each problem of the image is scored by its nearest adversarial at the end of its first solve
that found one (or of its third, if none did): their c searches start alike, so the scores
compare. A hedge whose first solve fails where the untargeted problem succeeded is farther and
scored then, as having none. Once all are scored the nearest goes on with its c search and the
others stop.
"""

from __future__ import annotations

import torch

from .objective import class_mask

# The solves a problem makes, at most, before it is scored: from the first c, twice down 10x.
FIRST_SOLVES = 3
# A hedge's solves before its score stop at this multiple of the early solves' ftol (attack/search.py):
# they only rank its class. On bench/attackbench.py's subjects (100 images, untargeted, hedges starting
# at their untargeted problem's c) 1, 3 and 10 gave a mean L2 of 1.4451, 1.4459 and 1.4480 for 151,
# 144 and 137 evaluations per image on the SmallCNN, 2.1823, 2.1831 and 2.2069 for 171, 160 and 150
# on its L2-PGD twin: at 10 the twin's hedges stopped short of their class's boundary.
HEDGE_FTOL_FACTOR = 3.0


class Hedges:
    """The problems of M images' untargeted attacks (an image with restarts counts once per c
    search, attack/chunk.py): problem i < M is image i's untargeted one, problem i + M h its h-th
    hedge (h = 1..hedges). `clean_logits` [M, classes], `labels` [M]."""

    def __init__(self, clean_logits: torch.Tensor, labels: torch.Tensor, hedges: int, kappa: float) -> None:
        self.M, self.hedges, self.kappa = labels.shape[0], hedges, kappa
        self.clean_logits, self.labels = clean_logits, labels
        P = self.M * (1 + hedges)
        self.score = torch.full((P,), float("inf"), dtype=clean_logits.dtype, device=labels.device)
        self.scored = torch.zeros(P, dtype=torch.bool, device=labels.device)
        self.decided = torch.zeros(self.M, dtype=torch.bool, device=labels.device)

    @property
    def problems(self) -> int:
        return self.M * (1 + self.hedges)

    def image(self, problems: torch.Tensor) -> torch.Tensor:
        return problems % self.M

    def targeted(self) -> torch.Tensor:
        """[P] bool: the hedges are targeted, the first M problems are not."""
        return torch.arange(self.problems, device=self.labels.device) >= self.M

    def classes(self, found: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For untargeted problems `rows` whose first solve ended nearest class `found`: the problems
        that now attack a class, targeted (`rows` themselves at `found`, then their hedges at the
        classes ranked highest after the label and `found`), those classes and their margins on the
        clean image (own logit - best other - kappa)."""
        logits = self.clean_logits[rows]
        excluded = torch.zeros_like(logits, dtype=torch.bool)
        excluded.scatter_(1, self.labels[rows, None], True).scatter_(1, found[:, None], True)
        ranked = logits.masked_fill(excluded, -float("inf")).argsort(dim=1, descending=True)[:, : self.hedges]
        problems = rows[:, None] + self.M * torch.arange(self.hedges + 1, device=rows.device)
        classes = torch.cat([found[:, None], ranked], dim=1).reshape(-1)
        onehot = class_mask(classes, logits.shape[1])
        flat = logits[:, None].expand(-1, self.hedges + 1, -1).reshape(-1, logits.shape[1])
        own = flat.gather(1, classes[:, None]).squeeze(1)
        margin = own - flat.masked_fill(onehot, -float("inf")).amax(dim=1) - self.kappa
        return problems.reshape(-1), classes, margin

    def decide(self, now: torch.Tensor, score: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The problems `now` ([P] bool) are scored now by `score` [P] (a best ||r||^2, inf if none).
        For each image whose problems now all have a score the nearest goes on (the untargeted one
        on a tie). Returns [P] bool masks (the winners, the losers)."""
        self.score.copy_(torch.where(now, score, self.score))
        self.scored |= now
        ready = self.scored.view(1 + self.hedges, self.M).all(dim=0) & ~self.decided
        self.decided |= ready
        winner = self.score.view(1 + self.hedges, self.M).argmin(dim=0)  # the first of equals
        won = torch.arange(1 + self.hedges, device=now.device)[:, None] == winner[None, :]
        return (won & ready).reshape(-1), (~won & ready).reshape(-1)

    def waiting(self) -> torch.Tensor:
        """[P] bool: the problems that have their score but wait for their image's choice."""
        return self.scored & ~self.decided.repeat(1 + self.hedges)

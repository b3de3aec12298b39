"""Per-image search for the largest penalty weight c whose minimiser succeeds.

A larger c gives a smaller perturbation, so each image keeps a bracket: c_ok, the largest
c that succeeded (0 if none yet), and c_fail, the smallest c that failed (inf if none yet).
All updates are tensor ops over the whole batch: no per-image host round trips.

Conventions:
  "ours": start at c = 1 / temperature. Until some c fails, the next c is a secant step in 1 / c
      from the clean image (1 / c = 0: r = 0, its margin known before any solve) through the
      last success, kept within x1.5 to x10 of that c (a first c that fails: c / 10). Once
      bracketed, regula falsi in log c: where the line through the margins of the bracket's two
      ends crosses 0 (the margin of a solve's minimiser, a smooth function of c, is 0 at the
      critical c), kept within the middle half of the bracket. Against bisection it reaches the
      same distortion in fewer solves, and nearer c values make shorter warm-started solves;
      the secant step takes fewer evaluations than x10 at the same distortion
      (BENCHMARKS.md).
  "cleverhans": the cleverhans/advertorch search, whose constant multiplies the loss
      (const = 1/c): const starts at 1e-2 (c = 100), x10 (c / 10) until the first success,
      then bisects const arithmetically (a harmonic mean in c); a success before any
      failure halves const (c x 2).
"""

from __future__ import annotations

import torch

SEARCHES = ("ours", "cleverhans")
DEFAULT_STEPS = {"ours": 7, "cleverhans": 9}
# The cleverhans convention is the literal objective (T = 1) for comparability; see lbfgs_attack.
DEFAULT_TEMPERATURE = {"ours": 0.1, "cleverhans": 1.0}
# With our search and no temperature given, each problem's solves run at T = 1 until one finds an
# adversarial, and at the default 0.1 from then on: the softmax at T = 1 weighs every class, and
# its smoother loss led the first solves nearer (to the nearest class, untargeted; to a nearer
# region of the target's, targeted) on the ReLU networks of bench/attackbench.py (BENCHMARKS.md).
EXPLORE_TEMPERATURE = 1.0

# With `pull_back`, the solve after this many of a problem's c search starts between its image and
# its best adversarial rather than at the adversarial (chunk.py). On the SmallCNN of
# bench/attackbench.py (100 images, random targets, pull_back 0.5, 7 steps) after 3, 5 and 6 gave a
# mean L2 of 2.1365, 2.1408 and 2.1434 (with 5 steps: after 2, 2.1491; after 3, 2.1389); on its
# L2-PGD twin 3.0936, 3.0896 and 3.0922.
PULL_BACK_AFTER = 3
# The fraction of the way back that solve starts at by default (`AttackOptions.pull_back` None). On the
# ReLU networks of bench/attackbench.py it lowered the mean L2 by 0.3-0.8% for 15-30% more evaluations
# (pull_back 0.3 and 0.7 gave about the same); on the smooth sigmoid MLP it moves little.
DEFAULT_PULL_BACK = 0.5
# With the pull back, the solves before the pulled-back one stop at this relative decrease per
# iteration (`AttackOptions.early_ftol` None) instead of the engine's ftol: they bracket c and lead
# the search near the boundary, and the pulled-back solve approaches it again at the full tolerance.
# On bench/attackbench.py's SmallCNN (100 images, random targets) it gave a mean L2 of 2.1801 for
# 125 evaluations per image against 2.1751 for 153, on its ReLU MLP 1.2063 for 92 against 1.2059
# for 106, on its L2-PGD twin 3.0901 for 127 against 3.0815 for 158; 1e-3 for every solve took 99
# on the SmallCNN for 2.1848, and 102 on the twin for 3.1068 (docs/attack.md).
EARLY_FTOL = 1e-3

# The margin of the penalty's minimiser grows with 1 / c and flattens (the loss saturates), so the
# secant from the clean image lands short of the critical c: a success that says little (its
# margin near 0) still moves c by 1.5x, and no step exceeds the x10 of a search without it.
SECANT_FACTORS = (1.5, 10.0)


def default_c(convention: str, temperature: float) -> float:
    return 1.0 / temperature if convention == "ours" else 100.0


class CSearch:
    """The brackets of n problems' searches; `clean_margin` [n]: each one's margin with r = 0
    (negative: not yet adversarial), the dtype and device of c; `c_init`: the first c, shared or
    per problem ([n])."""

    def __init__(self, clean_margin: torch.Tensor, convention: str, c_init: float | torch.Tensor) -> None:
        self.convention = convention
        self.clean_margin = clean_margin
        self.c = torch.zeros_like(clean_margin).add_(c_init)
        self.c_ok = torch.zeros_like(self.c)
        self.c_fail = torch.full_like(self.c, float("inf"))
        self.m_ok = torch.zeros_like(self.c)  # the margins of the solves at c_ok and c_fail
        self.m_fail = torch.zeros_like(self.c)

    def update(self, success: torch.Tensor, margin: torch.Tensor, only: torch.Tensor | None = None) -> None:
        """Fold in whether the minimiser at the current c succeeded, and its margin [n] each, for
        every problem or for those `only` marks ([n] bool: the others keep their c and bracket);
        pick their next c. Masks, not a selection: no host synchronisation."""
        c, c_ok, c_fail = self.c, self.c_ok, self.c_fail
        raised, lowered = success & (c > c_ok), ~success & (c < c_fail)
        if only is not None:
            raised, lowered = raised & only, lowered & only
        m_ok = torch.where(raised, margin.to(c.dtype), self.m_ok)
        m_fail = torch.where(lowered, margin.to(c.dtype), self.m_fail)
        c_ok = torch.where(raised, c, c_ok)
        c_fail = torch.where(lowered, c, c_fail)
        no_fail, no_ok = torch.isinf(c_fail), c_ok == 0
        if self.convention == "ours":
            # Where the margins' line crosses 0, as a fraction of the bracket in log c, kept in [1/4, 3/4].
            crossing = (m_ok / (m_ok - m_fail)).nan_to_num(0.5).clamp(0.25, 0.75)
            log_ok, log_fail = c_ok.clamp_min(torch.finfo(c.dtype).tiny).log(), c_fail.log()
            inside = torch.exp(log_ok + crossing * (log_fail - log_ok))
            # The line through (1 / c_ok, m_ok) and (0, clean margin) crosses 0 at c_ok times this factor.
            clean = self.clean_margin
            factor = ((m_ok - clean) / -clean).nan_to_num(SECANT_FACTORS[1]).clamp(*SECANT_FACTORS)
            c = torch.where(no_fail, c_ok * factor, torch.where(no_ok, c / 10, inside))
        else:
            inside = 2.0 / (1.0 / c_fail + 1.0 / c_ok.clamp_min(torch.finfo(c.dtype).tiny))
            c = torch.where(no_fail, c * 2, torch.where(no_ok, c / 10, inside))
        if only is not None:
            c = torch.where(only, c, self.c)
        for field, value in (("c", c), ("c_ok", c_ok), ("c_fail", c_fail), ("m_ok", m_ok), ("m_fail", m_fail)):
            getattr(self, field).copy_(value)

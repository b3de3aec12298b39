"""Per-image search for the largest penalty weight c whose minimiser succeeds.

A larger c gives a smaller perturbation, so each image keeps a bracket: c_ok, the largest
c that succeeded (0 if none yet), and c_fail, the smallest c that failed (inf if none yet).
All updates are tensor ops over the whole batch: no per-image host round trips.

Conventions:
  "ours": start at c = 1 / temperature; x10 until the bracket closes, then bisect in log c.
  "cleverhans": the cleverhans/advertorch search, whose constant multiplies the loss
      (const = 1/c): const starts at 1e-2 (c = 100), x10 (c / 10) until the first success,
      then bisects const arithmetically (a harmonic mean in c); a success before any
      failure halves const (c x 2).
"""
from __future__ import annotations

import torch

SEARCHES = ("ours", "cleverhans")
DEFAULT_STEPS = {"ours": 8, "cleverhans": 9}
# The cleverhans convention is the literal objective (T = 1) for comparability; see lbfgs_attack.
DEFAULT_TEMPERATURE = {"ours": 0.1, "cleverhans": 1.0}


def default_c(convention: str, temperature: float) -> float:
    return 1.0 / temperature if convention == "ours" else 100.0


class CSearch:
    def __init__(self, n: int, convention: str, c_init: float, dtype: torch.dtype, device: torch.device) -> None:
        self.convention = convention
        self.c = torch.full((n,), float(c_init), dtype=dtype, device=device)
        self.c_ok = torch.zeros_like(self.c)
        self.c_fail = torch.full_like(self.c, float("inf"))

    def update(self, success: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Fold in whether the minimiser at the current c succeeded, for every image or for
        the images `rows` (success has one entry per row); pick their next c."""
        at = slice(None) if rows is None else rows
        c, c_ok, c_fail = self.c[at], self.c_ok[at], self.c_fail[at]
        c_ok = torch.where(success, torch.maximum(c_ok, c), c_ok)
        c_fail = torch.where(success, c_fail, torch.minimum(c_fail, c))
        no_fail, no_ok = torch.isinf(c_fail), c_ok == 0
        if self.convention == "ours":
            inside = (c_ok * c_fail).sqrt()
            c = torch.where(no_fail, c * 10, torch.where(no_ok, c / 10, inside))
        else:
            inside = 2.0 / (1.0 / c_fail + 1.0 / c_ok.clamp_min(torch.finfo(c.dtype).tiny))
            c = torch.where(no_fail, c * 2, torch.where(no_ok, c / 10, inside))
        self.c[at], self.c_ok[at], self.c_fail[at] = c, c_ok, c_fail

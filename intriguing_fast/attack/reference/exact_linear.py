"""The exact minimal targeted perturbation of a linear classifier over the box [0, 1]^n: a convex
QP, solved through its dual and certified by a closed duality gap. The attack's independent
reference on linear models (tests/test_attack_qp.py, bench/temperature.py)."""

from __future__ import annotations

import numpy as np
import scipy.optimize


class NotCertifiedError(RuntimeError):
    """The dual solution did not give a feasible primal point with a closed duality gap."""


def minimal_distortion(W: np.ndarray, b: np.ndarray, x: np.ndarray, target: int) -> float:
    """The paper's distortion sqrt(||r||^2 / n) of the smallest r with x + r in [0, 1]^n
    classified as `target` by the logits W (x + r) + b (ties count as success)."""
    return float(np.sqrt(minimal_perturbation_sq(W, b, x, target) / x.shape[0]))


def minimal_perturbation_sq(W: np.ndarray, b: np.ndarray, x: np.ndarray, target: int) -> float:
    """min ||r||^2 s.t. (w_l - w_j).(x + r) + b_l - b_j >= 0 for all j != l, 0 <= x + r <= 1.

    The dual over lambda >= 0 (one multiplier per other class) is smooth and concave:
    r(lambda) = clip(D' lambda / 2, -x, 1 - x), g = ||r||^2 - lambda.(D r + e). It is maximised
    with scipy's L-BFGS-B, and the primal point it gives must be feasible and close the
    duality gap, which certifies the optimum.
    """
    others = [j for j in range(W.shape[0]) if j != target]
    D = W[target] - W[others]
    e = D @ x + b[target] - b[others]

    def r_of(lam: np.ndarray) -> np.ndarray:
        return np.clip(D.T @ lam / 2.0, -x, 1.0 - x)

    def neg_dual(lam: np.ndarray) -> tuple[float, np.ndarray]:
        r = r_of(lam)
        slack = D @ r + e
        return -(r @ r - lam @ slack), slack

    lam, neg_g, _ = scipy.optimize.fmin_l_bfgs_b(
        neg_dual, np.zeros(len(others)), bounds=[(0, None)] * len(others), m=20, factr=10.0, pgtol=1e-12, maxiter=10000
    )
    r = r_of(lam)
    if (D @ r + e).min() < -1e-6 * np.abs(e).max():
        raise NotCertifiedError("the dual solution is not primal feasible")
    if r @ r - (-neg_g) > 1e-6 * (r @ r):
        raise NotCertifiedError("the duality gap did not close")
    return -neg_g  # a lower bound on the optimum, equal to it up to the gap checked above

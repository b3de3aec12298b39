"""Cache keys carry the attack's algorithm version: the results of a fixed case are recorded here
for the current ALGORITHM_VERSION, so a change to the arithmetic that moves them fails until the
version is bumped (and with it every cached result keyed by it is recomputed); a cosmetic change
to the options' repr leaves the keys alone."""

import pytest
import torch
from test_attack import one_thread  # noqa: F401  (autouse fixture)

from intriguing_fast.attack import LBFGSAttack, attack_engine, lbfgs_attack
from intriguing_fast.attack import options as attack_options

# The results of `fixed_case()` for each algorithm version (distortions to 1e-6, evaluations
# and iterations exactly): on a bump, add the new version's line; the old ones stay as history.
# 2: the walk's projection by Newton's steps, its root search only where the projection fails;
# from 2 the case walks one step (1 had no walk). 3: a hedge starts at the c its untargeted problem
# found an adversarial at, and its solves before its score stop at 3x the early solves' ftol. 4: a hedge
# that fails at that c is scored then (and loses); its hedge finds one there, so the case does not move.
RECORDED = {
    1: {
        "random": {
            "nfev": [67, 61, 90, 101],
            "nit": [38, 30, 62, 73],
            "success": [True] * 4,
            "distortion": [0.063966, 0.005312, 0.153287, 0.247081],
        },
        "untargeted": {
            "nfev": [92, 73, 87, 90],
            "nit": [57, 38, 50, 55],
            "success": [True] * 4,
            "distortion": [0.063959, 0.005312, 0.050853, 0.084064],
        },
    },
    2: {
        "random": {
            "nfev": [81, 65, 104, 115],
            "nit": [38, 30, 62, 73],
            "success": [True] * 4,
            "distortion": [0.06396, 0.005267, 0.152571, 0.24076],
        },
        "untargeted": {
            "nfev": [101, 77, 91, 104],
            "nit": [57, 38, 50, 55],
            "success": [True] * 4,
            "distortion": [0.063949, 0.005267, 0.045936, 0.084006],
        },
    },
    3: {
        "random": {
            "nfev": [81, 65, 104, 115],
            "nit": [38, 30, 62, 73],
            "success": [True] * 4,
            "distortion": [0.06396, 0.005267, 0.152571, 0.24076],
        },
        "untargeted": {
            "nfev": [100, 77, 102, 106],
            "nit": [58, 38, 56, 59],
            "success": [True] * 4,
            "distortion": [0.063949, 0.005267, 0.033428, 0.084006],
        },
    },
}
RECORDED[4] = RECORDED[3]  # the failing hedge's stop does not move the fixed case (its hedge finds one at that c)


def fixed_case() -> dict:
    """A float64 tanh MLP with seeded weights written as products and sums (no BLAS kernel whose
    rounding depends on the machine's), 4 seeded images, random targets and untargeted (one hedge, the default before 2), one restart."""
    torch.manual_seed(0)
    w1, b1 = torch.randn(16, 36, dtype=torch.float64) / 6, torch.randn(16, dtype=torch.float64) / 4
    w2, b2 = torch.randn(5, 16, dtype=torch.float64) / 4, torch.randn(5, dtype=torch.float64) / 4

    class Net(torch.nn.Module):
        def forward(self, x):
            h = torch.tanh((x.flatten(1)[:, None, :] * w1).sum(-1) + b1)
            return (h[:, None, :] * w2).sum(-1) + b2

    images = torch.rand(4, 1, 6, 6, dtype=torch.float64)
    out = {}
    for mode in ("random", "untargeted"):
        res = lbfgs_attack(Net(), images, mode, seed=1, restarts=1, walk_steps=1, pull_back=0.0, hedges=1)
        out[mode] = {
            "nfev": res.nfev.tolist(),
            "nit": res.nit.tolist(),
            "success": res.success.tolist(),
            "distortion": [round(float(d), 6) for d in res.distortion],
        }
    return out


def test_the_fixed_case_gives_what_this_algorithm_version_recorded():
    version = attack_options.ALGORITHM_VERSION
    got = fixed_case()
    assert version in RECORDED, f"record the results of ALGORITHM_VERSION {version} here: {got}"
    assert got == RECORDED[version], (
        f"the attack's results moved without a version bump: if its arithmetic changed on purpose, raise "
        f"ALGORITHM_VERSION in intriguing_fast/attack/options.py to {version + 1} and record {got}"
    )


def test_the_key_holds_the_version_and_every_option_not_the_repr(monkeypatch):
    attack = LBFGSAttack(restarts=1, engine=attack_engine(max_iter=50, history_dtype=torch.bfloat16))
    key = attack.key()
    assert key["algorithm"] == attack_options.ALGORITHM_VERSION and key["restarts"] == 1
    assert key["engine"]["max_iter"] == 50 and key["engine"]["history_dtype"] == "torch.bfloat16"
    monkeypatch.setattr(LBFGSAttack, "__repr__", lambda self: "LBFGSAttack(looks changed)")
    assert attack.key() == key
    assert LBFGSAttack(restarts=2, engine=attack.engine).key() != key
    monkeypatch.setattr(attack_options, "ALGORITHM_VERSION", attack_options.ALGORITHM_VERSION + 1)
    assert attack.key() == {**key, "algorithm": key["algorithm"] + 1}


@pytest.mark.parametrize("where", ["bulk", "reproduce"])
def test_a_version_bump_reaches_the_cache_keys(monkeypatch, tmp_path, where):
    from intriguing_fast import bulk_attack
    from intriguing_fast.experiments import SCALES
    from intriguing_fast.experiments.context import Run, RunConfig

    def key() -> dict:
        if where == "bulk":
            args = bulk_attack.build_parser().parse_args(["--model", "FC10(1e-4)", "--out", "x.pt"])
            return bulk_attack._config(args, torch.nn.Linear(2, 2), LBFGSAttack(), torch.device("cpu"))
        return Run(RunConfig(SCALES["tiny"], tmp_path)).settings()  # what every stage is keyed by

    before = key()
    monkeypatch.setattr(attack_options, "ALGORITHM_VERSION", attack_options.ALGORITHM_VERSION + 1)
    assert key()["attack"]["algorithm"] == before["attack"]["algorithm"] + 1

"""Robustness curves from minimal distances (issue 31): robust accuracy at every epsilon, the
curve's area and median, from an AttackResult or a bulk run's output, and the CLI's --curve."""

import json
import math

import pytest
import torch
from test_attack import one_thread, toy_data, toy_mlp  # noqa: F401  (one_thread: autouse fixture)

from intriguing_fast import bulk_attack as cli
from intriguing_fast import robust_accuracy, robustness_curve
from intriguing_fast.attack import LBFGSAttack, attack_engine, minimal_distances

# Five rows: two broken at L2 0.5 and 2.0, one already adversarial, one the attack failed on, one at 1.0.
OUTPUT = {
    "success": torch.tensor([True, True, True, False, True]),
    "l2": torch.tensor([0.5, 2.0, 0.0, float("nan"), 1.0]),
    "distortion": torch.tensor([0.5, 2.0, 0.0, float("nan"), 1.0]) / 28,
}


def test_robust_accuracy_counts_the_rows_beyond_each_epsilon():
    assert minimal_distances(OUTPUT).tolist() == [0.5, 2.0, 0.0, math.inf, 1.0]
    accuracy = robust_accuracy(OUTPUT, [0.0, 0.5, 0.99, 1.0, 3.0])
    assert accuracy.tolist() == [4 / 5, 3 / 5, 3 / 5, 2 / 5, 1 / 5]  # a failure stays robust; 0 never is
    assert robust_accuracy(OUTPUT, 1.5 / 28, measure="distortion").tolist() == [2 / 5]


def test_the_curve_area_is_the_exact_area_of_the_step_curve():
    curve = robustness_curve(OUTPUT)
    assert float(curve.epsilons[-1]) == 2.0 and curve.epsilons.numel() == 101 and float(curve.accuracy[0]) == 4 / 5
    # Each row contributes min(distance, 2) / 2: (0.25 + 1 + 0 + 1 + 0.5) / 5.
    assert curve.area == pytest.approx(2.75 / 5)
    fine = torch.linspace(0, 2, 200001, dtype=torch.float64)
    assert float(torch.trapezoid(robust_accuracy(OUTPUT, fine), fine)) / 2 == pytest.approx(curve.area, abs=1e-4)
    assert curve.median == 1.0
    table = curve.as_dict()
    assert table["area"] == curve.area and len(table["robust_accuracy"]) == 101 and table["measure"] == "l2"


def test_bad_epsilons_and_results_are_named():
    with pytest.raises(ValueError, match="epsilons: expected finite values >= 0"):
        robust_accuracy(OUTPUT, [-1.0])
    with pytest.raises(ValueError, match="epsilons: expected ascending values"):
        robustness_curve(OUTPUT, [1.0, 0.5])
    with pytest.raises(ValueError, match="points: expected an int >= 2, got 1"):
        robustness_curve(OUTPUT, points=1)
    with pytest.raises(ValueError, match="measure: expected one of"):
        robust_accuracy(OUTPUT, 1.0, measure="linf")
    with pytest.raises(TypeError, match="result: expected an AttackResult or a mapping"):
        robust_accuracy({"success": OUTPUT["success"]}, 1.0)


def test_the_curve_of_an_attack_result_follows_its_distances():
    images, labels = toy_data(12, seed=4)
    result = LBFGSAttack(steps=3, engine=attack_engine(30))(toy_mlp(), images, "untargeted", labels=labels)
    curve = robustness_curve(result)
    clean = float((~result.already_adversarial).double().mean())
    assert float(curve.accuracy[0]) == pytest.approx(clean)  # eps 0: the clean accuracy
    assert float(curve.accuracy[-1]) == pytest.approx(float((~result.success).double().mean()))
    assert (curve.accuracy.diff() <= 0).all()


def test_bulk_run_draws_its_curve_and_prints_area_and_median(tmp_path, capsys):
    model = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(toy_mlp()), model)
    images, labels = toy_data(6, seed=9)
    torch.save({"images": images, "labels": labels}, tmp_path / "data.pt")
    args = [
        "--model-file",
        str(model),
        "--trust-model-code",
        "--data",
        f"file:{tmp_path / 'data.pt'}",
        "--targets",
        "untargeted",
        "--steps",
        "3",
        "--out",
        str(tmp_path / "out.pt"),
    ]
    cli.main(args + ["--curve", str(tmp_path / "curve.png")])
    printed = capsys.readouterr().out
    assert "median L2" in printed and "robust-accuracy curve area" in printed
    table = json.loads((tmp_path / "curve.json").read_text())
    assert (tmp_path / "curve.png").stat().st_size > 0 and table["robust_accuracy"][0] <= 1.0
    # A finished run draws it again without recomputing, and --curve is not part of the run's identity.
    cli.main(args + ["--curve", str(tmp_path / "again.png")])
    assert json.loads((tmp_path / "again.json").read_text()) == table
    with pytest.raises(SystemExit):
        cli.main(args + ["--curve", str(tmp_path / "curve.svg")])
    assert "--curve" in capsys.readouterr().err

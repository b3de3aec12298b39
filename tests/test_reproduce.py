"""The whole reproduction pipeline at a tiny scale, offline, on learnable synthetic digits."""

import json

import pytest
import torch
from mnist_files import write_mnist

from intriguing_fast.experiments import RunConfig, Scale, run
from intriguing_fast.experiments.evaluation import amplify, distortion, gaussian_noise
from intriguing_fast.experiments.paper import TABLE1_MODELS as TABLE1
from intriguing_fast.experiments.paper import TABLE3_MODELS as TABLE3
from intriguing_fast.experiments.stats import Rate
from intriguing_fast.experiments.store import StageStore
from intriguing_fast.report import write_report
from intriguing_fast.reproduce import main
from intriguing_fast.storage import load_verified

TINY = Scale(
    "tiny", train_images=12, test_images=12, minibatch_epochs=40, data_subset=None, attack_max_iter=40, min_steps=400
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    write_mnist(root / "mnist", n_train=600, n_test=120, learnable=True)
    cfg = RunConfig(
        scale=TINY,
        out=root / "out",
        data_dir=root / "mnist",
        model_cache=root / "models",
        progress=False,
        verify_data=False,
    )
    results = run(cfg)
    report = write_report(results, cfg.out)
    return cfg, results, report


def rate(d):
    return Rate(d["errors"], d["total"])


def test_report_structure(tiny_run):
    cfg, results, report = tiny_run
    text = report.read_text()
    for heading in (
        "## Table 1",
        "## Table 2",
        "## Table 3",
        "## Table 4",
        "## Section 3",
        "## Table 5",
        "## Section 4.2",
        "## Findings",
        "## Run",
    ):
        assert heading in text
    for name in TABLE1 + TABLE3:
        assert name in text
    for fig in ("adversarial_grid.png", "distortions.png", "table2_transfer.png", "table4_transfer.png"):
        assert (cfg.out / "figures" / fig).stat().st_size > 1000
        assert f"figures/{fig}" in text
    stored = json.loads((cfg.out / "results.json").read_text())
    assert stored["meta"]["data_source"].startswith("mnist-idx:")
    assert stored["meta"]["scale"] == "tiny" and set(stored) >= {"table1", "table2", "table3", "table4"}


def test_numbers_are_consistent(tiny_run):
    cfg, results, _ = tiny_run
    store = StageStore(cfg.out / "stages")
    for table, models, where in (("table1", TABLE1, "train"), ("table3", TABLE3, "test")):
        for name in models:
            row = results[table][name]
            stored = load_verified(store.path(f"attack/{name}/{where}"))["value"]
            success = stored["success"]
            assert row["attacked"] == success.numel() == len(row["distortions"])
            d = torch.tensor(row["distortions"], dtype=torch.float64)
            torch.testing.assert_close(d, stored["distortion"].double(), equal_nan=True)
            assert row["distortion"] == pytest.approx(float(d[success].mean()))
    for table in ("table2", "table4"):
        rows = results[table]["rows"]
        for name in results[table]["columns"]:
            own = rows[name]["errors"][name]
            src = results["table1" if table == "table2" else "table3"][name]
            if rate(src["success"]).percent == 100.0:
                # every attack succeeded and was targeted at another class than the label
                assert rate(own).percent == 100.0
                # the row's distortion is recomputed from the stored adversarials
                assert rows[name]["distortion"] == pytest.approx(src["distortion"], rel=1e-5)
    amplified = [r for r in results["table4"]["rows"].values() if r["kind"] == "amplified"]
    assert len(amplified) == 3


def test_tiny_models_learn_and_attacks_succeed(tiny_run):
    _, results, _ = tiny_run
    assert not any(row["training_failed"] for table in ("table1", "table3") for row in results[table].values())
    for name in ("FC10(1e-4)", "FC100-100-10"):
        assert rate(results["table1"][name]["test_error"]).percent < 20.0
        assert rate(results["table1"][name]["success"]).percent == 100.0


def test_rerun_resumes_from_stages(tiny_run):
    cfg, results, _ = tiny_run
    again = run(cfg)
    assert all(stage["cached"] for stage in again["meta"]["stages"])
    assert again["table2"] == results["table2"]


def test_cli_runs_selected_stages(tiny_run, monkeypatch, capsys):
    cfg, _, _ = tiny_run
    monkeypatch.setitem(__import__("intriguing_fast.experiments.scales", fromlist=["SCALES"]).SCALES, "tiny", TINY)
    path = main(
        [
            "--scale",
            "tiny",
            "--data-dir",
            str(cfg.data_dir),
            "--out",
            str(cfg.out / "cli"),
            "--only",
            "table3",
            "--model-cache",
            str(cfg.model_cache),
            "--no-progress",
            "--no-verify-mnist",
        ]
    )
    text = path.read_text()
    assert "## Table 3" in text and "## Table 1" not in text
    for only in ("table9", "", " , "):
        with pytest.raises(SystemExit):
            main(["--only", only])
        assert (
            "--only: expected one or more of table1,table2,table3,table4,probing,spectral,adversarial_training"
            in capsys.readouterr().err
        )
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            main(["--device", "cuda"])
        assert "--device cuda: no CUDA device" in capsys.readouterr().err


def test_controls():
    x = torch.rand(50, 1, 28, 28)
    noisy = gaussian_noise(x, 0.1, seed=0)
    assert float(distortion(x, noisy).mean()) == pytest.approx(0.1, rel=0.02)
    assert torch.equal(noisy, gaussian_noise(x, 0.1, seed=0))
    adv = (x + 0.01 * torch.randn(50, 1, 28, 28)).clamp(0, 1)
    adv[0] = x[0]
    adv[1] = (x[1] + 0.5 * torch.randn(1, 28, 28)).clamp(0, 1)  # already above the target: kept
    amp = amplify(x, adv, 0.1)
    d = distortion(x, amp)
    assert d[0] == 0 and torch.equal(amp[1], adv[1])
    assert (d[2:] <= 0.1 + 1e-6).all() and (d[2:] > 0.05).all()  # clipping can only lower it
    assert amp.min() >= 0 and amp.max() <= 1
    assert str(Rate(0, 10)) == "0.0% [0.0, 27.8]" and Rate(10, 10).interval[1] == pytest.approx(100.0)


def test_fresh_offline_machine_gets_a_report_on_the_embedded_subset(tmp_path, monkeypatch):
    """No MNIST anywhere and no network: command 1 still ends with a report, marked as on the subset."""
    import intriguing_fast.data.download as download_module
    import intriguing_fast.data.paths as paths_module

    monkeypatch.delenv(paths_module.MNIST_DIR_ENV, raising=False)
    monkeypatch.setenv("INTRIGUING_FAST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(paths_module, "_REPO_ROOT", tmp_path / "no-repo" / "checkout")
    monkeypatch.setattr(download_module, "MIRRORS", ("http://127.0.0.1:9/",))
    with pytest.warns(UserWarning, match="using the embedded MNIST subset"):
        path = main(["--scale", "tiny", "--out", str(tmp_path / "out"), "--only", "table3", "--no-progress"])
    text = path.read_text()
    assert "Computed on the MNIST subset embedded in the package" in text
    assert "## Table 3: models trained on disjoint halves P1 and P2 (on the embedded MNIST subset)" in text
    stored = json.loads((tmp_path / "out" / "results.json").read_text())
    assert (
        stored["meta"]["data_source"].startswith("embedded MNIST subset") and stored["meta"]["train_examples"] == 1200
    )

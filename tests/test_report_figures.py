"""The report's figures explain themselves: drawn from a small synthetic results dict shaped like
a real results.json, each is written, non-trivial, labelled, and embedded in REPORT.md."""

import math

import numpy as np
import pytest
import torch

from intriguing_fast.experiments.stats import Rate
from intriguing_fast.report import write_report
from intriguing_fast.report.comparison import (
    Compared,
    table_vs_paper,
    transfer_vs_paper,
)
from intriguing_fast.report.figures import (
    adversarial_grid,
    distortion_histograms,
    magnification,
    transfer_heatmap,
)
from intriguing_fast.report.sections import transfer_cells

FIGURES = {
    "adversarial_grid.png",
    "distortions.png",
    "table1_vs_paper.png",
    "table2_transfer.png",
    "table2_vs_paper.png",
    "table3_vs_paper.png",
    "table4_transfer.png",
    "table4_vs_paper.png",
}


def rate(errors, total=200):
    return Rate(errors, total).as_dict()


def model_row(seed, errors, paper_columns):
    distortions = np.random.default_rng(seed).gamma(4.0, 0.015, 200)
    distortions[0] = np.nan  # a failed attack
    return {
        **{c: rate(errors + i) for i, c in enumerate(paper_columns)},
        "attacked": 200,
        "success": rate(199),
        "distortion": float(np.nanmean(distortions)),
        "distortion_std": float(np.nanstd(distortions)),
        "distortions": distortions.tolist(),
        "paper": {**{c: 1.5 + i for i, c in enumerate(paper_columns)}, "distortion": 0.06},
    }


def transfer(models, amplified=False):
    rows = {
        m: {
            "kind": "adversarial",
            "distortion": 0.06,
            "errors": {c: rate(200 if c == m else 40 + 20 * j) for j, c in enumerate(models)},
            "paper": {"errors": {c: 100 if c == m else 10.0 + j for j, c in enumerate(models)}, "distortion": 0.06},
        }
        for m in models
    }
    rows["Gaussian noise, stddev=0.1"] = {
        "kind": "noise",
        "distortion": 0.1,
        "errors": {c: rate(9) for c in models},
        "paper": {"errors": {c: 3.0 for c in models}, "distortion": 0.1},
    }
    if amplified:
        rows[f"{models[0]} amplified to stddev 0.1"] = {
            "kind": "amplified",
            "distortion": 0.1,
            "errors": {c: rate(150) for c in models},
            "paper": {"errors": {c: 60.0 for c in models}, "distortion": 0.1},
        }
    return {"columns": list(models), "rows": rows}


def examples(models, with_classes):
    gen = torch.Generator().manual_seed(0)
    out = {}
    for m in models:
        original = torch.rand(4, 784, generator=gen)
        adversarial = (original + 0.03 * torch.randn(4, 784, generator=gen)).clamp(0, 1)
        out[m] = {"original": original, "adversarial": adversarial}
        if with_classes:
            out[m].update(
                labels=torch.tensor([7, 2, 1, 0]),
                targets=torch.tensor([3, 9, 4, 7]),
                predicted=torch.tensor([3, 9, 4, 7]),
            )
    return out


@pytest.fixture
def results():
    t1, t3 = ["FC10(1e-4)", "FC100-100-10"], ["FC100-100-10 (P1)", "FC100-100-10' (P2)"]
    sections = {
        "table1": ("Table 1: models", "distortion_table"),
        "table2": ("Table 2: transfer", "transfer_table"),
        "table3": ("Table 3: halves", "distortion_table"),
        "table4": ("Table 4: transfer", "transfer_table"),
    }
    meta = {
        "scale": "tiny",
        "seed": 0,
        "device": "cpu",
        "data_source": "synthetic",
        "train_examples": 600,
        "test_examples": 120,
        "wall_s": 1.0,
        "versions": {"python": "3"},
        "stages": [],
        "sections": {k: {"title": t, "section": s} for k, (t, s) in sections.items()},
    }
    return {
        "meta": meta,
        "table1": {m: model_row(i, 10 + i, ["train_error", "test_error"]) for i, m in enumerate(t1)},
        "table2": transfer(t1),
        "table3": {m: model_row(i, 5, ["P1_error", "P2_error", "test_error"]) for i, m in enumerate(t3)},
        "table4": transfer(t3, amplified=True),
        "examples": {**examples(t1, True), **examples(t3, False)},
    }


def test_report_embeds_every_figure_under_its_table(results, tmp_path):
    text = write_report(results, tmp_path).read_text()
    assert {p.name for p in (tmp_path / "figures").iterdir()} == FIGURES
    for name in FIGURES:
        assert (tmp_path / "figures" / name).stat().st_size > 5000
        assert f"(figures/{name})" in text
    for table in ("table1", "table2", "table3", "table4"):  # each comparison follows its own table
        number = table[-1]
        assert text.index(f"## Table {number}") < text.index(f"figures/{table}_vs_paper.png")
        assert number == "4" or text.index(f"figures/{table}_vs_paper.png") < text.index(f"## Table {int(number) + 1}")


def test_transfer_heatmap_names_its_axes_and_keeps_the_colour_bar_label(tmp_path):
    fig = transfer_heatmap(
        np.array([[100.0, 20.0], [5.0, 100.0]]),
        ["A", "B amplified to stddev 0.1"],
        ["A", "B"],
        tmp_path / "t.png",
        "Table 4",
    )
    ax, bar = fig.axes
    assert "examples made for (rows)" in ax.get_ylabel() and "evaluated on (columns)" in ax.get_xlabel()
    assert "error rate" in bar.get_ylabel()
    fig.draw_without_rendering()
    label = bar.yaxis.label.get_window_extent()
    assert fig.bbox.x0 <= label.x0 and label.x1 <= fig.bbox.x1  # inside the figure: not clipped
    assert (tmp_path / "t.png").stat().st_size > 5000


def test_distortion_histograms_one_panel_per_model_with_both_means(tmp_path):
    values = {"A": np.array([0.02, 0.05, np.nan, 0.04]), "B": np.array([0.1, 0.12, 0.08]), "C": np.array([0.06, 0.07])}
    fig = distortion_histograms(values, {"A": 0.062, "B": None, "C": 0.058}, tmp_path / "d.png")
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["A", "B", "C"]
    lines = {ax.get_title(): [line.get_xdata()[0] for line in ax.lines] for ax in shown}
    assert lines["A"] == pytest.approx([np.nanmean(values["A"]), 0.062]) and len(lines["B"]) == 1
    assert {t.get_text() for t in shown[0].get_legend().get_texts()} == {"our mean", "paper's mean"}
    assert "distortion" in fig.get_supxlabel() and "one panel per model" in fig.get_suptitle()
    assert (tmp_path / "d.png").stat().st_size > 5000


@pytest.mark.parametrize("with_classes", [True, False])
def test_adversarial_grid_captions_classes_and_magnification(tmp_path, with_classes):
    fig = adversarial_grid(examples(["A", "B"], with_classes), tmp_path / "g.png")
    band = fig.subfigs[0]
    assert "perturbation ×" in band.get_suptitle() and "mid-grey = 0" in band.get_suptitle()
    captions = [ax.get_xlabel() for ax in band.axes[:3]]
    assert captions[1].startswith("max |r| ")  # the perturbation's largest pixel change
    assert [captions[0], captions[2]] == (["true 7", "target 3, pred 3"] if with_classes else ["", ""])
    assert "original" in fig.get_suptitle() and "adversarial" in fig.get_suptitle()
    assert (tmp_path / "g.png").stat().st_size > 5000


@pytest.mark.parametrize(("peak", "factor"), [(0.05, 10), (0.3, 1), (0.02, 20), (0.2, 2), (0.0, 1), (0.9, 0.5)])
def test_magnification_is_round_and_never_clips(peak, factor):
    r = np.array([0.0, -peak, peak / 2])
    assert magnification(r) == pytest.approx(factor)
    assert np.all(np.abs(magnification(r) * r) <= 0.5 + 1e-12)


def test_compared_intervals():
    wilson = Compared.of_rate("x", Rate(3, 10), 20.0)
    assert (wilson.ours, (wilson.low, wilson.high)) == (30.0, Rate(3, 10).interval)
    mean = Compared.of_mean("y", np.array([0.1, 0.2, np.nan, 0.3]), 0.15)
    assert mean.ours == pytest.approx(0.2) and mean.low < 0.2 < mean.high
    assert math.isnan(Compared.of_mean("z", np.array([np.nan]), None).ours)


def test_transfer_cells_leave_out_own_model_cells(results):
    cells = transfer_cells(results["table4"]["rows"], results["table4"]["columns"])
    labels = [c.label for c in cells]
    assert "FC100-100-10 (P1) → FC100-100-10 (P1)" not in labels
    assert labels.count("FC100-100-10 (P1) → FC100-100-10' (P2)") == 2  # the examples, and amplified
    assert {c.group for c in cells} == {"adversarial", "noise", "amplified"}


def test_versus_paper_figures_name_axes_and_points(results, tmp_path):
    cells = transfer_cells(results["table2"]["rows"], results["table2"]["columns"])
    fig = transfer_vs_paper(cells, tmp_path / "v.png", "Table 2", labelled=2)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("paper:") and ax.get_ylabel().startswith("ours:") and "95%" in ax.get_ylabel()
    assert "y = x" in ax.get_legend().get_texts()[0].get_text()
    assert len(ax.texts) == 2 and "ours against the paper" in ax.get_title()
    errors = [Compared.of_rate("A", Rate(5, 100), 1.6), Compared.of_rate("B", Rate(9, 100), None)]
    means = [Compared.of_mean("A", np.array([0.05, 0.07]), 0.06)]
    fig = table_vs_paper(errors, means, tmp_path / "t.png", "Table 1")
    left, right = fig.axes
    assert "test error" in left.get_xlabel() and "distortion" in right.get_ylabel()
    assert [t.get_text() for t in left.texts] == ["A"]  # a cell without the paper's value is left out
    assert (tmp_path / "t.png").stat().st_size > 5000 and (tmp_path / "v.png").stat().st_size > 5000


def test_a_model_whose_training_failed_is_marked_not_ranked(results, tmp_path):
    from intriguing_fast.report.sections import distortion_table

    rows = dict(results["table1"])
    failed = next(iter(rows))
    rows[failed] = {**rows[failed], "training_failed": True}
    text, findings = distortion_table("table1", "Table 1: models", rows, tmp_path)
    line = next(row for row in text.splitlines() if row.startswith(f"| {failed} |"))
    assert "**training failed**" in line and line.endswith("| n/a |")
    assert findings[0].startswith(f"{failed}: TRAINING FAILED") and "TRAINING FAILED" not in " ".join(findings[1:])


def test_every_kind_of_stage_has_a_renderer_and_every_stage_a_kind():
    """The report renders a stage by its kind: no kind without a renderer function, and the
    table's stages record kinds results.json can be read back with."""
    from intriguing_fast.experiments.stage import StageKind
    from intriguing_fast.experiments.table import STAGES
    from intriguing_fast.report.sections import SECTIONS

    assert set(SECTIONS) == set(StageKind) and all(callable(render) for render in SECTIONS.values())
    assert all(StageKind(stage.kind.value) is stage.kind for stage in STAGES)

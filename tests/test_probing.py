"""Unit probing (Section 3): a planted class unit is found with perfect coherence and a random
direction of pure noise is not; streaming top-k equals one pass; seeds fix everything; bad
inputs are named; the stage computes JSON and its renderer draws its figures."""

import json
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from intriguing_fast.analysis.probing import features, layer_width, probe, random_directions, unit_directions
from intriguing_fast.analysis.probing_stats import compare, majority_share, mean_pairwise_cosine
from intriguing_fast.data import MnistSplit
from intriguing_fast.experiments.probing_stage import SETTINGS
from intriguing_fast.experiments.probing_stage import unit_probing as compute
from intriguing_fast.experiments.stage import Stage, StageKind
from intriguing_fast.models.architectures import MLP, ConvNet
from intriguing_fast.report.probing_section import unit_probing as render

PLANTED = 3  # the class the planted unit responds to


class Planted(nn.Module):
    """Inputs [N, 20]: dims 0-9 carry the class (5 e_label), dims 10-19 are noise. `signal`'s
    unit 0 reads only dim PLANTED; `noise` reads only the noise dims."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.signal = nn.Linear(20, 6)
        self.noise = nn.Linear(20, 6)
        with torch.no_grad():
            self.signal.weight.copy_(torch.randn(6, 20, generator=gen))
            self.signal.weight[0] = 0.0
            self.signal.weight[0, PLANTED] = 1.0
            self.noise.weight.copy_(torch.randn(6, 20, generator=gen))
            self.noise.weight[:, :10] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.signal(x) + self.noise(x)


def planted_data(per_class: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(10).repeat_interleave(per_class)
    x = torch.randn(labels.numel(), 20, generator=gen)
    x[torch.arange(labels.numel()), labels] += 5.0
    return x, labels


def test_planted_unit_is_coherent_and_noise_direction_is_not():
    model, (x, labels) = Planted(), planted_data()
    batches = [(x[i : i + 64], labels[i : i + 64]) for i in range(0, len(x), 64)]
    unit = probe(model, "signal", batches, unit_directions(6, [0]), k=32)
    assert unit.labels.tolist() == labels[unit.indices].tolist()
    assert majority_share(unit.labels).item() == 1.0 and set(unit.labels[0].tolist()) == {PLANTED}
    noise = probe(model, "noise", batches, random_directions(6, 1, seed=0), k=32)
    assert majority_share(noise.labels).item() < 0.4
    assert mean_pairwise_cosine(unit.images(x), x.mean(0)) > mean_pairwise_cosine(noise.images(x), x.mean(0)) + 0.2


def test_streaming_top_k_equals_one_pass():
    model, (x, _) = Planted(), planted_data()
    dirs = torch.cat([unit_directions(6, range(6)), random_directions(6, 5, seed=2)])
    small = probe(model, "signal", x, dirs, k=10, batch_size=7)
    whole = probe(model, "signal", x, dirs, k=10, batch_size=len(x))
    assert torch.equal(small.indices, whole.indices) and torch.allclose(small.values, whole.values)
    expect = (features(model, "signal", x) @ dirs.T).topk(10, dim=0)
    assert torch.equal(whole.indices, expect.indices.T) and torch.allclose(whole.values, expect.values.T)
    assert torch.allclose(whole.mean, features(model, "signal", x).mean(0), atol=1e-6) and whole.count == len(x)


def test_a_seed_fixes_the_directions_and_the_result():
    a, b = random_directions(50, 8, seed=4), random_directions(50, 8, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, random_directions(50, 8, seed=5))
    assert torch.allclose(a.norm(dim=1), torch.ones(8))
    model, (x, _) = Planted(), planted_data()
    one, two = (probe(model, "noise", x, random_directions(6, 3, seed=9), k=5) for _ in range(2))
    assert torch.equal(one.indices, two.indices) and torch.equal(one.values, two.values)


class TupleOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pair = nn.LSTM(4, 3, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pair(x)[0]


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda m, x: probe(m, "nope", x, unit_directions(6, [0]), 2),
            "'nope' is not a module of the model; known layers: '', 'signal', 'noise'",
        ),
        (
            lambda m, x: probe(m, "signal", x, unit_directions(6, [0]), 401),
            "k: 401 is larger than the dataset (400 images)",
        ),
        (
            lambda m, x: probe(m, "signal", iter([x[:5]]), unit_directions(6, [0]), 6),
            "k: 6 is larger than the dataset (5 images)",
        ),
        (lambda m, x: probe(m, "signal", x, unit_directions(6, [0]), 0), "k: expected at least 1, got 0"),
        (lambda m, x: probe(m, "signal", x, torch.ones(2, 5), 2), "layer 'signal' has width 6, directions have 5"),
        (lambda m, x: probe(m, "signal", x, torch.ones(6), 2), "directions: expected a [D, width] matrix"),
        (
            lambda m, x: probe(m, "signal", [x[:3], (x[3:6], torch.zeros(3))], unit_directions(6, [0]), 2),
            "some batches carry labels",
        ),
        (
            lambda m, x: probe(m, "signal", ["bad"], unit_directions(6, [0]), 2),
            "expected batches that are tensors or (images, labels)",
        ),
        (lambda m, x: unit_directions(6, [6]), "units: expected indices in [0, 6), got [6]"),
        (
            lambda m, x: probe(m, "signal", x, unit_directions(6, [0]), 2).images(x[:10]),
            "expected the 400 images that were probed",
        ),
    ],
)
def test_bad_inputs_are_named(call, message):
    with pytest.raises(ValueError) as err:
        call(Planted(), planted_data()[0])
    assert message in str(err.value)


def test_a_layer_that_is_not_a_tensor_or_never_runs_is_named():
    with pytest.raises(ValueError, match="the output of 'pair' is a tuple, not a tensor"):
        layer_width(TupleOut(), "pair", torch.zeros(1, 2, 4))
    model = Planted()
    model.unused = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="'unused' was not called by the model's forward"):
        probe(model, "unused", planted_data()[0], unit_directions(2, [0]), 2)


def test_the_model_keeps_its_mode_and_conv_outputs_are_flattened():
    model = ConvNet().train()
    assert layer_width(model, "conv1", torch.zeros(1, 1, 28, 28)) == 16 * 24 * 24 and model.training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_model_on_the_gpu_gives_the_cpu_result():
    model, (x, _) = Planted(), planted_data()
    dirs = random_directions(6, 4, seed=1)
    cpu, gpu = probe(model, "signal", x, dirs, 8), probe(model.cuda(), "signal", x, dirs, 8)
    assert torch.equal(cpu.indices, gpu.indices) and gpu.values.device.type == "cpu"


def test_compare_signs_effect_and_seeds_the_interval():
    rng = np.random.default_rng(0)
    high, low = rng.normal(1.0, 0.3, 60), rng.normal(0.0, 0.3, 60)
    t = compare(high, low, seed=3)
    assert t.p < 1e-10 and t.rank_biserial > 0.9 and t.diff_ci95[0] > 0.5
    assert compare(high, low, seed=3) == t and compare(low, high).rank_biserial < -0.9
    assert compare(high, high).p == pytest.approx(1.0)


def fake_run(n: int = 160) -> SimpleNamespace:
    gen = torch.Generator().manual_seed(0)
    test = MnistSplit(torch.rand(n, 1, 28, 28, generator=gen), torch.arange(n) % 10, "synthetic", "test")
    torch.manual_seed(0)
    models = {"ConvNet": ConvNet().eval(), "FC100-100-10": MLP((784, 100, 100, 10)).eval()}
    return SimpleNamespace(splits={"test": test}, model=models.__getitem__, cfg=SimpleNamespace(seed=0, device="cpu"))


def test_the_stage_computes_json_and_the_renderer_draws_its_figures(tmp_path):
    settings = replace(SETTINGS, directions=12, ks=(8, 16))
    stage = Stage("probing", "Section 3", StageKind.UNIT_PROBING, ("ConvNet", "FC100-100-10"), None, compute, settings)
    result = json.loads(json.dumps(compute(fake_run(), stage), allow_nan=False))
    assert set(result["layers"]) == {
        "ConvNet/conv1",
        "ConvNet/conv2",
        "ConvNet/fc",
        "FC100-100-10/layers.0",
        "FC100-100-10/layers.1",
    }
    entry = result["layers"]["ConvNet/conv1"]["by_k"][0]
    assert len(entry["metrics"]["majority"]["units"]) + entry["excluded"]["units"] == 12
    fc = result["layers"]["ConvNet/fc"]  # 12 of its 100 units: the grid names them by their index in the layer
    assert set(result["grids"]["ConvNet/fc"]["units"]["directions"]) <= set(fc["units"]) and len(fc["units"]) == 12
    text, findings = render("probing", "Section 3: units and random directions", result, tmp_path)
    drawn = {p.name for p in tmp_path.iterdir()}
    assert drawn == {"probing_coherence.png", "probing_grid_ConvNet_fc.png", "probing_grid_FC100-100-10_layers.1.png"}
    assert all(f"figures/{name}" in text for name in drawn) and all((tmp_path / n).stat().st_size > 5000 for n in drawn)
    assert len(findings) == 6 and all("paper's claim" in line for line in findings[:5])
    assert "depend on k" in findings[-1]


def test_the_docs_snippet_runs(capsys):
    text = (Path(__file__).resolve().parents[1] / "docs" / "probing.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    exec(compile(snippet, "docs/probing.md", "exec"), {})
    assert 0.0 <= float(capsys.readouterr().out) <= 1.0

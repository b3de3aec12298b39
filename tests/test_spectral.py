"""Spectral bounds (Sec. 4.3, Table 5): the Fourier construction against power iteration, the
layer rules against measured gains, unsupported layers, AlexNet's layout, the stage and its section."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from intriguing_fast.analysis import (
    PowerIteration,
    conv_fourier_norm,
    conv_zero_padded_norm,
    fourier_size_for_zero_padding,
    largest_singular_value,
    layer_bounds,
    linear_map_norm,
    log_shares,
    measure_gains,
    network_bound,
)
from intriguing_fast.experiments import spectral_stage
from intriguing_fast.experiments.stage import Stage, StageKind
from intriguing_fast.models import MLP, AutoencoderClassifier, ConvNet
from intriguing_fast.models.alexnet import AlexNet, alexnet_paper, alexnet_torchvision, load_alexnet
from intriguing_fast.report.spectral_section import spectral_section

TIGHT = PowerIteration(rtol=1e-11, max_iter=20000)
TORCHVISION_KEYS = {
    f"{part}.{i}.{p}"
    for part, idx in (("features", (0, 3, 6, 8, 10)), ("classifier", (1, 4, 6)))
    for i in idx
    for p in ("weight", "bias")
}


def _weight(c_out: int, c_in: int, k: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(c_out, c_in, k, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize(
    "c_out,c_in,k,stride,n",
    [
        (4, 3, 3, 1, 8),
        (2, 5, 4, 1, 6),
        (5, 2, 4, 2, 8),
        (3, 3, 5, 2, 10),
        (6, 2, 3, 4, 12),
        (3, 1, 11, 4, 16),
    ],
)
def test_fourier_equals_power_iteration_on_circular_convolution(c_out, c_in, k, stride, n):
    """The periodic convolution (input padded circularly by k - 1 after the end, so outputs are the
    n / stride periodic ones): its power-iteration norm is the Fourier one."""
    w = _weight(c_out, c_in, k)

    def circular(x):
        return F.conv2d(F.pad(x, (0, k - 1, 0, k - 1), mode="circular"), w, stride=stride)

    power = linear_map_norm(circular, (1, c_in, n, n), TIGHT)
    assert power.converged
    assert conv_fourier_norm(w, (n, n), (stride, stride)) == pytest.approx(power.sigma, rel=1e-4)


@pytest.mark.parametrize("stride,groups,dilation", [(1, 1, 1), (2, 2, 1), (1, 1, 2)])
def test_circular_conv2d_layer_bound_is_its_exact_norm(stride, groups, dilation):
    """nn.Conv2d(padding_mode="circular") with 'same' outputs: bound (Fourier) == exact (power iteration)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(
        4, 6, 3, stride=stride, padding=dilation, dilation=dilation, groups=groups, padding_mode="circular"
    ).double()
    [bound] = layer_bounds([("conv", conv)], (4, 8, 8), TIGHT)
    assert bound.method.startswith("Fourier: circular convolution on 8x8")
    assert bound.bound == pytest.approx(bound.exact, rel=1e-4)


@pytest.mark.parametrize(
    "c_out,c_in,k,stride,padding,n",
    [
        (3, 2, 3, 1, 0, 9),
        (4, 3, 5, 1, 2, 7),
        (2, 3, 4, 2, 1, 8),
        (5, 2, 3, 2, 1, 9),
        (3, 3, 11, 4, 2, 21),
    ],
)
def test_zero_padded_norm_never_exceeds_circular_on_the_embedding(c_out, c_in, k, stride, padding, n):
    """Zero padding is a restriction of the circular convolution on N >= n + padding (a multiple of
    the stride), so its norm is at most the Fourier one there; with padding 0 that N is n itself
    when the stride divides n. It also matches the SVD of the layer's explicit matrix."""
    w = _weight(c_out, c_in, k, seed=1)
    exact = conv_zero_padded_norm(w, (c_in, n, n), (stride,) * 2, (padding,) * 2, (1, 1), settings=TIGHT)
    jac = torch.autograd.functional.jacobian(
        lambda x: F.conv2d(x, w, stride=stride, padding=padding), torch.zeros(1, c_in, n, n, dtype=torch.float64)
    )
    assert exact.sigma == pytest.approx(float(torch.linalg.matrix_norm(jac.reshape(-1, c_in * n * n), 2)), rel=1e-6)
    out = F.conv2d(torch.zeros(1, c_in, n, n, dtype=torch.float64), w, stride=stride, padding=padding).shape[2:]
    size = fourier_size_for_zero_padding((n, n), tuple(out), (padding,) * 2, (stride,) * 2)
    if padding == 0 and n % stride == 0:
        assert size == (n, n)
    assert exact.sigma <= conv_fourier_norm(w, size, (stride,) * 2) * (1 + 1e-9)


def test_zero_padded_norm_can_exceed_circular_on_the_same_size():
    """Why the bound uses the embedding: [1, -1] with padding 1 on width 3 has norm 2 sin(3 pi / 8)
    = 1.848 (its full Toeplitz matrix) but the circular norm on width 3 is 2 sin(pi / 3) = 1.732."""
    w = torch.tensor([[[[1.0, -1.0]]]], dtype=torch.float64)
    exact = conv_zero_padded_norm(w, (1, 1, 3), (1, 1), (0, 1), (1, 1), settings=TIGHT).sigma
    assert exact == pytest.approx(2 * math.sin(3 * math.pi / 8), rel=1e-8)
    same_size = conv_fourier_norm(w, (1, 3))
    assert same_size == pytest.approx(2 * math.sin(math.pi / 3), rel=1e-12) and same_size < exact
    assert conv_fourier_norm(w, fourier_size_for_zero_padding((1, 3), (1, 4), (0, 1), (1, 1))) >= exact


def test_fully_connected_bound_matches_matrix_norm():
    for shape in ((10, 784), (100, 100), (784, 7)):
        w = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)))
        assert largest_singular_value(w) == pytest.approx(float(torch.linalg.matrix_norm(w, 2)), rel=1e-5)
        [bound] = layer_bounds([nn.Linear(shape[1], shape[0])], (shape[1],))
        assert bound.kind == "Linear" and bound.method == "largest singular value of W"


def _zoo_of_layers() -> dict[str, tuple[list, tuple[int, ...]]]:
    torch.manual_seed(3)
    bn = nn.BatchNorm2d(6)
    bn.running_var.uniform_(0.2, 2.0)
    bn.weight.data.uniform_(-2, 2)
    return {
        "sigmoid mlp": (
            [nn.Flatten(), nn.Linear(36, 20), nn.Sigmoid(), nn.Linear(20, 5), nn.Tanh(), nn.Linear(5, 3)],
            (1, 6, 6),
        ),
        "convnet": (
            [
                nn.Conv2d(1, 6, 3, stride=2, padding=1),
                bn.eval(),
                nn.LeakyReLU(1.5),
                nn.MaxPool2d(3, 1, padding=1),
                nn.AvgPool2d(2),
                nn.Flatten(),
                nn.Linear(6 * 9, 4),
            ],
            (1, 12, 12),
        ),
        "lrn": (
            [
                nn.Conv2d(1, 8, 3, padding=1),
                nn.ReLU(),
                nn.LocalResponseNorm(3, alpha=0.5, beta=0.75, k=1.0),
                nn.Flatten(),
                nn.Dropout(0.3).eval(),
                nn.Linear(8 * 36, 3),
            ],
            (1, 6, 6),
        ),
    }


@pytest.mark.parametrize("name", ["sigmoid mlp", "convnet", "lrn"])
def test_bounds_are_never_below_measured_gains(name):
    """On random pairs near and far apart, at several scales: every layer's gain <= its bound and
    the network's gain <= the product; the layers' log gains add up to the network's."""
    layers, shape = _zoo_of_layers()[name]
    bounds = layer_bounds(layers, shape)
    gen = torch.Generator().manual_seed(4)
    x = 5 * torch.randn(400, *shape, generator=gen)
    for scale in (1e-3, 1e-1, 10.0):
        gains = measure_gains(layers, x, x + scale * torch.randn(x.shape, generator=gen))
        top = torch.nan_to_num(gains.layers, nan=0.0).max(1).values
        assert all(float(g) <= b.bound * (1 + 1e-6) for g, b in zip(top, bounds)), [b.path for b in bounds]
        assert float(gains.network.max()) <= network_bound(bounds) * (1 + 1e-6)
        assert sum(log_shares(gains)) == pytest.approx(float(gains.network.log().mean()), rel=1e-9, abs=1e-9)


def test_overlapping_max_pool_bound_is_attained():
    """3x3 stride-2 windows: a centre pixel is in 2 x 2 windows, so raising it over zeros gains 2."""
    [bound] = layer_bounds([nn.MaxPool2d(3, 2)], (1, 13, 13))
    assert bound.bound == 2.0
    x = torch.zeros(1, 1, 13, 13)
    bump = x.clone()
    bump[0, 0, 6, 6] = 1.0
    assert float(measure_gains([nn.MaxPool2d(3, 2)], x, bump).network[0]) == pytest.approx(2.0)
    assert layer_bounds([nn.MaxPool2d(2)], (1, 12, 12))[0].bound == 1.0


def test_local_response_norm_bounds_its_jacobian():
    """Largest Jacobian norm over large random inputs stays under the local bound, and under
    k^-beta (the paper's eps^-gamma) when the window covers every channel."""
    gen = torch.Generator().manual_seed(5)
    for size, channels in ((5, 16), (9, 4)):
        lrn = nn.LocalResponseNorm(size, alpha=2.0, beta=0.75, k=2.0)
        [bound] = layer_bounds([lrn], (channels, 1, 1))
        worst = 0.0
        for scale in (0.3, 1.0, 3.0):
            for a in scale * torch.randn(200, channels, generator=gen, dtype=torch.float64):
                jac = torch.func.jacrev(lambda v, f=lrn: f(v.view(1, -1, 1, 1)).flatten())(a)
                worst = max(worst, float(torch.linalg.matrix_norm(jac, 2)))
        assert worst <= bound.bound
        if size > 2 * channels:
            assert bound.bound == pytest.approx(2.0**-0.75)


def test_unsupported_and_ambiguous_layers_raise_naming_them():
    with pytest.raises(ValueError, match=r"soft: no Lipschitz bound for Softmax"):
        layer_bounds([("head", nn.Linear(4, 3)), ("soft", nn.Softmax(dim=1))], (4,))
    with pytest.raises(ValueError, match=r"1: BatchNorm1d in training mode"):
        layer_bounds([nn.Linear(4, 3), nn.BatchNorm1d(3)], (4,))
    with pytest.raises(ValueError, match=r"never called \['decoder'\]"):
        layer_bounds(AutoencoderClassifier(20), (784,))
    with pytest.raises(ValueError, match=r"padding_mode='reflect'"):
        layer_bounds([("c", nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"))], (1, 5, 5))


def test_alexnet_layouts_shapes_and_torchvision_names(tmp_path):
    paper, tv = alexnet_paper().eval(), alexnet_torchvision().eval()
    convs = [tuple(m.weight.shape) for m in paper.features if isinstance(m, nn.Conv2d)]
    assert convs == [(96, 3, 11, 11), (256, 96, 5, 5), (384, 256, 3, 3), (384, 384, 3, 3), (256, 384, 3, 3)]
    assert [tuple(m.weight.shape) for m in paper.classifier if isinstance(m, nn.Linear)] == [
        (4096, 9216),
        (4096, 4096),
        (1000, 4096),
    ]
    with torch.no_grad():
        assert paper.features(torch.zeros(1, 3, 224, 224)).shape == (1, 256, 6, 6)
        assert tv(torch.zeros(2, 3, 224, 224)).shape == (2, 1000)
    assert set(tv.state_dict()) == TORCHVISION_KEYS
    torch.save(tv.state_dict(), tmp_path / "alexnet.pth")
    loaded = load_alexnet(tmp_path / "alexnet.pth")
    assert torch.equal(loaded.classifier[6].weight, tv.classifier[6].weight) and not loaded.training
    torch.save({k: v for k, v in tv.state_dict().items() if k != "classifier.6.bias"}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="classifier.6.bias"):
        load_alexnet(tmp_path / "bad.pth")


@pytest.mark.parametrize("model", [MLP((784, 30, 20, 10)), AutoencoderClassifier(40), ConvNet()])
def test_zoo_layer_chains_compute_the_models(model):
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(nn.Sequential(*(m for _, m in spectral_stage.zoo_layers(model)))(x), model(x), atol=1e-6)


def test_stage_result_is_json_and_renders(monkeypatch):
    """The compute function on a fake run (two small models, noisy pairs as 'adversarials', a
    small AlexNet-shaped net) gives a JSON-serialisable record that the section renders."""
    torch.manual_seed(6)
    zoo = {"MLP": MLP((784, 16, 10)).eval(), "ConvNet": ConvNet().eval()}
    x = torch.rand(20, 1, 28, 28)
    pairs = SimpleNamespace(
        images=x,
        adversarial=(x + 0.05 * torch.randn_like(x)).clamp(0, 1),
        success=torch.ones(20, dtype=torch.bool),
        distortion=torch.full((20,), 0.05),
    )
    zoo["MLP (not attacked)"] = MLP((784, 12, 10)).eval()
    run = SimpleNamespace(
        cfg=SimpleNamespace(seed=0, alexnet_weights=None),
        model=zoo.__getitem__,
        attacked=lambda name, image_set: pairs,
        splits={"test": SimpleNamespace(images=x)},
    )
    monkeypatch.setattr(spectral_stage, "alexnet_paper", lambda: AlexNet((8, 8, 8, 8, 8), lrn=True, hidden=32))
    monkeypatch.setattr(spectral_stage, "INPUT_SHAPE", (3, 67, 67))
    table5 = {row: ("size", 1, 2.0) for row in spectral_stage.TABLE5_ROWS}
    stage = Stage(
        "table5",
        "Table 5",
        StageKind.SPECTRAL_TABLE,
        tuple(zoo),
        None,
        spectral_stage.spectral_table,
        spectral_stage.SpectralSettings(pairs={"train": ("MLP", "ConvNet")}, power_rtol=1e-6, power_max_iter=200),
        table5,
    )
    result = json.loads(json.dumps(spectral_stage.spectral_table(run, stage)))
    assert result["models"]["ConvNet"]["bound_exact"] <= result["models"]["ConvNet"]["bound"]
    assert [row["table5"] for row in result["alexnet"]["layers"] if "table5" in row] == list(spectral_stage.TABLE5_ROWS)
    text, findings = spectral_section("table5", "Table 5", result, None)
    assert "| conv1 | Conv2d |" in text and "Conv. 5" in text
    assert any("of the positive excess" in line for line in findings) and findings[-1].startswith("AlexNet (random")
    assert result["models"]["MLP (not attacked)"]["network"] is None
    assert "**MLP (not attacked)** (bounds only: not attacked in this run)" in text
    assert "MLP (not attacked): not attacked in this run, so bounds only" in " ".join(findings)


def test_table5_with_user_weights_is_keyed_by_their_content(tmp_path):
    """--alexnet-weights: the file's content (not its path) keys every stage, and the weights are used."""
    from intriguing_fast.experiments import SCALES, RunConfig
    from intriguing_fast.experiments.context import Run
    from intriguing_fast.models.alexnet import alexnet_torchvision

    path = tmp_path / "alexnet.pt"
    torch.save(alexnet_torchvision().state_dict(), path)
    cfg = RunConfig(scale=SCALES["tiny"], out=tmp_path / "out", alexnet_weights=path)
    first = Run(cfg).settings()["alexnet_weights"]
    torch.save(alexnet_torchvision().state_dict(), path)  # other weights under the same name
    assert first != Run(cfg).settings()["alexnet_weights"] and len(first) == 64
    result = spectral_stage._alexnet(
        path, dict.fromkeys(spectral_stage.TABLE5_ROWS, ("size", 1, 2.0)), spectral_stage.PowerIteration(1e-3, 5, 0), 0
    )
    assert result["layout"] == "torchvision" and result["weights"] == f"file {path}"

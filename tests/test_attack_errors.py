"""Hostile input to the attack gets an error that names the argument and what was expected,
before any solve: never a silently wrong result or a raw torch traceback (issue 12)."""

import warnings

import pytest
import torch

from intriguing_fast.attack import LBFGSAttack, attack_engine, lbfgs_attack
from intriguing_fast.attack.memory import chunk_size
from intriguing_fast.engine import StateMemoryError

SHAPE = (1, 8, 8)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(6, *SHAPE, generator=torch.Generator().manual_seed(0))


class Output(torch.nn.Module):
    """The wrapped model's logits reshaped by `how` (a tuple, [B], [B, C, H], one class)."""

    def __init__(self, inner: torch.nn.Module, how: str) -> None:
        super().__init__()
        self.inner, self.how = inner, how

    def forward(self, x: torch.Tensor):
        logits = self.inner(x)
        return {
            "tuple": (logits, None),
            "flat": logits[:, 0],
            "3d": logits[:, :, None].expand(-1, -1, 3),
            "one_class": logits[:, :1],
            "nan": logits * float("nan"),
        }[self.how]


def test_targets_equal_to_given_labels_are_refused(model, images):
    labels = torch.arange(6) % 10
    targets = (labels + 1) % 10
    targets[[1, 4]] = labels[[1, 4]]
    with pytest.raises(
        ValueError,
        match=r"targets: rows \[1, 4\] equal the image's label; a target must differ "
        r"from the image's label",
    ):
        lbfgs_attack(model, images, targets, labels=labels)
    many = labels.clone()
    with pytest.raises(ValueError, match=r"targets: rows \[0, 1, 2, 3, 4\]\.\.\. \(6 rows\) equal"):
        lbfgs_attack(model, images, many, labels=labels)


@pytest.mark.parametrize(
    "options, error, match",
    [
        (dict(kappa=float("inf")), ValueError, "kappa: expected a finite float >= 0, got inf"),
        (dict(kappa=float("nan")), ValueError, "kappa: expected a finite float >= 0, got nan"),
        (
            dict(temperature=1e-30),
            ValueError,
            r"temperature: expected None or a finite float in \[0.001, 1000\] "
            r"\(outside it logits / T overflow or the loss goes flat\), got 1e-30",
        ),
        (dict(temperature=1e30), ValueError, r"temperature: .* got 1e\+30"),
        (dict(temperature=float("nan")), ValueError, "temperature: .* got nan"),
        (dict(temperature="0.1"), ValueError, "temperature: .* got '0.1'"),
        (dict(c_init=float("inf")), ValueError, "c_init: expected None or a finite float > 0, got inf"),
        (dict(seed="a"), TypeError, "seed: expected an int, got 'a'"),
        (dict(seed=2**70), ValueError, r"seed: expected an int in \[0, 2\*\*62\), got 1180591620717411303424"),
        (dict(seed=-1), ValueError, r"seed: expected an int in \[0, 2\*\*62\), got -1"),
        (dict(reuse_curvature=1), TypeError, "reuse_curvature: expected a bool, got 1"),
        (dict(flush_denormals="yes"), TypeError, "flush_denormals: expected a bool, got 'yes'"),
        (dict(boundary_steps=-1), ValueError, "boundary_steps: expected an int >= 0, got -1"),
        (dict(boundary_steps=2.0), ValueError, "boundary_steps: expected an int >= 0, got 2.0"),
        (dict(walk_steps=-2), ValueError, "walk_steps: expected an int >= 0, got -2"),
        (dict(pull_back=1.0), ValueError, r"pull_back: expected None or a float in \[0, 1\), got 1.0"),
        (dict(pull_back=-0.1), ValueError, r"pull_back: expected None or a float in \[0, 1\), got -0.1"),
        (dict(pull_back=0.5, warm_start=False), ValueError, "pull_back: pulls a warm start back towards the image"),
        (
            dict(pull_back=0.5, steps=3),
            ValueError,
            "pull_back: the solve after the first 3 starts pulled back; it needs steps > 3, got 3",
        ),
        (dict(memory_budget=1e9), ValueError, "memory_budget: expected an int >= 1, got 1000000000.0"),
    ],
)
def test_options_out_of_range_are_refused(options, error, match):
    with pytest.raises(error, match=match):
        LBFGSAttack(**options)


@pytest.mark.parametrize("max_iter", [0, -3, 2.5])
def test_attack_engine_names_max_iter_not_what_it_derives(max_iter):
    with pytest.raises(
        ValueError,
        match=rf"max_iter: expected an int >= 1 \(a solve may make 2 max_iter evaluations\), "
        rf"got {max_iter}",
    ):
        attack_engine(max_iter)


def test_c_init_beyond_the_images_dtype_is_refused(model, images):
    with pytest.raises(
        ValueError,
        match=r"c_init: expected a float in \[1.175e-38, 3.403e\+38\], the range of the "
        r"images' dtype torch.float32, got 1e\+300",
    ):
        lbfgs_attack(model, images, "random", c_init=1e300)
    with pytest.raises(ValueError, match=r"c_init: .* got 1e-300"):
        lbfgs_attack(model, images, "random", c_init=1e-300, search="cleverhans")


@pytest.mark.parametrize("targets", ["random", "all", "untargeted", "least_likely"])
def test_one_class_model_is_refused(model, images, targets):
    with pytest.raises(
        ValueError,
        match=r"model: expected logits \[6, num_classes\] with num_classes >= 2, got "
        r"shape \(6, 1\).*random targets need at least 2 classes",
    ):
        lbfgs_attack(Output(model, "one_class"), images, targets)


@pytest.mark.parametrize("how, got", [("tuple", "tuple"), ("flat", r"shape \(6,\)"), ("3d", r"shape \(6, 10, 3\)")])
def test_model_output_not_logits_is_named(model, images, how, got):
    with pytest.raises(
        ValueError,
        match=rf"model: expected its output to be logits of shape \[6, num_classes\] "
        rf"for 6 inputs, got {got}",
    ):
        lbfgs_attack(Output(model, how), images, "random")


def test_model_failing_on_the_inputs_shape_is_named(images):
    flat = torch.nn.Linear(64, 10)  # expects [B, 64]
    with pytest.raises(
        ValueError,
        match=r"model: failed on inputs of shape \(6, 1, 8, 8\) \(does it expect "
        r"flattened images\?.*\): mat1 and mat2 shapes cannot be multiplied",
    ) as info:
        lbfgs_attack(flat, images, "random")
    assert isinstance(info.value.__cause__, RuntimeError)
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(72, 10))
    with pytest.raises(
        ValueError,
        match=r"model: failed on inputs of shape \(6, 64\) \(does it expect images "
        r"\[B, C, H, W\]\?",
    ):
        lbfgs_attack(conv, images.flatten(1), "random")


def test_model_on_another_device_or_with_nan_logits(model, images):
    with pytest.raises(ValueError, match=r"model: its parameters are on meta but inputs on cpu: move one of them"):
        lbfgs_attack(torch.nn.Linear(64, 10, device="meta"), images.flatten(1), "random")
    with pytest.raises(ValueError, match=r"model: gives NaN or inf logits on inputs \[0, 1, 2, 3, 4\]\.\.\."):
        lbfgs_attack(Output(model, "nan"), images, "random")


@pytest.mark.parametrize(
    "case, error, match",
    [
        ("meta", ValueError, "inputs: expected a tensor on a CPU or CUDA device, got meta"),
        ("int", TypeError, "inputs: expected dtype float32 or float64, got torch.int64"),
        ("empty", ValueError, r"inputs: expected a non-empty batch \[B, ...\]"),
        ("nan_bound", ValueError, "bounds: lower contains NaN"),
        ("crossed", ValueError, "bounds: lower > upper"),
    ],
)
def test_bad_inputs_and_bounds(model, images, case, error, match):
    inputs, bounds = images, (0.0, 1.0)
    if case == "meta":
        inputs = images.to("meta")
    elif case == "int":
        inputs = (images * 255).long()
    elif case == "empty":
        inputs = images[:0]
    elif case == "nan_bound":
        bounds = (float("nan"), 1.0)
    else:
        bounds = (1.0, 0.0)
    with pytest.raises(error, match=match):
        lbfgs_attack(model, inputs, "random", bounds=bounds)


def test_history_too_large_for_memory(model, images):
    """history=10**12 would need ~500 TB per image: refused when the chunk is sized, and by the
    engine when batch_size skips the sizing."""
    huge = attack_engine(10, history=10**12)
    with pytest.raises(
        StateMemoryError,
        match=r"engine.history: one image with history=1000000000000 needs "
        r".* GB of solver state and activations, but .* GB is available",
    ):
        lbfgs_attack(model, images, "random", engine=huge)
    with pytest.raises(StateMemoryError, match=r"history: the solver state of 6 problems x 64 variables"):
        lbfgs_attack(model, images, "random", engine=huge, batch_size=6)
    assert chunk_size(model, images[0], history=10, budget=2**30) > 1


class Growing(torch.nn.Module):
    """10 logits for its first `calls` calls, then 11."""

    def __init__(self, model: torch.nn.Module, calls: int) -> None:
        super().__init__()
        self.model, self.calls = model, calls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls -= 1
        out = self.model(x)
        return out if self.calls >= 0 else torch.cat([out, out[:, :1]], dim=1)


@pytest.mark.parametrize("calls", [3, 12])
def test_logits_that_change_their_classes_between_calls_are_refused(model, images, calls):
    with pytest.raises(ValueError, match=r"model: its logits changed from 10 to 11 classes between calls"):
        lbfgs_attack(Growing(model, calls), images, "random")


class ClampsInPlace(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.clamp_(0.2, 0.8))


def test_a_model_that_changes_its_input_in_place_is_named(model, images):
    before = images.clone()
    with pytest.raises(ValueError, match=r"model: it changes its input in place .* x.clamp_\(0, 1\)"):
        lbfgs_attack(ClampsInPlace(model), images, "random")
    assert torch.equal(images, before)  # the caller's images are untouched


def test_a_model_that_outputs_probabilities_is_refused(model, images):
    probabilities = torch.nn.Sequential(model, torch.nn.Softmax(dim=1))
    with pytest.raises(ValueError, match=r"model: its outputs on the 6 inputs are probabilities .*needs logits"):
        lbfgs_attack(probabilities, images, "random")
    logs = torch.nn.Sequential(model, torch.nn.LogSoftmax(dim=1))  # log-probabilities are logits
    assert lbfgs_attack(logs, images, "random", steps=2, engine=attack_engine(10)).success.any()


def test_a_model_in_train_mode_is_attacked_in_eval_mode_with_a_warning(model, images):
    dropout = torch.nn.Sequential(model, torch.nn.Dropout(0.5)).train()
    with pytest.warns(UserWarning, match="model: it is in train mode; the attack runs it in eval mode"):
        result = lbfgs_attack(dropout, images, "random", steps=2, engine=attack_engine(10))
    assert dropout.training and result.success.any()  # its mode back, and dropout was off (a deterministic model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # layers whose output does not depend on the mode: nothing to say
        lbfgs_attack(model.train(), images, "random", steps=2, engine=attack_engine(10))

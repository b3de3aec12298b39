"""Model zoo: architectures, weight decay, training, registry and the checkpoint cache."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from faults import DAMAGES, damage_file

import intriguing_fast.models.trained as trained_module
import intriguing_fast.storage as storage
from intriguing_fast.data import MnistSplit
from intriguing_fast.experiments.evaluation import error
from intriguing_fast.experiments.paper import TABLE1_MODELS as TABLE1
from intriguing_fast.experiments.paper import TABLE3_MODELS as TABLE3
from intriguing_fast.models import (
    MLP,
    MODEL_ZOO,
    AutoencoderClassifier,
    CheckpointCorruptError,
    CheckpointKeyError,
    ConvNet,
    Phase,
    checkpoint_key,
    get_spec,
    load_checkpoint,
    load_or_train,
    save_checkpoint,
    train_model,
    trained_model,
    training_data,
    weight_decay_penalty,
)
from intriguing_fast.models.cache import checkpoint_path


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """These tensors are tiny: one thread avoids OpenMP oversubscription on a shared 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def toy_mnist(n: int = 400, seed: int = 0) -> MnistSplit:
    """Noisy copies of ten random prototype images: learnable, and no MNIST files needed."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(10, 1, 28, 28, generator=g)
    labels = torch.arange(n) % 10
    images = (prototypes[labels] + 0.3 * torch.randn(n, 1, 28, 28, generator=g)).clamp(0, 1)
    return MnistSplit(images, labels, "toy", "train")


@pytest.mark.parametrize("name", list(MODEL_ZOO))
def test_every_model_returns_logits_for_both_input_layouts(name):
    torch.manual_seed(0)
    model = get_spec(name).build().eval()
    x = torch.rand(5, 1, 28, 28)
    logits = model(x)
    assert logits.shape == (5, 10)
    torch.testing.assert_close(model(x.view(5, 784)), logits)
    with pytest.raises(ValueError, match=r"x: expected images of shape \[N, 1, 28, 28\] or \[N, 784\]"):
        model(torch.rand(5, 3, 28, 28))


def test_feature_layers():
    x = torch.rand(3, 784)
    assert [h.shape for h in MLP((784, 123, 456, 10)).hidden(x)] == [(3, 123), (3, 456)]
    assert MLP((784, 10)).hidden(x) == []
    assert AutoencoderClassifier().encode(x).shape == (3, 400)
    assert ConvNet().features(x).shape == (3, 100)
    with pytest.raises(ValueError, match="sizes: expected"):
        MLP((100, 10))


def test_weight_decay_penalty_is_half_lambda_times_all_squared_parameters():
    layers = [torch.nn.Linear(3, 2), torch.nn.Linear(2, 4)]
    expected = sum(lam / 2 * (m.weight.pow(2).sum() + m.bias.pow(2).sum()) for m, lam in zip(layers, (0.3, 0.01)))
    torch.testing.assert_close(weight_decay_penalty(layers, (0.3, 0.01)), expected)
    assert weight_decay_penalty(layers, (0.0, 0.0)).item() == 0.0
    with pytest.raises(ValueError, match="lambdas: expected one per layer"):
        weight_decay_penalty(layers, (0.1,))


def test_registry_matches_the_paper():
    assert set(TABLE1) | set(TABLE3) | {"ConvNet"} == set(MODEL_ZOO)
    assert [get_spec(n).subset for n in TABLE3] == ["P1", "P1", "P2"]
    assert [get_spec(n).recipe.train.weight_decay for n in TABLE1[:3]] == [(1e-4,), (1e-2,), (1.0,)]
    assert get_spec("FC200-200-10").recipe.train.weight_decay == (1e-5, 1e-5, 1e-6)
    assert get_spec("AE400-10").recipe.train.weight_decay == (1e-6,)
    with pytest.raises(KeyError, match="unknown model 'FC9'"):
        get_spec("FC9")


def test_recipe_validation_and_capping():
    with pytest.raises(ValueError, match="optimizer: expected"):
        Phase("rmsprop", 1, ())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size: expected >= 1"):
        Phase("adam", 1, ())
    capped = get_spec("AE400-10").recipe.capped(2)
    assert capped.train.epochs == capped.pretrain.epochs == 2
    assert capped.train.weight_decay == (1e-6,)
    minibatch = get_spec("AE400-10").recipe.capped(2, minibatch_only=True)  # the full-batch L-BFGS phase runs on
    assert (minibatch.pretrain.epochs, minibatch.train.epochs) == (2, get_spec("AE400-10").recipe.train.epochs)


def error_rate(model, data: MnistSplit) -> float:
    return error(model, data.images, data.labels).percent / 100


def mean_loss(model, data: MnistSplit) -> float:
    with torch.no_grad():
        return F.cross_entropy(model(data.images), data.labels).item()


@pytest.mark.parametrize(("name", "factor"), [("FC100-100-10", 0.8), ("FC10(1e-4)", 0.5)])
def test_short_training_lowers_the_loss_deterministically(name, factor):
    spec, data = get_spec(name), toy_mnist()
    recipe = replace(spec.recipe.capped(20), train=replace(spec.recipe.capped(20).train, batch_size=32))
    with torch.random.fork_rng():
        torch.manual_seed(recipe.seed)
        untrained = spec.build()
    model = train_model(spec.build, data, recipe, progress=False)
    assert mean_loss(model, data) < factor * mean_loss(untrained, data)
    again = train_model(spec.build, data, recipe, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert error_rate(model, data) < 0.5


def test_autoencoder_is_not_fine_tuned():
    spec, data = get_spec("AE400-10"), toy_mnist(200)
    short = train_model(spec.build, data, spec.recipe.capped(1), progress=False)
    longer = train_model(
        spec.build, data, replace(spec.recipe.capped(1), train=replace(spec.recipe.train, epochs=20)), progress=False
    )
    assert torch.equal(short.encoder.weight, longer.encoder.weight)  # the supervised phase leaves the code alone
    assert not torch.equal(short.head.weight, longer.head.weight)
    assert all(p.requires_grad for p in longer.parameters())


def test_training_data_follows_the_spec_subset():
    train = toy_mnist(100)
    assert training_data(get_spec("FC10(1)"), train) is train
    p1 = training_data(get_spec("FC123-456-10 (P1)"), train)
    p2 = training_data(get_spec("FC100-100-10' (P2)"), train)
    assert (p1.split, p2.split, len(p1), len(p2)) == ("P1", "P2", 50, 50)


TINY = get_spec("FC10(1e-2)").recipe.capped(2)


def test_cache_reuses_the_first_run(tmp_path, monkeypatch):
    data = toy_mnist(100)
    trained = load_or_train("FC10(1e-2)", data, tmp_path, recipe=TINY, progress=False)
    first = trained.model
    assert len(list(tmp_path.glob("FC10*.pt"))) == 1 and not trained.from_cache

    def refuse(*args, **kwargs):
        raise AssertionError("retrained although a checkpoint exists")

    monkeypatch.setattr(trained_module, "train_model", refuse)
    again = load_or_train("FC10(1e-2)", data, tmp_path, recipe=TINY, progress=False)
    second = again.model
    assert again.from_cache and again.weights == trained.weights and again.path == trained.path
    torch.testing.assert_close(second(data.images), first(data.images), rtol=0, atol=0)
    with pytest.raises(AssertionError, match="retrained"):  # another recipe or other data: another key
        trained_model("FC10(1e-2)", data, tmp_path, recipe=TINY.capped(1), progress=False)
    with pytest.raises(AssertionError, match="retrained"):
        trained_model("FC10(1e-2)", toy_mnist(100, seed=1), tmp_path, recipe=TINY, progress=False)


def test_a_second_run_waits_for_a_model_in_training_then_loads_it(tmp_path):
    """Two runs sharing a cold cache: the second waits on the checkpoint's lock while the first
    trains, then loads what the first saved instead of training it again."""
    data, training, results = toy_mnist(100), threading.Event(), {}

    def first():
        results["first"] = load_or_train(
            "FC10(1e-2)",
            data,
            tmp_path,
            recipe=TINY,
            progress=False,
            on_train=lambda *a: (training.set(), time.sleep(0.5)),
        )

    thread = threading.Thread(target=first)
    thread.start()
    assert training.wait(60)
    second = load_or_train("FC10(1e-2)", data, tmp_path, recipe=TINY, progress=False)
    thread.join()
    assert not results["first"].from_cache and second.from_cache and second.weights == results["first"].weights
    assert not list(tmp_path.glob("*.lock"))


@pytest.mark.parametrize("damage", ("other key",) + DAMAGES)
def test_damaged_checkpoint_is_moved_aside_and_retrained(tmp_path, damage):
    data = toy_mnist(100)
    spec = get_spec("FC10(1e-2)")
    key = checkpoint_key(spec, TINY, data)
    path = checkpoint_path(tmp_path, spec.name, key)
    if damage == "other key":
        save_checkpoint(path, {**key, "model": "someone else"}, spec.build().state_dict(), {})
        expected = r"differs from the expected key in \['model'\]"
    else:
        trained_model(spec.name, data, tmp_path, recipe=TINY, progress=False)
        expected = damage_file(path, damage)
    with pytest.warns(RuntimeWarning, match=expected) as caught:
        trained = load_or_train(spec.name, data, tmp_path, recipe=TINY, progress=False)
    assert not trained.from_cache and str(path) in str(caught[0].message)
    assert (tmp_path / (path.name + ".corrupt")).exists() and not (tmp_path / "PLANTED_PICKLE_RAN").exists()
    assert load_or_train(spec.name, data, tmp_path, recipe=TINY, progress=False).from_cache
    with pytest.raises(CheckpointKeyError, match="differs from the expected key"):
        load_checkpoint(path, {**key, "model": "someone else"})
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointCorruptError, match="unreadable checkpoint"):
        load_checkpoint(path, key)


def test_interrupted_write_leaves_no_checkpoint(tmp_path, monkeypatch):
    data = toy_mnist(100)
    real_fsync = storage.os.fsync

    def killed_mid_write(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(storage.os, "fsync", killed_mid_write)  # the bytes are written, not yet renamed
    with pytest.raises(KeyboardInterrupt):
        trained_model("FC10(1e-2)", data, tmp_path, recipe=TINY, progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(storage.os, "fsync", real_fsync)
    model = trained_model("FC10(1e-2)", data, tmp_path, recipe=TINY, progress=False)
    assert [p.suffix for p in tmp_path.iterdir()] == [".pt"]
    assert error_rate(model, data) < 0.5

"""Adversarial training with pools (models/adversarial_*.py) on a small MLP and learnable digits:
pool mechanics, the examples fooling the model they were made for, determinism, resumption
after a kill, the checkpoint cache, and the errors of bad layer splits."""

from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch
from mnist_files import learnable_digits
from torch import nn

from intriguing_fast.attack import LBFGSAttack, attack_engine
from intriguing_fast.models import MLP, Phase
from intriguing_fast.models.adversarial import training
from intriguing_fast.models.adversarial.checkpoints import load_or_train_adversarial
from intriguing_fast.models.adversarial.pool import AdversarialPool
from intriguing_fast.models.adversarial.split import LayerSplit, layer_names, split_model
from intriguing_fast.models.adversarial.training import AdversarialRecipe, PoolSettings, train_adversarial

BUILD = partial(MLP, (784, 32, 32, 10))
PHASE = Phase("sgd", epochs=3, weight_decay=(1e-5, 1e-5, 1e-6), lr=0.2, batch_size=32)
ATTACK = LBFGSAttack(steps=3, engine=attack_engine(15))


@pytest.fixture(scope="module")
def digits():
    x, y = learnable_digits(256, np.random.default_rng(0))
    return torch.tensor(x, dtype=torch.float32)[:, None] / 255, torch.tensor(y, dtype=torch.long)


def recipe(**changes) -> AdversarialRecipe:
    pools = (PoolSettings("input", 24, 0.25, 0.5), PoolSettings("hidden2", 16, 0.5, 0.25))
    return AdversarialRecipe(**{"train": PHASE, "pools": pools, "refresh_every": 3, "attack": ATTACK, **changes})


@pytest.fixture(scope="module")
def trained(digits):
    adam = Phase("adam", epochs=10, weight_decay=(1e-5, 1e-5, 1e-6), lr=1e-2, batch_size=32)
    model, _ = train_adversarial(BUILD, *digits, AdversarialRecipe(adam, seed=1), progress=False)
    assert (model(digits[0]).argmax(1) == digits[1]).float().mean() > 0.9
    return model


def weights(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("layer", ["input", "hidden1", "hidden2"])
def test_refreshed_examples_fool_the_model_they_were_made_for(digits, trained, layer):
    x, y = digits
    split = split_model(trained, layer)
    pool = AdversarialPool.empty(20, split.codes(x[:1])[0])
    slots = torch.arange(3, 15)
    pool.refresh(split, x[:12], y[:12], slots, ATTACK, "random", step=7)
    assert len(pool) == 20 and pool.filled.sum() == 12 and (pool.made_at[slots] == 7).all()
    fooled = pool.fooled[slots]
    assert fooled.float().mean() >= 0.9
    with torch.no_grad():
        predicted = split.upper(pool.examples[slots]).argmax(1)
    assert torch.equal(predicted[fooled], pool.targets[slots][fooled])
    assert (pool.targets[slots] != y[:12]).all() and torch.equal(pool.labels[slots], y[:12])
    low, high = split.bounds
    assert pool.examples.min() >= low and pool.examples.max() <= high


def test_pool_size_replacement_fraction_and_mix(digits, monkeypatch):
    calls, draws = [], []
    refresh, sample = AdversarialPool.refresh, AdversarialPool.sample

    def spy_refresh(pool, split, images, labels, slots, *args, **kwargs):
        calls.append((split.layer, len(pool), slots.clone()))
        return refresh(pool, split, images, labels, slots, *args, **kwargs)

    def spy_sample(pool, count, generator):
        draws.append((len(pool), count))
        return sample(pool, count, generator)

    monkeypatch.setattr(AdversarialPool, "refresh", spy_refresh)
    monkeypatch.setattr(AdversarialPool, "sample", spy_sample)
    _, info = train_adversarial(BUILD, *digits, recipe(), progress=False)
    steps, warm = 3 * 8, 8  # 256 examples in batches of 32; pools filled after one plain epoch
    refreshes = 1 + (steps - warm - 1) // 3
    assert info["refreshes"] == refreshes and len(calls) == 2 * refreshes
    for layer, size, fraction in (("input", 24, 0.25), ("hidden2", 16, 0.5)):
        counts = [(n, s) for name, n, s in calls if name == layer]
        assert all(n == size for n, _ in counts)
        assert sorted(counts[0][1].tolist()) == list(range(size))  # the first refresh fills every slot
        assert all(len(s) == round(fraction * size) and len(set(s.tolist())) == len(s) for _, s in counts[1:])
    assert sorted({c for _, c in draws}) == [8, 16]  # round(mix * 32) per pool and batch
    assert info["generated"] == 24 + 16 + (refreshes - 1) * (6 + 8) and info["fooled"] <= info["generated"]
    assert 0 < info["attack_seconds"] < info["seconds"]


def test_training_is_deterministic_for_a_seed(digits):
    first, _ = train_adversarial(BUILD, *digits, recipe(), progress=False)
    again, _ = train_adversarial(BUILD, *digits, recipe(), progress=False)
    other, _ = train_adversarial(BUILD, *digits, recipe(seed=5), progress=False)
    assert same(weights(first), weights(again)) and not same(weights(first), weights(other))


def test_a_killed_run_resumes_to_the_same_weights(digits, tmp_path, monkeypatch):
    dropout = recipe(dropout=(("layers.1", 0.2),), targets="least_likely")
    straight, straight_info = train_adversarial(BUILD, *digits, dropout, progress=False)
    save, saved = training._save_progress, []

    def killed_after_two(state, path, key):
        save(state, path, key)
        saved.append(state.epoch)
        if len(saved) == 2:
            raise KeyboardInterrupt  # the process dies right after its second epoch's checkpoint

    monkeypatch.setattr(training, "_save_progress", killed_after_two)
    path = tmp_path / "run.progress.pt"
    with pytest.raises(KeyboardInterrupt):
        train_adversarial(BUILD, *digits, dropout, progress_file=path, progress=False)
    resumed, info = train_adversarial(BUILD, *digits, dropout, progress_file=path, progress=False)
    assert saved == [1, 2, 3]  # the second run trained the last epoch only
    assert same(weights(resumed), weights(straight))
    assert info["generated"] == straight_info["generated"] and info["fooled"] == straight_info["fooled"]


def test_checkpoint_cache_makes_a_rerun_instant(digits, tmp_path):
    first = load_or_train_adversarial("tiny", BUILD, *digits, recipe(), tmp_path, progress=False)
    again = load_or_train_adversarial("tiny", BUILD, *digits, recipe(), tmp_path, progress=False)
    assert not first.from_cache and again.from_cache and first.weights == again.weights
    assert again.info["generated"] == first.info["generated"] > 0
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]  # no progress file left behind
    other = load_or_train_adversarial("tiny", BUILD, *digits, recipe(refresh_every=4), tmp_path, progress=False)
    assert not other.from_cache and other.path != first.path


def test_mlp_splits_compose_to_the_model(trained, digits):
    x = digits[0][:5]
    assert layer_names(trained) == ("input", "hidden1", "hidden2")
    for layer in layer_names(trained):
        split = split_model(trained, layer)
        assert torch.allclose(split.upper(split.codes(x)), trained(x), atol=1e-6)
    assert torch.equal(split_model(trained, "hidden2").codes(x), trained.hidden(x)[1])


def test_sequential_splits_at_its_children():
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 10)
    )
    x = torch.rand(3, 1, 28, 28)
    split = split_model(model, "2")
    assert split.bounds == (0.0, 1.0) and torch.allclose(split.upper(split.codes(x)), model(x))
    with pytest.raises(ValueError, match=r"bounds: layer '4' \(ReLU\) is not a sigmoid"):
        split_model(model, "4")
    split_model(model, "4", bounds=(0.0, 50.0)).check(x)


def test_bad_splits_are_clear_errors(trained, digits):
    x = digits[0][:4]
    names = r"\['input', 'hidden1', 'hidden2'\]"
    with pytest.raises(ValueError, match=rf"MLP has no layer 'hidden3'; expected one of {names}"):
        split_model(trained, "hidden3")
    with pytest.raises(ValueError, match="has no layer 'hidden2'.*build a LayerSplit"):
        split_model(nn.Linear(784, 10), "hidden2")
    wrong = LayerSplit("fc", trained.layers[0], nn.Linear(50, 10), (0.0, 1.0))
    with pytest.raises(ValueError, match="layer 'fc': the upper part does not accept the lower part's output"):
        wrong.check(x.flatten(1))
    flat = LayerSplit("logits", nn.Identity(), nn.Flatten(0), (0.0, 1.0))
    with pytest.raises(ValueError, match=r"layer 'logits': the upper part gives shape \(3136,\), expected logits"):
        flat.check(x)
    unbounded = LayerSplit("pre", nn.Flatten(), nn.Linear(784, 10), (0.0, 0.5))
    with pytest.raises(ValueError, match=r"layer 'pre': its outputs range over .* outside the bounds \(0.0, 0.5\)"):
        unbounded.check(x)
    with pytest.raises(ValueError, match="MLP has no layer 'conv1'"):
        train_adversarial(BUILD, *digits, recipe(pools=(PoolSettings("conv1"),)), progress=False)
    with pytest.raises(ValueError, match=r"dropout: MLP has no module \['layers.7'\]"):
        train_adversarial(BUILD, *digits, recipe(dropout=(("layers.7", 0.5),)), progress=False)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"train": Phase("lbfgs", epochs=3, weight_decay=(0.0,))}, "expected a minibatch phase"),
        ({"targets": "all"}, "targets: expected one of"),
        ({"pools": (PoolSettings("input"), PoolSettings("input"))}, "at most one pool per layer"),
        ({"refresh_every": 0}, "refresh_every"),
        ({"dropout": (("layers.0", 1.0),)}, "dropout: expected probabilities"),
    ],
)
def test_recipe_checks(changes, message):
    with pytest.raises(ValueError, match=message):
        recipe(**changes)
    with pytest.raises(ValueError, match="refresh_fraction"):
        PoolSettings(refresh_fraction=0.0)


def stage_result(errors: dict, failed: tuple = ()) -> dict:
    """A stage entry with the given test errors (of 10,000) per variant; everything else fixed."""

    def row(variant: str, errors: int) -> dict:
        return {
            "pools": [],
            "test_error": {"errors": errors, "total": 10_000},
            "paper": None,
            "success": {"errors": 10, "total": 10},
            "distortion": 0.07,
            "training_failed": variant in failed,
            "plain_adversarials_error": {"errors": 5, "total": 10},
            "seconds": 10.0,
            "attack_seconds": 4.0,
            "generated": 100,
            "fooled": 99,
        }

    settings = {
        "epochs": 5,
        "batch_size": 64,
        "lr": 0.4,
        "pool_size": 10,
        "refresh_fraction": 0.1,
        "refresh_every": 100,
        "mix": 0.25,
        "warmup_epochs": 1,
        "targets": "random",
        "attack_steps": 3,
        "attack_max_iter": 15,
        "dropout": (0.0, 0.1),
    }
    return {
        "settings": settings,
        "plain": "weight decay",
        "weight_decay": [1e-5, 1e-5, 1e-6],
        "attacked": 10,
        "train_examples": 100,
        "rows": {v: row(v, e) for v, e in errors.items()},
    }


@pytest.mark.parametrize(
    "errors, pool_verdict, layer_verdict",
    [
        (
            {"weight decay": 160, "input pool": 110, "hidden 1 pool": 100, "hidden 2 pool": 90},
            "holds here",
            "holds here",
        ),
        (
            {"weight decay": 160, "input pool": 140, "hidden 1 pool": 150, "hidden 2 pool": 120},
            "holds only in part",
            "holds only in part",
        ),
        (
            {"weight decay": 160, "input pool": 170, "hidden 1 pool": 150, "hidden 2 pool": 180},
            "does not hold",
            "does not hold",
        ),
    ],
)
def test_findings_say_whether_the_paper_holds(tmp_path, errors, pool_verdict, layer_verdict):
    from intriguing_fast.report.advtrain_section import adversarial_training as render

    text, findings = render("adversarial_training", "Section 4.2", stage_result(errors), tmp_path)
    assert (tmp_path / "adversarial_training_variants.png").exists() and "| input pool | " in text
    assert findings[0].startswith("Adversarial training") and pool_verdict in findings[0]
    assert findings[1].startswith("Higher layers") and layer_verdict in findings[1]
    _, caveated = render("adversarial_training", "Section 4.2", stage_result(errors, ("input pool",)), tmp_path)
    assert caveated[0].startswith("input pool: training failed")


def test_stage_trains_each_variant_once(tmp_path):
    from mnist_files import write_mnist

    from intriguing_fast.experiments import RunConfig, Scale
    from intriguing_fast.experiments.advtrain_stage import SETTINGS, adversarial_training
    from intriguing_fast.experiments.context import Run
    from intriguing_fast.experiments.stage import Stage, StageKind

    write_mnist(tmp_path / "mnist", n_train=256, n_test=60, learnable=True)
    settings = replace(SETTINGS["tiny"], epochs=2, attacked=6, variants=("weight decay", "hidden 2 pool"))
    stage = Stage(
        "adversarial_training",
        "Section 4.2",
        StageKind.ADVERSARIAL_TRAINING,
        (),
        None,
        adversarial_training,
        {"t": settings},
        {"weight decay": 1.6},
    )

    def run(scale: str) -> Run:
        return Run(
            RunConfig(
                scale=Scale(scale, 6, 6, 2),
                out=tmp_path / "out",
                data_dir=tmp_path / "mnist",
                model_cache=tmp_path / "models",
                progress=False,
                verify_data=False,
            )
        )

    first = adversarial_training(run("t"), stage)
    again = adversarial_training(run("t"), stage)
    rows = first["rows"]
    assert list(rows) == ["weight decay", "hidden 2 pool"] and rows["weight decay"]["paper"] == 1.6
    assert rows["weight decay"]["plain_adversarials_error"]["total"] == 6 and rows["hidden 2 pool"]["generated"] > 0
    assert rows["hidden 2 pool"]["test_error"]["total"] == 60 and len(rows["hidden 2 pool"]["distortions"]) == 6
    assert (
        all(r["from_cache"] for r in again["rows"].values())
        and again["rows"]["hidden 2 pool"]["test_error"] == rows["hidden 2 pool"]["test_error"]
    )
    with pytest.raises(ValueError, match=r"stage adversarial_training has settings for \['t'\], not for 'quick'"):
        adversarial_training(run("quick"), stage)

"""The L-BFGS attack on small models: correctness of what it returns, its options, targets,
untargeted mode, independence from batch-mates, and errors on bad input."""

import math

import pytest
import torch

from intriguing_fast.attack import (
    LBFGSAttack,
    all_other_targets,
    attack_engine,
    lbfgs_attack,
    least_likely_targets,
    random_targets,
)
from intriguing_fast.attack.memory import chunk_size
from intriguing_fast.attack.objective import AttackObjective
from intriguing_fast.attack.search import CSearch

SIDE, CLASSES = 8, 10


def toy_data(count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic 8x8 'digits': a smooth random prototype per class plus noise, in [0, 1]."""
    gen = torch.Generator().manual_seed(1234)
    protos = torch.nn.functional.avg_pool2d(torch.rand(CLASSES, 1, SIDE + 2, SIDE + 2, generator=gen), 3, 1)
    gen.manual_seed(seed)
    labels = torch.randint(CLASSES, (count,), generator=gen)
    images = (protos[labels] + 0.15 * torch.randn(count, 1, SIDE, SIDE, generator=gen)).clamp(0, 1)
    return images, labels


def toy_mlp(hidden: int = 32, seed: int = 0) -> torch.nn.Module:
    """A sigmoid MLP (the paper's FC architecture, scaled down) trained briefly on toy_data."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(SIDE * SIDE, hidden),
        torch.nn.Sigmoid(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.Sigmoid(),
        torch.nn.Linear(hidden, CLASSES),
    )
    images, labels = toy_data(2000, seed=1)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine a second one mostly spins and waits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def mlp() -> torch.nn.Module:
    return toy_mlp()


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return toy_data(24, seed=2)


def test_toy_model_is_trained(mlp):
    images, labels = toy_data(500, seed=3)
    assert (mlp(images).argmax(1) == labels).double().mean() > 0.9


def test_adversarials_in_box_and_classified_as_claimed(mlp, data):
    images, labels = data
    res = lbfgs_attack(mlp, images, "random", labels=labels, seed=5)
    assert bool(res.success.all())
    assert res.adversarial.shape == images.shape and res.adversarial.dtype == images.dtype
    assert (res.adversarial >= 0).all() and (res.adversarial <= 1).all()
    fresh = mlp(res.adversarial).argmax(1)
    assert torch.equal(fresh, res.targets) and torch.equal(res.predicted, res.targets)
    assert torch.equal(res.targets, random_targets(labels, CLASSES, seed=5))
    assert torch.allclose(res.perturbation, res.adversarial - images)
    l2 = res.perturbation.flatten(1).norm(dim=1)
    assert torch.allclose(res.l2, l2) and torch.allclose(res.distortion, l2 / math.sqrt(SIDE * SIDE))
    assert (res.c > 0).all() and (res.nfev > res.nit).all() and (res.nit > 0).all()
    assert 0.01 < res.mean_distortion < 0.3


def test_already_classified_as_target_comes_back_unchanged(mlp, data):
    images, labels = data
    predicted = mlp(images).argmax(1)
    targets = random_targets(predicted, CLASSES, seed=0)
    targets[:5] = predicted[:5]
    res = lbfgs_attack(mlp, images, targets)
    assert res.already_adversarial.tolist() == [True] * 5 + [False] * (len(targets) - 5)
    assert torch.equal(res.adversarial[:5], images[:5])
    assert (res.distortion[:5] == 0).all() and res.success[:5].all() and res.c[:5].isnan().all()
    assert (res.nit[:5] == 0).all() and (res.distortion[5:] > 0).all()


class RowwiseMLP(torch.nn.Module):
    """A sigmoid MLP whose layers are products and sums along the last dimension, so that
    each row's output is bitwise the same whatever the batch (BLAS matrix products are not:
    their kernels, hence their rounding, change with the number of rows)."""

    def __init__(self, mlp: torch.nn.Module) -> None:
        super().__init__()
        self.layers = [m for m in mlp if isinstance(m, torch.nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for i, layer in enumerate(self.layers):
            h = (h[:, None, :] * layer.weight).sum(-1) + layer.bias
            h = torch.sigmoid(h) if i < len(self.layers) - 1 else h
        return h


def assert_rows_match(parts, full, exact: bool):
    for res, rows in parts:
        assert torch.equal(res.success, full.success[rows]) and torch.equal(res.targets, full.targets[rows])
        if exact:
            assert torch.equal(res.adversarial, full.adversarial[rows]) and torch.equal(res.nfev, full.nfev[rows])
        else:
            # BLAS rounding (1e-16) can tip one of the search's decisions (accept, lengthen, stop)
            # the other way; the image then ends at a neighbouring point: 2e-5 apart here with every
            # solve warm, 3.4e-4 with the default's pulled-back solve, whose descent from inside the
            # boundary carries a tipped decision further.
            assert torch.allclose(res.distortion, full.distortion[rows], rtol=1e-3)


@pytest.mark.parametrize("model_kind", ["rowwise", "mlp64"])
def test_result_does_not_depend_on_batch_mates_or_chunking(mlp, data, model_kind):
    """Bitwise with a batch-invariant model; to 1e-4 with BLAS layers in float64."""
    images, labels = data
    model = RowwiseMLP(mlp) if model_kind == "rowwise" else toy_mlp().double()
    images = images.to(next(model.layers[0].parameters()).dtype if model_kind == "rowwise" else torch.float64)
    targets = random_targets(labels, CLASSES, seed=1)
    full = lbfgs_attack(model, images, targets)
    mates = torch.tensor([3, 17, 0, 9])
    parts = [
        (lbfgs_attack(model, images[3:4], targets[3:4]), [3]),
        (lbfgs_attack(model, images[mates], targets[mates]), mates.tolist()),
        (lbfgs_attack(model, images, targets, batch_size=5), list(range(len(images)))),
    ]
    assert_rows_match(parts, full, exact=model_kind == "rowwise")


def test_deterministic(mlp, data):
    images, labels = data
    a = lbfgs_attack(mlp, images[:6], "random", labels=labels[:6], seed=4)
    b = lbfgs_attack(mlp, images[:6], "random", labels=labels[:6], seed=4)
    assert torch.equal(a.adversarial, b.adversarial) and torch.equal(a.targets, b.targets)


def test_warm_start_saves_evaluations_without_losing_quality(mlp, data):
    images, labels = data
    warm = lbfgs_attack(mlp, images, "random", labels=labels)
    cold = lbfgs_attack(mlp, images, "random", labels=labels, warm_start=False)
    assert warm.nfev.sum() < 0.9 * cold.nfev.sum()
    assert warm.mean_distortion <= 1.01 * cold.mean_distortion


def test_kept_curvature_saves_evaluations_without_losing_quality(mlp, data):
    images, labels = data
    kept = lbfgs_attack(mlp, images, "random", labels=labels)
    fresh = lbfgs_attack(mlp, images, "random", labels=labels, reuse_curvature=False)
    assert kept.success.all() and fresh.success.all()
    assert kept.nfev.sum() < 0.95 * fresh.nfev.sum()
    assert kept.mean_distortion <= 1.005 * fresh.mean_distortion


def test_smaller_temperature_gives_smaller_perturbations(mlp, data):
    images, labels = data
    sharp = lbfgs_attack(mlp, images, "random", labels=labels)
    literal = lbfgs_attack(mlp, images, "random", labels=labels, temperature=1.0)
    assert literal.success.all() and sharp.mean_distortion < literal.mean_distortion


def test_kappa_margin(mlp, data):
    images, labels = data
    res = lbfgs_attack(mlp, images, "random", labels=labels, kappa=2.0)
    plain = lbfgs_attack(mlp, images, "random", labels=labels)
    logits = mlp(res.adversarial)
    own = logits.gather(1, res.targets[:, None]).squeeze(1)
    others = logits.scatter(1, res.targets[:, None], -float("inf")).amax(1)
    assert res.success.all() and (own - others >= 2.0).all()
    assert (res.distortion > plain.distortion).all()


def test_untargeted_objective_is_a_consistent_pair(mlp, data):
    """Regression for advertorch's untargeted L-BFGS, which negates the loss but not its gradient."""
    images, labels = data
    model = toy_mlp().double()
    x = images[:4].flatten(1).double()
    obj = AttackObjective(
        model, x, (1, SIDE, SIDE), labels[:4], targeted=False, kappa=0.5, temperature=0.7, model_dtype=torch.float64
    )
    obj.c[:] = 0.3
    gen = torch.Generator().manual_seed(0)
    point = (x + 0.1 * torch.randn(x.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    f, g = obj(point, torch.arange(4))
    d = torch.randn(point.shape, generator=gen, dtype=torch.float64)
    eps = 1e-6
    fp, _ = obj(point + eps * d, torch.arange(4))
    fm, _ = obj(point - eps * d, torch.arange(4))
    assert torch.allclose((fp - fm) / (2 * eps), (g * d).sum(1), rtol=1e-5, atol=1e-8)
    # The loss falls as the true class's probability falls: its gradient pushes that logit down.
    assert torch.all(f >= 0.3 * (point - x).square().sum(1))


def test_untargeted_succeeds_the_right_way_round(mlp, data):
    images, labels = data
    predicted = mlp(images).argmax(1)
    wrong = labels.clone()
    wrong[:3] = (predicted[:3] + 1) % CLASSES  # the model already "misclassifies" these
    res = lbfgs_attack(mlp, images, "untargeted", labels=wrong)
    assert res.success.all() and (res.targets == -1).all()
    assert torch.equal(res.already_adversarial, predicted != wrong) and res.already_adversarial[:3].all()
    fresh = mlp(res.adversarial).argmax(1)
    assert (fresh != wrong).all() and torch.equal(fresh, res.predicted)
    targeted = lbfgs_attack(mlp, images, "random", labels=wrong)
    # Untargeted may pick the nearest wrong class: on average nearer than a random target.
    attacked = ~res.already_adversarial
    assert res.distortion[attacked].mean() < targeted.distortion[attacked].mean()


def test_target_helpers(mlp, data):
    images, labels = data
    t = random_targets(labels, CLASSES, seed=3)
    assert (t != labels).all() and torch.equal(t, random_targets(labels, CLASSES, seed=3))
    assert not torch.equal(t, random_targets(labels, CLASSES, seed=4))
    idx, every = all_other_targets(torch.tensor([2, 0]), 4)
    assert idx.tolist() == [0, 0, 0, 1, 1, 1] and every.tolist() == [0, 1, 3, 1, 2, 3]
    logits = mlp(images)
    assert torch.equal(least_likely_targets(logits), logits.argmin(1))
    res = lbfgs_attack(mlp, images[:2], "all", labels=labels[:2])
    assert len(res) == 2 * (CLASSES - 1) and res.success.all()
    assert torch.equal(res.image_index, torch.tensor([0] * 9 + [1] * 9))
    assert torch.equal(res.adversarial[9:].flatten(1)[:, 0] * 0 + res.labels[9:], labels[1].repeat(9))
    ll = lbfgs_attack(mlp, images[:4], "least_likely")
    assert torch.equal(ll.targets, logits[:4].argmin(1)) and ll.success.all()


def test_c_search_conventions():
    """ours: until a c fails, the secant in 1 / c from the clean image through the last success,
    within x1.5 to x10 (a first failure: / 10); once bracketed, where the margins' line crosses 0
    in log c, within the middle half of the bracket; cleverhans: its own convention, margins unused."""
    f64 = torch.float64
    ours = CSearch(torch.tensor([-1.0, -1.0, -2.0, -1.0], dtype=f64), "ours", 1.0)
    ours.update(torch.tensor([True, False, True, True]), torch.tensor([3.0, -1.0, 0.5, 100.0], dtype=f64))
    # secant factors (m - clean) / -clean: 4; a failure: / 10; 1.25 -> 1.5; 101 -> 10
    assert ours.c.tolist() == pytest.approx([4.0, 0.1, 1.5, 10.0])
    ours.update(torch.tensor([False, True, False, True]), torch.tensor([-1.0, 2.0, -3.0, 0.5], dtype=f64))
    # bracket [1, 4] with margins 3 and -1: 3/4 of the way in log c; [0.1, 1] with 2 and -1: 2/3;
    # [1, 1.5] with 0.5 and -3: 1/7, kept at 1/4; c = 10 succeeded again: secant factor 1.5
    assert ours.c.tolist() == pytest.approx([4**0.75, 10 ** (-1 / 3), 1.5**0.25, 15.0])
    assert ours.c_ok.tolist() == [1.0, 0.1, 1.0, 10.0] and ours.m_ok.tolist() == [3.0, 2.0, 0.5, 0.5]
    far = CSearch(torch.tensor([-1.0], dtype=f64), "ours", 1.0)
    far.update(torch.tensor([True]), torch.tensor([100.0], dtype=f64))
    far.update(torch.tensor([False]), torch.tensor([-0.01], dtype=f64))  # crossing near c_fail: clamped to 3/4
    assert far.c.tolist() == pytest.approx([10**0.75])
    ch = CSearch(torch.zeros(2, dtype=f64), "cleverhans", 100.0)
    ch.update(torch.tensor([False, True]), torch.zeros(2, dtype=f64))  # loss weight 1e-2 fails: x10; succeeds: halve
    assert ch.c.tolist() == pytest.approx([10.0, 200.0])
    ch.update(torch.tensor([True, False]), torch.zeros(2, dtype=f64))  # bracket: loss weights (1e-2, 1e-1) -> 0.055
    assert ch.c.tolist() == pytest.approx([1 / 0.055, 1 / 0.0075])


def test_cleverhans_convention_runs(mlp, data):
    images, labels = data
    res = lbfgs_attack(mlp, images[:8], "random", labels=labels[:8], search="cleverhans")
    assert res.success.all() and (mlp(res.adversarial).argmax(1) == res.targets).all()


def test_best_adversarial_is_kept_from_any_evaluation():
    model = torch.nn.Linear(4, 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]]))
        model.bias.zero_()
    x = torch.full((1, 4), 0.4, dtype=torch.float64)
    obj = AttackObjective(model, x, (4,), torch.tensor([1]), True, 0.0, 1.0, torch.float64)
    for shift in (-0.3, -0.1, 0.2, -0.05):  # class 1 wins when the first pixel is below 0
        obj(x - 0.4 + torch.tensor([[shift, 0, 0, 0]], dtype=torch.float64), torch.tensor([0]))
    assert obj.best_x[0, 0].item() == pytest.approx(-0.05) and obj.best_sq.item() == pytest.approx(0.45**2 + 3 * 0.16)


def test_model_mode_and_gradients_restored(data):
    images, labels = data
    model = toy_mlp().train()
    model.zero_grad(set_to_none=True)
    LBFGSAttack(steps=2)(model, images[:3], "random", labels=labels[:3])
    assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())


def test_class_and_function_agree(mlp, data):
    images, labels = data
    attack = LBFGSAttack(steps=4, engine=attack_engine(50))
    a = attack(mlp, images[:4], "random", labels=labels[:4])
    b = lbfgs_attack(mlp, images[:4], "random", labels=labels[:4], steps=4, engine=attack_engine(50))
    assert torch.equal(a.adversarial, b.adversarial)
    assert "steps=4" in repr(attack) and "max_iter=50, max_fun=100" in repr(attack)


def test_options_are_checked_on_construction():
    """Options fail when the attack is built, before any data is seen; the engine's settings
    are one typed object, whose own checks name the field."""
    with pytest.raises(ValueError, match="kappa: expected a finite float >= 0, got inf"):
        LBFGSAttack(kappa=float("inf"))
    with pytest.raises(TypeError, match="seed: expected an int, got 'a'"):
        LBFGSAttack(seed="a")
    with pytest.raises(TypeError, match="engine: expected an LBFGSBOptions, got dict"):
        LBFGSAttack(engine={"max_iter": 10})
    with pytest.raises(ValueError, match="backend: expected one of"):
        attack_engine(backend="gpu")
    with pytest.raises(ValueError, match="max_iter: expected an int >= 1"):
        attack_engine(-1)
    assert LBFGSAttack().resolved() == (0.1, 7, 1.0) and LBFGSAttack(search="cleverhans").resolved() == (1.0, 9, 100.0)
    assert LBFGSAttack().first_temperature == 1.0 and LBFGSAttack(temperature=0.3).first_temperature == 0.3


def test_engine_settings_reach_the_engine(mlp, data, monkeypatch):
    """The typed engine settings (backend and history dtype included) arrive unchanged."""
    import intriguing_fast.attack.chunk as chunk_module

    seen = []
    real = chunk_module.batch_solver

    def spy(fun, x0, lower, upper, options, start=None):
        seen.append(options)
        return real(fun, x0, lower, upper, options, start)

    monkeypatch.setattr(chunk_module, "batch_solver", spy)
    engine = attack_engine(20, backend="torch", history_dtype=torch.bfloat16)
    images, labels = data
    LBFGSAttack(steps=2, engine=engine)(mlp, images[:2], "random", labels=labels[:2])
    assert seen == [engine] and seen[0] is engine


def test_memory_budget_chunks_and_progress(mlp, data, capsys):
    images, labels = data
    model = RowwiseMLP(mlp)
    per_chunk = chunk_size(model, images[0], history=10, budget=20 * 64 * 4 * 44)
    assert 1 <= per_chunk < len(images)
    small = lbfgs_attack(model, images, "random", labels=labels, memory_budget=20 * 64 * 4 * 44, progress=True)
    whole = lbfgs_attack(model, images, "random", labels=labels)
    assert torch.equal(small.adversarial, whole.adversarial)
    assert "img" in capsys.readouterr().err


def test_conv_model_with_per_pixel_bounds():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5)
    )
    lower = torch.full((3, 1, 1), -1.0)
    upper = torch.tensor([1.0, 0.5, 2.0])[:, None, None]
    images = torch.rand(4, 3, 6, 6) * 0.5
    res = lbfgs_attack(model, images, "random", bounds=(lower, upper))
    assert res.adversarial.shape == images.shape and res.success.all()
    assert (res.adversarial >= lower).all() and (res.adversarial <= upper).all()


class Detached(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.detach())


@pytest.mark.parametrize(
    "case, match",
    [
        ("above", "inputs: images \\[1\\] lie outside"),
        ("nan", "inputs: contain NaN"),
        ("targets_shape", "targets: expected shape \\(24,\\)"),
        ("targets_range", "targets: class indices must lie in \\[0, 9\\]"),
        ("targets_float", "targets: expected an integer tensor"),
        ("labels_shape", "labels: expected shape"),
        ("targets_mode", "targets: expected a LongTensor or one of"),
        ("model_shape", "model: expected its output to be logits of shape \\[24, num_classes\\]"),
        ("model_nograd", "model: its logits do not depend on its input"),
        ("model_type", "model: expected a torch.nn.Module"),
        ("bounds", "bounds: lower of shape"),
        ("search", "search: expected one of"),
        ("kappa", "kappa: expected a finite float >= 0"),
        ("temperature", "temperature: expected None or a finite float in \\[0.001, 1000\\]"),
        ("steps", "steps: expected None or an int >= 1"),
        ("batch_size", "batch_size: expected None or an int >= 1"),
    ],
)
def test_bad_input_names_the_argument(mlp, data, case, match):
    images, labels = data
    targets = random_targets(labels, CLASSES)
    model, kw = mlp, {}
    if case == "above":
        images = images.clone()
        images[1, 0, 0, 0] = 1.5
    elif case == "nan":
        images = images.clone()
        images[2, 0, 3, 3] = float("nan")
    elif case == "targets_shape":
        targets = targets[:5]
    elif case == "targets_range":
        targets = targets.clone()
        targets[0] = 10
    elif case == "targets_float":
        targets = targets.double()
    elif case == "labels_shape":
        targets, kw = "random", dict(labels=labels[:3])
    elif case == "targets_mode":
        targets = "nearest"
    elif case == "model_shape":
        model = torch.nn.Sequential(mlp, torch.nn.Flatten(0))
    elif case == "model_nograd":
        model = Detached(mlp)
    elif case == "model_type":
        model = lambda x: mlp(x)  # noqa: E731
    elif case == "bounds":
        kw = dict(bounds=(torch.zeros(3), 1.0))
    else:
        kw = {
            "search": dict(search="lbfgs"),
            "kappa": dict(kappa=-1.0),
            "temperature": dict(temperature=0.0),
            "steps": dict(steps=0),
            "batch_size": dict(batch_size=0),
        }[case]
    with pytest.raises((ValueError, TypeError), match=match):
        lbfgs_attack(model, images, targets, **kw)

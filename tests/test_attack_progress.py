"""An attack call's progress: silent by default, a tqdm bar on request, or a callback that hears
of every finished solve (so it moves within one chunk), and a clear error for anything else."""

import math

import pytest
from test_attack import (  # noqa: F401
    one_thread,  # noqa: F401  (autouse fixture)
    toy_data,
    toy_mlp,
)

from intriguing_fast.attack import LBFGSAttack, lbfgs_attack
from intriguing_fast.attack.progress import AttackProgress


@pytest.fixture(scope="module")
def model():
    return toy_mlp()


@pytest.fixture(scope="module")
def images():
    return toy_data(12, seed=7)


def test_silent_by_default_even_over_several_chunks(model, images, capsys):
    LBFGSAttack(steps=3, batch_size=4)(model, images[0], "random", labels=images[1])
    lbfgs_attack(model, images[0][:4], "random", labels=images[1][:4], steps=3)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("progress,shown", [(True, "12/12"), ("attack toy on test", "attack toy on test")])
def test_a_bar_on_request(model, images, capsys, progress, shown):
    LBFGSAttack(steps=3)(model, images[0], "random", labels=images[1], progress=progress)
    err = capsys.readouterr().err
    assert "img" in err and shown in err


def test_a_callback_moves_with_the_solves_of_one_chunk(model, images):
    heard: list[AttackProgress] = []
    result = LBFGSAttack(steps=4)(model, images[0], "random", labels=images[1], progress=heard.append)
    done = [p.done for p in heard]
    assert all(isinstance(p, AttackProgress) for p in heard) and {p.total for p in heard} == {12}
    assert done == sorted(done) and done[-1] == 12
    within = {d for d in done if 0 < d < 12}  # heard before the one chunk ended, in quarter images
    assert len(within) >= 3 and any(d != int(d) for d in within), done
    assert all(p.finished == 0 and p.succeeded == 0 and math.isnan(p.mean_distortion) for p in heard[:-1])
    last = heard[-1]
    assert (last.finished, last.succeeded) == (12, int(result.success.sum()))
    assert last.mean_distortion == pytest.approx(result.mean_distortion)


def test_a_callback_counts_chunk_after_chunk(model, images):
    heard: list[AttackProgress] = []
    lbfgs_attack(model, images[0], "random", labels=images[1], progress=heard.append, steps=3, batch_size=5)
    done = [p.done for p in heard]
    assert done == sorted(done) and done[-1] == 12
    assert sorted({p.finished for p in heard}) == [0, 5, 10, 12]


def test_rows_not_images_for_all_targets(model, images):
    heard: list[AttackProgress] = []
    LBFGSAttack(steps=3)(model, images[0][:2], "all", labels=images[1][:2], progress=heard.append)
    assert heard[-1].total == heard[-1].finished == heard[-1].done == 18  # 2 images x 9 other classes


@pytest.mark.parametrize("bad", [3, 1.0, ["bar"]])
def test_a_bad_value_is_refused(model, images, bad):
    with pytest.raises(TypeError, match=r"progress: expected a bool, a str \(the bar's description\) or a callable"):
        lbfgs_attack(model, images[0][:2], "random", labels=images[1][:2], progress=bad)

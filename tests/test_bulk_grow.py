"""A bulk run grows: a rerun with more images keeps every chunk already computed (a finished
output split back into its chunks), computes only the new images, and gives each image the
target a fresh run gives it; work a rerun would drop, or whose images or labels changed, is
refused naming the argument."""

import pytest
import torch
from test_attack import RowwiseMLP, one_thread, toy_mlp  # noqa: F401  (one_thread: autouse fixture)
from test_attack_cli import Interrupted, args, files, interrupt_after  # noqa: F401  (files: fixture)

from intriguing_fast import bulk_attack as cli
from intriguing_fast.attack.targets import random_targets
from intriguing_fast.bulk.pieces import plan


class RowwiseToy(RowwiseMLP):
    """The toy MLP, each row's output bitwise the same whatever its batch-mates (a --model-class)."""

    def __init__(self) -> None:
        mlp = toy_mlp()
        super().__init__(mlp)
        self.mlp = mlp  # its weights in the state dict


def run(files, out, count, *extra, start=1, model=None):
    cli.main([a if a != "8" else str(count) for a in args(files, out, model=model)] + ["--start", str(start), *extra])
    return cli.load_adversarials(out)


def test_a_grown_run_computes_only_the_new_images_and_equals_a_fresh_one(files, tmp_path, monkeypatch, capsys):
    """Bitwise with a batch-invariant model: the chunks differ, each image's attack does not."""
    model = tmp_path / "rowwise.pt"
    torch.save(RowwiseToy().state_dict(), model)
    factory = ("--model-class", f"{__name__}:RowwiseToy")
    out = tmp_path / "adv.pt"
    run(files, out, 4, *factory, model=model)  # images 1..4: chunks 1-3 and 4
    calls = interrupt_after(monkeypatch, 99)  # records the first image of each attacked chunk
    grown = run(files, out, 8, *factory, model=model)
    assert calls == [5, 8]  # images 5-7 and 8 only
    monkeypatch.undo()
    fresh = run(files, tmp_path / "fresh.pt", 8, *factory, model=model)  # chunks 1-3, 4-6, 7-8
    assert grown["config"]["rows"] == fresh["config"]["rows"] == [1, 9]
    assert [p["rows"] for p in grown["config"]["pieces"]] == [[1, 4], [4, 5], [5, 8], [8, 9]]
    for name in cli.SAVED_FIELDS:
        assert torch.equal(grown[name], fresh[name]), name
    capsys.readouterr()
    calls = interrupt_after(monkeypatch, 0)
    run(files, out, 8, *factory, model=model)
    assert calls == [] and "already complete" in capsys.readouterr().out


def test_random_targets_depend_on_the_seed_and_the_index_only():
    labels = torch.randint(0, 10, (50,))
    whole = random_targets(labels, 10, seed=3)
    assert torch.equal(random_targets(labels[17:30], 10, seed=3, first=17), whole[17:30])
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="first: expected an int >= 0"):
            random_targets(labels, 10, first=bad)


def test_an_interrupted_growth_resumes_from_its_chunks(files, tmp_path, monkeypatch, capsys):
    out = tmp_path / "adv.pt"
    run(files, out, 4)
    interrupt_after(monkeypatch, 1)  # the first new chunk is saved, the second interrupted
    with pytest.raises(Interrupted):
        run(files, out, 8)
    assert not out.exists() and len(list((tmp_path / "adv.pt.parts").glob("chunk_*.pt"))) == 3
    calls = interrupt_after(monkeypatch, 99)
    grown = run(files, out, 8)
    assert calls == [8] and grown["success"].all()
    assert torch.equal(grown["image_index"], torch.arange(1, 9))


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"count": 3},
            "holds the attack of images 4..4 of --data file:{data}, which --start 1 --count 3 (images 1..3) leaves out",
        ),
        ({"start": 2, "count": 7}, "holds the attack of images 1..3 of --data file:{data}, which --start 2 --count 7"),
        ({"images": 2}, "--data file:{data}: the images of images 1..3 are not those it was made with"),
        ({"labels": 4}, "--data file:{data}: the labels of images 4..4 are not those it was made with"),
    ],
)
def test_dropped_or_changed_work_is_refused_naming_the_argument(files, tmp_path, capsys, change, message):
    data = tmp_path / "data.pt"
    data.write_bytes((files / "data.pt").read_bytes())
    out = tmp_path / "adv.pt"
    command = ["--data", f"file:{data}"]
    run(files, out, 4, *command)
    if "images" in change or "labels" in change:
        saved = torch.load(data)
        if "images" in change:
            saved["images"][change["images"]] = 1 - saved["images"][change["images"]]
        else:
            saved["labels"][change["labels"]] = (saved["labels"][change["labels"]] + 1) % 10
        torch.save(saved, data)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run(files, out, change.get("count", 4), *command, start=change.get("start", 1))
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert f"{cli.PROG}: error: {out}: " + message.format(data=data) in err
    assert out.exists() and not (tmp_path / "adv.pt.parts").exists()  # nothing touched
    run(files, out, change.get("count", 4), *command, "--overwrite", start=change.get("start", 1))


def test_plan_keeps_saved_spans_and_fills_the_gaps_in_chunks():
    assert plan([(4, 5), (1, 4)], 1, 12, 3) == [(1, 4), (4, 5), (5, 8), (8, 11), (11, 12)]
    assert plan([(6, 9)], 0, 9, 4) == [(0, 4), (4, 6), (6, 9)]
    assert plan([], 2, 2 + 7, 7) == [(2, 9)]

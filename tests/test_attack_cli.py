"""`python -m intriguing_fast.bulk_attack`: output, interruption and resume, checkpoint kinds."""
import subprocess
import sys

import pytest
import torch

from intriguing_fast import bulk_attack as cli
from intriguing_fast.models import get_spec
from test_attack import one_thread, toy_data, toy_mlp  # noqa: F401  (one_thread: autouse fixture)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    torch.save(toy_mlp(), root / "model.pt")
    images, labels = toy_data(10, seed=9)
    torch.save({"images": images, "labels": labels}, root / "data.pt")
    return root


def args(root, out, *extra):
    return ["--model", str(root / "model.pt"), "--data", f"file:{root / 'data.pt'}", "--start", "1",
            "--count", "8", "--targets", "random", "--chunk-size", "3", "--steps", "4", "--out", str(out), *extra]


def test_writes_adversarials_labels_and_figures(files, tmp_path):
    out = tmp_path / "adv.pt"
    cli.main(args(files, out))
    got = torch.load(out, weights_only=False)
    model = torch.load(files / "model.pt", weights_only=False)
    data = torch.load(files / "data.pt")
    assert got["adversarial"].shape == (8, 1, 8, 8) and got["success"].all()
    assert torch.equal(got["image_index"], torch.arange(1, 9))
    assert torch.equal(got["labels"], data["labels"][1:9])
    assert (got["targets"] != got["labels"]).all()
    assert torch.equal(model(got["adversarial"]).argmax(1), got["targets"])
    assert got["distortion"].shape == (8,) and got["config"]["count"] == 8
    assert not (tmp_path / "adv.pt.parts").exists()


class Interrupted(Exception):
    """Stands for Ctrl-C (pytest treats a real KeyboardInterrupt as ending the session)."""


def test_interrupted_run_resumes_without_redoing_chunks(files, tmp_path, monkeypatch):
    out = tmp_path / "adv.pt"
    real, calls, interrupt_at = cli._attack, [], [2]

    def flaky(*a, **k):
        calls.append(a[4])
        if len(calls) in interrupt_at:
            raise Interrupted
        return real(*a, **k)

    monkeypatch.setattr(cli, "_attack", flaky)
    with pytest.raises(Interrupted):
        cli.main(args(files, out))
    assert sorted(p.name for p in (tmp_path / "adv.pt.parts").glob("chunk_*")) == ["chunk_00000.pt"]
    calls.clear()
    interrupt_at.clear()
    cli.main(args(files, out))
    assert calls == [3, 6]  # the first chunk (images 0-2) was not redone
    whole = tmp_path / "whole.pt"
    monkeypatch.setattr(cli, "_attack", real)
    cli.main(args(files, whole))
    a, b = torch.load(out, weights_only=False), torch.load(whole, weights_only=False)
    assert torch.equal(a["adversarial"], b["adversarial"]) and torch.equal(a["targets"], b["targets"])


def test_resume_refuses_a_different_command(files, tmp_path, monkeypatch):
    out = tmp_path / "adv.pt"
    (tmp_path / "adv.pt.parts").mkdir()
    (tmp_path / "adv.pt.parts" / "config.json").write_text("{}")
    with pytest.raises(SystemExit, match="different command"):
        cli.main(args(files, out))


def test_state_dict_with_zoo_architecture(tmp_path):
    torch.manual_seed(0)
    model = get_spec("FC10(1e-4)").build()
    torch.save({"arch": "FC10(1e-4)", "state_dict": model.state_dict()}, tmp_path / "fc10.pt")
    images = torch.rand(3, 1, 28, 28)
    torch.save({"images": images, "labels": model(images).argmax(1)}, tmp_path / "data.pt")
    out = tmp_path / "adv.pt"
    cli.main(["--model", str(tmp_path / "fc10.pt"), "--data", f"file:{tmp_path / 'data.pt'}",
              "--targets", "least_likely", "--steps", "3", "--out", str(out)])
    got = torch.load(out, weights_only=False)
    assert got["success"].all() and torch.equal(model(got["adversarial"]).argmax(1), got["targets"])


def test_module_entry_point_shows_help():
    done = subprocess.run([sys.executable, "-m", "intriguing_fast.bulk_attack", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--targets" in done.stdout and "--out" in done.stdout
    assert "--backend" in done.stdout and "--history-dtype" in done.stdout

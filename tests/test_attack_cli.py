"""`python -m intriguing_fast.bulk_attack`: output, interruption and resume, changed inputs,
checkpoint kinds, zoo models trained or reused, progress bars, the lock, and one-line errors
that leave nothing behind."""

import fcntl
import importlib
import os
import shlex
import signal
import subprocess
import sys
import warnings

import pytest
import torch
from mnist_files import write_mnist
from test_attack import one_thread, toy_data, toy_mlp  # noqa: F401  (one_thread: autouse fixture)

from intriguing_fast import bulk_attack as cli
from intriguing_fast.attack import LBFGSAttack
from intriguing_fast.errors import CorruptFileError
from intriguing_fast.experiments import SCALES
from intriguing_fast.experiments.context import Run, RunConfig
from intriguing_fast.models import get_spec


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    torch.jit.save(torch.jit.script(toy_mlp()), root / "model.pt")
    torch.jit.save(torch.jit.script(toy_mlp(seed=1)), root / "other_model.pt")
    images, labels = toy_data(10, seed=9)
    torch.save({"images": images, "labels": labels}, root / "data.pt")
    return root


def args(root, out, *extra, model=None):
    return [
        "--model-file",
        str(model or root / "model.pt"),
        "--trust-model-code",
        "--data",
        f"file:{root / 'data.pt'}",
        "--start",
        "1",
        "--count",
        "8",
        "--targets",
        "random",
        "--chunk-size",
        "3",
        "--steps",
        "4",
        "--out",
        str(out),
        *extra,
    ]


def test_a_torchscript_archive_is_not_loaded_without_trust_model_code(files, tmp_path, monkeypatch, capsys):
    """An archive is code (its __setstate__ runs at load): without the flag it is never handed to
    torch.jit.load, and the error says how to load it and what that trusts."""
    loads = []
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: loads.append(a))
    argv = [a for a in args(files, tmp_path / "adv.pt") if a != "--trust-model-code"]
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and not loads
    assert (
        f"--model-file {files / 'model.pt'}: a TorchScript archive is code that runs when it is loaded and called; "
        "pass --trust-model-code" in err
    )
    assert not (tmp_path / "adv.pt.parts").exists()


def test_writes_adversarials_labels_and_digest(files, tmp_path):
    out = tmp_path / "adv.pt"
    cli.main(args(files, out))
    got = torch.load(out, weights_only=True)  # what a user without this package does
    assert cli.load_adversarials(out)["sha256"] == got["sha256"]
    model = torch.jit.load(str(files / "model.pt"))
    data = torch.load(files / "data.pt")
    assert got["adversarial"].shape == (8, 1, 8, 8) and got["success"].all()
    assert torch.equal(got["image_index"], torch.arange(1, 9))
    assert torch.equal(got["labels"], data["labels"][1:9])
    assert (got["targets"] != got["labels"]).all()
    assert torch.equal(model(got["adversarial"]).argmax(1), got["targets"])
    assert got["distortion"].shape == (8,) and got["config"]["rows"] == [1, 9]
    assert set(os.listdir(tmp_path)) == {"adv.pt"}  # no parts, lock or temporary file left


@pytest.mark.parametrize("flag, field", [("--restarts", "restarts"), ("--walk-steps", "walk_steps")])
def test_restarts_and_walk_steps_reach_the_attack_and_its_config(files, tmp_path, flag, field):
    plain, more = tmp_path / "plain.pt", tmp_path / "more.pt"
    cli.main(args(files, plain))
    cli.main(args(files, more, flag, "2"))
    a, b = torch.load(plain, weights_only=True), torch.load(more, weights_only=True)
    assert b["config"]["attack"][field] == 2 and a["config"]["attack"][field] == 0
    # restart 0 is the plain search, in a larger batch: BLAS rounding may move its end a little (test_attack.py)
    assert b["success"].all() and (b["distortion"] <= a["distortion"] * (1 + 1e-4)).all()
    assert (b["nfev"] > a["nfev"]).all()


def test_pull_back_reaches_the_attack_and_its_config(files, tmp_path):
    """A pulled-back solve (the default's) goes its own way: other adversarials, not always nearer ones."""
    plain, pulled = tmp_path / "plain.pt", tmp_path / "pulled.pt"
    cli.main(args(files, plain, "--pull-back", "0"))
    cli.main(args(files, pulled))
    a, b = torch.load(plain, weights_only=True), torch.load(pulled, weights_only=True)
    assert b["config"]["attack"]["pull_back"] == 0.5 and a["config"]["attack"]["pull_back"] == 0
    assert b["success"].all() and not torch.equal(a["distortion"], b["distortion"])


def test_fixed_rounds_reach_the_engine_and_give_the_compact_results(files, tmp_path):
    compact, fixed = tmp_path / "compact.pt", tmp_path / "fixed.pt"
    cli.main(args(files, compact, "--backend", "torch", "--rounds", "compact"))
    cli.main(args(files, fixed, "--backend", "torch", "--rounds", "fixed"))
    a, b = torch.load(compact, weights_only=True), torch.load(fixed, weights_only=True)
    assert [r["config"]["attack"]["engine"]["rounds"] for r in (a, b)] == ["compact", "fixed"]
    assert b["success"].all()
    # A BLAS model's rows depend on their batch-mates in the last bits, which can move a c search a little
    # (bitwise equal with a batch-invariant model: tests/test_fixed_rounds.py).
    torch.testing.assert_close(b["distortion"], a["distortion"], rtol=1e-2, atol=1e-6)


def test_load_adversarials_detects_an_altered_output(files, tmp_path):
    out = tmp_path / "adv.pt"
    cli.main(args(files, out))
    got = torch.load(out, weights_only=True)
    got["success"][0] = False
    torch.save(got, out)
    with pytest.raises(CorruptFileError, match="SHA-256"):
        cli.load_adversarials(out)
    torch.save({"adversarial": got["adversarial"]}, out)
    with pytest.raises(CorruptFileError, match="not a bulk_attack output"):
        cli.load_adversarials(out)


class Interrupted(Exception):
    """Stands for Ctrl-C (pytest treats a real KeyboardInterrupt as ending the session)."""


def interrupt_after(monkeypatch, chunks: int) -> list:
    """Make `_attack` raise Interrupted on its call number `chunks + 1`; returns the first image of each call."""
    real, calls = cli._attack, []

    def flaky(*a, **k):
        calls.append(a[4])
        if len(calls) == chunks + 1:
            raise Interrupted
        return real(*a, **k)

    monkeypatch.setattr(cli, "_attack", flaky)
    return calls


def test_interrupted_run_resumes_without_redoing_chunks(files, tmp_path, monkeypatch):
    out = tmp_path / "adv.pt"
    interrupt_after(monkeypatch, 1)
    with pytest.raises(Interrupted):
        cli.main(args(files, out))
    assert sorted(p.name for p in (tmp_path / "adv.pt.parts").glob("chunk_*")) == ["chunk_000000001-000000004.pt"]
    assert not (tmp_path / "adv.pt.lock").exists()
    calls = interrupt_after(monkeypatch, 99)  # records the calls, interrupts none
    bars = []
    monkeypatch.setattr(cli, "tqdm", lambda **k: _Bar(bars, **k))
    cli.main(args(files, out))
    assert calls == [4, 7]  # the first chunk (images 1-3) was not redone
    assert bars[0]["initial"] == 3 and bars[0]["total"] == 8  # the rate counts only new work
    whole = tmp_path / "whole.pt"
    monkeypatch.undo()
    cli.main(args(files, whole))
    a, b = cli.load_adversarials(out), cli.load_adversarials(whole)
    assert all(torch.equal(a[name], b[name]) for name in cli.SAVED_FIELDS)


@pytest.mark.parametrize("signal_name,status,word", [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated")])
def test_ctrl_c_and_sigterm_stop_in_one_line_that_says_how_to_resume(
    files, tmp_path, monkeypatch, capsys, signal_name, status, word
):
    out = tmp_path / "adv.pt"
    real, calls = cli._attack, []

    def signalled(*a, **k):  # the signal arrives during the second chunk
        calls.append(a[4])
        if len(calls) == 2:
            os.kill(os.getpid(), getattr(signal, signal_name))
        return real(*a, **k)

    monkeypatch.setattr(cli, "_attack", signalled)
    argv = args(files, out, "--no-progress")  # stderr holds the one line alone
    # Ctrl-C as a terminal delivers it, even where this process was started with SIGINT ignored (a background job).
    interactive = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(SystemExit) as ended:
            cli.main(argv)
    finally:
        signal.signal(signal.SIGINT, interactive)
    err = capsys.readouterr().err.strip().splitlines()
    assert ended.value.code == status and len(err) == 1, err
    assert err[0] == (
        f"python -m intriguing_fast.bulk_attack: {word}; 1 chunk saved in {out}.parts; resume with: "
        f"python -m intriguing_fast.bulk_attack {shlex.join(argv)}"
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is the command's only
    monkeypatch.setattr(cli, "_attack", real)
    cli.main(argv)  # the command it printed resumes: the rest is computed, the first chunk kept
    assert torch.load(out, weights_only=True)["success"].all()


def test_all_targets_resume_checks_rows_per_image(files, tmp_path, monkeypatch):
    """With --targets all a chunk holds num_classes - 1 rows per image: a saved one is reused as it is."""
    out = tmp_path / "adv.pt"
    interrupt_after(monkeypatch, 1)
    with pytest.raises(Interrupted):
        cli.main(args(files, out, "--targets", "all", "--count", "4", "--chunk-size", "2"))
    calls = interrupt_after(monkeypatch, 99)  # records the calls, interrupts none
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a chunk taken for damaged would warn
        cli.main(args(files, out, "--targets", "all", "--count", "4", "--chunk-size", "2"))
    assert calls == [3]
    assert torch.equal(cli.load_adversarials(out)["image_index"], torch.arange(1, 5).repeat_interleave(9))


class _Bar:
    """A silent stand-in for tqdm that records how it was made."""

    def __init__(self, record, **kwargs):
        record.append(kwargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass

    def set_postfix(self, **kwargs):
        pass


def test_rerun_of_a_finished_command_recomputes_nothing(files, tmp_path, monkeypatch, capsys):
    out = tmp_path / "adv.pt"
    cli.main(args(files, out))
    before = out.stat().st_mtime_ns
    calls = interrupt_after(monkeypatch, 0)
    cli.main(args(files, out, "--threads", "1", "--no-progress"))  # how a run goes is no input of its work
    assert calls == [] and out.stat().st_mtime_ns == before
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(f"already complete ({cli.summary(cli.load_adversarials(out))}); nothing recomputed")
    )


def test_changed_inputs_are_refused_unless_overwrite(files, tmp_path, monkeypatch, capsys):
    out, model = tmp_path / "adv.pt", tmp_path / "model.pt"
    model.write_bytes((files / "model.pt").read_bytes())
    interrupt_after(monkeypatch, 1)
    with pytest.raises(Interrupted):
        cli.main(args(files, out, model=model))
    monkeypatch.undo()
    capsys.readouterr()
    model.write_bytes((files / "other_model.pt").read_bytes())  # same command, other weights
    with pytest.raises(SystemExit) as exit_:
        cli.main(args(files, out, model=model))
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith(
        f"{cli.PROG}: error: {out}.parts: made with other inputs: the model (weights or code) changed (sha256"
    )
    cli.main(args(files, out, "--overwrite", model=model))
    assert not (tmp_path / "adv.pt.parts").exists()
    # A finished output of another command is refused too, then replaced with --overwrite.
    with pytest.raises(SystemExit):
        cli.main(args(files, out, "--kappa", "0.5", model=model))
    assert f"{out}: made with other inputs: the arguments changed (--kappa 0.0 -> 0.5)" in capsys.readouterr().err
    cli.main(args(files, out, "--kappa", "0.5", "--overwrite", model=model))
    assert cli.load_adversarials(out)["config"]["args"]["kappa"] == 0.5


def test_resuming_with_other_threads_is_refused_with_the_threads_to_resume(files, tmp_path, monkeypatch, capsys):
    """Other thread counts change a chunk's last bits: a resume would give an output equal to no
    uninterrupted run, so it is refused, naming the threads that resume it."""
    out = tmp_path / "adv.pt"
    interrupt_after(monkeypatch, 1)
    with pytest.raises(Interrupted):
        cli.main(args(files, out, "--threads", "1"))
    monkeypatch.undo()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        cli.main(args(files, out, "--threads", "2"))
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert (
        "the threads or device (they change the last bits of the arithmetic) changed (1 threads on cpu -> 2 "
        "threads on cpu); rerun with --threads 1 on cpu to resume it, or with --overwrite"
    ) in err
    cli.main(args(files, out, "--threads", "1"))
    assert cli.load_adversarials(out)["success"].all()


@pytest.mark.parametrize("damage, what", [("delete", "missing"), ("garble", "unreadable (")])
def test_a_lost_or_garbled_config_is_named_not_taken_for_a_version_change(
    files, tmp_path, monkeypatch, capsys, damage, what
):
    out = tmp_path / "adv.pt"
    interrupt_after(monkeypatch, 1)
    with pytest.raises(Interrupted):
        cli.main(args(files, out))
    monkeypatch.undo()
    capsys.readouterr()
    config = tmp_path / "adv.pt.parts" / "config.json"
    config.unlink() if damage == "delete" else config.write_text('{"version": ')
    with pytest.raises(SystemExit) as exit_:
        cli.main(args(files, out))
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"{cli.PROG}: error: {config}: {what}") and "--overwrite" in err and "version" not in err
    cli.main(args(files, out, "--overwrite"))
    assert cli.load_adversarials(out)["success"].all()


def test_another_run_holding_the_lock_is_refused(files, tmp_path, capsys):
    out = tmp_path / "adv.pt"
    with open(tmp_path / "adv.pt.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        with pytest.raises(SystemExit) as exit_:
            cli.main(args(files, out))
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == f"{cli.PROG}: error: another run holds {out}.lock (pid 4242)"
    assert not out.exists() and not (tmp_path / "adv.pt.parts").exists()


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--chunk-size", "0"], "--chunk-size: expected an integer >= 1"),
        (["--chunk-size", "-1"], "--chunk-size: expected an integer >= 1"),
        (["--count", "0"], "--count: expected an integer >= 1"),
        (["--steps", "0"], "--steps: expected an integer >= 1"),
        (["--start", "-1"], "--start: expected an integer >= 0"),
        (["--targets", "nearest"], "--targets: invalid choice"),
        (["--start", "10"], "--start 10: beyond the 10 images"),
        (["--kappa", "-1"], "kappa: expected a finite float >= 0"),
        (["--restarts", "-1"], "--restarts: expected an integer >= 0"),
        (["--walk-steps", "-1"], "--walk-steps: expected an integer >= 0"),
        (["--pull-back", "1"], "pull_back: expected None or a float in [0, 1), got 1.0"),
        (["--early-ftol", "nan"], "early_ftol: expected None or a float in [0, 1), got nan"),
        (["--data", "mnist"], "--data: expected mnist:train|test|P1|P2 or file:PATH"),
        (["--data", "file:/nonexistent/data.pt"], "--data: no file /nonexistent/data.pt"),
        (["--model-file", "/nonexistent/model.pt"], "--model-file: no file /nonexistent/model.pt"),
        (["--model-file", "DATA"], "a state dict, whose architecture the file does not hold: name it with --arch"),
        (["--model-file", "DATA", "--arch", "FC10"], "architecture 'FC10' is not in the model zoo"),
        (["--model-file", "DATA", "--arch", "FC10(1e-4)"], "not a state dict of FC10(1e-4)"),
        (["--flatten", "--model-file", "ZOO"], "the model fails on images of shape (64,)"),
        (["--model-file", "NAN"], "nan.pt: weights with NaN or inf: layers.0.weight"),
        (["--device", "tpu"], "--device: expected cpu, cuda or cuda:N, got 'tpu'"),
        (["--device", f"cuda:{torch.cuda.device_count()}"], "CUDA device(s) "),  # one more than there are
    ],
)
def test_invalid_input_is_one_line_exit_2_and_leaves_nothing(files, tmp_path, capsys, bad, message):
    out = tmp_path / "sub" / "adv.pt"
    if "ZOO" in bad:  # an FC10 state dict: fails on the 8x8 images
        torch.save(
            {"arch": "FC10(1e-4)", "state_dict": get_spec("FC10(1e-4)").build().state_dict()}, tmp_path / "fc10.pt"
        )
    if "NAN" in bad:  # a state dict of the zoo's FC10 with one NaN weight
        state = get_spec("FC10(1e-4)").build().state_dict()
        state["layers.0.weight"][0, 0] = float("nan")
        torch.save({"arch": "FC10(1e-4)", "state_dict": state}, tmp_path / "nan.pt")
    bad = [
        {"DATA": str(files / "data.pt"), "ZOO": str(tmp_path / "fc10.pt"), "NAN": str(tmp_path / "nan.pt")}.get(b, b)
        for b in bad
    ]
    with pytest.raises(SystemExit) as exit_:
        cli.main(args(files, out) + bad)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and err[-1].startswith(f"{cli.PROG}: error: ") and message in err[-1]
    assert not (tmp_path / "sub").exists()


def test_state_dict_with_zoo_architecture(tmp_path):
    torch.manual_seed(0)
    model = get_spec("FC10(1e-4)").build()
    torch.save({"arch": "FC10(1e-4)", "state_dict": model.state_dict()}, tmp_path / "fc10.pt")
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    images = torch.rand(3, 1, 28, 28)
    torch.save({"images": images, "labels": model(images).argmax(1)}, tmp_path / "data.pt")
    for checkpoint in (["fc10.pt"], ["bare.pt", "--arch", "FC10(1e-4)"]):
        out = tmp_path / f"adv-{checkpoint[0]}"
        cli.main(
            [
                "--model-file",
                str(tmp_path / checkpoint[0]),
                *checkpoint[1:],
                "--data",
                f"file:{tmp_path / 'data.pt'}",
                "--targets",
                "least_likely",
                "--steps",
                "3",
                "--out",
                str(out),
            ]
        )
        got = cli.load_adversarials(out)
        assert got["success"].all() and torch.equal(model(got["adversarial"]).argmax(1), got["targets"])


def test_zoo_name_never_loads_a_file_of_that_name(files, tmp_path, monkeypatch):
    """`--model NAME` with a planted pickle named NAME in the working directory: the zoo model is used."""
    from faults import malicious_pickle

    marker = tmp_path / "PLANTED_PICKLE_RAN"
    monkeypatch.chdir(tmp_path)
    malicious_pickle(tmp_path / "FC10(1e-4)", marker)
    zoo = []
    monkeypatch.setattr(cli, "load_zoo_model", lambda name, args: zoo.append(name) or toy_mlp())
    cli.main(
        [
            "--model",
            "FC10(1e-4)",
            "--data",
            f"file:{files / 'data.pt'}",
            "--count",
            "2",
            "--steps",
            "2",
            "--out",
            str(tmp_path / "adv.pt"),
        ]
    )
    assert zoo == ["FC10(1e-4)"] and not marker.exists()


def test_module_entry_point_shows_help():
    done = subprocess.run(
        [sys.executable, "-m", "intriguing_fast.bulk_attack", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "--targets" in done.stdout and "--out" in done.stdout
    assert "--model-file" in done.stdout and "--overwrite" in done.stdout and "--debug" in done.stdout
    assert "--backend" in done.stdout and "--history-dtype" in done.stdout


def test_zoo_model_reuses_reproduce_checkpoints_and_announces_training(tmp_path, monkeypatch, capsys):
    """--scale quick finds the checkpoint `reproduce --scale quick` trained; a model not cached is
    trained (here by a stub) after one line naming it, its data, recipe and checkpoint path."""
    monkeypatch.setenv("INTRIGUING_FAST_CACHE", str(tmp_path / "cache"))
    write_mnist(tmp_path / "mnist", n_train=120, n_test=10)
    trained = []

    def fake_train(build, data, recipe, *, name="model", progress=True):
        trained.append(recipe)
        return build().eval()

    monkeypatch.setattr(importlib.import_module("intriguing_fast.models.trained"), "train_model", fake_train)
    name, spec = "FC100-100-10", get_spec("FC100-100-10")
    Run(
        RunConfig(
            scale=SCALES["quick"],
            out=tmp_path / "reproduce",
            data_dir=tmp_path / "mnist",
            progress=False,
            verify_data=False,
        )
    ).trained(name)
    assert trained == [SCALES["quick"].recipe(spec.recipe)] != [spec.recipe]
    bars = []
    monkeypatch.setattr(cli, "tqdm", lambda **k: _Bar(bars, **k))
    common = [
        "--model",
        name,
        "--data",
        "mnist:test",
        "--data-dir",
        str(tmp_path / "mnist"),
        "--no-verify-mnist",
        "--count",
        "2",
        "--steps",
        "2",
        "--max-iter",
        "5",
    ]
    cli.main([*common, "--scale", "quick", "--out", str(tmp_path / "quick.pt")])
    assert len(trained) == 1 and "training" not in capsys.readouterr().err
    assert bars[-1]["desc"] == f"attack {name} on mnist:test" and not bars[-1]["disable"]
    cli.main([*common, "--out", str(tmp_path / "paper.pt"), "--no-progress"])  # default --scale paper
    assert trained[1:] == [spec.recipe] and bars[-1]["disable"]
    note = capsys.readouterr().err.strip().splitlines()
    assert len(note) == 1 and note[0].startswith(
        f"training {name} on 120 MNIST training images (recipe of --scale paper: sgd "
    )
    checkpoint = note[0].rpartition("cached for next time in ")[2]
    assert checkpoint.startswith(str(tmp_path / "cache" / "models" / "FC100-100-10-")) and os.path.exists(checkpoint)


class _AttackBar(_Bar):
    """Records the images done (n) at each c-search round the attack reports in its postfix."""

    disable = False

    def __init__(self, record, **kwargs):
        super().__init__(record, **kwargs)
        self.n, self.rounds = 0, []

    def update(self, n):
        self.n += n

    def set_postfix_str(self, text, refresh=True):
        self.rounds.append((int(text.split(",")[0].split()[1]), self.n))


def test_attack_bar_moves_during_a_chunk_and_names_what_is_attacked(monkeypatch):
    """One chunk of 60 images: half way through its engine rounds, the bar shows 40% of them done
    (it counts each finished solve of the c search, not only each finished image), all at the end."""
    made, options = [], []
    monkeypatch.setattr(
        importlib.import_module("intriguing_fast.attack.progress"),
        "tqdm",
        lambda **k: made.append(_AttackBar(options, **k)) or made[-1],
    )
    images, labels = toy_data(60, seed=5)
    LBFGSAttack()(toy_mlp(), images, "random", labels=labels, progress="attack toy on test")
    (bar,), (made_with,) = made, options
    assert made_with["desc"] == "attack toy on test" and made_with["disable"] is False
    last = bar.rounds[-1][0]
    halfway = next(n for rounds, n in bar.rounds if rounds >= last / 2)
    assert bar.n == 60 and halfway >= 24, bar.rounds  # counting finished images only: 9 of 60

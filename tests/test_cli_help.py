"""The command lines read well: every option has help that shows its default, --data-dir lists
the MNIST lookup in the order the code follows, --threads is applied, and an expected failure
is one line with exit status 2."""

import argparse
import os
import pickle
import subprocess
import sys

import pytest
import torch

from intriguing_fast import bulk_attack, cli, reproduce
from intriguing_fast.engine import __main__ as engine_cli
from intriguing_fast.storage import exclusive_lock

PARSERS = {
    "reproduce": reproduce.build_parser,
    "bulk_attack": bulk_attack.build_parser,
    "engine": engine_cli.build_parser,
}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_option_has_help_and_shows_its_default(name):
    parser = PARSERS[name]()
    formatter = parser._get_formatter()
    options = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert "--threads" in {s for a in options for s in a.option_strings}
    for action in options:
        text = formatter._expand_help(action) if action.help else ""
        assert text.strip(), f"{name} {action.option_strings}: no help"
        if action.default is not None and action.nargs != 0:
            assert "default" in text, f"{name} {action.option_strings}: help does not show the default: {text!r}"
        assert "('" not in text and "['" not in text, f"{name} {action.option_strings}: a Python literal: {text!r}"


@pytest.mark.parametrize("name", ["reproduce", "bulk_attack"])
def test_help_documents_the_cache_and_the_mnist_lookup_in_order(name):
    text = PARSERS[name]().format_help()
    assert "INTRIGUING_FAST_CACHE" in text.split("environment:")[1]
    order = [
        "must exist",
        "$INTRIGUING_FAST_MNIST",
        "../shared/data/mnist",
        "$INTRIGUING_FAST_CACHE/mnist",
        "~/.cache/intriguing_fast/mnist",
        "downloaded (MD5-checked)",
        "embedded in the package",
    ]
    places = [cli.DATA_DIR_HELP.find(part) for part in order]
    assert -1 not in places and places == sorted(places), dict(zip(order, places))


@pytest.mark.parametrize("module", ["reproduce", "bulk_attack", "engine"])
def test_module_help_runs(module):
    done = subprocess.run([sys.executable, "-m", f"intriguing_fast.{module}", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--threads N" in done.stdout and "default" in done.stdout


def test_threads_is_applied_right_after_parsing():
    before = torch.get_num_threads()
    try:
        args = cli.parse_command(reproduce.build_parser(), ["--threads", "1"])
        assert args.threads == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "main, argv, message",
    [
        (engine_cli.main, ["--threads", "0"], "--threads: expected an int >= 1, got 0"),
        (engine_cli.main, ["--batch", "1000000000000", "--check", "1"], "the solver state of 1000000000000 problems"),
        (reproduce.main, ["--threads", "0"], "--threads: expected an integer >= 1, got 0"),
        (reproduce.main, ["--data-dir", "/nonexistent/mnist"], "no such directory: /nonexistent/mnist"),
        (
            bulk_attack.main,
            ["--model", "FC10(1e-4)", "--data-dir", "/nonexistent/mnist"],
            "no such directory: /nonexistent/mnist",
        ),
        (
            engine_cli.main,
            ["--seed", str(2**70)],
            "--seed: expected an integer in [0, 2**62), got 1180591620717411303424",
        ),
        (reproduce.main, ["--seed", "-1"], "--seed: expected an integer in [0, 2**62), got -1"),
        (
            bulk_attack.main,
            ["--model", "FC10(1e-4)", "--seed", str(2**62)],
            "--seed: expected an integer in [0, 2**62)",
        ),
        (reproduce.main, ["--dist-timeout", "-5"], "--dist-timeout: expected a finite number of seconds > 0, got -5"),
        (
            bulk_attack.main,
            ["--model", "FC10(1e-4)", "--dist-timeout", "nan"],
            "--dist-timeout: expected a finite number",
        ),
        (reproduce.main, ["--model-cache", "FILE"], "--model-cache FILE: not a directory"),
        (reproduce.main, ["--alexnet-weights", "PICKLE"], "PICKLE: refused: not a torch file of tensors"),
        (reproduce.main, ["--alexnet-weights", "FILE"], "FILE: refused: not a torch file of tensors"),
    ],
)
def test_an_expected_failure_is_one_line_and_exit_2(main, argv, message, tmp_path, capsys):
    """FILE: a file of random bytes, PICKLE: a pickle that would run code (a marker file says if it did)."""
    files = {"FILE": tmp_path / "random.bin", "PICKLE": tmp_path / "evil.pt"}
    files["FILE"].write_bytes(bytes(range(256)) * 4)
    files["PICKLE"].write_bytes(pickle.dumps(_Marker(tmp_path / "ran")))
    argv = [str(files.get(a, a)) for a in argv]
    message = message.replace("PICKLE", str(files["PICKLE"])).replace("FILE", str(files["FILE"]))
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--out", str(tmp_path / "out")] if main is not engine_cli.main else argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and message in err[-1] and ": error: " in err[-1]
    assert len(err) == 1 or err[0].startswith("usage:") and all(line.startswith(" ") for line in err[1:-1])
    assert not (tmp_path / "ran").exists()


class _Marker:
    """Unpickling it writes a marker file: a loader that unpickles code would leave one."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_reproduce_refuses_a_second_run_on_the_same_out(tmp_path, capsys):
    out = tmp_path / "report"
    with exclusive_lock(out / "reproduce.lock"):  # another run holds it
        with pytest.raises(SystemExit) as exit_:
            reproduce.main(["--scale", "tiny", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and err[-1].endswith(
        f"error: another run holds {out / 'reproduce.lock'} (pid {os.getpid()})"
    )
    assert not (out / "reproduce.lock").exists()

"""The command lines read well: every option has help that shows its default, --data-dir lists
the MNIST lookup in the order the code follows, --threads is applied, and an expected failure
is one line with exit status 2."""
import argparse
import subprocess
import sys

import pytest
import torch

from intriguing_fast import bulk_attack, cli, reproduce
from intriguing_fast.engine import __main__ as engine_cli

PARSERS = {"reproduce": reproduce.build_parser, "bulk_attack": bulk_attack.build_parser,
           "engine": engine_cli.build_parser}


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
    order = ["must exist", "$INTRIGUING_FAST_MNIST", "../shared/data/mnist", "$INTRIGUING_FAST_CACHE/mnist",
             "~/.cache/intriguing_fast/mnist", "downloaded (MD5-checked)", "embedded in the package"]
    places = [cli.DATA_DIR_HELP.find(part) for part in order]
    assert -1 not in places and places == sorted(places), dict(zip(order, places))


@pytest.mark.parametrize("module", ["reproduce", "bulk_attack", "engine"])
def test_module_help_runs(module):
    done = subprocess.run([sys.executable, "-m", f"intriguing_fast.{module}", "--help"], capture_output=True,
                          text=True)
    assert done.returncode == 0 and "--threads N" in done.stdout and "default" in done.stdout


def test_threads_is_applied_right_after_parsing():
    before = torch.get_num_threads()
    try:
        args = cli.parse_command(reproduce.build_parser(), ["--threads", "1"])
        assert args.threads == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("main, argv, message", [
    (engine_cli.main, ["--threads", "0"], "--threads: expected an int >= 1, got 0"),
    (engine_cli.main, ["--batch", "1000000000000", "--check", "1"], "the solver state of 1000000000000 problems"),
    (reproduce.main, ["--threads", "0"], "--threads: expected an integer >= 1, got 0"),
    (reproduce.main, ["--data-dir", "/nonexistent/mnist"], "no such directory: /nonexistent/mnist"),
    (bulk_attack.main, ["--model", "FC10(1e-4)", "--data-dir", "/nonexistent/mnist"],
     "no such directory: /nonexistent/mnist"),
])
def test_an_expected_failure_is_one_line_and_exit_2(main, argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--out", str(tmp_path / "out")] if main is not engine_cli.main else argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and message in err[-1] and ": error: " in err[-1]
    assert len(err) == 1 or err[0].startswith("usage:") and all(line.startswith(" ") for line in err[1:-1])

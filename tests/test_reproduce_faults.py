"""Faults injected into `python -m intriguing_fast.reproduce` at tiny scale: killed with SIGKILL
at seeded random moments and resumed, or its stored stages damaged, it must end with results
identical to an uninterrupted run, and name every file it had to recompute."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults import DAMAGES, damage_file
from mnist_files import write_mnist

from intriguing_fast.reproduce import main

TABLES = ("table3", "table4")  # three models: enough stages to kill between, and fast


def command(data: Path, out: Path, models: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "intriguing_fast.reproduce",
        "--scale",
        "tiny",
        "--only",
        ",".join(TABLES),
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--model-cache",
        str(models),
        "--no-progress",
        "--no-verify-mnist",
    ]


def tables(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    return {name: results[name] for name in TABLES}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    write_mnist(root / "mnist", n_train=600, n_test=120, learnable=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run(command(root / "mnist", root / "ref", root / "ref-models"), env=env, check=True, capture_output=True)
    return root, env, tables(root / "ref")


def count(directory: Path) -> int:
    return sum(1 for p in directory.rglob("*.pt")) if directory.exists() else 0


def test_sigkill_at_random_moments_then_resume_gives_identical_results(reference):
    root, env, expected = reference
    out, models = root / "killed", root / "killed-models"
    cmd = command(root / "mnist", out, models)
    rng = random.Random(12)
    # Kill while training (after the first and the last checkpoint), then while attacking (after
    # the first stage file), each a seeded random moment later: only whole files stay behind.
    for directory, files in ((models, 1), (models, 3), (out / "stages", 1)):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while count(directory) < files and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.5))
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (out / "results.json").exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert tables(out) == expected
    assert "corrupt" not in done.stderr  # a kill never leaves a damaged file under a final name


@pytest.mark.parametrize("sig,status,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_ctrl_c_or_sigterm_ends_in_one_line_that_resumes(reference, sig, status, word):
    root, env, expected = reference
    out, models = root / f"stopped-{status}", root / f"stopped-{status}-models"
    cmd = command(root / "mnist", out, models)
    # SIGINT as a terminal's Ctrl-C delivers it, even where pytest runs as a background job (SIGINT ignored).
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while count(models) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be stopped"
    proc.send_signal(sig)
    err = proc.communicate()[1].strip().splitlines()
    assert proc.returncode == status and len(err) == 1, err
    assert err[0].startswith(f"python -m intriguing_fast.reproduce: {word}; ")
    resume = err[0].split("; resume with: ")[1]
    assert resume.startswith("python -m intriguing_fast.reproduce --scale tiny") and str(out) in resume
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)  # what the line says to run
    assert done.returncode == 0, done.stderr
    assert tables(out) == expected


def test_damaged_stage_files_are_named_moved_aside_and_recomputed(reference, tmp_path):
    root, env, expected = reference
    out = root / "ref"
    stages = sorted((out / "stages").rglob("*.pt"))
    damaged = {path: damage_file(path, kind) for path, kind in zip(stages, DAMAGES)}
    with pytest.warns(RuntimeWarning) as caught:
        main(
            [
                "--scale",
                "tiny",
                "--only",
                ",".join(TABLES),
                "--data-dir",
                str(root / "mnist"),
                "--out",
                str(out),
                "--model-cache",
                str(root / "ref-models"),
                "--no-progress",
                "--no-verify-mnist",
            ]
        )
    messages = [str(w.message) for w in caught]
    for path, pattern in damaged.items():
        assert any(str(path) in m and __import__("re").search(pattern, m) for m in messages), (path, messages)
        assert path.with_name(path.name + ".corrupt").exists()
    assert not (out / "stages" / "PLANTED_PICKLE_RAN").exists()
    assert not any(p.name == "PLANTED_PICKLE_RAN" for p in out.rglob("*"))
    assert tables(out) == expected

"""`torchrun --nproc-per-node 2 -m intriguing_fast.reproduce` on CPU with gloo: the ranks share
out the training and the attacks, and rank 0's report holds exactly the numbers of a single
process; a rerun after a lost attack recomputes that attack only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from launch import torchrun_command
from mnist_files import write_mnist

from intriguing_fast.reproduce import main
from intriguing_fast.storage import load_verified

ROOT = Path(__file__).resolve().parents[1]
STAGES = "table3,adversarial_training"
TIMING = {"seconds", "attack_seconds", "eval_attack_seconds", "from_cache"}  # how a row was made, not what it is


def arguments(root: Path, out: Path) -> list[str]:
    return [
        "--scale",
        "tiny",
        "--data-dir",
        str(root / "mnist"),
        "--no-verify-mnist",
        "--only",
        STAGES,
        "--out",
        str(out),
        "--no-progress",
        "--threads",
        "1",
    ]  # one thread everywhere, rank 0 alone too


def torchrun(root: Path, out: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "INTRIGUING_FAST_CACHE": str(cache)}
    launcher = torchrun_command("-m", "intriguing_fast.reproduce")
    return subprocess.run([*launcher, *arguments(root, out)], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The single-process run, with one thread as each rank has (--threads 1 sets it; restored after)."""
    root = tmp_path_factory.mktemp("reproduce_distributed")
    write_mnist(root / "mnist", n_train=600, n_test=120, learnable=True)
    threads = torch.get_num_threads()
    mp = pytest.MonkeyPatch()
    mp.setenv("INTRIGUING_FAST_CACHE", str(root / "cache-single"))
    try:
        main(arguments(root, root / "single"))
    finally:
        mp.undo()
        torch.set_num_threads(threads)
    return root


def records(out: Path) -> dict[str, bool]:
    """Stage name -> whether the run found it cached."""
    return {r["name"]: r["cached"] for r in json.loads((out / "results.json").read_text())["meta"]["stages"]}


def test_two_ranks_write_the_single_process_report(single):
    run = torchrun(single, single / "two", single / "cache-two")
    assert run.returncode == 0, run.stderr[-3000:]
    one, two = (json.loads((single / name / "results.json").read_text()) for name in ("single", "two"))
    assert two["table3"] == one["table3"]
    rows_one, rows_two = one["adversarial_training"]["rows"], two["adversarial_training"]["rows"]
    assert rows_two.keys() == rows_one.keys()
    for name, row in rows_one.items():
        assert {k: v for k, v in rows_two[name].items() if k not in TIMING} == {
            k: v for k, v in row.items() if k not in TIMING
        }, name
    attacks = sorted((single / "single" / "stages").glob("attack_*.pt"))
    assert len(attacks) == 3
    for path in attacks:  # every attack stored bit for bit as one process stores it
        a, b = load_verified(path), load_verified(single / "two" / "stages" / path.name)
        assert a["key"] == b["key"] and a["value"].keys() == b["value"].keys()
        for field, value in a["value"].items():
            assert torch.equal(value, b["value"][field]), (path.name, field)
    # the models were trained once each, by one rank or the other, and rank 0 computed the stages
    assert {name for name in records(single / "two") if name.startswith("model/")} == {
        name for name in records(single / "single") if name.startswith("model/")
    }


def test_a_lost_attack_is_all_a_rerun_recomputes(single):
    out, cache = single / "resume", single / "cache-resume"
    first = torchrun(single, out, cache)
    assert first.returncode == 0, first.stderr[-3000:]
    lost = next((out / "stages").glob("attack_FC123*.pt"))
    kept = {path.name: path.stat().st_mtime_ns for path in (out / "stages").glob("attack_*.pt") if path != lost}
    lost.unlink()
    run = torchrun(single, out, cache)
    assert run.returncode == 0, run.stderr[-3000:]
    recomputed = {name for name, cached in records(out).items() if not cached}
    assert recomputed == {"attack/FC123-456-10 (P1)/test"}  # table3 is keyed by the attack's inputs, which held
    assert {p.name: p.stat().st_mtime_ns for p in (out / "stages").glob("attack_*.pt") if p.name in kept} == kept
    assert lost.exists()

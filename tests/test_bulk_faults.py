"""Faults injected into `python -m intriguing_fast.bulk_attack` on a tiny problem: killed with
SIGKILL at seeded random moments and resumed, run twice at once, its chunks damaged in every
way, or handed malicious pickles, it must end with the output of an uninterrupted run (or
refuse in one line), and never run code from a file."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from faults import DAMAGES, Planted, damage_file, malicious_pickle
from test_attack import one_thread  # noqa: F401  (autouse fixture: one intra-op thread, like the subprocesses)

from intriguing_fast import bulk_attack as cli
from intriguing_fast.errors import WriteFailedError
from intriguing_fast.models import get_spec
from intriguing_fast.storage import atomic_write, load_verified, save_verified

IMAGES, CHUNK = 60, 5
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def command(root: Path, out: Path) -> list[str]:
    return [
        "--model-file",
        str(root / "fc10.pt"),
        "--arch",
        "FC10(1e-4)",
        "--data",
        f"file:{root / 'data.pt'}",
        "--chunk-size",
        str(CHUNK),
        "--max-iter",
        "20",
        "--steps",
        "3",
        "--out",
        str(out),
    ]


def subprocess_command(root: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "intriguing_fast.bulk_attack", *command(root, out)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A random-weight FC10 (a bare state dict), random images, and the uninterrupted run's output."""
    root = tmp_path_factory.mktemp("bulk_faults")
    torch.manual_seed(0)
    model = get_spec("FC10(1e-4)").build()
    torch.save(model.state_dict(), root / "fc10.pt")
    images = torch.rand(IMAGES, 1, 28, 28)
    torch.save({"images": images, "labels": model(images).argmax(1)}, root / "data.pt")
    cli.main(command(root, root / "reference.pt"))
    return root, cli.load_adversarials(root / "reference.pt")


def assert_same(out: Path, expected: dict) -> None:
    got = cli.load_adversarials(out)
    assert got["config"] == expected["config"]
    for name in cli.SAVED_FIELDS:
        assert torch.equal(got[name], expected[name]), name
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith((out.name + ".", "." + out.name))]
    assert leftovers == [], leftovers  # no parts, lock or temporary file


def chunks(parts: Path) -> int:
    return len(list(parts.glob("chunk_*.pt"))) if parts.exists() else 0


def test_sigkill_at_random_moments_then_resume_gives_identical_output(reference, tmp_path):
    root, expected = reference
    out = tmp_path / "adv.pt"
    rng = random.Random(7)
    for after in (2, 7):  # kill a seeded random moment after `after` chunks are saved
        proc = subprocess.Popen(
            subprocess_command(root, out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while chunks(Path(f"{out}.parts")) < after and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.05))
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not out.exists() and chunks(Path(f"{out}.parts")) >= 7
    done = subprocess.run(subprocess_command(root, out), env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert_same(out, expected)
    again = subprocess.run(subprocess_command(root, out), env=ENV, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.strip().endswith("nothing recomputed"), again.stderr


def test_two_runs_at_once_on_one_output(reference, tmp_path):
    """The hostile tester's race: one run computes, the other is refused by the lock (or, had the
    first already finished, finds the output complete); neither crashes."""
    root, expected = reference
    out = tmp_path / "adv.pt"
    procs = [
        subprocess.Popen(
            subprocess_command(root, out), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(*p.communicate(), p.returncode) for p in procs]
    assert min(rc for _, _, rc in results) == 0, results
    for _, stderr, rc in results:
        assert rc == 0 or (
            rc == 2 and re.search(rf"error: another run holds {re.escape(str(out))}.lock \(pid \d+\)$", stderr.strip())
        ), (rc, stderr[-500:])
    assert_same(out, expected)


def damage(path: Path, kind: str, neighbour: Path) -> str:
    """Damage a chunk in place; returns the regex its warning must match. Beyond the shared kinds:
    a malicious pickle inside a valid digest, valid chunks holding the wrong rows, and a valid
    chunk of another run."""
    if kind in DAMAGES:
        return damage_file(path, kind)
    if kind == "verified pickle":
        save_verified({"adversarial": Planted(path.with_name("PLANTED_PICKLE_RAN"))}, path)
        return "unreadable"
    part = load_verified(neighbour if kind == "other rows" else path)
    if kind == "another run":  # a sound chunk of a run with other inputs, copied in
        save_verified({**part, "run": "0" * 64}, path)
        return r"made by another run \(config digest 000000000000, this run's [0-9a-f]{12}\)"
    if kind == "missing rows":
        part = {name: value[:2] if isinstance(value, torch.Tensor) else value for name, value in part.items()}
    save_verified(part, path)
    return "does not hold the rows" if kind == "other rows" else r"has \[2\] rows, expected 5"


class Interrupted(Exception):
    """Stands for a run stopped between its last chunk and the merge."""


def interrupt(*args) -> None:
    raise Interrupted


KINDS = (*DAMAGES, "verified pickle", "missing rows", "other rows", "another run")


def test_damaged_chunks_are_named_moved_aside_and_recomputed(reference, tmp_path, monkeypatch):
    root, expected = reference
    out = tmp_path / "adv.pt"
    monkeypatch.setattr(cli, "merge_chunks", interrupt)
    with pytest.raises(Interrupted):  # every chunk saved, nothing merged
        cli.main(command(root, out))
    monkeypatch.undo()
    paths = sorted(Path(f"{out}.parts").glob("chunk_*.pt"))
    assert len(paths) == IMAGES // CHUNK > len(KINDS)
    patterns = {path: damage(path, kind, paths[-1]) for path, kind in zip(paths, KINDS)}
    real, redone = cli._attack, []
    monkeypatch.setattr(cli, "_attack", lambda *a, **k: redone.append(a[4]) or real(*a, **k))
    with pytest.warns(RuntimeWarning) as caught:
        cli.main(command(root, out))
    messages = [str(w.message) for w in caught]
    for path, pattern in patterns.items():
        assert any(str(path) in m and re.search(pattern, m) for m in messages), (path, pattern, messages)
    assert redone == [CHUNK * k for k in range(len(KINDS))]  # the damaged chunks, nothing else
    assert not list(tmp_path.rglob("PLANTED_PICKLE_RAN"))
    assert_same(out, expected)


@pytest.mark.parametrize("flag", ["--model-file", "--data"])
def test_malicious_pickle_never_runs(reference, tmp_path, flag):
    """A pickle whose unpickling would create a marker file: refused in one line naming it, exit 2."""
    root, _ = reference
    evil, marker = tmp_path / "evil.pt", tmp_path / "PLANTED_PICKLE_RAN"
    malicious_pickle(evil, marker)
    cmd = subprocess_command(root, tmp_path / "adv.pt")
    at = cmd.index(flag) + 1
    cmd[at] = f"file:{evil}" if flag == "--data" else str(evil)
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, cwd=tmp_path)
    assert not marker.exists()
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"{cli.PROG}: error: {evil}: refused"), done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pt"]


@pytest.mark.parametrize(
    "fault",
    [
        OSError(28, "No space left on device"),
        RuntimeError(
            "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: file write failed"
        ),
    ],
)
def test_a_full_disk_is_named_with_the_file_and_the_space_left(tmp_path, fault):
    def write(handle):
        handle.write(b"partial")
        raise fault

    with pytest.raises(
        WriteFailedError,
        match=rf"^{re.escape(str(tmp_path / 'out.pt'))}: could not be written "
        r"\(.*\); [0-9.]+ MiB free on its file system$",
    ):
        atomic_write(tmp_path / "out.pt", write)
    assert not list(tmp_path.iterdir())  # no partial file left


def test_a_full_disk_at_the_merge_is_one_line_and_the_chunks_survive(reference, tmp_path, monkeypatch, capsys):
    root, expected = reference
    out = tmp_path / "adv.pt"
    real_save = torch.save

    def full(obj, f, *a, **k):  # the output's write fails as torch's zip writer reports a full disk
        if isinstance(obj, dict) and "sha256" in obj:
            raise RuntimeError(
                "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                "data/0: file write failed"
            )
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(SystemExit) as exit_:
        cli.main(command(root, out))
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and re.fullmatch(
        rf"{re.escape(cli.PROG)}: error: {re.escape(str(out))}: could not be "
        r"written \(.*\); [0-9.]+ MiB free on its file system",
        err[-1],
    )
    assert len(list(Path(f"{out}.parts").glob("chunk_*.pt"))) == IMAGES // CHUNK and not out.exists()
    monkeypatch.undo()
    cli.main(command(root, out))  # the chunks are reused: the same output as an uninterrupted run
    assert_same(out, expected)

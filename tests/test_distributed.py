"""`torchrun --nproc-per-node 2 -m intriguing_fast.bulk_attack` on CPU with gloo: the merged
output equals the single-process one bit for bit, a rerun computes only the missing chunks,
and a hung rank ends the run with one line within --dist-timeout instead of a hang."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from launch import torchrun_command
from test_attack import one_thread, toy_data, toy_mlp  # noqa: F401  (one_thread: autouse fixture)
from test_bulk_faults import assert_same

from intriguing_fast import bulk_attack as cli
from intriguing_fast.attack import LBFGSAttack
from intriguing_fast.bulk.pieces import piece_path
from intriguing_fast.distributed import Launch, shard
from intriguing_fast.storage import json_digest, save_verified

IMAGES, CHUNK = 40, 10
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def command(root: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model-file",
        str(root / "model.pt"),
        "--trust-model-code",
        "--data",
        f"file:{root / 'data.pt'}",
        "--chunk-size",
        str(CHUNK),
        "--max-iter",
        "20",
        "--steps",
        "3",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def torchrun(root: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    launcher = torchrun_command("-m", "intriguing_fast.bulk_attack")
    return subprocess.run(
        [*launcher, *command(root, out, *extra)], env=env or ENV, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny TorchScript MLP, 40 toy images, and the single-process output (one thread, as each rank)."""
    root = tmp_path_factory.mktemp("distributed")
    torch.jit.save(torch.jit.script(toy_mlp()), root / "model.pt")
    images, labels = toy_data(IMAGES, seed=5)
    torch.save({"images": images, "labels": labels}, root / "data.pt")
    torch.set_num_threads(1)
    cli.main(command(root, root / "reference.pt"))
    return root, cli.load_adversarials(root / "reference.pt")


def test_shard_and_launch():
    assert [list(shard(5, r, 2)) for r in range(2)] == [[0, 2, 4], [1, 3]]
    assert Launch(1, 2, 1, 2).threads() == max(1, (os.cpu_count() or 1) // 2)
    assert Launch(0, 4, 0, 4).threads() == max(1, (os.cpu_count() or 1) // 4)


def test_each_rank_takes_its_own_gpu():
    """--device: cpu as asked; cuda is cuda:LOCAL_RANK under torchrun (checked against the GPUs
    there are), cuda:N only for one process."""
    assert Launch().device("cpu") == torch.device("cpu")
    assert Launch().device("cuda", cuda_devices=1) == torch.device("cuda", 0)
    assert Launch().device("cuda:2", cuda_devices=4) == torch.device("cuda", 2)
    assert Launch(3, 4, 1, 2).device("cuda", cuda_devices=2) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="needs cuda:1, and 1 CUDA device"):
        Launch(1, 2, 1, 2).device("cuda", cuda_devices=1)
    with pytest.raises(ValueError, match="under torchrun pass --device cuda"):
        Launch(1, 2, 1, 2).device("cuda:1", cuda_devices=2)
    with pytest.raises(ValueError, match="no CUDA device|0 CUDA device"):
        Launch().device("cuda", cuda_devices=0)
    with pytest.raises(ValueError, match="expected cpu, cuda or cuda:N"):
        Launch().device("mps")


def test_two_ranks_give_the_single_process_output(reference, tmp_path):
    root, expected = reference
    out = tmp_path / "adv.pt"
    run = torchrun(root, out)
    assert run.returncode == 0, run.stderr
    assert_same(out, expected)
    again = torchrun(root, out)  # a finished command recomputes nothing
    assert again.returncode == 0 and "already complete" in again.stdout, again.stderr
    assert_same(out, expected)


class Interrupted(Exception):
    """Stands for Ctrl-C."""


def interrupt(*args, **kwargs):
    raise Interrupted


def test_rerun_computes_only_the_missing_chunks(reference, tmp_path, monkeypatch):
    """OUT.parts/ of an interrupted single-process run, with chunks 0 and 3 saved (chunk 0
    marked: nit = -7, still a sound file): the two ranks reuse both and compute chunks 1 and 2."""
    root, expected = reference
    out = tmp_path / "adv.pt"
    monkeypatch.setattr(cli, "_attack", interrupt)
    with pytest.raises(Interrupted):
        cli.main(command(root, out))  # leaves OUT.parts/config.json
    monkeypatch.undo()
    run = json_digest(json.loads(Path(f"{out}.parts/config.json").read_text()))  # the digest each chunk carries
    for k in (0, 3):
        piece = expected["config"]["pieces"][k]
        chunk = {name: expected[name][k * CHUNK : (k + 1) * CHUNK].clone() for name in cli.SAVED_FIELDS}
        if k == 0:
            chunk["nit"].fill_(-7)
        save_verified(chunk | {"run": run, "piece": piece}, piece_path(Path(f"{out}.parts"), *piece["rows"]))
    run = torchrun(root, out, "--threads", "1")  # the interrupted run's threads: the same arithmetic
    assert run.returncode == 0, run.stderr
    got = cli.load_adversarials(out)
    assert (got["nit"][:CHUNK] == -7).all()  # chunk 0 reused, not recomputed
    for name in cli.SAVED_FIELDS:
        rows = slice(CHUNK, None) if name == "nit" else slice(None)
        assert torch.equal(got[name][rows], expected[name][rows]), name
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def worker_pid(marker: str, rank: int, timeout: float = 60) -> int:
    """The pid of the torchrun worker of `rank` whose environment carries `marker`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            try:
                env = b"\0" + (entry / "environ").read_bytes() if entry.name.isdigit() else b""
            except OSError:
                continue
            if f"\0RUN_MARKER={marker}\0".encode() in env and f"\0RANK={rank}\0".encode() in env:
                return int(entry.name)
        time.sleep(0.05)
    raise AssertionError(f"no worker of rank {rank} appeared")


def test_a_hung_rank_ends_the_run_with_one_line(reference, tmp_path):
    """Rank 1 stopped (SIGSTOP) stands for a hung rank: rank 0 gives up after --dist-timeout with one line."""
    root, _ = reference
    out = tmp_path / "adv.pt"
    launcher = torchrun_command("-m", "intriguing_fast.bulk_attack")
    marker = tmp_path.name
    start = time.monotonic()
    proc = subprocess.Popen(
        [*launcher, *command(root, out, "--dist-timeout", "10")],
        env={**ENV, "RUN_MARKER": marker},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    hung = worker_pid(marker, 1)
    os.kill(hung, signal.SIGSTOP)
    try:
        _, stderr = proc.communicate(timeout=25)  # rank 0 fails at 10 s; torchrun then waits for the stopped rank
    except subprocess.TimeoutExpired:
        os.kill(hung, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - start < 90 and proc.returncode != 0
    # Stopped while joining the group or later, at a barrier: either way one line from rank 0.
    line = (
        r"error: rank 0: (joining the process group|waiting for the other ranks) failed: another rank died or "
        r"did not answer within --dist-timeout 10 s"
    )
    assert re.search(line, stderr), stderr


SCRIPT = """
import sys, torch
from intriguing_fast.attack import LBFGSAttack
from intriguing_fast.distributed import Group, Launch, distributed_attack
torch.set_num_threads(1)
model, data = torch.jit.load(sys.argv[1]), torch.load(sys.argv[2])
group = Group(Launch.from_env(), 60)
res = distributed_attack(LBFGSAttack(steps=3, seed=4, batch_size=7), model, data["images"], "random", group, labels=data["labels"],
                         chunk=7)
if group.launch.rank == 0:
    torch.save({k: v for k, v in vars(res).items() if k != "rounds"}, sys.argv[3])
group.close()
"""


def test_distributed_attack_gathers_the_chunks_in_order(reference, tmp_path):
    root, _ = reference
    (tmp_path / "script.py").write_text(SCRIPT)
    run = subprocess.run(
        torchrun_command(
            str(tmp_path / "script.py"), str(root / "model.pt"), str(root / "data.pt"), str(tmp_path / "res.pt")
        ),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    got = torch.load(tmp_path / "res.pt")
    model, data = torch.jit.load(str(root / "model.pt")), torch.load(root / "data.pt")
    for begin in range(0, IMAGES, 7):
        one = LBFGSAttack(steps=3, seed=4 + begin, batch_size=7)(
            model, data["images"][begin : begin + 7], "random", labels=data["labels"][begin : begin + 7]
        )
        for name, value in vars(one).items():
            if name != "rounds":
                expected = value + begin if name == "image_index" else value
                assert torch.equal(got[name][begin : begin + 7], expected), name


RELEASE = """
import os, socket, weakref, torch
import torch.distributed as dist
from intriguing_fast.distributed import Group, Launch
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(s.getsockname()[1]))
group = Group(Launch(), 60)
model = torch.nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
model(torch.ones(1, 2)).sum().backward()
optimizer.step()  # imports torch._dynamo, and with it torch.distributed.nn.functional
world = weakref.ref(dist.group.WORLD)
group.sum(1)
group.close()
assert world() is None, "the world group outlived Group.close()"
"""


def test_close_frees_the_group_after_training_in_the_same_process(tmp_path):
    """Group.close() frees the world group even when an optimizer step came after it was made: a
    group kept alive until the interpreter exits aborted a rank at exit, in 1 launch of 12."""
    (tmp_path / "release.py").write_text(RELEASE)
    run = subprocess.run(
        [sys.executable, str(tmp_path / "release.py")], env=ENV, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr

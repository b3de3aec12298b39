"""Several processes on one data set (launched by ``torchrun``): which chunks each rank
attacks, and the few collectives that tie the ranks together, each under a timeout so that a
dead or hung rank ends the others with one line instead of a hang.

Chunk ``k`` of a list goes to rank ``k % world``. In `distributed_attack` (the reproduction's
stages) chunk ``k`` is images ``k * chunk .. (k + 1) * chunk``, attacked exactly as a single
process attacks it (with ``--targets random``, seed ``attack.seed + begin``), so the gathered
result equals the single-process one row for row; the bulk CLI shards its own spans.
"""

from __future__ import annotations

import datetime
import glob
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist

# torch.distributed.nn.functional binds `group.WORLD` as its functions' default group when it is
# first imported, which torch._dynamo does on an optimizer's first step. Imported after
# init_process_group, it keeps the world group, and gloo's worker threads, alive past
# destroy_process_group, until the interpreter exits; a worker still freeing the last collective's
# tensor then aborts the process ("terminate called without an active exception"; 1 launch in 12
# of test_reproduce_distributed's). Imported now, before any group exists, its defaults are None.
import torch.distributed.nn.functional  # noqa: F401  (for the side effect above)

from .attack.lbfgs_attack import LBFGSAttack
from .attack.result import AttackResult
from .errors import IntriguingFastError
from .storage import exclusive_lock, one_line

T = TypeVar("T")


@dataclass(frozen=True)
class Launch:
    """This process's place in a launch: rank, world size, and its rank and count on its node."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @classmethod
    def from_env(cls) -> Launch:
        """The launch torchrun describes (WORLD_SIZE > 1, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE), else one process."""
        env = os.environ
        world = int(env.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(
            int(env["RANK"]), world, int(env.get("LOCAL_RANK", "0")), int(env.get("LOCAL_WORLD_SIZE", str(world)))
        )

    def threads(self) -> int:
        """This rank's fair share of the node's cores: max(1, cores // ranks on the node)."""
        return max(1, (os.cpu_count() or 1) // self.local_world)

    def device(self, requested: str, cuda_devices: int | None = None) -> torch.device:
        """The device this process attacks on: "cpu", or "cuda" (under torchrun each rank its own
        GPU, cuda:LOCAL_RANK) or "cuda:N" (one process only); checked against the `cuda_devices`
        there are (default: torch.cuda.device_count())."""
        try:
            device = torch.device(requested)
        except RuntimeError:
            device = None
        if device is None or device.type not in ("cpu", "cuda"):
            raise ValueError(f"--device: expected cpu, cuda or cuda:N, got {requested!r}")
        if device.type == "cpu":
            return device
        count = torch.cuda.device_count() if cuda_devices is None else cuda_devices
        if self.world > 1 and device.index is not None:
            raise ValueError(
                f"--device {requested}: under torchrun pass --device cuda; each rank takes cuda:LOCAL_RANK"
            )
        index = self.local_rank if self.world > 1 else (device.index or 0)
        if index >= count:
            raise ValueError(
                f"--device {requested}: this process needs cuda:{index}, and {count} CUDA device(s) "
                f"{'is' if count == 1 else 'are'} visible"
            )
        return torch.device("cuda", index)


def shard(count: int, rank: int, world: int) -> range:
    """The chunks (of ``count``) that rank ``rank`` of ``world`` attacks: k with k % world == rank."""
    return range(rank, count, world)


class Group:
    """The process group of a launch (gloo on CPU; NCCL, on ``cuda:LOCAL_RANK``, for CUDA),
    whose collectives fail after ``timeout`` seconds with one line naming this rank."""

    def __init__(self, launch: Launch, timeout: float, device: torch.device | None = None) -> None:
        device = device or torch.device("cpu")
        self.launch, self.timeout, self.device = launch, timeout, device
        if device.type == "cuda":
            torch.cuda.set_device(device)
        with self.collective("joining the process group"):
            dist.init_process_group(
                "nccl" if device.type == "cuda" else "gloo",
                rank=launch.rank,
                world_size=launch.world,
                timeout=datetime.timedelta(seconds=timeout),
            )

    @contextmanager
    def collective(self, what: str) -> Iterator[None]:
        """A failed or timed-out collective as one :class:`IntriguingFastError`."""
        try:
            yield
        except RuntimeError as exc:
            raise IntriguingFastError(
                f"rank {self.launch.rank}: {what} failed: another rank died or did not answer within "
                f"--dist-timeout {self.timeout:g} s ({one_line(exc)}); rerun the same command to resume "
                "from the saved chunks"
            ) from None

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj``, on every rank."""
        box = [obj]
        with self.collective("waiting for rank 0"):
            dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def sum(self, value: int) -> int:
        """The sum of ``value`` over the ranks (also a barrier)."""
        total = torch.tensor([value], dtype=torch.long, device=self.device)
        with self.collective("waiting for the other ranks"):
            dist.all_reduce(total)
        return int(total.item())

    def gather(self, obj: Any) -> list:
        """Every rank's ``obj``, in rank order."""
        out: list = [None] * self.launch.world
        with self.collective("gathering the results"):
            dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        dist.destroy_process_group()


def start_run(out: Path, prepare: Callable[[], T], group: Group | None, stack: ExitStack) -> T:
    """Rank 0 takes OUT.lock (held until `stack` closes), removes a write of OUT that a killed run
    left, and returns ``prepare()``; the other ranks return rank 0's answer, or fail naming its error."""
    if group is not None and group.launch.rank != 0:
        ok, answer = group.broadcast(None)
        if not ok:
            raise IntriguingFastError(f"rank {group.launch.rank}: rank 0 stopped: {answer}")
        return answer
    try:
        stack.enter_context(exclusive_lock(out.with_name(out.name + ".lock")))
        for tmp in out.parent.glob(f".{glob.escape(out.name)}.*.part"):  # a run killed while writing OUT left it
            tmp.unlink()
        answer = prepare()
    except Exception as exc:
        if group is not None:
            group.broadcast((False, one_line(exc)))
        raise
    if group is not None:
        group.broadcast((True, answer))
    return answer


def distributed_attack(
    attack: LBFGSAttack,
    model: torch.nn.Module,
    images: torch.Tensor,
    targets: Any,
    group: Group,
    labels: torch.Tensor | None = None,
    chunk: int = 1000,
) -> AttackResult:
    """Attack this rank's chunks of ``images`` (chunk k of ``chunk`` images: rank k % world,
    random targets seeded ``attack.seed + begin``) and gather every rank's rows, in order: the
    result of attacking the chunks one after another in one process, on every rank. ``targets``
    is a mode ("random", ...) or a LongTensor [N]."""
    spans = [(b, min(b + chunk, images.shape[0])) for b in range(0, images.shape[0], chunk)]
    mine = {}
    for k in shard(len(spans), group.launch.rank, group.launch.world):
        b, e = spans[k]
        res = replace(attack, seed=attack.seed + b)(
            model,
            images[b:e],
            targets if isinstance(targets, str) else targets[b:e],
            labels=None if labels is None else labels[b:e],
        )
        res.image_index = res.image_index + b
        mine[k] = {f.name: getattr(res, f.name) for f in fields(AttackResult)}
    gathered = {k: part for parts in group.gather(mine) for k, part in parts.items()}
    return AttackResult.concatenate([AttackResult(**gathered[k]) for k in range(len(spans))])

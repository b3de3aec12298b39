"""The torchrun launch the distributed tests share: two CPU ranks, with a rendezvous on a port
the launcher itself binds (`--standalone`), so no test can race another for a port."""

from __future__ import annotations

import sys


def torchrun_command(*target: str) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc-per-node 2`, then `target`: a script
    and its arguments, or "-m" and a module."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *target]

"""Threads on a shared CPU: how idle OpenMP threads wait, and how many threads torch and the
native core use.

OpenMP threads that spin while they wait for the next parallel region hold a core; when another
process needs it, every region waits for a descheduled spinner: beside one busy process an
attack with spinning threads collapses to a fraction of its speed (BENCHMARKS.md,
bench/bench_threads.py). A short spin (then sleep) keeps nearly all the idle
speed and degrades by about a fair share: the package sets ``GOMP_SPINCOUNT`` (libgomp, which
torch's CPU wheels and the native core share) before torch starts OpenMP, unless the user set it.
"""

from __future__ import annotations

import os

SPIN_ENV = "GOMP_SPINCOUNT"
BOUNDED_SPIN = "3000"  # spins before a waiting thread sleeps (libgomp's default: 300,000)
THREADS_HELP = (
    "threads for torch and the native core (default: torch's, one per physical core); on a shared "
    "machine fewer threads leave others their share"
)


def bound_spinning() -> None:
    """Set the bounded spin, unless the user chose one; effective only before OpenMP starts
    (i.e. before torch is imported), which `import intriguing_fast` and the command lines ensure."""
    os.environ.setdefault(SPIN_ENV, BOUNDED_SPIN)


def set_threads(threads: int | None) -> int:
    """Use `threads` threads in torch and the native core (None: keep torch's default, one per
    physical core); returns the count in use."""
    import torch

    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads: expected None or an int >= 1, got {threads!r}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()

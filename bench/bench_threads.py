"""Attack throughput on a shared CPU: the same attack alone and beside one busy process, for
the package's OpenMP waiting (a bounded spin, intriguing_fast/threads.py) and the alternatives.

Each configuration runs in a fresh process (OpenMP reads its settings once, at start); the
competitor is one single-threaded busy loop. A fair outcome is about 2x the idle time on a
2-core machine (the competitor takes one core); a collapse is 10x. Run:
  flock /tmp/heavy.lock python bench/bench_threads.py [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEADING = "## Threads on a shared CPU (bench/bench_threads.py; issue 13)"
# (label, extra environment, threads): the package's default first.
CONFIGS = (
    ("package default: GOMP_SPINCOUNT=3000 (set at import), 2 threads", {}, 2),
    ("libgomp's default spin (GOMP_SPINCOUNT=300000), 2 threads", {"GOMP_SPINCOUNT": "300000"}, 2),
    ("OMP_WAIT_POLICY=PASSIVE, 2 threads", {"OMP_WAIT_POLICY": "PASSIVE"}, 2),
    ("package default, --threads 1", {}, 1),
)


def worker(threads: int, count: int, model_cache: Path) -> None:
    """The measured workload: lbfgs_attack on `count` MNIST test images (one warm-up call first)."""
    import intriguing_fast  # first: it bounds the spin before torch starts OpenMP
    from intriguing_fast.attack import lbfgs_attack
    from intriguing_fast.data import load_mnist

    from subjects import quick_mlp

    intriguing_fast.set_threads(threads)
    model = quick_mlp(model_cache, 1)
    test = load_mnist("test")
    images, labels = test.images[:count], test.labels[:count]
    lbfgs_attack(model.eval(), images[:20], "random", labels=labels[:20])
    start = time.perf_counter()
    lbfgs_attack(model, images, "random", labels=labels)
    print(f"{time.perf_counter() - start:.4f}")


def timed_run(env: dict, threads: int, count: int, model_cache: Path) -> float:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            "--threads",
            str(threads),
            "--count",
            str(count),
            "--model-cache",
            str(model_cache.resolve()),
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent,
    )
    return float(done.stdout.strip().splitlines()[-1])


def measure(count: int, repeats: int, model_cache: Path) -> list[tuple[str, float, float]]:
    """Median seconds per configuration: idle, then beside one busy process."""

    def median(env: dict, threads: int) -> float:
        return statistics.median(timed_run(env, threads, count, model_cache) for _ in range(repeats))

    idle = {label: median(env, th) for label, env, th in CONFIGS}
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = {label: median(env, th) for label, env, th in CONFIGS}
    finally:
        competitor.kill()
    return [(label, idle[label], busy[label]) for label, _, _ in CONFIGS]


def report(rows: list[tuple[str, float, float]], args: argparse.Namespace) -> str:
    reference = min(idle for _, idle, _ in rows)  # the fastest lone run
    lines = [
        HEADING,
        "",
        f"`{args.command}` on {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch threads as listed: `lbfgs_attack` on {args.count} MNIST test images (bench MLP), median of "
        f"{args.repeats} fresh processes per cell; busy = beside one single-threaded busy loop.",
        "",
        "| configuration | idle s | busy s | busy / own idle | busy / fastest idle |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {label} | {idle:.2f} | {busy:.2f} | {busy / idle:.2f} | {busy / reference:.2f} |"
        for label, idle, busy in rows
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=1000, help="images attacked per run")
    p.add_argument("--repeats", type=int, default=3, help="fresh processes per cell (median)")
    p.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--model-cache",
        type=Path,
        default=Path(__file__).resolve().parents[1] / ".benchmarks" / "bench_attack_fc100-100-10_state.pt",
        help="the bench MLP's checkpoint (trained if missing)",
    )
    p.add_argument("--write", help="replace this benchmark's section of this markdown file")
    args = p.parse_args()
    if args.worker:
        return worker(args.threads, args.count, args.model_cache)
    from sections import emit

    args.command = "python bench/bench_threads.py" + (f" --write {args.write}" if args.write else "")
    emit(report(measure(args.count, args.repeats, args.model_cache), args), HEADING, args.write)


if __name__ == "__main__":
    main()

"""The engine's per-iteration optimizer cost against the batch B, the problem size n (784, 3072,
150528: MNIST, CIFAR, ImageNet-sized) and the history m, with peak memory: how the cpp backend
scales, where it sits against its memory-traffic bound, and what a longer history costs.

    flock /tmp/heavy.lock python bench/engine_scaling.py

Method: bench_engine_step.py's. The optimizer time per iteration is the median gap between the
calls of a cheap separable quadratic's fun once all B problems run with a full history (float32,
scalar bounds [0, 1], gtol = ftol = 0), best of --repeats rounds in cells of up to 2^22 variables
in all (B n), one round above. Each cell (backend, B, n, m) runs in a fresh process; its memory is
the peak RSS increase (ru_maxrss) over the process's baseline after the imports: the engine's
state, the quadratic's coefficients and fun's temporaries. Beside it, the estimate (2m + 10) B n
4 bytes: the engine's own (check_memory: 2m history rows and STATE_VECTORS [B, n] tensors) plus
the quadratic's two coefficient rows. The traffic bound is bench_engine_step.step_bytes over the
bandwidth of a torch copy of 256 MiB (out of cache), measured at the end of the run.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

import intriguing_fast
from intriguing_fast.engine.validation import STATE_VECTORS
from intriguing_fast.report.style import new_figure, save, styled

from bench_engine_step import copy_bandwidth, step_bytes, step_time

FIGURE = Path(__file__).resolve().parent / "figures" / "engine_scaling.png"
ROUNDS_UP_TO = 2**22  # cells with at most this many variables in all get --repeats rounds
COPY_BYTES = 2**28  # 256 MiB: out of cache here (2^30 measured the same)
Cell = tuple[str, int, int, int]  # (backend, B, n, m)


def estimate_bytes(B: int, n: int, m: int) -> int:
    """The solve's memory as estimated: the engine's check_memory (float32) plus the quadratic's a and c."""
    return (2 * m + STATE_VECTORS + 2) * B * n * 4


def bound_seconds(B: int, n: int, m: int, bandwidth: float) -> float:
    """Seconds per iteration at the memory-traffic bound (shared bounds, float32 history)."""
    return step_bytes(B, 4, 4, True, n, m) / bandwidth


def run_cell(cell: Cell, gaps: int, rounds: int, threads: int) -> tuple[float, int]:
    """(optimizer seconds per iteration, best of `rounds`; peak RSS increase in bytes) of one cell."""
    backend, B, n, m = cell
    intriguing_fast.set_threads(threads)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = min(step_time(B, backend, None, m + 2 + gaps, True, n=n, history=m)[0] for _ in range(rounds))
    return seconds, 1024 * (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)


def measure(args: argparse.Namespace) -> tuple[dict[Cell, tuple[float, int]], list[tuple[int, int, int]]]:
    """Every cell of the grid within --max-gb, each in a spawned process (its high-water mark its own)."""
    results, skipped = {}, []
    for n in args.n:
        for B in args.batch:
            for m in args.history:
                if estimate_bytes(B, n, m) > args.max_gb * 1e9:
                    skipped.append((B, n, m))
                    continue
                for backend in ("cpp", "torch") if B * n <= args.torch_max else ("cpp",):
                    rounds = args.repeats if B * n <= ROUNDS_UP_TO else 1
                    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                        results[backend, B, n, m] = pool.submit(
                            run_cell, (backend, B, n, m), args.gaps, rounds, args.threads
                        ).result()
                    print(
                        f"{backend} B={B} n={n} m={m}: {1e3 * results[backend, B, n, m][0]:.3f} ms/it",
                        file=sys.stderr,
                        flush=True,
                    )
    return results, skipped


def table(results: dict[Cell, tuple[float, int]], bandwidth: float) -> str:
    """Markdown rows of the cpp cells, with the torch reference where it ran."""
    lines = [
        "| n | B | m | cpp ms/it | cpp µs/problem/it | cpp / traffic bound | torch µs/problem/it | torch/cpp "
        "| estimate GB | peak RSS +GB | peak / estimate |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, B, n, m in sorted(results, key=lambda c: c[2:3] + c[1:2] + c[3:]):
        if backend != "cpp":
            continue
        seconds, peak = results["cpp", B, n, m]
        ref = results.get(("torch", B, n, m))
        estimate = estimate_bytes(B, n, m)
        lines.append(
            f"| {n} | {B} | {m} | {1e3 * seconds:.3f} | {1e6 * seconds / B:.2f} "
            f"| {seconds / bound_seconds(B, n, m, bandwidth):.2f} "
            f"| {f'{1e6 * ref[0] / B:.2f} | {ref[0] / seconds:.1f}x' if ref else '- | -'} "
            f"| {estimate / 1e9:.3f} | {peak / 1e9:.3f} | {peak / estimate:.2f} |"
        )
    return "\n".join(lines)


@styled
def plot(results: dict[Cell, tuple[float, int]], bandwidth: float, args: argparse.Namespace) -> None:
    """Three panels: µs per problem and iteration against B (median history) and against m (per n,
    the largest B measured at every m), both with the traffic bound dotted; peak memory against B n."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullLocator

    fig = new_figure(9.5, 3.0)
    ax_b, ax_m, ax_mem = fig.subplots(1, 3)
    m_ref = sorted(args.history)[len(args.history) // 2]
    per_problem = {c: 1e6 * t / c[1] for c, (t, _) in results.items()}
    for k, n in enumerate(args.n):
        colour = f"C{k}"
        bs = [B for B in args.batch if ("cpp", B, n, m_ref) in results]
        for backend, style in (("cpp", "o-"), ("torch", "x--")):
            xs = [B for B in bs if (backend, B, n, m_ref) in results]
            ax_b.plot(xs, [per_problem[backend, B, n, m_ref] for B in xs], style, color=colour, ms=3)
        ax_b.plot(bs, [1e6 * bound_seconds(1, n, m_ref, bandwidth)] * len(bs), ":", color=colour)
        full = [B for B in bs if all(("cpp", B, n, m) in results for m in args.history)]
        if full:
            B = max(full)
            ax_m.plot(
                args.history,
                [per_problem["cpp", B, n, m] for m in args.history],
                "o-",
                color=colour,
                ms=3,
                label=f"n = {n}, B = {B}",
            )
            ax_m.plot(args.history, [1e6 * bound_seconds(1, n, m, bandwidth) for m in args.history], ":", color=colour)
    for j, m in enumerate(args.history):
        cells = sorted(
            (B * n, peak, estimate_bytes(B, n, mm))
            for (be, B, n, mm), (_, peak) in results.items()
            if be == "cpp" and mm == m
        )
        ax_mem.plot([c[0] for c in cells], [c[1] / 1e9 for c in cells], "o", color=f"C{j}", ms=3, label=f"m = {m} peak")
        ax_mem.plot([c[0] for c in cells], [c[2] / 1e9 for c in cells], "-", color=f"C{j}", lw=0.8)
    ax_b.legend(
        [Line2D([], [], color=f"C{k}") for k in range(len(args.n))]
        + [Line2D([], [], color="k", ls=ls) for ls in ("-", "--", ":")],
        [f"n = {n}" for n in args.n] + ["cpp", "torch", "traffic bound"],
    )
    ax_b.set(title=f"per iteration against B (m = {m_ref})", xlabel="B (problems at once)")
    ax_m.set(title="against history m", xlabel="history m")
    ax_m.legend()
    ax_mem.set(
        title="peak RSS increase (line: estimate)",
        xlabel="B n (variables in all)",
        ylabel="GB",
        xscale="log",
        yscale="log",
    )
    ax_mem.legend()
    for ax in (ax_b, ax_m):
        ax.set(ylabel="µs per problem per iteration", yscale="log")
    ax_b.set(xscale="log", xticks=args.batch, xticklabels=args.batch)
    ax_b.xaxis.set_minor_locator(NullLocator())
    ax_m.set_xticks(args.history)
    for ax in (ax_b, ax_m, ax_mem):
        ax.grid(alpha=0.3, which="both", lw=0.4)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save(fig, args.out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 256, 2048], help="problems at once (B)")
    parser.add_argument("--n", type=int, nargs="+", default=[784, 3072, 150528], help="variables per problem")
    parser.add_argument("--history", type=int, nargs="+", default=[5, 10, 20], help="history sizes m")
    parser.add_argument("--max-gb", type=float, default=8.0, help="skip cells whose estimated memory exceeds this")
    parser.add_argument(
        "--torch-max",
        type=int,
        default=2**20,
        help="run the torch reference in cells of at most this many variables in all (B n)",
    )
    parser.add_argument("--gaps", type=int, default=10, help="iterations measured after the history is full")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help=f"rounds per cell of up to {ROUNDS_UP_TO} variables (best kept); larger cells get one",
    )
    parser.add_argument("--threads", type=int, default=1, help="threads for torch and the native core")
    parser.add_argument("--out", type=Path, default=FIGURE, help="where the PNG goes")
    parser.add_argument("--quick", action="store_true", help="a tiny grid that runs in seconds (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.n, args.history, args.repeats, args.gaps, args.torch_max = [1, 8], [784], [5], 1, 4, 784
    results, skipped = measure(args)
    intriguing_fast.set_threads(args.threads)
    bandwidth = copy_bandwidth(COPY_BYTES)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.threads} thread(s), float32, scalar bounds [0, 1]; copy bandwidth {bandwidth / 1e9:.1f} GB/s\n"
    )
    print(table(results, bandwidth))
    if skipped:
        print("\nskipped (estimate over --max-gb): " + ", ".join(f"B={B} n={n} m={m}" for B, n, m in skipped))
    plot(results, bandwidth, args)
    print(f"\nfigure: {args.out}")


if __name__ == "__main__":
    main()

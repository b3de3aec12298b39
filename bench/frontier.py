"""Ours against the attacks users would pick instead (bench/peers.py), side by side in one run:
the same model, images and random targets, one thread each, every method at several budgets.

For each method and budget: wall time (also relative to our default), images per second,
success checked here, independently of the method (the target is the arg-max AND every pixel
lies in [0, 1]), mean and median L2 of the perturbation over the successes, the paper's
distortion, model evaluations per image (rows through the model / images, counted by a wrapper
around the model, the same for every method; our median from the attack's own count), and the
median over images of the L2 ratio to our default where both succeed. Then the frontier (mean
L2 against wall time, PNG) and images per second against the number of images attacked at once
(PNG), and for every peer point whether some budget of ours reaches a mean L2 no larger in no
more time at 100% success.

    flock /tmp/heavy.lock python bench/frontier.py --write BENCHMARKS.md     # about 10 minutes
    python bench/frontier.py --quick --out /tmp/frontier                      # seconds: a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one thread for every method,
    os.environ[_threads] = "1"  # scipy's BLAS included: set before numpy and torch load

import torch  # noqa: E402

from intriguing_fast.attack import random_targets  # noqa: E402
from intriguing_fast.data import load_mnist  # noqa: E402
from intriguing_fast.report.style import new_figure, save, styled  # noqa: E402

import peers  # noqa: E402
from measure import measure  # noqa: E402
from sections import commit, emit  # noqa: E402
from subjects import quick_mlp  # noqa: E402

HEADING = "## Ours against foolbox, advertorch and scipy: the distortion-time frontier (bench/frontier.py; issue 17)"
ROOT = Path(__file__).resolve().parents[1]


def methods(quick: bool, missing: dict[str, str]) -> list[peers.Method]:
    """Every method at the budgets of the comparison (tiny ones with --quick)."""
    if quick:
        out = [peers.ours(), peers.ours(3, 20), peers.scipy_baseline(flat=False), peers.scipy_baseline(flat=True)]
        if not missing["foolbox"]:
            out += [
                peers.ddn(10),
                peers.fmn(10, corrected=False),
                peers.fmn(10, corrected=True),
                peers.carlini_wagner(2, 10),
            ]
        if not missing["advertorch"]:
            out += [peers.advertorch_lbfgs(2, 10)]
        return out
    # The default, and without its pulled-back solve; a closer one (lower T, more c steps and
    # iterations); fewer c steps and iterations at T = 0.1; the fewest at higher T, whose smoother
    # loss gets near the boundary in fewer steps.
    out = [
        peers.ours(),
        peers.ours(pull_back=0),
        peers.ours(9, 200, 0.05),
        peers.ours(5, 30),
        peers.ours(4, 20),
        peers.ours(3, 20),
        peers.ours(3, 10, 0.3),
        peers.ours(2, 12, 0.3),
        peers.ours(2, 10, 0.7),
        peers.scipy_baseline(flat=False),
        peers.scipy_baseline(flat=True),
    ]
    if not missing["foolbox"]:
        out += [peers.ddn(s) for s in (30, 100, 300, 1000)]
        out += [peers.fmn(s, corrected=c) for c in (False, True) for s in (100, 1000)]
        out += [peers.carlini_wagner(b, s) for b, s in ((5, 100), (9, 1000))]
    if not missing["advertorch"]:
        out += [peers.advertorch_lbfgs()]
    return out


def subset_mean(l2: list[float], of: list[float]) -> float:
    """Mean of l2 over the images where `of` succeeded (NaN marks a failure), inf if l2 fails on one."""
    sel = [a for a, b in zip(l2, of) if b == b]
    return sum(sel) / len(sel) if sel and all(a == a for a in sel) else float("inf")


def cheapest_win(rows: list[dict], peer: dict) -> dict | None:
    """The quickest budget of ours, at 100% success and in no more time than `peer`, whose mean L2
    over the images the peer succeeded on is no larger than the peer's; None if there is none."""
    mine = sorted(
        (r for r in rows if r["family"] == "intriguing_fast" and r["success"] == 1.0), key=lambda r: r["wall_s"]
    )
    return next(
        (m for m in mine if m["wall_s"] <= peer["wall_s"] and subset_mean(m["l2"], peer["l2"]) <= peer["mean_l2"]), None
    )


def dominated_by_ours(rows: list[dict]) -> list[str]:
    """For each peer point, a line: the budget of ours that beats it (`cheapest_win`), if any."""
    lines = []
    for r in rows:
        if r["family"] == "intriguing_fast":
            continue
        beat = cheapest_win(rows, r)
        if not r["success"]:
            verdict = "no success: nothing to compare"
        elif beat:
            verdict = (
                f"ours at {beat['budget']} ({beat['wall_s']:.2f} s, mean L2 "
                f"{subset_mean(beat['l2'], r['l2']):.4f} on the same images)"
            )
        else:
            verdict = "**no budget of ours** (the peer is on the frontier here)"
        lines.append(
            f"- {r['family']}, {r['budget']} ({r['wall_s']:.2f} s, mean L2 {r['mean_l2']:.4f}, "
            f"success {r['success']:.1%}): {verdict}"
        )
    return lines


def table(rows: list[dict]) -> list[str]:
    base = rows[0]
    lines = [
        "| method | budget | seconds | time / ours default | images/s | success | mean L2 | median L2 | "
        "paper's distortion | evaluations/image (mean; median) | L2 / ours per image (median) | "
        "all-zero images returned (successes among them) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratios = [a / b for a, b in zip(r["l2"], base["l2"]) if a == a and b == b and b > 0]
        median = f"; {r['median_evals']:.0f}" if r["median_evals"] is not None else ""
        scaled = "*" if r["timed_on"] < len(r["l2"]) else ""
        lines.append(
            f"| {r['family']} | {r['budget']} | {r['wall_s']:.2f}{scaled} | {r['wall_s'] / base['wall_s']:.2f}x | "
            f"{r['images_per_s']:.0f} | {r['success']:.1%} | {r['mean_l2']:.4f} | {r['median_l2']:.4f} | "
            f"{r['paper_distortion']:.5f} | {r['evals_per_image']:.0f}{median} | "
            f"{statistics.median(ratios) if ratios else float('nan'):.3f} | "
            f"{r['zero_images']} ({r['zero_successes']}) |"
        )
    return lines


@styled
def frontier_figure(rows: list[dict], path: Path) -> None:
    """Mean L2 against wall time, every method at every budget: all of it, and zoomed on the best."""
    fig = new_figure(9.0, 3.6)
    full, zoom = fig.subplots(1, 2)
    best = min(r["mean_l2"] for r in rows if r["success"] == 1.0)
    for family in dict.fromkeys(r["family"] for r in rows):
        sel = sorted((r for r in rows if r["family"] == family), key=lambda r: r["wall_s"])
        for ax in (full, zoom):
            (line,) = ax.plot(
                [r["wall_s"] for r in sel], [r["mean_l2"] for r in sel], "-", lw=1, label=family if ax is full else None
            )
            for r in sel:
                ax.plot(
                    r["wall_s"],
                    r["mean_l2"],
                    "o",
                    ms=4,
                    color=line.get_color(),
                    mfc=line.get_color() if r["success"] == 1.0 else "none",
                )
    for ax, title in ((full, "every method and budget"), (zoom, "zoomed: within 10% of the best mean L2")):
        ax.set_xscale("log")
        ax.set_xlabel("wall time, seconds (log)")
        ax.set_ylabel("mean L2 of the successful perturbations")
        ax.set_title(title)
    zoom.set_ylim(0.995 * best, 1.1 * best)
    fig.legend(loc="outside right center", frameon=False)
    fig.suptitle("The distortion-time frontier (hollow marker: success below 100%)")
    save(fig, path)


@styled
def throughput_figure(points: dict[str, list[tuple[int, float]]], path: Path) -> None:
    fig = new_figure(4.2, 3.0)
    ax = fig.add_subplot()
    for name, pts in points.items():
        ax.plot([b for b, _ in pts], [v for _, v in pts], "o-", ms=3, lw=1, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("images attacked at once (log)")
    ax.set_ylabel("images per second (log)")
    ax.legend(frameon=False)
    save(fig, path)


def throughput(
    model, images, labels, targets, sizes: list[int], missing: dict[str, str]
) -> dict[str, list[tuple[int, float]]]:
    """Images per second against the number of images attacked at once, ours and DDN 100."""
    chosen = [peers.ours()] + ([peers.ddn(100)] if not missing["foolbox"] else [])
    return {
        m.name: [(b, measure(m, model, images[:b], labels[:b], targets[:b])["images_per_s"]) for b in sizes]
        for m in chosen
    }


def run(args: argparse.Namespace) -> str:
    torch.set_num_threads(1)
    missing = peers.unavailable()
    model = quick_mlp(Path(args.model_cache), args.epochs).eval()
    test = load_mnist("test")
    with torch.no_grad():
        right = (model(test.images).argmax(1) == test.labels).nonzero().squeeze(1)
    error = 1 - len(right) / len(test.labels)
    images, labels = test.images[right[: args.count]], test.labels[right[: args.count]]
    targets = random_targets(labels, 10, seed=0)
    rows = []
    for method in methods(args.quick, missing):
        per_image = method.family == "scipy per image"
        rows.append(measure(method, model, images, labels, targets, args.per_image_subset if per_image else None))
        r = rows[-1]
        print(
            f"{method.name:<60} {r['wall_s']:8.2f} s  success {r['success']:.3f}  mean L2 {r['mean_l2']:.4f}  "
            f"evals/image {r['evals_per_image']:.0f}",
            flush=True,
        )
    sizes = [b for b in (1, 4, 16, 64, 256, 1024) if b <= len(images)] + (
        [len(images)] if len(images) not in (1, 4, 16, 64, 256, 1024) else []
    )
    points = throughput(model, images, labels, targets, sizes, missing)
    args.out.mkdir(parents=True, exist_ok=True)
    frontier_figure(rows, args.out / "frontier.png")
    throughput_figure(points, args.out / "throughput.png")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "throughput": points}, indent=1))
    figures = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
    skipped = [why for why in missing.values() if why]
    lines = [
        HEADING,
        "",
        f"`{args.command}`, {time.strftime('%Y-%m-%d')}, commit {commit()}, "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, one thread for every method "
        f"(torch and BLAS). {len(images)} correctly classified MNIST test images, random targets (seed 0), "
        f"FC100-100-10 sigmoid MLP trained {args.epochs} epochs with Adam (test error {error:.2%}). Success is "
        f"checked here: the target is the arg-max and every pixel lies in [0, 1]; L2 over the successes. Ours: "
        f"c from 1 / T, a secant step in 1 / c until bracketed, then regula falsi in log c, warm starts, "
        f"curvature kept across c steps, 4 steps of the boundary search (the defaults), at several c steps x "
        f"iterations and temperatures T. "
        f"Evaluations/image: rows through the model over images, counted the same way for every method "
        f"(our median from the attack's own count). Peers as shipped, with their documented defaults "
        f"except the budget; shims and the corrected FMN projection: bench/peers.py. * timed on the first "
        f"{args.per_image_subset} images (success and L2 over them), the time scaled to all.",
        "",
    ]
    lines += skipped and [f"Not run: {'; '.join(skipped)}.", ""]
    lines += table(rows)
    lines += [
        "",
        f"![frontier]({figures}/frontier.png) ![throughput]({figures}/throughput.png)",
        "",
        "Each peer point against ours (some budget of ours at 100% success, in no more time, with a mean L2 no "
        "larger on the images the peer succeeded on):",
        "",
    ]
    lines += dominated_by_ours(rows)
    lines += [
        "",
        "Images per second against images attacked at once: "
        + "; ".join(f"{name}: " + ", ".join(f"{b}: {v:.0f}" for b, v in pts) for name, pts in points.items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    p.add_argument("--count", type=int, default=500, help="correctly classified test images to attack (default 500)")
    p.add_argument("--epochs", type=int, default=20, help="training epochs of the subject model (default 20)")
    p.add_argument(
        "--model-cache",
        type=Path,
        default=ROOT / ".benchmarks" / "frontier_fc100-100-10_state.pt",
        help="the subject model's weights, trained once (default .benchmarks/...)",
    )
    p.add_argument(
        "--per-image-subset",
        type=int,
        default=50,
        help="images the per-image scipy baseline attacks; its time is scaled to --count (default 50)",
    )
    p.add_argument("--quick", action="store_true", help="tiny budgets: a smoke run, not a measurement")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "figures", help="where the two PNGs go")
    p.add_argument("--json", help="write every figure, per-image L2 included, to this file")
    p.add_argument("--write", help="replace this benchmark's section of this markdown file")
    args = p.parse_args()
    args.out = args.out.resolve()
    args.command = (
        "python bench/frontier.py"
        + (" --quick" if args.quick else "")
        + (f" --count {args.count}" if args.count != 500 else "")
        + (f" --write {args.write}" if args.write else "")
    )
    emit(run(args), HEADING, args.write)


if __name__ == "__main__":
    main()

"""The GPU checks of the Triton backend in one go (about 3 minutes on one H200):

  1. the Triton step tests, compiled on the GPU, and the launch/compile check (pytest);
  2. the engine end to end on CUDA against the torch reference on CPU (float64);
  3. the attack's rounds, kernel launches and host syncs per round, host and GPU time per round,
     in compact rounds and in the fixed-shape rounds of issue 29 (the default on CUDA), and
     whether the two give the same mean L2;
  4. the same per round on the SmallCNN of bench/attackbench.py (its cached weights, or one
     epoch trained here), a ReLU CNN;
  5. the table of issue #19: our attack at several settings against foolbox 3's DDN and
     Carlini-Wagner L2 on the same model, images and random targets.

Figures go to stdout and to OUT/gpu_check.json. A GPU machine may have torch and Triton but
no package index, no MNIST and no install of this package: the script runs from a checkout
(it puts the checkout on sys.path), installs what is missing (tqdm, pytest, foolbox and their
pure-Python dependencies) from local wheels (--wheels, default .wheels/, filled with
`pip download foolbox==3.3.4 tqdm pytest -d .wheels`), and reads MNIST from --data-dir. With
--device cpu it runs the same code small (a dry run of the script, not a measurement).

    python bench/gpu_check.py --data-dir .data/mnist --out $OUT
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ("tqdm", "pytest", "foolbox")  # beyond torch, Triton, numpy and scipy


def install_missing(wheels: Path) -> None:
    """pip-install, from the local wheels only, each of tqdm, pytest and foolbox that does not import."""
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels), *missing],
            check=True,
        )
        print(f"installed from {wheels}: {', '.join(missing)}", flush=True)


sys.path.insert(0, str(ROOT))  # the checkout, installed or not
if __name__ == "__main__":  # before the imports below, which need tqdm
    _early = argparse.ArgumentParser(add_help=False)
    _early.add_argument("--wheels", type=Path, default=ROOT / ".wheels")
    install_missing(_early.parse_known_args()[0].wheels)

from bench_rounds import SYNCING  # noqa: E402

from intriguing_fast import LBFGSAttack, attack_engine, minimize_lbfgsb, random_targets  # noqa: E402
from intriguing_fast.data import load_mnist  # noqa: E402
from intriguing_fast.engine.problems import softmax_attack  # noqa: E402

import peers  # noqa: E402
from subjects import quick_mlp, trained  # noqa: E402


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def step_tests() -> dict:
    """The kernel tests (compiled on the GPU when there is one) and the launch-path compile check."""
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_kernels_triton.py",
            "tests/test_kernels_triton_compile.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    return {
        "returncode": done.returncode,
        "summary": tail,
        "seconds": time.perf_counter() - start,
        "failures": done.stdout[-3000:] if done.returncode else "",
    }


def engine_check(device: str) -> dict:
    """float64 softmax-attack problems: triton on the device against the torch reference on CPU."""
    problem = softmax_attack(256, 784, c=0.05, seed=4)
    ref = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper, backend="torch", max_iter=50)

    def fun(x, index):
        f, g = problem.fun(x.cpu(), index.cpu())
        return f.to(x.device), g.to(x.device)

    args = [t.to(device) for t in (problem.x0, problem.lower, problem.upper)]
    res = minimize_lbfgsb(fun, *args, backend="triton" if device == "cuda" else "cpp", max_iter=50)
    return {
        "same_status": bool(torch.equal(res.status.cpu(), ref.status)),
        "same_nit": bool(torch.equal(res.nit.cpu(), ref.nit)),
        "max_abs_x_diff": float((res.x.cpu() - ref.x).abs().max()),
    }


def per_round(attack: LBFGSAttack, model, images, targets, device: str) -> dict:
    """Rounds of one attack, and per round: kernel launches, syncing calls, host and device time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        res, wall = timed(lambda: attack(model, images, targets, progress=False), device)
    events = prof.events()
    kernels = [e for e in events if e.device_type.name == "CUDA"]
    syncs = sum(1 for e in events if e.name in SYNCING and e.cpu_parent is None)
    device_us = sum(e.device_time_total for e in kernels) if kernels else 0.0
    rounds = res.rounds
    return {
        "images": len(images),
        "rounds": rounds,
        "wall_s": wall,
        "launches_per_round": len(kernels) / rounds,
        "syncing_calls_per_round": syncs / rounds,
        "wall_ms_per_round": 1e3 * wall / rounds,
        "device_ms_per_round": 1e-3 * device_us / rounds,
        "images_per_s": len(images) / wall,
        "mean_l2": float(res.l2.nanmean()),
        "success": float(res.success.double().mean()),
    }


def table(model, images, labels, targets, device: str, args) -> list[dict]:
    """Our attack at several settings and foolbox's DDN and CW (bench/peers.py): wall, images/s,
    success (the target is the arg-max, inside [0, 1]), mean L2 over the successes."""
    rows = []
    methods = [peers.ours(*budget) for budget in ((None, 100), (5, 30), (4, 20), (3, 10, 0.3), (2, 12, 0.3))]
    if peers.unavailable()["foolbox"]:  # e.g. scipy missing on the machine: keep our figures
        print(peers.unavailable()["foolbox"], flush=True)
    else:
        methods += [peers.ddn(100), peers.ddn(1000), peers.carlini_wagner(9, 1000)]
    for method in methods:
        count = args.cw_count if method.family == "foolbox Carlini-Wagner L2" else len(images)
        x, y, t = images[:count], labels[:count], targets[:count]
        method.run(model, x[:64], y[:64], t[:64])  # warm-up: compile, allocate
        (adv, _), wall = timed(lambda: method.run(model, x, y, t), device)
        adv = adv.detach().reshape(x.shape)
        with torch.no_grad():
            ok = (model(adv).argmax(1) == t) & ((adv >= 0) & (adv <= 1)).flatten(1).all(1)
        rows.append(
            {
                "method": method.name,
                "images": count,
                "wall_s": wall,
                "images_per_s": count / wall,
                "success": float(ok.double().mean()),
                "mean_l2": float((adv - x).flatten(1).norm(dim=1)[ok].double().mean()),
            }
        )
        print(
            f"{method.name:<48} {count:>6} {wall:>8.3f} s {count / wall:>10.0f} img/s  "
            f"success {rows[-1]['success']:.4f}  mean L2 {rows[-1]['mean_l2']:.4f}",
            flush=True,
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--count", type=int, default=10000, help="MNIST test images (the correctly classified are attacked)")
    p.add_argument("--cw-count", type=int, default=1000, help="images for Carlini-Wagner (slow)")
    p.add_argument("--wheels", type=Path, default=ROOT / ".wheels", help="local wheels of foolbox and its dependencies")
    p.add_argument("--out", type=Path, default=ROOT / ".benchmarks")
    p.add_argument(
        "--model-cache",
        type=Path,
        default=ROOT / ".benchmarks" / "bench_attack_fc100-100-10_state.pt",
        help="the bench MLP's checkpoint (trained if missing)",
    )
    p.add_argument(
        "--cnn-cache",
        type=Path,
        default=ROOT / ".benchmarks" / "attackbench" / "small_cnn.pt",
        help="the SmallCNN's weights (bench/attackbench.py's; trained for one epoch if missing)",
    )
    p.add_argument("--skip", default="", help="comma-separated parts to skip: tests,engine,rounds,cnn,table")
    p.add_argument("--data-dir", type=Path, help="the MNIST idx files (default: the package's lookup)")
    args = p.parse_args()
    skip = set(args.skip.split(","))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])  # for pytest
    if args.data_dir:
        os.environ["INTRIGUING_FAST_MNIST"] = str(args.data_dir.resolve())
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device")
    report: dict = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}
    if importlib.util.find_spec("triton"):
        import triton

        report["triton"] = triton.__version__
    print(json.dumps(report), flush=True)
    if "tests" not in skip:
        report["step_tests"] = step_tests()
        print("step tests:", report["step_tests"]["summary"], report["step_tests"]["failures"], flush=True)
    if "engine" not in skip:
        report["engine"] = engine_check(device)
        print("engine vs reference:", report["engine"], flush=True)
    model = quick_mlp(args.model_cache, epochs=5).to(device).eval()
    test = load_mnist("test")
    images, labels = test.images[: args.count].to(device), test.labels[: args.count].to(device)
    with torch.no_grad():
        right = model(images).argmax(1) == labels
    images, labels = images[right], labels[right]
    targets = random_targets(labels, 10, seed=0)
    report["model_test_error"] = 1 - float(right.double().mean())
    print(
        f"{len(images)} correctly classified of {args.count} test images (model error {report['model_test_error']:.4f})"
    )
    if "rounds" not in skip:
        report["per_round"] = {
            f"{b} images, {mode} rounds": per_round(
                LBFGSAttack(engine=attack_engine(rounds=mode)), model, images[:b], targets[:b], device
            )
            for b in sorted({min(4096, len(images)), len(images)})
            for mode in ("compact", "fixed")
        }
        print("per round:", json.dumps(report["per_round"], indent=1), flush=True)
    if "cnn" not in skip:
        cnn = trained("small_cnn", args.cnn_cache, epochs=1).to(device).eval()
        b = min(4096, len(images))
        x = images[:b].reshape(-1, 1, 28, 28)
        report["per_round_cnn"] = {
            f"{b} images, {mode} rounds": per_round(
                LBFGSAttack(engine=attack_engine(rounds=mode)), cnn, x, targets[:b], device
            )
            for mode in ("compact", "fixed")
        }
        print("per round, SmallCNN:", json.dumps(report["per_round_cnn"], indent=1), flush=True)
    if "table" not in skip:
        report["table"] = table(model, images, labels, targets, device, args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

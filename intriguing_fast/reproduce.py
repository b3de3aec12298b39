"""`python -m intriguing_fast.reproduce`: the paper's MNIST Tables 1-4, with a report.

Stages are cached under OUT/stages: a killed run restarts where it stopped.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from .experiments import SCALES, STAGES, RunConfig, run
from .report import write_report


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m intriguing_fast.reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick",
                        help="quick (default): 1000 attacked images per model and shortened training, minutes on a "
                             "CPU; paper: the paper's protocol (every training/test image), hours")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="directory with the four MNIST idx files (default: $INTRIGUING_FAST_MNIST, the cache, "
                             "../shared/data/mnist, a download, or the offline subset)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: reports/SCALE)")
    parser.add_argument("--only", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-cache", type=Path, default=None, help="checkpoint directory (default: the user cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    out = args.out or Path("reports") / args.scale
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = [s for s in only if s not in STAGES]
    if unknown:
        parser.error(f"--only: unknown stage(s) {unknown}; expected some of {list(STAGES)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to this torch build")
    start = time.perf_counter()
    results = run(RunConfig(scale=SCALES[args.scale], out=out, data_dir=args.data_dir, only=only, device=args.device,
                            seed=args.seed, model_cache=args.model_cache, progress=not args.no_progress))
    path = write_report(results, out)
    print(f"report: {path} ({time.perf_counter() - start:.0f} s)")
    return path


if __name__ == "__main__":
    main()

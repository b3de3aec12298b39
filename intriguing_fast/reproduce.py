"""`python -m intriguing_fast.reproduce`: the paper's MNIST Tables 1-4, with a report.

Stages are cached under OUT/stages: a killed run restarts where it stopped.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from .cli import add_data_options, add_debug_option, add_engine_options, engine_options, expected_errors
from .experiments import SCALES, STAGE_NAMES, RunConfig, run
from .report import write_report


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m intriguing_fast.reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick",
                        help="quick (default): 1000 attacked images per model and shortened training, minutes on a "
                             "CPU; paper: the paper's protocol (every training/test image), hours; tiny: 20 images "
                             "per model on a 1,200-digit subset, a check that everything runs (seconds)")
    add_data_options(parser)
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: reports/SCALE)")
    parser.add_argument("--only", default=",".join(STAGE_NAMES),
                        help=f"comma-separated stages, from {','.join(STAGE_NAMES)} (default: all)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-cache", type=Path, default=None, help="checkpoint directory (default: the user cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_engine_options(parser, max_iter=None)
    add_debug_option(parser)
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    out = args.out or Path("reports") / args.scale
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = [s for s in only if s not in STAGE_NAMES]
    if unknown or not only:
        parser.error(f"--only: expected one or more of {','.join(STAGE_NAMES)}, got {args.only!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to this torch build")
    args.max_iter = args.max_iter or scale.attack_max_iter
    engine = engine_options(args)
    start = time.perf_counter()
    with expected_errors(parser.prog, args.debug):
        results = run(RunConfig(scale=scale, out=out, data_dir=args.data_dir, only=only, device=args.device,
                                seed=args.seed, model_cache=args.model_cache, progress=not args.no_progress,
                                engine=engine, verify_data=args.verify_mnist))
        path = write_report(results, out)
    print(f"report: {path} ({time.perf_counter() - start:.0f} s)")
    return path


if __name__ == "__main__":
    main()

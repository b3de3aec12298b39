"""`python -m intriguing_fast.reproduce`: the paper's MNIST experiments, with a report.

Stages are cached under OUT/stages: a killed run restarts where it stopped. Trained models
are cached under $INTRIGUING_FAST_CACHE/models (or --model-cache); those of the default cache
trained at --scale quick or paper are reused by `python -m intriguing_fast.bulk_attack --scale`.
Under `torchrun --nproc-per-node N -m intriguing_fast.reproduce ...` the ranks share out the
training and the attacks, and rank 0 writes the report a single process writes.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from pathlib import Path

import torch

from .attack.options import PAPER_FTOL
from .cli import (
    add_data_options,
    add_debug_option,
    add_dist_timeout_option,
    add_engine_options,
    add_progress_option,
    add_threads_option,
    command_parser,
    engine_options,
    expected_errors,
    interrupts_in_one_line,
    parse_command,
)
from .distributed import Group, Launch
from .experiments import SCALES, STAGE_NAMES, RunConfig, run
from .models.alexnet import load_alexnet
from .seeds import seed_int
from .storage import exclusive_lock
from .threads import set_threads

PROG = "python -m intriguing_fast.reproduce"


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, __doc__)
    parser.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="quick",
        help="quick (default): 1000 attacked images per model and shortened training, minutes on a "
        "CPU; paper: the paper's protocol (every training/test image), hours; tiny: 20 images "
        "per model on a 1,200-digit subset, a check that everything runs (a minute or two)",
    )
    add_data_options(parser)
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: reports/SCALE)")
    parser.add_argument(
        "--only",
        default=",".join(STAGE_NAMES),
        help=f"comma-separated stages, from {','.join(STAGE_NAMES)} (default: all)",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where the models run and the attack solves: cpu, or cuda (a GPU build of torch; under "
        "torchrun each rank takes cuda:LOCAL_RANK)",
    )
    parser.add_argument(
        "--seed",
        type=seed_int,
        default=0,
        help="seed of the attacked images, their random targets, the noise controls and the P1/P2 "
        "halves of the training set (each recipe fixes its model's initialisation)",
    )
    parser.add_argument(
        "--model-cache", type=Path, default=None, help="checkpoint directory (default: $INTRIGUING_FAST_CACHE/models)"
    )
    parser.add_argument(
        "--alexnet-weights",
        type=Path,
        default=None,
        help="a local AlexNet state dict (torchvision's names; read with weights_only=True) for Table 5 "
        "(default: a seeded random initialisation, reported as such; nothing is downloaded)",
    )
    add_progress_option(parser)
    add_threads_option(parser)
    add_dist_timeout_option(parser, 3600.0, "a rank's share of the training or one attack chunk")
    add_engine_options(parser, max_iter=None)
    add_debug_option(parser)
    return parser


def main(argv: list[str] | None = None) -> Path | None:
    parser = build_parser()
    args = parse_command(parser, argv)
    scale = SCALES[args.scale]
    out = args.out or Path("reports") / args.scale
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = [s for s in only if s not in STAGE_NAMES]
    if unknown or not only:
        parser.error(f"--only: expected one or more of {','.join(STAGE_NAMES)}, got {args.only!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to this torch build")
    if args.model_cache is not None and args.model_cache.exists() and not args.model_cache.is_dir():
        parser.error(f"--model-cache {args.model_cache}: not a directory")
    args.max_iter = args.max_iter or scale.attack_max_iter
    engine = engine_options(args, ftol=PAPER_FTOL)  # the paper's attack (LBFGSAttack.paper)
    start = time.perf_counter()
    launch = Launch.from_env()
    # Under torchrun each rank takes its share of the node's cores, and rank 0 keeps it once
    # alone: other thread counts change the last bits of a model's outputs, and adversarials
    # the attack leaves right on the decision boundary would flip (0.2% of FC100-100-10's at
    # paper scale did when rank 0 evaluated them with 2 threads instead of 1).
    if launch.world > 1 and args.threads is None:
        set_threads(launch.threads())

    def saved() -> str:
        stages = out / "stages"
        return f"{len(list(stages.glob('*.pt'))) if stages.is_dir() else 0} finished stage result(s) kept in {stages}"

    with expected_errors(parser.prog, args.debug), interrupts_in_one_line(PROG, argv, saved), ExitStack() as stack:
        if launch.rank == 0:  # a second run on this OUT would redo every stage beside this one: refused
            stack.enter_context(exclusive_lock(out / "reproduce.lock"))
        if args.alexnet_weights is not None:  # refused now, not after the stages before Table 5
            load_alexnet(args.alexnet_weights)
        device = launch.device(args.device)
        group = Group(launch, args.dist_timeout, device) if launch.world > 1 else None
        results = run(
            RunConfig(
                scale=scale,
                out=out,
                data_dir=args.data_dir,
                only=only,
                device=str(device),
                seed=args.seed,
                model_cache=args.model_cache,
                progress=args.progress,
                engine=engine,
                verify_data=args.verify_mnist,
                alexnet_weights=args.alexnet_weights,
            ),
            group,
        )
        if results is None:  # a rank other than 0 under torchrun: its share is done
            return None
        from .report import write_report  # here: the report's matplotlib need not load for --help

        path = write_report(results, out)
    print(f"report: {path} ({time.perf_counter() - start:.0f} s)")
    return path


if __name__ == "__main__":
    main()

"""What the command lines share: the engine options of the attack and the MNIST lookup help."""
from __future__ import annotations

import argparse

import torch

from .attack import attack_engine
from .engine import LBFGSBOptions
from .kernels import BACKENDS

HISTORY_DTYPES = {"same": None, "bfloat16": torch.bfloat16}
DATA_DIR_HELP = ("directory with the four MNIST idx files (default: $INTRIGUING_FAST_MNIST, ../shared/data/mnist "
                 "beside the checkout, the cache $INTRIGUING_FAST_CACHE/mnist, a download, or the offline subset)")


def add_engine_options(parser: argparse.ArgumentParser, max_iter: int | None = 100) -> None:
    """--max-iter (None: the caller picks it, e.g. from the run's scale), --backend, --history-dtype."""
    default = max_iter if max_iter is not None else "the scale's, 100"
    parser.add_argument("--max-iter", type=int, default=max_iter,
                        help=f"L-BFGS iterations per solve of the c search (default: {default})")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="engine backend: cpp on CPU, triton on CUDA, torch the reference (default: auto)")
    parser.add_argument("--history-dtype", choices=sorted(HISTORY_DTYPES), default="same",
                        help="storage of the L-BFGS history: same (as the images) or bfloat16 (default: same)")


def engine_options(args: argparse.Namespace) -> LBFGSBOptions:
    return attack_engine(args.max_iter, backend=args.backend, history_dtype=HISTORY_DTYPES[args.history_dtype])

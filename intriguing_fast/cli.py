"""What the command lines share: the engine options of the attack, the MNIST lookup help,
and how an expected failure ends a command (one line naming the problem, exit status 2)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .attack import attack_engine
from .engine import LBFGSBOptions
from .errors import IntriguingFastError
from .kernels import BACKENDS

HISTORY_DTYPES = {"same": None, "bfloat16": torch.bfloat16}
DATA_DIR_HELP = ("directory with the four MNIST idx files (default: $INTRIGUING_FAST_MNIST, ../shared/data/mnist "
                 "beside the checkout, the cache $INTRIGUING_FAST_CACHE/mnist, a download, or the offline subset)")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """--data-dir and --no-verify-mnist: where MNIST is, and whether files that differ from the
    published ones may be used (marked as not verified wherever the data source is reported)."""
    parser.add_argument("--data-dir", type=Path, default=None, help=DATA_DIR_HELP)
    parser.add_argument("--no-verify-mnist", dest="verify_mnist", action="store_false",
                        help="use MNIST files whose MD5 differs from the published files' (altered or re-compressed); "
                             "the data source is then reported as not verified")


def add_engine_options(parser: argparse.ArgumentParser, max_iter: int | None = 100) -> None:
    """--max-iter (None: the caller picks it, e.g. from the run's scale), --backend, --history-dtype."""
    default = max_iter if max_iter is not None else "the scale's, 100"
    parser.add_argument("--max-iter", type=positive_int, default=max_iter,
                        help=f"L-BFGS iterations per solve of the c search (default: {default})")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="engine backend: cpp on CPU, triton on CUDA, torch the reference (default: auto)")
    parser.add_argument("--history-dtype", choices=sorted(HISTORY_DTYPES), default="same",
                        help="storage of the L-BFGS history: same (as the images) or bfloat16 (default: same)")


def engine_options(args: argparse.Namespace) -> LBFGSBOptions:
    return attack_engine(args.max_iter, backend=args.backend, history_dtype=HISTORY_DTYPES[args.history_dtype])


# What a user can cause: bad arguments or files, damaged or changed inputs, missing data.
EXPECTED_ERRORS = (IntriguingFastError, ValueError, TypeError, KeyError, OSError)


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show the traceback of an expected failure")


@contextmanager
def expected_errors(prog: str, debug: bool = False) -> Iterator[None]:
    """An expected failure inside ends the command with one line on stderr and exit status 2
    (the traceback with ``debug``), like argparse's own usage errors."""
    try:
        yield
    except EXPECTED_ERRORS as exc:
        if debug:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2) from exc


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value

"""What the command lines share: their help formatter and common options (MNIST lookup,
engine, threads, progress bars), and how an expected failure ends a command (one line naming
the problem, exit status 2)."""

from __future__ import annotations

import argparse
import math
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from .attack import attack_engine
from .data.paths import MNIST_DIR_ENV
from .engine import BACKENDS, ROUNDS, LBFGSBOptions
from .errors import IntriguingFastError
from .experiments import SCALES
from .storage import CACHE_ROOT_ENV
from .threads import THREADS_HELP, set_threads

HISTORY_DTYPES = {"same": None, "bfloat16": torch.bfloat16}
DATA_DIR_HELP = (
    "directory holding the four MNIST idx files (.gz or not); it must exist (it is never created) and missing "
    f"files are downloaded into it. Without it, MNIST is looked for in ${MNIST_DIR_ENV}, then in "
    "../shared/data/mnist beside the checkout, then in the cache "
    f"${CACHE_ROOT_ENV}/mnist (default ~/.cache/intriguing_fast/mnist), then downloaded (MD5-checked) into "
    f"${MNIST_DIR_ENV} or that cache. When no download is possible (offline), the MNIST subset embedded in the "
    "package (10,000 training and 2,000 test digits) is used, with a warning"
)
ENVIRONMENT_EPILOG = f"""environment:
  {CACHE_ROOT_ENV}  where trained checkpoints (models/) and downloaded MNIST (mnist/) are kept
                         (default: ~/.cache/intriguing_fast)
  {MNIST_DIR_ENV}  a directory holding the four MNIST idx files (see --data-dir)"""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help with the description's and epilog's line breaks kept, and each option's default
    appended to its help, unless the help names it already or there is none (None, a flag)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is None or action.nargs == 0:
            return text
        return super()._get_help_string(action)


def command_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser of the package's command lines (the environment variables in its epilog)."""
    return argparse.ArgumentParser(
        prog=prog, description=description, epilog=ENVIRONMENT_EPILOG, formatter_class=HelpFormatter
    )


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N", help=THREADS_HELP)


def add_dist_timeout_option(parser: argparse.ArgumentParser, default: float, longest: str) -> None:
    """--dist-timeout: under torchrun, how long a rank waits for the others; more than `longest`
    (the longest stretch of work between two collectives) takes."""
    parser.add_argument(
        "--dist-timeout",
        type=positive_seconds,
        default=default,
        metavar="S",
        help=f"under torchrun: seconds a rank waits for the others (more than {longest} takes) "
        "before it exits with one line",
    )


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def parse_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The parsed arguments, with --threads applied at once (before any torch work)."""
    args = parser.parse_args(argv)
    set_threads(args.threads)
    return args


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """--data-dir and --no-verify-mnist: where MNIST is, and whether files that differ from the
    published ones may be used (marked as not verified wherever the data source is reported)."""
    parser.add_argument("--data-dir", type=Path, default=None, help=DATA_DIR_HELP)
    parser.add_argument(
        "--no-verify-mnist",
        dest="verify_mnist",
        action="store_false",
        help="use MNIST files whose MD5 differs from the published files' (altered or re-compressed); "
        "the data source is then reported as not verified",
    )


def add_engine_options(parser: argparse.ArgumentParser, max_iter: int | None = 100) -> None:
    """--max-iter (None: the caller picks it, e.g. from the run's scale), --backend, --history-dtype, --rounds."""
    per_scale = ", ".join(f"{name} {scale.attack_max_iter}" for name, scale in sorted(SCALES.items()))
    scales = f" (default: per --scale: {per_scale})" if max_iter is None else ""
    parser.add_argument(
        "--max-iter",
        type=positive_int,
        default=max_iter,
        metavar="N",
        help=f"L-BFGS iterations per solve of the c search{scales}",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="engine backend: auto (cpp on CPU, triton on CUDA), cpp, triton, or torch (the reference)",
    )
    parser.add_argument(
        "--history-dtype",
        choices=sorted(HISTORY_DTYPES),
        default="same",
        help="storage of the L-BFGS history: same (as the images) or bfloat16",
    )
    parser.add_argument(
        "--rounds",
        choices=ROUNDS,
        default="auto",
        help="engine rounds: auto (compact on CPU, fixed on CUDA), compact (the running problems, "
        "one host sync per round) or fixed (every problem with masks: no host sync between looks)",
    )


def engine_options(args: argparse.Namespace, **settings) -> LBFGSBOptions:
    """The engine settings the options ask for; `settings` override the attack's others."""
    return attack_engine(
        args.max_iter,
        backend=args.backend,
        history_dtype=HISTORY_DTYPES[args.history_dtype],
        rounds=args.rounds,
        **settings,
    )


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


class Terminated(BaseException):
    """SIGTERM, raised where the command is (a BaseException, as KeyboardInterrupt: no handler swallows it)."""


@contextmanager
def interrupts_in_one_line(prog: str, argv: list[str] | None, saved: Callable[[], str]) -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM stop the command `prog` (as typed, e.g. "python -m
    intriguing_fast.bulk_attack") where it is, keeping what it has saved (every write is atomic),
    with one line on stderr: `saved()` and the command that resumes it (prog and `argv`); exit
    status 130 or 143, as a shell reports those signals."""
    command = f"{prog} {shlex.join(sys.argv[1:] if argv is None else argv)}"

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    previous = signal.signal(signal.SIGTERM, terminate) if main_thread else None
    try:
        yield
    except (KeyboardInterrupt, Terminated) as exc:
        print(
            f"{prog}: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}; {saved()}; "
            f"resume with: {command}",
            file=sys.stderr,
        )
        raise SystemExit(143 if isinstance(exc, Terminated) else 130) from None
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value

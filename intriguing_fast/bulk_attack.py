"""`python -m intriguing_fast.bulk_attack`: adversarial examples for a whole data set, resumable by chunk.

    python -m intriguing_fast.bulk_attack --model FC100-100-10 --data mnist:test --count 10000 \\
        --targets random --out adversarials.pt

`--model` names a zoo model (from the checkpoint cache, or trained first with the recipe of --scale as `python -m
intriguing_fast.reproduce` trains it, after a note saying so); `--model-file` reads a state dict (tensors and plain
containers only: nothing else is ever unpickled) of a zoo --arch or of your --model-class package.module:Factory, or,
with --trust-model-code, a torch.export (.pt2) or TorchScript archive (an archive is code: it runs when loaded and when
called). Images of any shape and models of any number of classes. Each finished chunk is saved with its SHA-256
and the digests of its images under OUT.parts/; a rerun with the same model, options and version (OUT.parts/config.json)
keeps every saved chunk in its range, so a run can resume and grow (--count 400 after 300); work it would drop or
whose images changed is refused naming the argument, unless --overwrite. The chunks are merged into OUT, a dict of
tensors, "config" and "sha256" that ``torch.load(OUT, weights_only=True)`` reads (``load_adversarials(OUT)`` also
checks the digest). OUT.lock keeps a second run off the same --out; an expected failure prints one line and exits 2.
Under torchrun each rank computes the chunks k % world == rank, and rank 0 merges them. See docs/attack.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from contextlib import ExitStack
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ._version import __version__
from .attack import AttackResult, LBFGSAttack, robustness_curve
from .attack.boundary import BOUNDARY_STEPS
from .attack.search import DEFAULT_PULL_BACK, EARLY_FTOL, PULL_BACK_AFTER, SEARCHES
from .attack.targets import TARGET_MODES, random_targets
from .attack.validation import check_bounds, check_inputs, check_labels, num_classes
from .bulk.files import (
    SAVED_FIELDS,
    load_adversarials,
    merge_chunks,
    postfix,
    saved_chunk,
    saved_chunks,
    summary,
)
from .bulk.pieces import Rows, open_run, piece_path
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
    non_negative_int,
    parse_command,
    positive_int,
)
from .data import SPLITS, MnistSplit, load_mnist
from .distributed import Group, Launch, shard, start_run
from .errors import IntriguingFastError
from .experiments import SCALES
from .models import MODEL_ZOO, get_spec, load_or_train
from .models.files import is_archive, load_model_file, model_digest
from .report.figures import robustness_curve_figure
from .seeds import seed_int
from .storage import atomic_torch_save, atomic_write_bytes, json_digest, load_weights_only, save_verified
from .threads import set_threads

__all__ = ["load_adversarials", "main"]

PROG = "python -m intriguing_fast.bulk_attack"
BULK_SCALES = ("quick", "paper")  # the recipes of `reproduce --scale` whose training data is all of MNIST train
# Arguments that change how a run goes, not what it computes (the data's digests stand for
# --data-dir): left out of the config that saved work must match.
RUN_ONLY = ("out", "curve", "overwrite", "debug", "threads", "progress", "data_dir", "dist_timeout", "trust_model_code")


def load_model(args: argparse.Namespace) -> torch.nn.Module:
    """--model: a zoo name (from the checkpoint cache, trained first if need be); --model-file: a file."""
    if args.model is None:
        return load_model_file(Path(args.model_file), args.arch, args.model_class, args.trust_model_code)
    if args.arch is not None or args.model_class is not None:
        raise ValueError("--arch and --model-class name the architecture of a --model-file state dict, not of --model")
    if args.model not in MODEL_ZOO:
        raise ValueError(
            f"--model: {args.model!r} is not a model-zoo name ({', '.join(sorted(MODEL_ZOO))}); "
            "pass a checkpoint with --model-file"
        )
    return load_zoo_model(args.model, args)


def load_zoo_model(name: str, args: argparse.Namespace) -> torch.nn.Module:
    """The zoo model trained on MNIST train with the recipe of --scale, keyed like `reproduce`'s
    (model, recipe, data), so that either finds the other's checkpoint; a model not cached yet
    is trained after a note on stderr naming it, its recipe, data and the checkpoint path."""
    recipe = SCALES[args.scale].recipe(get_spec(name).recipe)
    train = load_mnist("train", args.data_dir, verify=args.verify_mnist)

    def note(path: Path, data: MnistSplit) -> None:
        print(
            f"training {name} on {len(data):,} MNIST training images (recipe of --scale {args.scale}: "
            f"{recipe.describe(len(data))}); cached for next time in {path}",
            file=sys.stderr,
            flush=True,
        )

    return load_or_train(name, train, recipe=recipe, split_seed=0, progress=args.progress, on_train=note).model


def load_data(spec: str, data_dir: Path | None, verify: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """ "mnist:SPLIT" (train, test, P1, P2) through intriguing_fast.data, or "file:PATH" holding
    a dict with tensors "images" and "labels" (read with ``weights_only=True``)."""
    kind, _, rest = spec.partition(":")
    if kind == "mnist" and rest in SPLITS:
        split = load_mnist(rest, data_dir, verify=verify)
        return split.images, split.labels
    if kind != "file" or not rest:
        raise ValueError(f"--data: expected mnist:{'|'.join(SPLITS)} or file:PATH, got {spec!r}")
    if not Path(rest).is_file():
        raise FileNotFoundError(f"--data: no file {rest}")
    obj = load_weights_only(Path(rest))
    images, labels = (obj.get("images"), obj.get("labels")) if isinstance(obj, dict) else (None, None)
    if not (
        isinstance(images, torch.Tensor)
        and isinstance(labels, torch.Tensor)
        and images.dim() >= 2
        and labels.shape == images.shape[:1]
    ):
        raise ValueError(f"--data {spec}: expected a dict with tensors 'images' [N, ...] and 'labels' [N]")
    return images, labels


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(PROG, "\n\n".join(__doc__.split("\n\n")[:2]))
    _add_model_arguments(p)
    _add_data_arguments(p)
    _add_attack_arguments(p)
    _add_search_arguments(p)
    add_progress_option(p)
    add_threads_option(p)
    p.add_argument(
        "--device",
        default="cpu",
        help="cpu, cuda (under torchrun: cuda:LOCAL_RANK for each rank, with "
        "NCCL) or cuda:N; results are saved on the CPU",
    )
    add_dist_timeout_option(p, 600.0, "one chunk")
    add_debug_option(p)
    return p


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", metavar="NAME", help=f"a model-zoo name: {', '.join(sorted(MODEL_ZOO))}")
    which.add_argument(
        "--model-file",
        metavar="PATH",
        help="a state dict (with --arch, --model-class or an 'arch' "
        "entry): tensors only, nothing else is unpickled; or a torch.export (.pt2) or TorchScript "
        "archive, with --trust-model-code",
    )
    p.add_argument(
        "--trust-model-code",
        action="store_true",
        help="load a --model-file archive (torch.export, "
        "TorchScript): its code runs with your rights when it is loaded and called; only a file you trust",
    )
    arch = p.add_mutually_exclusive_group()
    arch.add_argument(
        "--arch",
        help="zoo architecture of a --model-file state dict, e.g. FC100-100-10 (default: the file's 'arch' entry)",
    )
    arch.add_argument(
        "--model-class",
        metavar="MODULE:FACTORY",
        help="your architecture of a --model-file state dict: "
        "a class or function of no arguments, imported by name (e.g. mymodels:SmallCNN)",
    )
    p.add_argument(
        "--scale",
        choices=BULK_SCALES,
        default="paper",
        help="the recipe of --model, picked as `python -m intriguing_fast.reproduce --scale` picks it "
        "(so a model it trained is reused): paper, the registered recipe; quick, its minibatch "
        "phases shortened",
    )


def _add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default="mnist:test",
        metavar="SPEC",
        help="mnist:train, mnist:test, mnist:P1, mnist:P2 or file:PATH (a dict of tensors 'images', 'labels')",
    )
    add_data_options(p)
    p.add_argument("--start", type=non_negative_int, default=0, help="first image of the data set")
    p.add_argument("--count", type=positive_int, help="number of images (default: all from --start)")
    p.add_argument("--flatten", action="store_true", help="feed the model flat [N, 784] images")
    p.add_argument("--out", required=True, help="output file (.pt); chunks go to OUT.parts/ (required)")
    p.add_argument(
        "--curve",
        metavar="PNG",
        help="also draw the robust-accuracy curve (accuracy against L2 epsilon) to "
        "this .png, its table beside it as .json",
    )
    p.add_argument("--overwrite", action="store_true", help="discard the saved work of other inputs and start again")
    p.add_argument(
        "--chunk-size",
        type=positive_int,
        default=1000,
        metavar="N",
        help="images per saved chunk (what a rerun resumes from)",
    )


def _add_attack_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--targets",
        default="random",
        choices=TARGET_MODES,
        help="random: a seeded class other than the label; all: every other class (a row each); "
        "least_likely: the model's least likely class; untargeted: any class but the label",
    )
    p.add_argument("--seed", type=seed_int, default=0, help="seed of --targets random and of --restarts")
    p.add_argument(
        "--kappa",
        type=float,
        default=0.0,
        help="confidence: margin of the target's logit over every "
        "other (untargeted: of another logit over the label's)",
    )
    p.add_argument(
        "--temperature",
        type=float,
        help="T of the loss CE(logits / T), in [1e-3, 1e3] (default: 1 until "
        "a solve finds an adversarial, then 0.1; cleverhans 1)",
    )
    p.add_argument(
        "--hedges",
        type=non_negative_int,
        default=LBFGSAttack.hedges,
        metavar="N",
        help="untargeted: classes tried besides "
        f"the one the untargeted solve heads for, the nearest going on (0: that one alone; default {LBFGSAttack.hedges})",
    )
    p.add_argument(
        "--search",
        default="ours",
        choices=SEARCHES,
        help="c search: ours (c = 1/T, secant steps in 1/c, then regula falsi in log c) or cleverhans",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        metavar="N",
        help="engine solves per image in the c search (default: the search's: ours 7, cleverhans 9)",
    )


def _add_search_arguments(p: argparse.ArgumentParser) -> None:
    """Where an image's c searches start over, the steps that end them, and the engine's settings."""
    p.add_argument(
        "--pull-back",
        type=float,
        metavar="F",
        help="one solve of each c search (the fourth) starts this fraction of the way back from the "
        "best adversarial to the image, in [0, 1) (a nearer region of the class, often; 0: none; "
        f"default {DEFAULT_PULL_BACK} where our search has more than {PULL_BACK_AFTER} steps)",
    )
    p.add_argument(
        "--early-ftol",
        type=float,
        metavar="F",
        help=f"the first {PULL_BACK_AFTER} solves of each c search stop at this relative decrease of f, in "
        f"[0, 1) (0: the engine's ftol; default {EARLY_FTOL} where a solve starts pulled back)",
    )
    p.add_argument(
        "--restarts",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="more c searches per image, each "
        "from a seeded random point about it, the nearest adversarial kept (default 0)",
    )
    p.add_argument(
        "--boundary-steps",
        type=non_negative_int,
        default=BOUNDARY_STEPS,
        metavar="N",
        help="steps of the search for the decision boundary that ends each image's attack (forward "
        f"passes only; 0: the c search alone, the paper's attack; default {BOUNDARY_STEPS})",
    )
    p.add_argument(
        "--walk-steps",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="then steps of a walk along the decision boundary towards each image, each a projection "
        "onto the boundary linearised at the best adversarial (2 evaluations, 1 + --boundary-steps "
        "more where it misses; sharpens the last digits on smooth models; default 0)",
    )
    add_engine_options(p)


def main(argv: list[str] | None = None) -> None:
    args = parse_command(build_parser(), argv)
    with expected_errors(PROG, args.debug), interrupts_in_one_line(PROG, argv, lambda: saved_chunks(args.out)):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Check every input, then (rank 0 holding OUT.lock) reuse or compute each chunk and merge
    them; under torchrun (WORLD_SIZE > 1) each rank computes its shard of the chunks."""
    if args.curve and (Path(args.curve).suffix != ".png" or not Path(args.curve).resolve().parent.is_dir()):
        raise ValueError(f"--curve {args.curve}: expected a .png file in an existing directory")
    launch = Launch.from_env()
    if launch.world > 1 and args.threads is None:
        set_threads(launch.threads())
    device = launch.device(args.device)
    data_images, data_labels = load_data(args.data, args.data_dir, args.verify_mnist)
    images, labels, stop = _select(data_images, data_labels, args)
    model = load_model(args).to(device)
    classes = num_classes(model, images[:1].to(device))
    labels = check_labels(labels, "--data labels", images.shape[0], classes, labels.device)
    rows = Rows(args.data, args.start, stop, images, labels, classes - 1 if args.targets == "all" else 1)
    # each image's random target depends on --seed and its index only, so that a grown run's are a fresh run's
    targets = random_targets(labels, classes, args.seed, first=args.start) if args.targets == "random" else args.targets
    attack = LBFGSAttack(
        kappa=args.kappa,
        temperature=args.temperature,
        search=args.search,
        steps=args.steps,
        hedges=args.hedges,
        pull_back=args.pull_back,
        early_ftol=args.early_ftol,
        restarts=args.restarts,
        boundary_steps=args.boundary_steps,
        walk_steps=args.walk_steps,
        seed=args.seed,
        batch_size=args.chunk_size if is_archive(model) else None,
        engine=engine_options(args),
    )
    config = _config(args, model, attack, device)
    out, parts_dir = Path(args.out), Path(args.out + ".parts")
    group = Group(launch, args.dist_timeout, device) if launch.world > 1 else None
    with ExitStack() as stack:
        if group is not None:
            stack.callback(group.close)
        spans = start_run(
            out, lambda: open_run(out, parts_dir, config, rows, args.overwrite, args.chunk_size), group, stack
        )
        if isinstance(spans, str):  # "already complete"
            if launch.rank == 0:
                print(spans)
                _write_curve(load_adversarials(out), args)
            return
        parts = _compute(attack, model, rows, targets, spans, args, parts_dir, group, json_digest(config))
        if launch.rank == 0:
            result = merge_chunks(parts, {**config, "rows": [rows.start, rows.stop]})
            atomic_torch_save(result, out)
            shutil.rmtree(parts_dir)
            print(f"{out}: {summary(result)}")
            _write_curve(result, args)
        if group is not None:
            group.sum(0)  # the others exit once OUT is written


def _write_curve(result: dict, args: argparse.Namespace) -> None:
    """--curve: the output's robustness curve as a PNG and its table as JSON beside it."""
    if args.curve:
        curve, path = robustness_curve(result), Path(args.curve)
        robustness_curve_figure(
            curve,
            path,
            f"{args.model or Path(args.model_file).name}, {args.targets} targets, "
            f"{args.data} ({len(result['success'])} rows)",
        )
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(curve.as_dict(), indent=1).encode())
        print(f"{path}: robust accuracy against L2 epsilon (its table: {path.with_suffix('.json')})")


def _select(
    images: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The --start/--count range (flattened with --flatten), checked like the attack checks it, and its end."""
    if args.start >= images.shape[0]:
        raise ValueError(f"--start {args.start}: beyond the {images.shape[0]} images of --data {args.data}")
    stop = images.shape[0] if args.count is None else min(images.shape[0], args.start + args.count)
    images, labels = images[args.start : stop], labels[args.start : stop]
    images = images.flatten(1) if args.flatten else images
    try:
        check_bounds((0.0, 1.0), check_inputs(images))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"--data {args.data}: {exc}") from None
    return images, labels, stop


def _config(args: argparse.Namespace, model: torch.nn.Module, attack: LBFGSAttack, device: torch.device) -> dict:
    """What saved work depends on besides its images (each chunk records their digests): the
    arguments, the model's digest (weights and code, `model_digest`), the attack options, the
    package version, and the threads and device (chunks of other thread counts differ in their last bits)."""
    arguments = {k: v for k, v in vars(args).items() if k not in RUN_ONLY + ("start", "count")}
    return json.loads(
        json.dumps(
            {
                "version": __version__,
                "model": model_digest(model),
                "args": arguments,
                "attack": attack.key(),
                "arithmetic": {"threads": torch.get_num_threads(), "device": device.type},
            }
        )
    )


def _compute(
    attack: LBFGSAttack,
    model: torch.nn.Module,
    rows: Rows,
    targets: torch.Tensor | str,
    spans: list[tuple[int, int]],
    args: argparse.Namespace,
    parts_dir: Path,
    group: Group | None,
    run: str,
) -> list[dict]:
    """Every span in order: a sound saved chunk of this run (config digest `run`) as it is, the
    others computed and saved with that digest. Under torchrun rank r does spans k % world == r,
    in rounds of one span per rank, and only rank 0 returns the chunks (read back once every
    rank is done; the others return [])."""
    paths = [piece_path(parts_dir, begin, end) for begin, end in spans]
    index = [rows.index(begin, end) for begin, end in spans]
    rank, world = (group.launch.rank, group.launch.world) if group else (0, 1)
    parts = {
        k: part
        for k in shard(len(spans), rank, world)
        if (part := saved_chunk(paths[k], run, index[k], rows.images)) is not None
    }
    done = sum(spans[k][1] - spans[k][0] for k in parts)
    name = args.model or Path(args.model_file).name
    with tqdm(
        total=rows.stop - rows.start,
        initial=group.sum(done) if group else done,
        unit="img",
        desc=f"attack {name} on {args.data}",
        disable=not args.progress or rank > 0,
        dynamic_ncols=True,
    ) as bar:
        for k in range(rank, world * -(-len(spans) // world), world):
            count = 0
            if k < len(spans) and k not in parts:
                chunk_bar = args.progress and rank == 0 and f"chunk {k + 1}/{len(spans)}"
                parts[k] = {**_attack(attack, model, rows, targets, *spans[k], chunk_bar), "run": run}
                save_verified(parts[k], paths[k])
                count = spans[k][1] - spans[k][0]
            bar.update(group.sum(count) if group else count)
            postfix(bar, parts.values() if group is None else ())
    if rank > 0:
        return []
    return [parts[k] if k in parts else _read_back(paths[k], index[k], rows.images, run) for k in range(len(spans))]


def _read_back(path: Path, index: torch.Tensor, images: torch.Tensor, run: str) -> dict:
    """Another rank's chunk, checked like a saved one."""
    if (part := saved_chunk(path, run, index, images)) is None:
        raise IntriguingFastError(f"{path}: missing or damaged after every rank finished; rerun to recompute it")
    return part


def _attack(
    attack: LBFGSAttack,
    model: torch.nn.Module,
    rows: Rows,
    targets: torch.Tensor | str,
    begin: int,
    end: int,
    progress: bool | str = False,
) -> dict:
    """The chunk of images begin .. end - 1 (its own bar, if `progress`, moving as its images'
    c searches go), with the record of its inputs."""
    i, j = begin - rows.start, end - rows.start
    device = next(model.parameters(), rows.images).device
    res: AttackResult = attack(
        model,
        rows.images[i:j].to(device),
        targets if isinstance(targets, str) else targets[i:j].to(device),
        labels=rows.labels[i:j].to(device),
        progress=progress,
    )
    out = {name: getattr(res, name).cpu() for name in SAVED_FIELDS}
    out["image_index"] = out["image_index"] + begin
    return {**out, "piece": rows.piece(begin, end)}


if __name__ == "__main__":
    main()

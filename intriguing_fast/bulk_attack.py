"""`python -m intriguing_fast.bulk_attack`: adversarial examples for a whole data set, resumable by chunk.

    python -m intriguing_fast.bulk_attack --model fc.pt --data mnist:test --count 10000 \\
        --targets random --out adversarials.pt

Each finished chunk is saved under OUT.parts/ and skipped when the same command runs again;
when every chunk is done they are merged into OUT. See docs/attack.md.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
import shutil
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .attack import AttackResult, LBFGSAttack
from .attack.search import SEARCHES
from .attack.targets import TARGET_MODES
from .cli import DATA_DIR_HELP, add_engine_options, engine_options
from .data import load_mnist
from .models import MODEL_ZOO, get_spec, trained_model
from .storage import atomic_torch_save, atomic_write_bytes

SAVED_FIELDS = ("adversarial", "l2", "distortion", "success", "already_adversarial", "c", "nit", "nfev",
                "predicted", "targets", "labels", "image_index")


def load_model(spec: str, arch: str | None, data_dir: str | None) -> torch.nn.Module:
    """A model-zoo name (e.g. "FC100-100-10": from the checkpoint cache, trained on first use),
    a saved nn.Module, or a state dict (bare or under "state_dict") with --arch naming its
    zoo architecture (or stored in the checkpoint under "arch")."""
    path = Path(spec)
    if not path.exists():
        if spec in MODEL_ZOO:
            return trained_model(spec, load_mnist("train", data_dir))
        raise FileNotFoundError(f"--model: no checkpoint at {spec}, and not a zoo name ({sorted(MODEL_ZOO)})")
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, torch.nn.Module):
        return obj
    if isinstance(obj, dict):
        arch = arch or obj.get("arch")
        if arch is None:
            raise ValueError("--model: the checkpoint is a state dict; name its architecture with --arch")
        model = get_spec(arch).build()
        model.load_state_dict(obj.get("state_dict", obj))
        return model
    raise ValueError(f"--model: expected a saved nn.Module or a state dict, got {type(obj).__name__}")


def load_data(spec: str, data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """"mnist:SPLIT" (train, test, P1, P2) through intriguing_fast.data, or "file:PATH" holding
    a dict with "images" and "labels"."""
    kind, _, rest = spec.partition(":")
    if kind == "mnist":
        split = load_mnist(rest, data_dir)
        return split.images, split.labels
    if kind == "file":
        obj = torch.load(rest, map_location="cpu", weights_only=True)
        return obj["images"], obj["labels"]
    raise ValueError(f"--data: expected mnist:SPLIT or file:PATH, got {spec!r}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m intriguing_fast.bulk_attack", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True,
                   help="a model-zoo name (e.g. FC100-100-10), a saved nn.Module, or a state dict")
    p.add_argument("--arch", help="zoo architecture of a state-dict checkpoint, e.g. FC100-100-10")
    p.add_argument("--data", default="mnist:test", help="mnist:train, mnist:test, mnist:P1, mnist:P2 or file:PATH")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--start", type=int, default=0, help="first image of the data set")
    p.add_argument("--count", type=int, help="number of images (default: all from --start)")
    p.add_argument("--targets", default="random", help=f"one of {TARGET_MODES}")
    p.add_argument("--out", required=True, help="output file (.pt); chunks go to OUT.parts/")
    p.add_argument("--chunk-size", type=int, default=1000, help="images per saved chunk")
    p.add_argument("--seed", type=int, default=0, help="seed of --targets random")
    p.add_argument("--kappa", type=float, default=0.0)
    p.add_argument("--temperature", type=float)
    p.add_argument("--search", default="ours", choices=SEARCHES)
    p.add_argument("--steps", type=int)
    add_engine_options(p)
    p.add_argument("--flatten", action="store_true", help="feed the model flat [N, 784] images")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.targets not in TARGET_MODES:
        raise SystemExit(f"--targets: expected one of {TARGET_MODES}, got {args.targets!r}")
    model = load_model(args.model, args.arch, args.data_dir)
    images, labels = load_data(args.data, args.data_dir)
    stop = images.shape[0] if args.count is None else min(images.shape[0], args.start + args.count)
    if not 0 <= args.start < stop:
        raise SystemExit(f"--start/--count: no images in [{args.start}, {stop}) of {images.shape[0]}")
    images, labels = images[args.start:stop], labels[args.start:stop]
    if args.flatten:
        images = images.flatten(1)
    attack = LBFGSAttack(kappa=args.kappa, temperature=args.temperature, search=args.search, steps=args.steps,
                         seed=args.seed, engine=engine_options(args))
    config = dict(vars(args), out=None)
    parts_dir = Path(args.out + ".parts")
    parts_dir.mkdir(parents=True, exist_ok=True)
    _check_config(parts_dir / "config.json", config)

    parts: list[dict] = []
    bar = tqdm(total=images.shape[0], unit="img", dynamic_ncols=True)
    with bar:
        for k, begin in enumerate(range(0, images.shape[0], args.chunk_size)):
            path = parts_dir / f"chunk_{k:05d}.pt"
            end = min(begin + args.chunk_size, images.shape[0])
            if path.exists():
                part = torch.load(path, weights_only=True)
            else:
                part = _attack(attack, model, images, labels, begin, end, args.targets, args.start)
                atomic_torch_save(part, path)
            parts.append(part)
            bar.update(end - begin)
            success = torch.cat([p["success"] for p in parts])
            dist = torch.cat([p["distortion"] for p in parts])[success]
            bar.set_postfix(success=f"{success.double().mean():.3f}", distortion=f"{dist.double().mean():.4f}")
    merged = {name: torch.cat([p[name] for p in parts]) for name in SAVED_FIELDS}
    merged["config"] = config
    torch.save(merged, args.out)
    shutil.rmtree(parts_dir)
    ok = merged["success"]
    print(f"{args.out}: {ok.numel()} rows, success rate {ok.double().mean():.4f}, "
          f"mean distortion {merged['distortion'][ok].double().mean():.4f}")


def _attack(attack: LBFGSAttack, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, begin: int,
            end: int, targets: str, offset: int) -> dict:
    """One chunk; with --targets random each image's target comes from (seed, its data-set index)."""
    chunk_attack = replace(attack, seed=attack.seed + offset + begin)
    res: AttackResult = chunk_attack(model, images[begin:end], targets, labels=labels[begin:end], progress=False)
    out = {name: getattr(res, name) for name in SAVED_FIELDS}
    out["image_index"] = out["image_index"] + offset + begin
    return out


def _check_config(path: Path, config: dict) -> None:
    """Resuming requires the same command: chunks of another configuration must not mix."""
    text = json.dumps(config, sort_keys=True)
    if path.exists() and path.read_text() != text:
        raise SystemExit(f"{path.parent}: holds chunks of a different command ({path.read_text()}); "
                         "remove it or use another --out")
    atomic_write_bytes(path, text.encode())


if __name__ == "__main__":
    main()

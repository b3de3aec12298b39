"""The files of a chunked bulk attack (`python -m intriguing_fast.bulk_attack`): its verified
chunks, each checked against the rows it must cover, the error naming the input that changed
and the merged output with its digest; the classes of a model and the progress bar's postfix."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..attack.curves import robustness_curve
from ..errors import CorruptFileError, InputChangedError
from ..storage import json_digest, load_verified, load_weights_only, quarantine, tensor_digest

SAVED_FIELDS = (
    "adversarial",
    "l2",
    "distortion",
    "success",
    "already_adversarial",
    "c",
    "nit",
    "nfev",
    "predicted",
    "targets",
    "labels",
    "image_index",
)
# What a resumed run must share with the saved work, in the order a difference is reported.
CONFIG_KEYS = {
    "version": "intriguing_fast version",
    "model": "model (weights or code)",
    "args": "arguments",
    "attack": "attack options",
    "arithmetic": "threads or device (they change the last bits of the arithmetic)",
}


def load_adversarials(path: str | Path) -> dict:
    """A bulk run's output, read with ``weights_only=True`` and checked against its stored
    SHA-256; :class:`CorruptFileError` naming the file if it is damaged or not such an output."""
    return check_result(Path(path), load_weights_only(Path(path)))


def saved_chunks(out: str) -> str:
    """What an interrupted run leaves: its chunks saved so far (OUT.parts/), or its finished OUT."""
    parts = Path(out + ".parts")
    if Path(out).exists() and not parts.exists():
        return f"{out} is complete"
    count = len(list(parts.glob("chunk_*.pt"))) if parts.is_dir() else 0
    return f"{count} chunk{'s' * (count != 1)} saved in {parts}"


def summary(result: dict) -> str:
    """Rows, success rate, mean distortion, median L2 and the robustness curve's area of an output, on one line."""
    ok = result["success"]
    curve = robustness_curve(result)
    median = f"{curve.median:.4f}" if math.isfinite(curve.median) else "inf (half or more resisted)"
    return (
        f"{ok.numel()} rows, success rate {ok.double().mean():.4f}, "
        f"mean distortion {result['distortion'][ok].double().mean():.4f}, median L2 {median}, "
        f"robust-accuracy curve area {curve.area:.4f} (L2 0 to {float(curve.epsilons[-1]):.4f})"
    )


def saved_chunk(
    path: Path, run: str, index: torch.Tensor | None = None, images: torch.Tensor | None = None
) -> dict | None:
    """The chunk at ``path`` if it is there, sound and this run's: digest, fields, the digest of
    the run's config that every chunk carries (``run``: one copied from a run with another seed,
    model or options is not this run's work), the record of its inputs ("piece"), and, if given,
    rows = ``index`` (the data-set index of each row) with adversarials shaped like ``images``.
    Any other is moved aside (NAME.corrupt, with a warning naming it) so that the caller recomputes it."""
    if not path.exists():
        return None
    try:
        part = load_verified(path)
        if not isinstance(part, dict) or not all(isinstance(part.get(n), torch.Tensor) for n in SAVED_FIELDS):
            raise CorruptFileError(path, f"not a chunk (expected tensors {', '.join(SAVED_FIELDS)})")
        if part.get("run") != run:
            raise CorruptFileError(
                path, f"made by another run (config digest {str(part.get('run'))[:12]}, this run's {run[:12]})"
            )
        if not (isinstance(part.get("piece"), dict) and {"rows", "images", "labels"} <= part["piece"].keys()):
            raise CorruptFileError(path, "does not record the images it was made from")
        if index is not None:
            rows = {part[n].shape[0] if part[n].dim() else -1 for n in SAVED_FIELDS}
            if rows != {index.shape[0]}:
                raise CorruptFileError(path, f"has {sorted(rows)} rows, expected {index.shape[0]}")
            adversarial, saved_index = part["adversarial"], part["image_index"]
            if (
                adversarial.shape[1:] != images.shape[1:]
                or adversarial.dtype != images.dtype
                or saved_index.dtype != index.dtype
                or not torch.equal(saved_index, index)
            ):
                raise CorruptFileError(path, f"does not hold the rows of images {int(index[0])}..{int(index[-1])}")
        return part
    except CorruptFileError as exc:
        quarantine(path, exc)
        return None


def merge_chunks(parts: list[dict], config: dict) -> dict:
    """The output: each field's chunks joined, the config with the record of each chunk's
    inputs ("pieces", what a grown run is checked against), and the SHA-256 over both."""
    result: dict[str, Any] = {name: torch.cat([p[name] for p in parts]) for name in SAVED_FIELDS}
    result["config"] = {**config, "pieces": [p["piece"] for p in parts]}
    result["sha256"] = result_digest(result)
    return result


def check_result(path: Path, result: Any) -> dict:
    """``result`` (read from ``path``) if it is an output of `merge_chunks` that matches its digest."""
    if not (
        isinstance(result, dict)
        and all(isinstance(result.get(n), torch.Tensor) for n in SAVED_FIELDS)
        and isinstance(result.get("config"), dict)
        and isinstance(result.get("sha256"), str)
    ):
        raise CorruptFileError(path, "not a bulk_attack output (tensors, config and sha256)")
    if result["sha256"] != result_digest(result):
        raise CorruptFileError(path, "content does not match its stored SHA-256 (altered)")
    return result


def result_digest(result: dict) -> str:
    return json_digest([tensor_digest(*(result[n] for n in SAVED_FIELDS)), json_digest(result["config"])])


def changed_inputs(where: Path, old: Any, new: dict) -> InputChangedError:
    """The error for saved work at ``where`` made with config ``old``, not ``new``: the first
    input of CONFIG_KEYS that differs, on one line."""
    old = old if isinstance(old, dict) else {}
    key = next((k for k in CONFIG_KEYS if old.get(k) != new[k]), None)
    if key is None:
        return InputChangedError(f"{where}: made with another config; rerun with --overwrite to discard it")
    if key == "args":
        previous = old.get("args") if isinstance(old.get("args"), dict) else {}
        detail = ", ".join(
            f"--{k.replace('_', '-')} {previous.get(k)!r} -> {v!r}"
            for k, v in new["args"].items()
            if previous.get(k) != v
        )
    elif key == "arithmetic":
        detail = f"{_threads_on(old.get(key))} -> {_threads_on(new[key])}"
    elif key == "model":
        detail = f"sha256 {str(old.get(key))[:12]} -> {new[key][:12]}"
    else:
        detail = ", ".join(_changes(old.get(key), new[key]))
    same = (
        f"rerun with --threads {old['arithmetic'].get('threads')} on {old['arithmetic'].get('device')} to resume "
        "it, or "
        if key == "arithmetic" and isinstance(old.get(key), dict)
        else "rerun "
    )
    return InputChangedError(
        f"{where}: made with other inputs: the {CONFIG_KEYS[key]} changed ({detail}); "
        f"{same}with --overwrite to discard it and start again, or use another --out"
    )


def _changes(old: object, new: object, name: str = "") -> list[str]:
    """The leaves that differ between two JSON values, e.g. ["engine.rounds 'compact' -> 'fixed'"]."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            change
            for k in sorted(old.keys() | new.keys())
            for change in _changes(old.get(k), new.get(k), f"{name}.{k}" if name else k)
        ]
    return [] if old == new else [f"{name} {old!r} -> {new!r}".lstrip()]


def _threads_on(arithmetic: object) -> str:
    return (
        f"{arithmetic.get('threads')} threads on {arithmetic.get('device')}"
        if isinstance(arithmetic, dict)
        else repr(arithmetic)
    )


def postfix(bar: tqdm, parts: Iterable[dict]) -> None:
    """Success rate and mean distortion over every row done so far, saved chunks included."""
    parts = list(parts)
    if parts:
        success = torch.cat([p["success"] for p in parts])
        distortion = torch.cat([p["distortion"] for p in parts])[success]
        bar.set_postfix(success=f"{success.double().mean():.3f}", distortion=f"{distortion.double().mean():.4f}")

"""Which rows a bulk run keeps and which it computes: its saved work is pieces, each the attack
of a range of the data set's images, saved with the digests of those images and labels. A rerun
keeps every piece inside its own range whose images and labels are unchanged (a finished output
is split back into its pieces), computes the gaps in chunks, and refuses, naming the argument,
work it would drop (--start, --count) or whose images changed under it (--data)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CorruptFileError, InputChangedError, IntriguingFastError
from ..storage import atomic_write_bytes, json_digest, one_line, quarantine, save_verified, tensor_digest
from .files import SAVED_FIELDS, changed_inputs, load_adversarials, saved_chunk, summary

# What saved work must share with a rerun besides its rows: the rest of the config.
COMMON = ("version", "model", "args", "attack", "arithmetic")
PIECE_NAME = re.compile(r"chunk_(\d{9})-(\d{9})\.pt")


@dataclass(frozen=True)
class Rows:
    """What a run attacks: images ``start .. stop - 1`` of --data ``data`` (``images`` and
    ``labels`` are that range), ``per_image`` rows each (every other class with --targets all)."""

    data: str
    start: int
    stop: int
    images: torch.Tensor
    labels: torch.Tensor
    per_image: int

    def piece(self, begin: int, end: int) -> dict:
        """What a piece of images ``begin .. end - 1`` records of its inputs."""
        i, j = begin - self.start, end - self.start
        return {
            "rows": [begin, end],
            "images": tensor_digest(self.images[i:j]),
            "labels": tensor_digest(self.labels[i:j]),
        }

    def index(self, begin: int, end: int) -> torch.Tensor:
        """The data-set index of each row of that piece."""
        return torch.arange(begin, end).repeat_interleave(self.per_image)

    def check(self, where: Path, piece: dict) -> None:
        """Refuse saved work that this run would drop or whose inputs changed, naming the argument."""
        begin, end = piece["rows"]
        if begin < self.start or end > self.stop:
            raise InputChangedError(
                f"{where}: holds the attack of images {begin}..{end - 1} of --data {self.data}, which --start "
                f"{self.start} --count {self.stop - self.start} (images {self.start}..{self.stop - 1}) leaves out; a "
                "run may grow, not drop saved work: include them, use another --out, or --overwrite to discard it"
            )
        expected = self.piece(begin, end)
        for what in ("images", "labels"):
            if piece[what] != expected[what]:
                raise InputChangedError(
                    f"{where}: --data {self.data}: the {what} of images {begin}..{end - 1} are not those it was made "
                    "with; use another --out, or --overwrite to discard it and start again"
                )


def piece_path(parts_dir: Path, begin: int, end: int) -> Path:
    return parts_dir / f"chunk_{begin:09d}-{end:09d}.pt"


def open_run(out: Path, parts_dir: Path, config: dict, rows: Rows, overwrite: bool, chunk: int) -> str | list:
    """A line to print if OUT already holds this run, else the spans to attack, in order (saved
    pieces and new chunks). A finished OUT of the same inputs but fewer rows is split back into
    its pieces first; other saved work is refused as `Rows.check` and `changed_inputs` say,
    unless ``overwrite`` (then it is deleted)."""
    if overwrite:
        out.unlink(missing_ok=True)
        shutil.rmtree(parts_dir, ignore_errors=True)
    common = {k: config[k] for k in COMMON}
    if out.exists():
        try:
            done = load_adversarials(out)
        except CorruptFileError as exc:
            raise CorruptFileError(out, f"{exc.reason}; rerun with --overwrite to replace it") from None
        if {k: done["config"].get(k) for k in COMMON} != common:
            raise changed_inputs(out, done["config"], common)
        for piece in done["config"]["pieces"]:
            rows.check(out, piece)
        if done["config"]["rows"] == [rows.start, rows.stop]:
            shutil.rmtree(parts_dir, ignore_errors=True)  # left by a run killed right after writing OUT
            return f"{out}: already complete ({summary(done)}); nothing recomputed"
        _split(done, parts_dir, common)
        out.unlink()
    saved = _prepare_parts(parts_dir, common, rows)
    return plan(saved, rows.start, rows.stop, chunk)


def plan(saved: list[tuple[int, int]], start: int, stop: int, chunk: int) -> list[tuple[int, int]]:
    """Spans covering ``start .. stop - 1`` in order: the ``saved`` ones, the gaps in chunks of at most ``chunk``."""
    spans, at = [], start
    for begin, end in [*sorted(saved), (stop, stop)]:
        if begin < at:
            raise IntriguingFastError(f"saved chunks overlap at image {begin}; rerun with --overwrite to start again")
        while at < begin:
            spans.append((at, min(at + chunk, begin)))
            at = spans[-1][1]
        if begin < end:
            spans.append((begin, end))
            at = end
    return spans


def _prepare_parts(parts_dir: Path, common: dict, rows: Rows) -> list[tuple[int, int]]:
    """OUT.parts/ with this run's config.json; the spans of its sound pieces, each checked
    against ``rows`` (chunks of other inputs are refused; damaged ones moved aside)."""
    path = parts_dir / "config.json"
    if any(parts_dir.glob("chunk_*")):
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            what = "missing" if not path.exists() else f"unreadable ({one_line(exc)})"
            raise InputChangedError(
                f"{path}: {what}, so the chunks beside it cannot be matched to their inputs; "
                "rerun with --overwrite to discard them"
            ) from None
        if saved != common:
            raise changed_inputs(parts_dir, saved, common)
    atomic_write_bytes(path, json.dumps(common, sort_keys=True).encode())
    spans = []
    for file in sorted(parts_dir.glob("chunk_*.pt")):
        name = PIECE_NAME.fullmatch(file.name)
        part = saved_chunk(file, json_digest(common)) if name else None
        if part is None:
            continue
        begin, end = int(name[1]), int(name[2])
        if part["piece"]["rows"] != [begin, end]:
            quarantine(file, CorruptFileError(file, f"does not hold the rows of images {begin}..{end - 1}"))
            continue
        rows.check(file, part["piece"])
        spans.append((begin, end))
    return spans


def _split(done: dict, parts_dir: Path, common: dict) -> None:
    """A finished output's pieces saved back as chunks of OUT.parts/ (each as it was computed)."""
    parts_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(parts_dir / "config.json", json.dumps(common, sort_keys=True).encode())
    at = 0
    for piece in done["config"]["pieces"]:
        begin, end = piece["rows"]
        count = int((done["image_index"][at:] < end).sum())  # rows are in index order: this piece's come first
        part = {name: done[name][at : at + count].clone() for name in SAVED_FIELDS}
        save_verified({**part, "run": json_digest(common), "piece": piece}, piece_path(parts_dir, begin, end))
        at += count

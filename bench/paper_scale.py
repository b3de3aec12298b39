"""Where the time of reproduction runs goes, from their results.json stage records, side by side.

    python -m intriguing_fast.reproduce --scale paper --out reports/paper
    torchrun --nproc-per-node 2 -m intriguing_fast.reproduce --scale paper --out reports/paper-torchrun
    python bench/paper_scale.py reports/paper reports/paper-torchrun [--write BENCHMARKS.md]

A stage's time is what its record says (the time it took when computed, also when this run
found it cached); under torchrun rank 0's records hold the attacks and the stages, while the
models other ranks trained show as cached. The total is each run's own wall time.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

from intriguing_fast.experiments.advtrain_stage import VARIANTS as ADVTRAIN_VARIANTS

from sections import emit

HEADING = "## Paper scale: where a reproduction's time goes (bench/paper_scale.py; issues 17 and 18)"
VARIANTS = {f"model/FC100-100-10 {name}" for name in ADVTRAIN_VARIANTS}  # advtrain_stage's model names
GROUPS = (  # (label, predicate on a stage record's name)
    ("training the zoo models", lambda n: n.startswith("model/") and n not in VARIANTS),
    ("attacks on training images", lambda n: n.startswith("attack/") and n.endswith("/train")),
    ("attacks on test images", lambda n: n.startswith("attack/") and n.endswith("/test")),
    ("adversarial-training variants (training)", lambda n: n in VARIANTS),
    ("stages themselves (tables, probing, spectral, Section 4.2's attacks and errors)", lambda n: "/" not in n),
)


def summary(run: Path) -> dict:
    """Seconds per group (computed in this run; and how many found cached) and the run's wall time.
    A stage's time excludes the models and attacks computed inside it (the variants of Section
    4.2 are trained inside its stage when no rank trained them before)."""
    meta = json.loads((run / "results.json").read_text())["meta"]
    records = [dict(r, end=_seconds(r["finished_at"])) for r in meta["stages"]]
    for stage in (r for r in records if "/" not in r["name"] and not r["cached"]):
        inside = [
            r
            for r in records
            if "/" in r["name"] and not r["cached"] and stage["end"] - stage["wall_s"] - 1 <= r["end"] <= stage["end"]
        ]
        stage["wall_s"] -= sum(r["wall_s"] for r in inside)
    groups = {}
    for label, belongs in GROUPS:
        mine = [r for r in records if belongs(r["name"])]
        groups[label] = (sum(r["wall_s"] for r in mine if not r["cached"]), sum(1 for r in mine if r["cached"]))
    return {"scale": meta["scale"], "wall_s": meta["wall_s"], "groups": groups}


def _seconds(stamp: str) -> float:
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp() if stamp else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="reproduce output directories (with results.json)")
    parser.add_argument("--write", default=None, help="put the section into this markdown file")
    args = parser.parse_args()
    runs = {str(path): summary(path) for path in args.runs}
    header = "| | " + " | ".join(f"`{name}` ({s['scale']})" for name, s in runs.items()) + " |"
    rows = [header, "|---|" + "---|" * len(runs)]
    for label, _ in GROUPS:
        cells = []
        for s in runs.values():
            seconds, cached = s["groups"][label]
            cells.append(f"{seconds:,.0f} s" + (f" (+{cached} cached or done by another rank)" if cached else ""))
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    rows.append(
        "| **run, wall time** | "
        + " | ".join(f"**{s['wall_s']:,.0f} s ({s['wall_s'] / 60:.1f} min)**" for s in runs.values())
        + " |"
    )
    text = "\n".join([HEADING, "", f"`python bench/paper_scale.py {' '.join(runs)}`:", "", *rows, ""])
    emit(text, HEADING, args.write)


if __name__ == "__main__":
    main()

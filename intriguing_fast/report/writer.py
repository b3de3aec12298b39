"""OUT/REPORT.md, OUT/results.json and OUT/figures/ from the pipeline's results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data import SUBSET_SOURCE
from ..experiments.stage import StageKind
from . import figures
from .markdown import table
from .sections import SECTIONS


def write_report(results: dict, out: Path) -> Path:
    """Write the report, its figures and every number as JSON; returns the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    examples = results.get("examples", {})
    serialisable = {k: v for k, v in results.items() if k != "examples"}
    (out / "results.json").write_text(json.dumps(serialisable, indent=1, default=float))

    meta = results["meta"]
    parts = [
        "# Intriguing properties of neural networks: reproduction report",
        f"Scale `{meta['scale']}`, seed {meta['seed']}, device `{meta['device']}`, data `{meta['data_source']}` "
        f"({meta['train_examples']} train / {meta['test_examples']} test images), total wall time "
        f"{meta['wall_s']:.0f} s. Every cell reads `ours [95% CI] (paper)`; error rates in percent. "
        "Adversarial examples are targeted at a seeded random other class, with the paper's "
        "box-constrained L-BFGS attack and a per-image search for the largest c that succeeds.",
    ]
    on_subset = meta["data_source"] == SUBSET_SOURCE
    if on_subset:
        parts.append(
            "**Computed on the MNIST subset embedded in the package, not on full MNIST** (full MNIST was "
            "neither found nor downloadable): models train on 10,000 digits instead of 60,000, so errors "
            "and distortions are not the paper's protocol. Give `--data-dir` for the real run."
        )
    findings: list[str] = []
    for name, section in meta["sections"].items():
        title = section["title"] + (" (on the embedded MNIST subset)" if on_subset else "")
        text, found = SECTIONS[StageKind(section["section"])](name, title, results[name], fig_dir)
        parts.append(text)
        findings += [f"- {line}" for line in found]
    rows = {
        model: row
        for name, section in meta["sections"].items()
        if StageKind(section["section"]) is StageKind.DISTORTION_TABLE
        for model, row in results[name].items()
    }
    if rows:
        figures.distortion_histograms(
            {m: np.asarray(r["distortions"], dtype=float) for m, r in rows.items()},
            {m: r["paper"].get("distortion") for m, r in rows.items()},
            fig_dir / "distortions.png",
        )
        parts.append("## Minimal distortions\n\n![distortion histograms, one per model](figures/distortions.png)")
    if examples:
        figures.adversarial_grid(examples, fig_dir / "adversarial_grid.png")
        parts.append(
            "## Examples (the paper's Figures 5 and 7)\n\n![adversarial examples](figures/adversarial_grid.png)"
        )
    parts.append("## Findings, checked on these numbers\n\n" + "\n".join(findings))
    parts.append(_stages(meta))
    path = out / "REPORT.md"
    path.write_text("\n\n".join(parts) + "\n")
    return path


def _stages(meta: dict) -> str:
    body = [[s["name"], f"{s['wall_s']:.1f}", "yes" if s["cached"] else "no", s["finished_at"]] for s in meta["stages"]]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    return f"## Run\n\nVersions: {versions}.\n\n" + table(["stage", "wall s", "from cache", "finished"], body)

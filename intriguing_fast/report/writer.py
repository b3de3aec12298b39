"""OUT/REPORT.md, OUT/results.json and OUT/figures/ from the pipeline's results."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..experiments import paper
from ..experiments.stats import Rate
from . import figures
from .markdown import beside, table


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
    if "table1" in results:
        parts.append(_table1(results["table1"]))
    if "table2" in results:
        parts.append(_transfer("Table 2: cross-model generalization (adversarials made on training images)",
                               results["table2"], paper.TABLE2, fig_dir / "table2_transfer.png"))
    if "table3" in results:
        parts.append(_table3(results["table3"]))
    if "table4" in results:
        parts.append(_transfer("Table 4: cross-training-set generalization (adversarials made on test images)",
                               results["table4"], paper.TABLE4, fig_dir / "table4_transfer.png"))
    distortions = {name: np.asarray(row["distortions"], dtype=float) for key in ("table1", "table3")
                   for name, row in results.get(key, {}).items()}
    if distortions:
        figures.distortion_histogram(distortions, fig_dir / "distortions.png")
        parts.append("## Minimal distortions\n\n![distortion histogram](figures/distortions.png)")
    if examples:
        figures.adversarial_grid({k: (v["original"], v["adversarial"]) for k, v in examples.items()},
                                 fig_dir / "adversarial_grid.png")
        parts.append("## Examples (the paper's Figures 5 and 7)\n\n![adversarial examples](figures/adversarial_grid.png)")
    parts.append(_findings(results))
    parts.append(_stages(meta))
    path = out / "REPORT.md"
    path.write_text("\n\n".join(parts) + "\n")
    return path


def _rate(d: dict) -> str:
    return str(Rate(d["errors"], d["total"]))


def _table1(rows: dict) -> str:
    body = [[name, beside(_rate(r["train_error"]), r["paper"]["train_error"]),
             beside(_rate(r["test_error"]), r["paper"]["test_error"]),
             f"{r['attacked']} ({_rate(r['success'])} success)",
             beside(f"{r['distortion']:.3f}", r["paper"]["distortion"])] for name, r in rows.items()]
    return "## Table 1: models, errors and minimal distortion\n\n" + table(
        ["model", "train error", "test error", "images attacked", "av. min. distortion"], body)


def _table3(rows: dict) -> str:
    body = [[name, beside(_rate(r["P1_error"]), r["paper"]["P1_error"]), beside(_rate(r["P2_error"]), r["paper"]["P2_error"]),
             beside(_rate(r["test_error"]), r["paper"]["test_error"]), f"{r['attacked']} ({_rate(r['success'])} success)",
             beside(f"{r['distortion']:.3f}", r["paper"]["distortion"])] for name, r in rows.items()]
    return "## Table 3: models trained on disjoint halves P1 and P2\n\n" + table(
        ["model", "error on P1", "error on P2", "test error", "test images attacked", "min av. distortion"], body)


def _transfer(title: str, result: dict, paper_rows: dict, fig: Path) -> str:
    cols = result["columns"]
    body, matrix = [], []
    for row, r in result["rows"].items():
        ref, ref_dist = paper_rows.get(row, ((None,) * len(cols), None))
        body.append([row] + [beside(_rate(r["errors"][c]), p, "%") for c, p in zip(cols, ref)]
                    + [beside(f"{r['distortion']:.3f}", ref_dist)])
        matrix.append([Rate(r["errors"][c]["errors"], r["errors"][c]["total"]).percent for c in cols])
    figures.transfer_heatmap(np.asarray(matrix), list(result["rows"]), cols, fig, title.split(":")[0])
    return f"## {title}\n\nRows: the examples; columns: the model they are fed to.\n\n" + table(
        ["examples \\ model"] + cols + ["av. distortion"], body) + f"\n\n![{title.split(':')[0]}](figures/{fig.name})"


def _findings(results: dict) -> str:
    """The paper's qualitative claims, each checked on this run's numbers."""
    lines = []
    for key in ("table1", "table3"):
        for name, r in results.get(key, {}).items():
            lines.append(f"- {name}: attack success {_rate(r['success'])} at mean distortion {r['distortion']:.3f}.")
    for key in ("table2", "table4"):
        if key not in results:
            continue
        rows, cols = results[key]["rows"], results[key]["columns"]
        pct = lambda r, c: Rate(r["errors"][c]["errors"], r["errors"][c]["total"]).percent  # noqa: E731
        cross = [pct(r, c) for name, r in rows.items() if r["kind"] == "adversarial" for c in cols if c != name]
        noise = {name: [pct(r, c) for c in cols] for name, r in rows.items() if r["kind"] == "noise"}
        adv_dist = np.mean([r["distortion"] for r in rows.values() if r["kind"] == "adversarial"])
        noise_txt = "; ".join(f"{n} (distortion {rows[n]['distortion']:.3f}): mean {np.mean(v):.1f}%" for n, v in noise.items())
        lines.append(f"- {key}: adversarials (mean distortion {adv_dist:.3f}) cause a mean error of "
                     f"{np.mean(cross):.1f}% on the other models; Gaussian-noise controls: {noise_txt}.")
        amp = [pct(r, c) for name, r in rows.items() if r["kind"] == "amplified" for c in cols if not name.startswith(c + " ")]
        if amp:
            lines.append(f"- {key}: amplified to distortion 0.1, the adversarials cause a mean error of "
                         f"{np.mean(amp):.1f}% on the other models (unamplified: {np.mean(cross):.1f}%).")
    return "## Findings, checked on these numbers\n\n" + "\n".join(lines)


def _stages(meta: dict) -> str:
    body = [[s["name"], f"{s['wall_s']:.1f}", "yes" if s["cached"] else "no", s["finished_at"]] for s in meta["stages"]]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    return f"## Run\n\nVersions: {versions}.\n\n" + table(["stage", "wall s", "from cache", "finished"], body)

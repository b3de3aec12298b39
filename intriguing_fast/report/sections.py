"""One renderer per kind of stage (experiments/stages.py names it): the stage's results.json
entry -> a Markdown section (figures drawn into fig_dir) and its findings, checked on the numbers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..experiments.stats import Rate
from . import figures
from .markdown import beside, table


def rate(d: dict) -> Rate:
    return Rate(d["errors"], d["total"])


def distortion_table(name: str, title: str, rows: dict, fig_dir: Path) -> tuple[str, list[str]]:
    """Tables 1 and 3: error rates, attack success and mean minimal distortion per model."""
    columns = [c for c in next(iter(rows.values()))["paper"] if c != "distortion"]
    body = [[model] + [beside(str(rate(r[c])), r["paper"][c]) for c in columns]
            + [f"{r['attacked']} ({rate(r['success'])} success)", beside(f"{r['distortion']:.3f}", r["paper"]["distortion"])]
            for model, r in rows.items()]
    header = ["model"] + [c.replace("_", " ") for c in columns] + ["images attacked", "av. min. distortion"]
    findings = [f"{model}: attack success {rate(r['success'])} at mean distortion {r['distortion']:.3f}."
                for model, r in rows.items()]
    return f"## {title}\n\n" + table(header, body), findings


def transfer_table(name: str, title: str, result: dict, fig_dir: Path) -> tuple[str, list[str]]:
    """Tables 2 and 4: error of each model (columns) on each row's examples, as a table and a heat map."""
    cols, rows = result["columns"], result["rows"]
    body, matrix = [], []
    for row, r in rows.items():
        ref = r.get("paper", {"errors": {}, "distortion": None})
        body.append([row] + [beside(str(rate(r["errors"][c])), ref["errors"].get(c), "%") for c in cols]
                    + [beside(f"{r['distortion']:.3f}", ref["distortion"])])
        matrix.append([rate(r["errors"][c]).percent for c in cols])
    short = title.split(":")[0]
    fig = figures.transfer_heatmap(np.asarray(matrix), list(rows), cols, fig_dir / f"{name}_transfer.png", short)
    text = (f"## {title}\n\nRows: the examples; columns: the model they are fed to.\n\n"
            + table(["examples \\ model"] + cols + ["av. distortion"], body) + f"\n\n![{short}](figures/{fig.name})")
    pct = lambda r, c: rate(r["errors"][c]).percent  # noqa: E731
    cross = [pct(r, c) for row, r in rows.items() if r["kind"] == "adversarial" for c in cols if c != row]
    noise = {row: [pct(r, c) for c in cols] for row, r in rows.items() if r["kind"] == "noise"}
    adv_dist = np.mean([r["distortion"] for r in rows.values() if r["kind"] == "adversarial"])
    noise_txt = "; ".join(f"{n} (distortion {rows[n]['distortion']:.3f}): mean {np.mean(v):.1f}%" for n, v in noise.items())
    findings = [f"{name}: adversarials (mean distortion {adv_dist:.3f}) cause a mean error of {np.mean(cross):.1f}% "
                f"on the other models; Gaussian-noise controls: {noise_txt}."]
    amp = [pct(r, c) for row, r in rows.items() if r["kind"] == "amplified" for c in cols if not row.startswith(c + " ")]
    if amp:
        findings.append(f"{name}: amplified to distortion 0.1, the adversarials cause a mean error of "
                        f"{np.mean(amp):.1f}% on the other models (unamplified: {np.mean(cross):.1f}%).")
    return text, findings


SECTIONS = {"distortion_table": distortion_table, "transfer_table": transfer_table}

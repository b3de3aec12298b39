"""One renderer per kind of stage (`StageKind`): the stage's results.json entry -> a Markdown
section (figures drawn into fig_dir) and its findings, checked on the numbers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..experiments.stage import StageKind
from ..experiments.stats import Rate
from . import figures
from .advtrain_section import adversarial_training
from .comparison import Compared, table_vs_paper, transfer_vs_paper
from .markdown import beside, table
from .probing_section import unit_probing
from .spectral_section import spectral_section

if TYPE_CHECKING:
    from ..experiments.distortion_tables import DistortionRow, DistortionTable
    from ..experiments.transfer import TransferRow, TransferTable


def distortion_table(name: str, title: str, rows: DistortionTable, fig_dir: Path) -> tuple[str, list[str]]:
    """Tables 1 and 3: error rates, attack success and mean minimal distortion per model; under the
    table, a figure of our test errors and distortions against the paper's."""
    columns = [c for c in next(iter(rows.values()))["paper"] if c != "distortion"]
    body = [
        [model] + [beside(str(Rate.of(r[c])), r["paper"][c]) for c in columns] + _attack_cells(r)
        for model, r in rows.items()
    ]
    header = ["model"] + [c.replace("_", " ") for c in columns] + ["images attacked", "av. min. distortion"]
    findings = [
        f"{model}: TRAINING FAILED (error at chance level on its own training data): its attack numbers "
        "are not meaningful and the model needs another recipe or more data."
        if r.get("training_failed")
        else f"{model}: attack success {Rate.of(r['success'])} at mean distortion {r['distortion']:.3f}."
        for model, r in rows.items()
    ]
    short = title.split(":")[0]
    errors = [Compared.of_rate(m, Rate.of(r["test_error"]), r["paper"].get("test_error")) for m, r in rows.items()]
    means = [
        Compared.of_mean(m, np.asarray(r["distortions"], dtype=float), r["paper"].get("distortion"))
        for m, r in rows.items()
    ]
    table_vs_paper(errors, means, fig_dir / f"{name}_vs_paper.png", short)
    text = f"## {title}\n\n" + table(header, body) + _figure(f"{short}: ours against the paper", name, "vs_paper")
    return text, findings


def _attack_cells(r: DistortionRow) -> list[str]:
    """The attack's columns of a Table 1/3 row; a model whose training failed is marked, not ranked."""
    if r.get("training_failed"):
        return [f"{r['attacked']} (**training failed**: not meaningful)", "n/a"]
    return [
        f"{r['attacked']} ({Rate.of(r['success'])} success)",
        beside(f"{r['distortion']:.3f}", r["paper"]["distortion"]),
    ]


def transfer_table(name: str, title: str, result: TransferTable, fig_dir: Path) -> tuple[str, list[str]]:
    """Tables 2 and 4: error of each model (columns) on each row's examples, as a table, a heat map
    and a figure of every cell against the paper's."""
    cols, rows = result["columns"], result["rows"]
    body, matrix = [], []
    for row, r in rows.items():
        ref = r.get("paper", {"errors": {}, "distortion": None})
        body.append(
            [row]
            + [beside(str(Rate.of(r["errors"][c])), ref["errors"].get(c), "%") for c in cols]
            + [beside(f"{r['distortion']:.3f}", ref["distortion"])]
        )
        matrix.append([Rate.of(r["errors"][c]).percent for c in cols])
    short = title.split(":")[0]
    figures.transfer_heatmap(np.asarray(matrix), list(rows), cols, fig_dir / f"{name}_transfer.png", short)
    transfer_vs_paper(transfer_cells(rows, cols), fig_dir / f"{name}_vs_paper.png", short)
    text = (
        f"## {title}\n\nRows: the examples; columns: the model they are fed to.\n\n"
        + table(["examples \\ model"] + cols + ["av. distortion"], body)
        + _figure(short, name, "transfer")
        + _figure(f"{short}: ours against the paper", name, "vs_paper")
    )
    pct = lambda r, c: Rate.of(r["errors"][c]).percent  # noqa: E731
    cross = [pct(r, c) for row, r in rows.items() if r["kind"] == "adversarial" for c in cols if c != row]
    noise = {row: [pct(r, c) for c in cols] for row, r in rows.items() if r["kind"] == "noise"}
    adv_dist = np.mean([r["distortion"] for r in rows.values() if r["kind"] == "adversarial"])
    noise_txt = "; ".join(
        f"{n} (distortion {rows[n]['distortion']:.3f}): mean {np.mean(v):.1f}%" for n, v in noise.items()
    )
    findings = [
        f"{name}: adversarials (mean distortion {adv_dist:.3f}) cause a mean error of {np.mean(cross):.1f}% "
        f"on the other models; Gaussian-noise controls: {noise_txt}."
    ]
    amp = [
        pct(r, c) for row, r in rows.items() if r["kind"] == "amplified" for c in cols if not row.startswith(c + " ")
    ]
    if amp:
        findings.append(
            f"{name}: amplified to distortion 0.1, the adversarials cause a mean error of "
            f"{np.mean(amp):.1f}% on the other models (unamplified: {np.mean(cross):.1f}%)."
        )
    return text, findings


def transfer_cells(rows: dict[str, TransferRow], cols: list[str]) -> list[Compared]:
    """Every cell of a transfer table beside the paper's, but for examples fed to their own model;
    named 'examples → model' (amplified rows by their model: the colour tells the kind)."""
    return [
        Compared.of_rate(
            f"{row.split(' amplified')[0]} → {c}",
            Rate.of(r["errors"][c]),
            r.get("paper", {"errors": {}})["errors"].get(c),
            r["kind"],
        )
        for row, r in rows.items()
        for c in cols
        if not (row == c or row.startswith(c + " "))
    ]


def _figure(alt: str, name: str, kind: str) -> str:
    """The Markdown that embeds figures/{name}_{kind}.png under a section's table."""
    return f"\n\n![{alt}](figures/{name}_{kind}.png)"


Renderer = Callable[[str, str, Any, Path], tuple[str, list[str]]]  # (name, title, entry, fig_dir) -> (text, findings)
SECTIONS: dict[StageKind, Renderer] = {
    StageKind.DISTORTION_TABLE: distortion_table,
    StageKind.TRANSFER_TABLE: transfer_table,
    StageKind.UNIT_PROBING: unit_probing,
    StageKind.SPECTRAL_TABLE: spectral_section,
    StageKind.ADVERSARIAL_TRAINING: adversarial_training,
}

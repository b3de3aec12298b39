"""The Table 5 section (experiments/spectral_stage.py): per-layer Lipschitz bounds beside the
measured gains, where the attack's extra gain over random directions arises, and AlexNet's bounds
beside the paper's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from .markdown import table

if TYPE_CHECKING:
    from ..experiments.spectral_stage import SpectralResult

TRIVIAL = ("Flatten", "Unflatten", "Identity", "Dropout")  # always 1: left out of the per-layer tables


def spectral_section(name: str, title: str, result: SpectralResult, fig_dir: Path) -> tuple[str, list[str]]:
    """Markdown: a summary per model, each model's layers, AlexNet against Table 5; findings."""
    models, alexnet, power = result["models"], result["alexnet"], result["power_iteration"]
    parts = [f"## {title}", _intro(power)]
    if models:
        parts.append(_summary_table(models))
        parts += [f"**{model}** ({_pairs(m)})\n\n" + _layer_table(m) for model, m in models.items()]
    parts.append(_alexnet_text(alexnet))
    findings = [line for model, m in models.items() for line in _model_findings(model, m)] + _alexnet_findings(alexnet)
    return "\n\n".join(parts), findings


def _intro(power: dict) -> str:
    return (
        "Per layer, an upper bound of its Lipschitz constant (L2 to L2); the network's bound is their product "
        "(the paper's Sec. 4.3). Beside it, the gain measured on the attack's successful pairs (x, x + r): per "
        "layer ||phi_k(x + r) - phi_k(x)|| / ||phi_k-1(x + r) - phi_k-1(x)||, for the network "
        "||f(x + r) - f(x)|| / ||r||, and the same for random Gaussian directions of each pair's norm. "
        "Convolutions: *bound* is the paper's Fourier construction, exact for the circular convolution, on a "
        "periodic size that contains the zero-padded layer (so it bounds it); *exact* is the layer as PyTorch "
        f"computes it (zero padding), by power iteration (stops at relative change {power['rtol']:g} or "
        f"{power['max_iter']} iterations; an estimate from below). They differ by the borders. "
        "Max-pooling is bounded by sqrt(windows per pixel): 1 without overlap, 2 for AlexNet's 3x3 stride-2 "
        "windows (the paper takes 1). *Excess log gain*: a layer's mean log gain on the adversarial pairs minus "
        "that on the random ones; along the chain these add up to the network's log(adversarial / random gain), "
        "so a layer's share of the positive excess says where the attack's extra gain arises (concentrated: one "
        "layer carries more than half). Layers that are always 1 (reshapes, dropout) are left out."
    )


def _pairs(m: dict) -> str:
    return "bounds only: not attacked in this run" if m["network"] is None else f"{m['pairs']} adversarial pairs"


def excess_shares(m: dict) -> list[tuple[str, float]]:
    """Each layer's mean log gain on the adversarial pairs minus that on random directions."""
    return [(row["path"], row["mean_log_gain"] - row["random_mean_log_gain"]) for row in m["layers"]]


def _top_share(m: dict) -> tuple[str, float, float]:
    """The layer with the largest excess, its fraction of the positive excess, and the total excess."""
    shares = excess_shares(m)
    positive = sum(e for _, e in shares if e > 0)
    path, top = max(shares, key=lambda pair: pair[1])
    return path, (top / positive if positive > 0 else math.nan), sum(e for _, e in shares)


def _summary_table(models: dict) -> str:
    body = []
    for model, m in models.items():
        exact = "-" if m["bound_exact"] is None else f"{m['bound_exact']:.3g}"
        if m["network"] is None:
            body.append([model, "-", f"{m['bound']:.3g}", exact] + ["-"] * 6)
            continue
        adv, rnd = m["network"]["adversarial"], m["network"]["random"]
        path, share, total = _top_share(m)
        body.append(
            [
                model,
                m["pairs"],
                f"{m['bound']:.3g}",
                exact,
                f"{adv['q50']:.3g}",
                f"{adv['max']:.3g}",
                f"{rnd['q50']:.3g}",
                f"{m['looseness']:.3g}",
                f"{math.exp(total):.3g}x",
                f"{path} ({share:.0%})",
            ]
        )
    return table(
        [
            "model",
            "pairs",
            "bound",
            "bound, exact convs",
            "adv. gain median",
            "adv. gain max",
            "random gain median",
            "bound / max",
            "adv. / random gain",
            "largest share of positive excess",
        ],
        body,
    )


def _layer_table(m: dict) -> str:
    shares = dict(excess_shares(m)) if m["network"] is not None else {}
    body = []
    for row in m["layers"]:
        if row["kind"] in TRIVIAL:
            continue
        exact = (
            "-" if row["exact"] is None else f"{row['exact']:.4g}" + ("" if row["converged"] else " (not converged)")
        )
        measured = (
            [
                f"{row['measured']['q50']:.3g} [{row['measured']['max']:.3g}]",
                f"{row['random']['q50']:.3g}",
                f"{row['looseness']:.3g}",
                f"{shares[row['path']]:+.3f}",
            ]
            if shares
            else ["-"] * 4
        )
        body.append([row["path"], row["kind"], f"{row['bound']:.4g}", exact, *measured])
    return table(
        [
            "layer",
            "type",
            "bound",
            "exact",
            "adv. gain median [max]",
            "random gain median",
            "bound / max",
            "excess log gain",
        ],
        body,
    )


def _alexnet_text(a: dict) -> str:
    body = [
        [
            row["table5"],
            row["size"] + ("" if row["size"] == row["paper"]["size"] else f" ({row['paper']['size']})"),
            row["paper"]["stride"] or "N/A",
            f"{row['bound']:.3g}",
            "-" if row["exact"] is None else f"{row['exact']:.3g}",
            f"{row['paper']['bound']:g}",
        ]
        for row in a["layers"]
        if "table5" in row
    ]
    others = sorted(
        {(row["kind"], round(row["bound"], 4)) for row in a["layers"] if "table5" not in row and row["bound"] != 1.0}
    )
    other = "; ".join(f"{kind} {bound:g}" for kind, bound in others) or "none"
    return (
        f"**AlexNet** ({a['layout']} layout, {'x'.join(map(str, a['input_shape']))} input; weights: {a['weights']})"
        "\n\n"
        + table(
            ["layer", "size (paper's if different)", "stride", "bound (Fourier)", "exact (zero-padded)", "paper"], body
        )
        + f"\n\nOther layers above 1 (each occurrence): {other}. Product of all layers: {a['bound']:.4g} "
        f"({a['bound_exact']:.4g} with the exact convolution norms); the paper's eight layers alone: "
        f"{_paper_product(a):.4g}."
    )


def _paper_product(a: dict) -> float:
    return math.prod(row["paper"]["bound"] for row in a["layers"] if "table5" in row)


def _model_findings(model: str, m: dict) -> list[str]:
    convs = [row for row in m["layers"] if row["exact"] is not None]
    gaps = ", ".join(f"{row['path']} {row['bound']:.4g} vs {row['exact']:.4g}" for row in convs)
    lines = [f"{model}: convolutions, Fourier bound vs exact zero-padded norm: {gaps}."] if convs else []
    if m["network"] is None:
        return [f"{model}: not attacked in this run, so bounds only (network bound {m['bound']:.3g})."] + lines
    if m["pairs"] == 0:
        return [f"{model}: no successful adversarial pairs, so no measured gain (bound {m['bound']:.3g})."] + lines
    adv, rnd = m["network"]["adversarial"], m["network"]["random"]
    path, share, total = _top_share(m)
    verdict = "concentrated in that layer" if share > 0.5 else "spread over the layers (none carries half)"
    bound = (
        f"{model}: the product of the layer bounds, {m['bound']:.3g}, is {m['looseness']:.3g} times the largest "
        f"measured gain ||f(x + r) - f(x)|| / ||r|| ({adv['max']:.3g}; median {adv['q50']:.3g} on "
        f"{m['pairs']} adversarial pairs, {rnd['q50']:.3g} for random directions of the same norm)."
    )
    where = (
        f"{model}: the adversarial pairs' gain is {math.exp(total):.3g}x that of random directions of the same "
        f"norm (geometric means); {path} carries {share:.0%} of the positive excess: {verdict}."
    )
    return [bound, where, *lines]


def _alexnet_findings(a: dict) -> list[str]:
    ours = [row for row in a["layers"] if "table5" in row]
    ratio = ", ".join(f"{row['table5']} {row['bound']:.3g} ({row['paper']['bound']:g})" for row in ours)
    pools = [row for row in a["layers"] if row["kind"] == "MaxPool2d" and row["bound"] > 1]
    pool = (
        f" Its {len(pools)} overlapping max-poolings are bounded by {pools[0]['bound']:g} each, not the paper's 1."
        if pools
        else ""
    )
    return [f"AlexNet ({a['weights'].split(':')[0]} weights): Table 5 bounds, ours (paper): {ratio}.{pool}"]

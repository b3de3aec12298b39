"""Section 4.2 (adversarial training with pools): the stage's results.json entry -> a Markdown
section, a figure, and findings that say plainly whether the paper's two claims hold here."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from ..experiments.stats import Rate
from .markdown import beside, table
from .style import new_figure, save, styled

if TYPE_CHECKING:
    from ..experiments.advtrain_stage import AdvTrainResult

PAPER_POOL_BOUND = 1.2  # "below 1.2%" with a pool of input-layer adversarials
LAYER_ORDER = ("input pool", "hidden 1 pool", "hidden 2 pool")  # single-layer pools, lowest layer first


def adversarial_training(name: str, title: str, result: AdvTrainResult, fig_dir: Path) -> tuple[str, list[str]]:
    """The variants' table (test error beside the paper's, robustness, time), a figure, findings."""
    rows = result["rows"]
    body = [
        [
            variant,
            ", ".join(r["pools"]) or "-",
            beside(str(Rate.of(r["test_error"])), r["paper"]),
            f"{r['distortion']:.4f} ({Rate.of(r['success'])} success)",
            str(Rate.of(r["plain_adversarials_error"])),
            f"{r['seconds']:.0f}",
            f"{r['attack_seconds']:.0f} ({_share(r)})",
            f"{r['generated']} ({_fooled(r)})",
        ]
        for variant, r in rows.items()
    ]
    header = [
        "variant",
        "pools",
        "test error % (paper)",
        "av. min. distortion",
        "error % on the plain model's adversarials",
        "train s",
        "of which making pool examples, s",
        "pool examples made (fooled)",
    ]
    figure(rows, fig_dir / f"{name}_variants.png")
    text = (
        f"## {title}\n\n{_setup(result)}\n\n"
        + table(header, body)
        + f"\n\n![test error and minimal distortion per variant](figures/{name}_variants.png)"
    )
    findings = [
        line
        for line in (
            _failed(rows),
            _pool_finding(rows, result["plain"]),
            _layer_finding(rows),
            _robustness(rows, result),
            _time_finding(rows),
        )
        if line
    ]
    return text, findings


def _setup(result: dict) -> str:
    """How the variants were trained and evaluated, and what the paper reports."""
    s, decay = result["settings"], ", ".join(f"{w:g}" for w in result["weight_decay"])
    return (
        f"FC100-100-10 (sigmoid, weight decay {decay}) trained from scratch on the {result['train_examples']} "
        f"training images, {s['epochs']} epochs of SGD (batch {s['batch_size']}, lr {s['lr']}, cosine decay) in "
        f"every variant. Pools: {s['pool_size']} slots each, filled after {s['warmup_epochs']} plain epoch(s), "
        f"{s['refresh_fraction']:.0%} replaced every {s['refresh_every']} steps by adversarials ({s['targets']} "
        f"targets; {s['attack_steps']} c steps of at most {s['attack_max_iter']} L-BFGS iterations) of the model "
        f"as it is then; {s['mix']:g} pool example(s) per clean one in each batch, shared by a variant's pools. "
        f"Dropout: {s['dropout'][0]:g} on the input, {s['dropout'][1]:g} on the hidden layers. The paper: 1.6% "
        f"with weight decay alone, about 1.3% with dropout, below {PAPER_POOL_BOUND}% with a pool; no number for "
        f"the hidden-layer pools. Distortions: the run's attack on {result['attacked']} test images; the plain "
        f"model is `{result['plain']}`."
    )


def _share(r: dict) -> str:
    return f"{r['attack_seconds'] / r['seconds']:.0%}" if r["seconds"] else "-"


def _fooled(r: dict) -> str:
    return f"{r['fooled'] / r['generated']:.0%}" if r["generated"] else "-"


def _overlap(a: Rate, b: Rate) -> str:
    (lo_a, hi_a), (lo_b, hi_b) = a.interval, b.interval
    return "their 95% intervals overlap" if lo_a <= hi_b and lo_b <= hi_a else "their 95% intervals are disjoint"


def _failed(rows: dict) -> str | None:
    """A caveat when a variant did not learn (half of its own training data or more wrong)."""
    failed = [v for v, r in rows.items() if r["training_failed"]]
    return (
        f"{', '.join(failed)}: training failed (error >= 50% on the training data), so the verdicts below "
        "compare untrained models and mean nothing at this scale."
        if failed
        else None
    )


def _pool_finding(rows: dict, plain: str) -> str | None:
    """The paper's first claim: an input pool brings the test error below 1.2% (from 1.6%)."""
    if "input pool" not in rows:
        return None
    base, pool = Rate.of(rows[plain]["test_error"]), Rate.of(rows["input pool"]["test_error"])
    if pool.percent < min(PAPER_POOL_BOUND, base.percent):
        verdict = "holds here"
    elif pool.percent < base.percent:
        verdict = f"holds only in part here (lower than weight decay alone, not below {PAPER_POOL_BOUND}%)"
    else:
        verdict = "does not hold here"
    return (
        f"Adversarial training (paper: below {PAPER_POOL_BOUND}% test error with a pool, 1.6% with weight decay "
        f"alone) {verdict}: input pool {pool} against {base} with weight decay alone; {_overlap(pool, base)}."
    )


def _layer_finding(rows: dict) -> str | None:
    """The paper's second claim: pools of higher layers help more than the input pool."""
    present = [v for v in LAYER_ORDER if v in rows]
    if len(present) < 2:
        return None
    errors = {v: Rate.of(rows[v]["test_error"]) for v in present}
    top, bottom = errors[present[-1]], errors[present[0]]
    falling = all(errors[a].percent >= errors[b].percent for a, b in pairwise(present))
    if top.percent < bottom.percent:
        verdict = "holds here" if falling else "holds only in part here (the top layer beats the input, not in order)"
    else:
        verdict = "does not hold here"
    listed = ", ".join(f"{v} {e}" for v, e in errors.items())
    return (
        f"Higher layers' pools more useful than the input's (the paper's finding) {verdict}: {listed}; "
        f"{present[-1]} against {present[0]}: {_overlap(top, bottom)}."
    )


def _robustness(rows: dict, result: dict) -> str:
    """The distortion each variant needs, and how well it resists the plain model's adversarials."""
    plain = rows[result["plain"]]
    fooled = {v: Rate.of(r["plain_adversarials_error"]).percent for v, r in rows.items()}
    others = "; ".join(
        f"{v} {r['distortion']:.4f} (its error on them {fooled[v]:.1f}%)"
        for v, r in rows.items()
        if v != result["plain"]
    )
    return (
        f"Mean minimal distortion our attack needs: {plain['distortion']:.4f} on the weight-decay-only model; "
        f"{others}. (In parentheses: the error each makes on the weight-decay-only model's adversarials.)"
    )


def _time_finding(rows: dict) -> str | None:
    made = sum(r["generated"] for r in rows.values())
    if not made:
        return None
    attack, total = sum(r["attack_seconds"] for r in rows.values()), sum(r["seconds"] for r in rows.values())
    return (
        f"Training all {len(rows)} variants took {total:.0f} s, {attack:.0f} s ({attack / total:.0%}) of it "
        f"making {made} pool examples with the batched attack ({made / max(attack, 1e-9):.0f} examples/s)."
    )


@styled
def figure(rows: dict, path: Path) -> Figure:
    """Test error (95% interval; the paper's value as a cross) and mean minimal distortion per variant."""
    fig = new_figure(8.0, 3.2)
    left, right = fig.subplots(1, 2)
    names = list(rows)
    x = np.arange(len(names))
    errors = [Rate.of(rows[v]["test_error"]) for v in names]
    low = [e.percent - e.interval[0] for e in errors]
    high = [e.interval[1] - e.percent for e in errors]
    left.bar(x, [e.percent for e in errors], yerr=[low, high], capsize=3, color="C0", label="ours (Wilson 95%)")
    paper = [(i, rows[v]["paper"]) for i, v in enumerate(names) if rows[v]["paper"] is not None]
    if paper:
        left.plot(*zip(*paper), "x", color="C3", markersize=8, label="paper")
    left.set_ylabel("test error (%)")
    left.legend(loc="upper right")
    right.bar(x, [rows[v]["distortion"] for v in names], color="C2")
    right.set_ylabel("mean minimal distortion")
    for ax in (left, right):
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Section 4.2: FC100-100-10 variants")
    return save(fig, path)

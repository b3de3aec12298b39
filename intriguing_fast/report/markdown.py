"""Markdown rendering of the reproduction's tables: ours beside the paper's."""

from __future__ import annotations

from collections.abc import Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def beside(ours: str, paper: float | None, unit: str = "") -> str:
    """'ours (paper: x)' for one cell."""
    return ours if paper is None else f"{ours} ({paper:g}{unit})"

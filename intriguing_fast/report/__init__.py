"""The reproduction report: Markdown tables beside the paper's numbers, figures, JSON.

`write_report` is imported on first use (PEP 562), with the sections and matplotlib behind it:
`from intriguing_fast.report.figures import ...` (the bulk attack's --curve) loads only that
module, so the command lines' --help stays quick."""

from __future__ import annotations

__all__ = ["write_report"]


def __getattr__(name: str):
    if name == "write_report":
        from .writer import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

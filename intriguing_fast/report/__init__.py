"""The reproduction report: Markdown tables beside the paper's numbers, figures, JSON."""
from .writer import write_report

__all__ = ["write_report"]

"""BENCHMARKS.md sections: each benchmark script owns one, from its heading to the next "## "."""
from __future__ import annotations

from pathlib import Path


def write_section(path: Path, heading: str, text: str) -> None:
    """Replace the section that starts with `heading` in the file, or append it."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(heading)
    if start < 0:
        path.write_text(old.rstrip("\n") + "\n\n" + text)
        return
    end = old.find("\n## ", start + len(heading))
    path.write_text(old[:start] + text + (old[end + 1:] if end >= 0 else ""))

"""BENCHMARKS.md sections: each benchmark script owns one, from its heading to the next "## "."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def emit(text: str, heading: str, write: str | None) -> None:
    """Print a benchmark's section, and put it into the markdown file `write` when given."""
    print(text)
    if write:
        write_section(Path(write), heading, text)


def write_section(path: Path, heading: str, text: str) -> None:
    """Replace the section that starts with `heading` in the file, or append it."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(heading)
    if start < 0:
        path.write_text(old.rstrip("\n") + "\n\n" + text)
        return
    end = old.find("\n## ", start + len(heading))
    path.write_text(old[:start] + text.rstrip("\n") + "\n" + ("\n" + old[end + 1 :] if end >= 0 else ""))


def commit() -> str:
    """The repository's short HEAD commit, for a section's header ("unknown" outside a git checkout)."""
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def table_section(heading: str, intro: str, columns: list[str], rows: list[str]) -> str:
    """A section: its heading, one paragraph, then a markdown table of `rows` under `columns`."""
    return "\n".join(
        [heading, "", intro, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *rows, ""]
    )

"""bench/engine_scaling.py runs end to end on its tiny grid: it writes the PNG and prints the table."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "engine_scaling.py"


def test_quick_run_writes_figure_and_table(tmp_path):
    out = tmp_path / "figures" / "scaling.png"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 10_000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 784 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["1", "8"]  # B = 1 and 8 at n = 784
    assert "| n | B | m | cpp ms/it |" in done.stdout

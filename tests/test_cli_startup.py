"""The command lines start without the heavy imports they do not need for --help (scipy.stats,
matplotlib, triton: together most of the 3-7 s that `--help` once took): those load in the
functions that use them. Checked by the modules loaded, never by a clock (speed is measured in
bench/, not in tests)."""

import subprocess
import sys

import pytest

HEAVY = ("scipy.stats", "matplotlib", "triton")

# Runs the module as `python -m` would, with --help, then lists which HEAVY modules were loaded.
PROBE = """
import runpy, sys
heavy = {heavy!r}
sys.argv = ["x", "--help"]
try:
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
loaded = sorted(name for name in heavy if name in sys.modules)
print("LOADED:" + ",".join(loaded))
"""


@pytest.mark.parametrize("module", ["intriguing_fast.reproduce", "intriguing_fast.bulk_attack"])
def test_help_does_not_import_heavy_modules(module):
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY, module=module)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--threads" in done.stdout  # the help was printed
    loaded = done.stdout.rsplit("LOADED:", 1)[1].strip()
    assert loaded == "", f"{module} --help imported {loaded}"


def test_the_report_and_the_probing_statistics_still_load_their_libraries_when_used(tmp_path):
    """The lazy imports are where the work is: a figure loads matplotlib, a comparison scipy.stats."""
    code = f"""
import sys
import numpy as np
from intriguing_fast.analysis.probing_stats import compare
from intriguing_fast.report import figures
assert "matplotlib" not in sys.modules and "scipy.stats" not in sys.modules
compare(np.arange(5.0), np.arange(5.0) + 0.5)
assert "scipy.stats" in sys.modules
figures.transfer_heatmap(np.full((2, 2), 50.0), ["a", "b"], ["c", "d"], {str(tmp_path / "h.png")!r}, "t")
assert "matplotlib" in sys.modules
import intriguing_fast.report as report
assert callable(report.write_report)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "h.png").stat().st_size > 0

"""README.md's code runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_attacking_your_own_model_snippet_runs(capsys):
    (snippet,) = [block for block in python_blocks() if "lbfgs_attack(model" in block]
    namespace: dict = {}
    exec(compile(snippet, str(README), "exec"), namespace)
    res = namespace["res"]
    assert res.success.all() and 0 < res.mean_distortion < 0.2
    assert "tensor(1.)" in capsys.readouterr().out

"""Every Triton kernel compiles to a cubin for an H100 (sm_90), no GPU needed: the check the
interpreter cannot make (it runs kernels as NumPy, so it accepts code the compiler rejects)."""
import importlib.util
import os
import subprocess
import sys

import pytest


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_kernels_compile_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    out = subprocess.run([sys.executable, "-m", "intriguing_fast.kernels.triton_aot", "--arch", "90"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(out.stdout.splitlines()) == 12, out.stdout

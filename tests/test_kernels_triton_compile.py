"""Every launch of the Triton backend goes through Triton's real launch path (argument binder,
specialisation with alignment and divisibility hints, compiler) down to a cubin for an H100/H200
(sm_90), with no GPU: the checks the interpreter cannot make (it neither binds arguments like
the launcher nor compiles, so it accepts a kernel that no GPU launch would)."""

import importlib.util
import os
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")


def test_every_launch_binds_and_compiles_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    out = subprocess.run(
        [sys.executable, "-m", "intriguing_fast.engine.backends.triton_aot", "--arch", "90"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()[1:]
    # 12 cases (2 row lengths x 3 dtype pairings x shared or per-problem bounds) x 3 steps.
    assert len(lines) == 36, out.stdout
    assert all("cubin" in line and "with alignment/divisibility hints" in line for line in lines), out.stdout


def test_launch_parameters_avoid_the_launchers_locals():
    """Triton's generated binder keeps locals of these names; a kernel parameter named like one
    is replaced by the binder's own value (a dict for `params`), and every launch fails."""
    from intriguing_fast.engine.backends.triton_direction import direction_block_kernel, direction_chunked_kernel
    from intriguing_fast.engine.backends.triton_steps import accept_kernel, trial_kernel

    reserved = {"params", "specialization", "options", "backend", "specialize_impl", "JITCallable"}
    for kernel in (direction_block_kernel, direction_chunked_kernel, trial_kernel, accept_kernel):
        names = set(kernel.arg_names)
        assert not names & reserved, (kernel, names & reserved)


def test_launches_go_to_the_tensors_device():
    from intriguing_fast.engine.backends.triton_backend import device_guard

    assert device_guard(torch.device("cuda", 1)).idx == 1  # entered only around a launch
    with device_guard(torch.device("cpu")):
        pass

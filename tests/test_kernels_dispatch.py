"""backend= resolution: auto picks the fused backend for the device; an impossible request is an error."""

import importlib.util

import pytest
import torch

import intriguing_fast.engine.backends as kernels
import intriguing_fast.engine.backends.native as native
from intriguing_fast import minimize_lbfgsb

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
HAS_TRITON = importlib.util.find_spec("triton") is not None


def test_auto_on_cpu_is_cpp_when_built_else_torch(monkeypatch):
    assert kernels.resolve_backend("auto", CPU).name == ("cpp" if native.native_available() else "torch")
    monkeypatch.setattr(kernels, "native_available", lambda: False)
    assert kernels.resolve_backend("auto", CPU).name == "torch"


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
def test_auto_on_cuda_is_triton_when_importable_else_torch(monkeypatch):
    assert kernels.resolve_backend("auto", CUDA).name == "triton"
    monkeypatch.setattr(kernels, "triton_available", lambda: False)
    assert kernels.resolve_backend("auto", CUDA).name == "torch"


def test_impossible_requests_are_errors(monkeypatch):
    with pytest.raises(ValueError, match="backend: expected one of"):
        kernels.resolve_backend("cuda", CPU)
    with pytest.raises(ValueError, match="backend='cpp' runs on CPU tensors"):
        kernels.resolve_backend("cpp", CUDA)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="backend='triton' runs on CUDA tensors.*TRITON_INTERPRET=1"):
        kernels.resolve_backend("triton", CPU)
    monkeypatch.setattr(kernels, "triton_available", lambda: False)
    with pytest.raises(ValueError, match="needs the triton package"):
        kernels.resolve_backend("triton", CUDA)


def test_cpp_without_the_extension_is_an_error(monkeypatch):
    monkeypatch.setattr(native, "_native", None)
    with pytest.raises(RuntimeError, match="needs the native extension"):
        minimize_lbfgsb(lambda x, i: ((x * x).sum(1), 2 * x), torch.ones(2, 3), backend="cpp")

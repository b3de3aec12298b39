import pytest
import torch

from intriguing_fast.engine.backends import native_available

# One intra-op thread: results do not depend on the thread count, and on a loaded 2-core
# machine torch's thread pool spins (several times slower than one thread).
torch.set_num_threads(1)

# Every engine test runs on each CPU backend that exists; the C++ one is required in CI
# (INTRIGUING_FAST_REQUIRE_NATIVE=1 makes a missing extension an import error).
CPU_BACKENDS = ["torch"] + (["cpp"] if native_available() else [])


@pytest.fixture(params=CPU_BACKENDS)
def backend(request) -> str:
    return request.param


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: needs --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)

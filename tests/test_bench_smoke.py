"""Every benchmark script in bench/ run once at a tiny size, so none rots (issue 17); the figures
are not checked, only that each script runs through and prints or writes its report.

Each runs as a subprocess in bench/ with one OpenMP thread, the cache root (checkpoints, the MNIST
checksum memo) in a temporary directory, no bytecode written, and downloads cut off by a dead proxy:
a machine without MNIST on disk uses the embedded subset. Nothing is written into the repository.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
DEAD_PROXY = "http://127.0.0.1:9"  # refuses at once: load_mnist falls back to the embedded subset
PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The scripts' environment; one cache root for the module's runs, so a zoo model is trained once."""
    kept = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}
    return {
        **kept,
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "http_proxy": DEAD_PROXY,
        "https_proxy": DEAD_PROXY,
        "INTRIGUING_FAST_CACHE": str(tmp_path_factory.mktemp("cache")),
    }


def run(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    """`python *args` in bench/; its stdout, once it has exited 0."""
    done = subprocess.run([sys.executable, *args], cwd=BENCH, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def model_cache(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The bench MLP (bench/subjects.py) trained one epoch, once, for the scripts that load it."""
    path = tmp_path_factory.mktemp("model") / "mlp.pt"
    run(env, "-c", "import sys, pathlib, subjects; subjects.quick_mlp(pathlib.Path(sys.argv[1]), 1)", str(path))
    return str(path)


def test_bench_attack(env: dict[str, str], model_cache: str, tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    run(env, "bench_attack.py", "--count", "8", "--subset", "2", "--model-cache", model_cache, "--write", str(out))
    text = out.read_text()
    assert "## L-BFGS attack (bench/bench_attack.py)" in text and "| (c) scipy, flattened batch | 8 |" in text


def test_bench_rounds(env: dict[str, str], model_cache: str) -> None:
    text = run(
        env,
        "bench_rounds.py",
        "--count",
        "64",
        "--max-iter",
        "10",
        "--steps",
        "2",
        "--ops-batch",
        "8",
        "--model-cache",
        model_cache,
    )
    assert "x fewer; wall time" in text and "syncing calls per round" in text


def test_bench_host(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    run(env, "bench_host.py", "--count", "8", "--repeats", "1", "--write", str(out))
    text = out.read_text()
    assert "## Host time per model call (bench/bench_host.py; issue 28)" in text
    assert "| intriguing_fast, 7 c steps x 100 it, pull back 0.5 | targeted |" in text


def test_bench_threads(env: dict[str, str], model_cache: str, tmp_path: Path) -> None:
    """Eight fresh processes of four images each, half of them beside a busy loop."""
    out = tmp_path / "BENCHMARKS.md"
    run(env, "bench_threads.py", "--count", "4", "--repeats", "1", "--model-cache", model_cache, "--write", str(out))
    assert sum(line.startswith("| ") for line in out.read_text().splitlines()) == 5  # header, four configurations


def test_scipy_parity(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "parity.json"
    text = run(env, "scipy_parity.py", "--family", "at a bound", "--worst", "3", "--json", str(out))
    assert "| **all** | 24 |" in text and len(json.loads(out.read_text())) == 24


def test_temperature(env: dict[str, str]) -> None:
    text = run(env, "temperature.py", "--count", "8", "--epochs", "5")
    assert "training capped at 5 epochs" in text and len(text.splitlines()) == 4  # heading, header, two temperatures


def test_train_zoo(env: dict[str, str]) -> None:
    text = run(env, "train_zoo.py", "--only", "FC10(1e-4)", "--epochs", "5", "--quiet")
    assert "no target: training capped at 5 epochs" in text and "targets missed: 0" in text


@pytest.mark.skipif(importlib.util.find_spec("foolbox") is None, reason="gpu_check.py needs foolbox, not installed")
def test_gpu_check_dry_run(env: dict[str, str], model_cache: str, tmp_path: Path) -> None:
    """--device cpu, without its first part (the Triton step tests, which the test suite runs anyway)."""
    run(
        env,
        "gpu_check.py",
        "--device",
        "cpu",
        "--count",
        "16",
        "--cw-count",
        "1",
        "--skip",
        "tests",
        "--model-cache",
        model_cache,
        "--out",
        str(tmp_path),
    )
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["engine"]["same_status"] and report["per_round"]
    assert [row["method"] for row in report["table"]][-1] == "foolbox Carlini-Wagner L2, 9 x 1000 steps"


def test_frontier(env: dict[str, str], model_cache: str, tmp_path: Path) -> None:
    """Ours, the scipy baselines and whichever peers import (foolbox, advertorch), at tiny budgets."""
    out = tmp_path / "BENCHMARKS.md"
    run(
        env,
        "frontier.py",
        "--quick",
        "--count",
        "12",
        "--per-image-subset",
        "4",
        "--model-cache",
        model_cache,
        "--out",
        str(tmp_path),
        "--json",
        str(tmp_path / "frontier.json"),
        "--write",
        str(out),
    )
    text = out.read_text()
    assert "| intriguing_fast | 7 c steps x 100 it, pull back 0.5 |" in text and "| scipy per image |" in text
    assert (tmp_path / "frontier.png").stat().st_size > 0 and (tmp_path / "throughput.png").stat().st_size > 0
    rows = json.loads((tmp_path / "frontier.json").read_text())["rows"]
    assert rows[0]["success"] == 1.0 and all(len(r["l2"]) == 12 for r in rows)


def test_bench_boundary(env: dict[str, str], model_cache: str, tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    run(
        env,
        "bench_boundary.py",
        "--count",
        "12",
        "--steps",
        "0,4",
        "--repeats",
        "1",
        "--model-cache",
        model_cache,
        "--write",
        str(out),
    )
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 8 and rows[1].startswith("| 7 x 100, T = 0.1 | 4 |")


def test_micro_benchmarks(env: dict[str, str]) -> None:
    """bench/test_micro.py with pytest-benchmark disabled: each benchmark's body once, its checks included."""
    text = run(env, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-disable", str(BENCH))
    assert " passed" in text and "failed" not in text


def test_bench_denormals(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    run(
        env,
        "bench_denormals.py",
        "--model",
        "FC10(1)",
        "--scale",
        "tiny",
        "--count",
        "8",
        "--repeats",
        "1",
        "--write",
        str(out),
    )
    assert "| kept (IEEE) |" in out.read_text()


def test_paper_scale(env: dict[str, str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stages = [
        {"name": name, "wall_s": 2.0, "cached": cached, "finished_at": ""}
        for name, cached in (
            ("model/FC10(1)", False),
            ("model/FC100-100-10 (P1)", True),
            ("attack/FC10(1)/train", False),
            ("attack/FC100-100-10 (P1)/test", False),
            ("model/FC100-100-10 input pool", False),
            ("table1", False),
        )
    ]
    (run_dir / "results.json").write_text(json.dumps({"meta": {"scale": "tiny", "wall_s": 12.5, "stages": stages}}))
    text = run(env, "paper_scale.py", str(run_dir))
    assert "| training the zoo models | 2 s (+1 cached or done by another rank) |" in text
    assert "| attacks on test images | 2 s |" in text and "**12 s (0.2 min)**" in text


def test_attackbench(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    run(
        env,
        "attackbench.py",
        "--quick",
        "--count",
        "6",
        "--subjects",
        "small_cnn,sigmoid_mlp",
        "--model-dir",
        str(tmp_path / "models"),
        "--out",
        str(tmp_path),
        "--json",
        str(tmp_path / "r.json"),
        "--write",
        str(out),
        timeout=600,
    )
    text = out.read_text()
    assert "## Ours against the minimum-norm attacks on CNNs and MLPs" in text and "### SmallCNN" in text
    results = json.loads((tmp_path / "r.json").read_text())["subjects"]
    assert set(results) == {"small_cnn", "sigmoid_mlp"} and set(results["small_cnn"]["modes"]) == {
        "untargeted",
        "targeted",
    }
    default = results["small_cnn"]["modes"]["untargeted"][0]
    assert default["family"] == "intriguing_fast" and 0 <= default["optimality"] <= 1
    assert (tmp_path / "attackbench_small_cnn.png").stat().st_size > 0
    assert "- SmallCNN, targeted: " in text and " of " in text  # the reading of the target
    (tmp_path / "attackbench_small_cnn.png").unlink()  # re-rendered from the JSON alone: the same section
    run(
        env,
        "attackbench.py",
        "--from-json",
        str(tmp_path / "r.json"),
        "--out",
        str(tmp_path),
        "--write",
        str(tmp_path / "again.md"),
    )
    assert (tmp_path / "again.md").read_text() == text and (tmp_path / "attackbench_small_cnn.png").stat().st_size > 0

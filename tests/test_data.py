"""MNIST loading: idx parsing and validation, lookup chain, download, offline fallback, P1/P2."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import json
import lzma
import os
import re
import shutil
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from mnist_files import idx_bytes, write_mnist

import intriguing_fast.data.checksums as checksums_module
import intriguing_fast.data.download as download_module
import intriguing_fast.data.embedded as embedded_module
import intriguing_fast.data.paths as paths_module
import intriguing_fast.storage as storage
from intriguing_fast.data import (
    SUBSET_SOURCE,
    IdxFormatError,
    MnistChecksumError,
    MnistDownloadError,
    MnistSplit,
    MnistSubsetWarning,
    MnistUnavailableError,
    load_mnist,
    p1_p2_split,
)
from intriguing_fast.data.download import FILES
from intriguing_fast.errors import IntriguingFastError

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
needs_shared_mnist = pytest.mark.skipif(
    not SHARED_MNIST.is_dir(), reason="needs the original MNIST files in ../shared/data/mnist"
)
UNREACHABLE = ("http://127.0.0.1:9/",)  # discard port: connection refused at once, no real network


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No env overrides, no repo-relative data, an empty cache root, and no reachable mirror."""
    monkeypatch.delenv(paths_module.MNIST_DIR_ENV, raising=False)
    monkeypatch.setenv(storage.CACHE_ROOT_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(paths_module, "_REPO_ROOT", tmp_path / "no-repo" / "checkout")
    monkeypatch.setattr(download_module, "MIRRORS", UNREACHABLE)
    return tmp_path


@pytest.mark.parametrize("compress", [True, False])
def test_loads_small_idx_files(isolated, compress):
    arrays = write_mnist(isolated / "mnist", compress=compress)
    train = load_mnist("train", isolated / "mnist", verify=False)
    test = load_mnist("test", isolated / "mnist", verify=False)
    assert train.images.shape == (20, 1, 28, 28) and test.images.shape == (10, 1, 28, 28)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    np.testing.assert_allclose(train.flat.numpy() * 255, arrays["train-images"].reshape(20, 784), atol=1e-4)
    np.testing.assert_array_equal(test.labels.numpy(), arrays["test-labels"])
    names = "train-images-idx3-ubyte{0}, train-labels-idx1-ubyte{0}".format(".gz" if compress else "")
    assert (
        train.source
        == f"mnist-idx:{(isolated / 'mnist').resolve()} (MD5 NOT verified: {names} differ from the published files)"
    )
    assert train.flat.data_ptr() == train.images.data_ptr()  # a view, not a copy


def corrupt_cases():
    good = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    return {
        "magic": (struct.pack(">i", 2049) + good[4:], False, "magic number 2049, expected 2051"),
        "truncated": (good[:-5], False, "truncated"),
        "trailing": (good + b"\0", False, "trailing bytes"),
        "short header": (good[:10], False, "truncated header"),
        "negative dims": (
            good[:4] + struct.pack(">3i", -4, 28, 28) + good[16:],
            False,
            r"negative header dimensions \(-4, 28, 28\)",
        ),
        # The product overflows int64; it must fail the size check, not wrap around.
        "huge dims": (
            good[:4] + struct.pack(">3i", *[2**31 - 1] * 3) + good[16:],
            False,
            f"truncated: header dimensions .* need {(2**31 - 1) ** 3} data bytes",
        ),
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
        load_mnist("train", directory, verify=False)
    assert str(bad) in str(info.value)


def test_inconsistent_labels_are_an_error(isolated):
    directory = isolated / "mnist"
    write_mnist(directory, compress=False)
    labels = directory / FILES["train-labels"].stem
    labels.write_bytes(idx_bytes(np.zeros(19, np.uint8)))
    with pytest.raises(IdxFormatError, match="19 labels for the 20 images"):
        load_mnist("train", directory, verify=False)
    labels.write_bytes(idx_bytes(np.full(20, 12, np.uint8)))
    with pytest.raises(IdxFormatError, match="label 12 outside 0-9"):
        load_mnist("train", directory, verify=False)


def test_lookup_chain_env_then_cache(isolated, monkeypatch):
    cache_copy = isolated / "cache" / "mnist"
    write_mnist(cache_copy, n_train=6)
    assert load_mnist("train", verify=False).source.startswith(f"mnist-idx:{cache_copy.resolve()} (")
    env_copy = isolated / "env"
    write_mnist(env_copy, n_train=8)
    monkeypatch.setenv(paths_module.MNIST_DIR_ENV, str(env_copy))
    assert len(load_mnist("train", verify=False)) == 8
    explicit = isolated / "explicit"
    write_mnist(explicit, n_train=10)
    assert len(load_mnist("train", explicit, verify=False)) == 10


def test_repo_relative_shared_dir_is_searched(isolated, monkeypatch):
    checkout = isolated / "work" / "main"
    write_mnist(isolated / "work" / "shared" / "data" / "mnist", n_train=7)
    monkeypatch.setattr(paths_module, "_REPO_ROOT", checkout)
    assert len(load_mnist("train", verify=False)) == 7


def test_bad_split_name(isolated):
    with pytest.raises(ValueError, match="split: expected one of"):
        load_mnist("validation")  # type: ignore[arg-type]


def test_offline_without_the_subset_is_a_clear_error(isolated):
    (isolated / "empty").mkdir()
    with pytest.raises(
        MnistUnavailableError, match="download failed.*127.0.0.1:9.*--data-dir.*INTRIGUING_FAST_MNIST"
    ) as info:
        load_mnist("train", isolated / "empty", subset=False)
    assert "\n" not in str(info.value) and "pass it as root" not in str(info.value)
    with pytest.raises(MnistUnavailableError, match="download=False"):
        load_mnist("test", download=False, subset=False)


def test_offline_uses_the_embedded_subset_with_one_short_notice(isolated):
    (isolated / "empty").mkdir()
    with pytest.warns(MnistSubsetWarning, match="not downloadable; using the embedded MNIST subset") as notices:
        train = load_mnist("train", isolated / "empty")
        test = load_mnist("test", download=False)
    messages = {str(w.message) for w in notices}
    assert len(messages) == 1 and "\n" not in messages.pop()  # one text: shown once per run by Python's filter
    assert train.source == test.source == SUBSET_SOURCE
    assert train.images.shape == (10000, 1, 28, 28) and test.images.shape == (2000, 1, 28, 28)
    assert np.bincount(train.labels).tolist() == [1000] * 10 and np.bincount(test.labels).tolist() == [200] * 10
    assert 0.0 == train.images.min() and train.images.max() == 1.0
    p1, p2 = load_mnist("P1", download=False), load_mnist("P2", download=False)
    assert len(p1) == len(p2) == 5000


def test_embedded_subset_files_are_small_and_checked(isolated, monkeypatch, tmp_path):
    assert sum(p.stat().st_size for p in embedded_module.SUBSET_DIR.iterdir()) < 2_000_000
    altered = tmp_path / "subset"
    shutil.copytree(embedded_module.SUBSET_DIR, altered)
    name = embedded_module.SUBSET_FILES["test-labels"][0]
    data = lzma.decompress((altered / name).read_bytes())
    (altered / name).write_bytes(lzma.compress(data[:-1] + bytes([(data[-1] + 1) % 10])))
    monkeypatch.setattr(embedded_module, "SUBSET_DIR", altered)
    with pytest.raises(IdxFormatError, match="embedded MNIST subset is missing or altered"):
        load_mnist("test", download=False)


@needs_shared_mnist
def test_embedded_subset_is_the_stated_cut_of_the_original_files(tmp_path):
    """Provenance: build_subset on the published files gives exactly the shipped digits."""
    from intriguing_fast.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx

    full = {
        part: (
            read_idx(SHARED_MNIST / f"{FILES[f'{part}-images'].stem}.gz", IMAGES_MAGIC),
            read_idx(SHARED_MNIST / f"{FILES[f'{part}-labels'].stem}.gz", LABELS_MAGIC),
        )
        for part in ("train", "test")
    }
    embedded_module.build_subset({k: v[0] for k, v in full.items()}, {k: v[1] for k, v in full.items()}, tmp_path)
    for key, (name, _) in embedded_module.SUBSET_FILES.items():
        assert lzma.decompress((tmp_path / name).read_bytes()) == lzma.decompress(
            (embedded_module.SUBSET_DIR / name).read_bytes()
        ), key


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
    (isolated / "target").mkdir()
    with pytest.raises(MnistUnavailableError, match="does not match the published"):
        load_mnist("train", isolated / "target", subset=False)
    assert not any((isolated / "target").iterdir())  # nothing unverified was kept


@needs_shared_mnist
@pytest.mark.parametrize("explicit", [False, True])
def test_download_verifies_and_caches_real_files(isolated, http_dir, monkeypatch, explicit):
    """Into the cache, or into an existing but incomplete explicit root."""
    served, url = http_dir
    for file in FILES.values():
        shutil.copy(SHARED_MNIST / f"{file.stem}.gz", served)
    monkeypatch.setattr(download_module, "MIRRORS", ("http://127.0.0.1:9/", url))  # first mirror down
    cached = isolated / "given" if explicit else isolated / "cache" / "mnist"
    if explicit:
        cached.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        test = load_mnist("test", cached if explicit else None)
    assert test.source == f"mnist-idx:{cached.resolve()} (MD5 verified)" and len(test) == 10_000
    for file in FILES.values():
        assert hashlib.md5((cached / f"{file.stem}.gz").read_bytes()).hexdigest() == file.md5
    assert not list(cached.glob(".*part"))


def test_data_errors_are_package_errors():
    """The command lines print these as one line (IntriguingFastError), and they keep their old bases."""
    for error in (IdxFormatError, MnistUnavailableError, MnistDownloadError, MnistChecksumError):
        assert issubclass(error, IntriguingFastError)
    assert issubclass(IdxFormatError, ValueError) and issubclass(MnistChecksumError, ValueError)
    assert issubclass(MnistUnavailableError, RuntimeError) and issubclass(MnistDownloadError, RuntimeError)


def test_explicit_root_must_be_an_existing_directory(isolated):
    missing = isolated / "typo" / "mnist"
    with pytest.raises(
        MnistUnavailableError, match=f"^root \\(--data-dir\\): no such directory: {re.escape(str(missing))}$"
    ):
        load_mnist("train", missing)
    assert not (isolated / "typo").exists()  # never created, nothing downloaded into it
    a_file = isolated / "file"
    a_file.write_text("")
    with pytest.raises(MnistUnavailableError, match=r"^root \(--data-dir\): not a directory: "):
        load_mnist("test", a_file, download=False)


def test_directory_in_place_of_a_file_is_named(isolated, monkeypatch):
    directory = isolated / "mnist"
    write_mnist(directory)
    bad = directory / f"{FILES['train-images'].stem}.gz"
    bad.unlink()
    bad.mkdir()
    message = f"{re.escape(str(bad))}: is a directory, expected the MNIST idx file {re.escape(bad.name)}"
    for download in (True, False):
        with pytest.raises(IdxFormatError, match=message):
            load_mnist("train", directory, download=download, verify=False)
    monkeypatch.setenv(paths_module.MNIST_DIR_ENV, str(directory))  # found by the search chain too
    with pytest.raises(IdxFormatError, match=message):
        load_mnist("test", verify=False)


@pytest.mark.parametrize("compress", [True, False])
def test_files_differing_from_the_published_are_refused(isolated, compress):
    directory = isolated / "mnist"
    write_mnist(directory, compress=compress)
    file = FILES["train-images"]  # the first file checked
    path = directory / (f"{file.stem}.gz" if compress else file.stem)
    found = hashlib.md5(path.read_bytes()).hexdigest()
    with pytest.raises(MnistChecksumError) as info:
        load_mnist("P1", directory)
    message = str(info.value)
    expected = file.md5 if compress else file.raw_md5
    assert message.startswith(f"{path}: MD5 {found} differs from the published {expected} of {path.name}")
    assert "\n" not in message and "verify=False" in message


def real_mnist(directory: Path, unpacked: tuple[str, ...] = ()) -> Path:
    """The genuine files linked into ``directory``; those whose FILES key is in ``unpacked`` are
    written decompressed instead."""
    directory.mkdir()
    for key, file in FILES.items():
        genuine = SHARED_MNIST / f"{file.stem}.gz"
        if key in unpacked:
            (directory / file.stem).write_bytes(gzip.decompress(genuine.read_bytes()))
        else:
            (directory / genuine.name).symlink_to(genuine)
    return directory


@needs_shared_mnist
def test_regzipped_altered_labels_are_refused_unless_verify_false(isolated):
    directory = real_mnist(isolated / "mnist")
    labels = directory / f"{FILES['test-labels'].stem}.gz"
    genuine = gzip.decompress(labels.read_bytes())
    labels.unlink()
    labels.write_bytes(gzip.compress(genuine[:8] + genuine[9:10] + genuine[8:9] + genuine[10:]))  # 2 labels swapped
    with pytest.raises(MnistChecksumError) as info:
        load_mnist("test", directory)
    found = hashlib.md5(labels.read_bytes()).hexdigest()
    assert str(info.value).startswith(f"{labels}: MD5 {found} differs from the published {FILES['test-labels'].md5}")
    test = load_mnist("test", directory, verify=False)
    assert test.source == (
        f"mnist-idx:{directory.resolve()} (MD5 NOT verified: t10k-labels-idx1-ubyte.gz differs from the published file)"
    )
    assert test.labels[:2].tolist() == [genuine[9], genuine[8]] and genuine[8] != genuine[9]


@needs_shared_mnist
def test_unpacked_files_are_checked_once_until_they_change(isolated, monkeypatch):
    directory = real_mnist(isolated / "mnist", unpacked=("test-images", "test-labels"))
    assert load_mnist("test", directory).source == f"mnist-idx:{directory.resolve()} (MD5 verified)"
    memo = json.loads((isolated / "cache" / checksums_module.MEMO_NAME).read_text())
    assert {Path(key).name: entry["md5"] for key, entry in memo.items()} == {
        FILES["test-images"].stem: FILES["test-images"].raw_md5,
        FILES["test-labels"].stem: FILES["test-labels"].raw_md5,
    }
    hashed = []
    file_md5 = checksums_module._file_md5
    monkeypatch.setattr(checksums_module, "_file_md5", lambda path: hashed.append(path.name) or file_md5(path))
    load_mnist("test", directory)
    assert hashed == []  # remembered by path, size and mtime
    images = directory / FILES["test-images"].stem
    before = images.stat()
    altered = bytearray(images.read_bytes())
    altered[-1] ^= 0xFF  # one pixel: same size, new mtime
    images.write_bytes(bytes(altered))
    os.utime(images, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    with pytest.raises(MnistChecksumError, match=f"{re.escape(str(images))}: MD5 .* differs from the published"):
        load_mnist("test", directory)
    assert hashed == [images.name]


def test_damaged_or_unwritable_memo_is_ignored(isolated):
    directory = isolated / "mnist"
    write_mnist(directory)
    memo = isolated / "cache" / checksums_module.MEMO_NAME
    memo.parent.mkdir(parents=True)
    labels = str((directory / f"{FILES['train-labels'].stem}.gz").resolve())
    for damaged in (b"\xff{not json", b"[1, 2]", json.dumps({labels: "junk", "/gone": {}}).encode()):
        memo.write_bytes(damaged)
        assert "NOT verified" in load_mnist("train", directory, verify=False).source
        assert sorted(Path(key).name for key in json.loads(memo.read_text())) == [
            f"{FILES['train-images'].stem}.gz",
            f"{FILES['train-labels'].stem}.gz",
        ]
    memo.unlink()
    memo.mkdir()  # neither readable nor writable as a file: the check still runs
    with pytest.raises(MnistChecksumError):
        load_mnist("train", directory)


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


@needs_shared_mnist
def test_full_mnist_and_paper_split(tmp_path, monkeypatch):
    monkeypatch.setenv(storage.CACHE_ROOT_ENV, str(tmp_path))  # the MD5 memo goes there
    train = load_mnist("train", SHARED_MNIST)
    assert train.source == f"mnist-idx:{SHARED_MNIST.resolve()} (MD5 verified)"
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

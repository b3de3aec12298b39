"""Files the package writes and the digests that key them: one home for atomic writes,
verified files, content digests and the cache root (data, models, experiments and the CLIs
use them)."""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import pickle
import shutil
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch

from .errors import CorruptFileError, IntriguingFastError, UnsafeFileError, WriteFailedError

CACHE_ROOT_ENV = "INTRIGUING_FAST_CACHE"


def cache_root() -> Path:
    """Where downloads and trained checkpoints go: ``$INTRIGUING_FAST_CACHE`` or ``~/.cache/intriguing_fast``."""
    override = os.environ.get(CACHE_ROOT_ENV)
    return Path(override).expanduser() if override else Path.home() / ".cache" / "intriguing_fast"


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, flush it to disk, then rename it into
    place (atomic on POSIX): a reader, or a run killed midway, never sees half a file. A write
    that fails for want of space, or with an OS error, raises :class:`WriteFailedError` naming
    ``path`` and the space left on its file system."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        # torch.save reports a full disk as a RuntimeError of its zip writer ("enforce fail ... write")
        if isinstance(exc, OSError) or (
            isinstance(exc, RuntimeError) and "write" in str(exc) and "inline_container" in str(exc)
        ):
            free = shutil.disk_usage(path.parent).free
            raise WriteFailedError(
                f"{path}: could not be written ({one_line(exc)}); {free / 2**20:.1f} MiB free on its file system"
            ) from exc
        raise


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(payload))


def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda handle: torch.save(obj, handle))


VERIFIED_MAGIC = b"intriguing_fast verified file v1\n"
_DIGEST_LEN = 64  # hex SHA-256


def save_verified(obj: Any, path: Path) -> None:
    """Atomically write ``obj`` (tensors, containers and plain values only) with the SHA-256 of
    its bytes, so that :func:`load_verified` detects any truncation or flipped bit."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest().encode()
    atomic_write_bytes(Path(path), VERIFIED_MAGIC + digest + b"\n" + payload)


def load_verified(path: Path) -> Any:
    """The object :func:`save_verified` wrote at ``path``, after checking its digest; never
    unpickles arbitrary objects (``weights_only``). Any fault raises :class:`CorruptFileError`
    naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(path, "not a regular file" if path.exists() else "missing")
    data = path.read_bytes()
    head = len(VERIFIED_MAGIC) + _DIGEST_LEN + 1
    if not data.startswith(VERIFIED_MAGIC):
        what = "empty" if not data else "not a file written by intriguing_fast (no verified header)"
        raise CorruptFileError(path, what)
    if len(data) < head:
        raise CorruptFileError(path, f"truncated ({len(data)} bytes)")
    stored, payload = data[len(VERIFIED_MAGIC) : head - 1].decode("ascii", "replace"), data[head:]
    actual = hashlib.sha256(payload).hexdigest()
    if stored != actual:
        raise CorruptFileError(
            path,
            f"content does not match its stored SHA-256 (truncated or altered: "
            f"{len(payload)} bytes, digest {actual[:12]} != {stored[:12]})",
        )
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(path, f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc


def load_weights_only(path: Path) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers, never any other
    object; whatever else the file is raises :class:`CorruptFileError` naming it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols: the error says enough
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UnsafeFileError(
            path, "refused: not a torch file of tensors and plain containers only (nothing else is ever unpickled)"
        ) from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(path, f"unreadable ({type(exc).__name__}: {one_line(exc)})") from None


def one_line(exc: BaseException) -> str:
    """An exception's message on one short line."""
    return " ".join(str(exc).split())[:160]


@contextmanager
def exclusive_lock(lock: Path, wait: bool = False) -> Iterator[None]:
    """Hold ``lock`` (flock, our pid written in it) until the block ends, then remove it. While
    another process holds it: refuse at once with one line naming that process, or with
    ``wait`` block until it is done (the caller then finds what that process made)."""
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(lock, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = _holder(handle)
            handle.close()
            raise IntriguingFastError(f"another run holds {lock} (pid {holder})") from None
        if _same_file(lock, handle.fileno()):
            break  # else a finishing run removed the file just locked: lock the new one
        handle.close()
    try:
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        lock.unlink(missing_ok=True)
        handle.close()


def _holder(handle: IO[str]) -> str:
    """The pid the holder writes right after it takes the lock (waiting a moment for it)."""
    for _ in range(100):
        handle.seek(0)
        if pid := handle.read().strip():
            return pid
        time.sleep(0.01)
    return "unknown"


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def quarantine(path: Path, error: CorruptFileError) -> Path:
    """Move a damaged file aside (``NAME.corrupt``, numbered if taken) with a warning naming it,
    so the caller can recompute it and the damaged bytes stay for inspection."""
    path = Path(path)
    target = path.with_name(path.name + ".corrupt")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt{n}")
    os.replace(path, target)
    warnings.warn(f"{error.reason}: {path} moved to {target.name} and recomputed", RuntimeWarning, stacklevel=3)
    return target


def json_digest(obj: Any) -> str:
    """SHA-256 of a JSON-serialisable value, independent of key order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (SHA-256, or another `hashlib` algorithm), read in blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensor_digest(*tensors: torch.Tensor) -> str:
    """SHA-256 of the tensors' dtypes, shapes and bytes, in order."""
    digest = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def state_dict_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a model's weights: names, dtypes, shapes and values."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(tensor_digest(state[name]).encode())
    return digest.hexdigest()

"""Check local MNIST files against the published MD5s, so altered files are never used silently.

Each file is hashed once: its MD5 is remembered in ``<cache root>/mnist-verified.json`` under
its resolved path with its size and modification time, so later loads only ``stat`` it, and a
file changed since (new size or mtime) is hashed again. A missing, unreadable or damaged memo is
ignored and rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import IntriguingFastError
from ..storage import atomic_write_bytes, cache_root, file_digest
from .download import FILES

MEMO_NAME = "mnist-verified.json"

# The MD5 each of the eight accepted file names must have: NAME.gz and the uncompressed NAME.
PUBLISHED: dict[str, str] = {
    **{f"{file.stem}.gz": file.md5 for file in FILES.values()},
    **{file.stem: file.raw_md5 for file in FILES.values()},
}


class MnistChecksumError(IntriguingFastError, ValueError):
    """A local MNIST file's MD5 differs from the published file's (altered, re-compressed or foreign)."""


def check_published(paths: list[Path], verify: bool = True) -> str:
    """How ``paths`` compare to the published files, as a note for the data's ``source``.

    A file that differs raises :class:`MnistChecksumError` unless ``verify`` is false; then it
    is used, and the note names it as not verified.
    """
    digests = _md5s(paths)
    wrong = [path for path in paths if digests[path] != PUBLISHED[path.name]]
    if wrong and verify:
        path = wrong[0]
        raise MnistChecksumError(
            f"{path}: MD5 {digests[path]} differs from the published {PUBLISHED[path.name]} of {path.name} "
            "(altered, re-compressed or not the original file); replace it with the original, or pass "
            "verify=False to load_mnist (--no-verify-mnist on the command lines) to use it, marked as not verified"
        )
    if not wrong:
        return "MD5 verified"
    names = ", ".join(path.name for path in wrong)
    return f"MD5 NOT verified: {names} " + (
        "differs from the published file" if len(wrong) == 1 else "differ from the published files"
    )


def _md5s(paths: list[Path]) -> dict[Path, str]:
    """The MD5 of each file, from the memo where the file is unchanged; new digests are remembered."""
    memo = _read_memo()
    digests, changed = {}, False
    for path in paths:
        stat = path.stat()
        key, identity = str(path.resolve()), {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        entry = memo.get(key)
        same_file = isinstance(entry, dict) and identity == {name: entry.get(name) for name in identity}
        if same_file and isinstance(entry.get("md5"), str):
            digests[path] = entry["md5"]
            continue
        digests[path] = _file_md5(path)
        memo[key] = {**identity, "md5": digests[path]}
        changed = True
    if changed:
        _write_memo(memo)
    return digests


def _file_md5(path: Path) -> str:
    return file_digest(path, "md5")


def _read_memo() -> dict:
    try:
        memo = json.loads((cache_root() / MEMO_NAME).read_text())
    except (OSError, ValueError):  # missing, unreadable or damaged: start afresh
        return {}
    return memo if isinstance(memo, dict) else {}


def _write_memo(memo: dict) -> None:
    """Atomically store the memo, dropping files that no longer exist; a cache that cannot be
    written only costs hashing again next time, so that failure is ignored."""
    kept = {key: entry for key, entry in memo.items() if Path(key).exists()}
    try:
        atomic_write_bytes(cache_root() / MEMO_NAME, json.dumps(kept, indent=1, sort_keys=True).encode())
    except OSError:
        pass

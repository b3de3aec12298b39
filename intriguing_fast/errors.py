"""The package's expected failures: bad input, damaged or changed files, missing data.

The command lines print any of these as one line naming what is wrong and exit with status 2
(``--debug`` shows the traceback); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class IntriguingFastError(Exception):
    """Base of the errors a user can cause or fix (input, files, data, environment)."""


class CorruptFileError(IntriguingFastError, RuntimeError):
    """A stored file cannot be read or fails its digest: truncated, emptied, altered or foreign."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnsafeFileError(CorruptFileError):
    """A file refused because loading it would run code: pickled objects, or an archive not trusted."""


class InputChangedError(IntriguingFastError, RuntimeError):
    """A resumed run's inputs (model, data, options) differ from those its saved work was made with."""


class WriteFailedError(IntriguingFastError, OSError):
    """A file could not be written (a full disk, an OS error): names the file and the space left.
    An OSError still, for callers to whom a failed write is only a cost."""

"""Loads the compiled extension `intriguing_fast._C`, if it was built."""

from __future__ import annotations

import os
from types import ModuleType

try:
    import intriguing_fast._C as _native  # the compiled core, below every Python module

    _IMPORT_ERROR: ImportError | None = None
except ImportError as exc:  # a source checkout without a build, or a failed build
    _native = None
    _IMPORT_ERROR = exc
    if os.environ.get("INTRIGUING_FAST_REQUIRE_NATIVE", "0") == "1":
        raise ImportError(
            "INTRIGUING_FAST_REQUIRE_NATIVE=1 but the native extension intriguing_fast._C did not import; "
            "rebuild it with `pip install --no-build-isolation -e .`"
        ) from exc


def native_available() -> bool:
    return _native is not None


def native() -> ModuleType:
    """The extension module, or an error saying why it is missing."""
    if _native is None:
        raise RuntimeError(
            f"backend='cpp' needs the native extension intriguing_fast._C, which did not import ({_IMPORT_ERROR}); "
            "install the package with `pip install --no-build-isolation -e .`"
        )
    return _native

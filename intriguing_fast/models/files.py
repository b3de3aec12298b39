"""Model files a user hands the command line, and what each trusts: a state dict of a zoo
architecture is data, read with ``weights_only=True`` (tensors and plain containers, nothing
else is unpickled), the default route; a TorchScript archive is code (its `__setstate__` runs
when it is loaded, its `forward` when it is called, with the user's rights), loaded only when
the caller says it trusts it (`trust_code`, the CLI's --trust-model-code: the convention of
`trust_remote_code` in Hugging Face libraries). Weights that are not finite are named with the file."""
from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from ..errors import CorruptFileError
from ..storage import load_weights_only, one_line
from .zoo import MODEL_ZOO, get_spec


def is_torchscript(path: Path) -> bool:
    """A zip with TorchScript's constants.pkl or code/ (the zips of torch.save have neither)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("/constants.pkl") or "/code/" in n for n in archive.namelist())
    except zipfile.BadZipFile:
        return False


def load_model_file(path: Path, arch: str | None, trust_code: bool = False) -> torch.nn.Module:
    """A state dict (bare or under "state_dict") of the zoo architecture ``arch`` (default: the
    file's "arch" entry), or with ``trust_code`` a TorchScript archive, in eval mode; errors
    name ``--model-file`` and the file."""
    if not path.is_file():
        raise FileNotFoundError(f"--model-file: no file {path}")
    if is_torchscript(path):
        if not trust_code:
            raise ValueError(f"--model-file {path}: a TorchScript archive is code that runs when it is loaded; pass "
                             "--trust-model-code to load it (only a file you trust), or give a state dict with --arch")
        try:
            model = torch.jit.load(str(path), map_location="cpu").eval()
        except RuntimeError as exc:
            raise CorruptFileError(path, f"a TorchScript archive that does not load ({one_line(exc)})") from None
    else:
        model = _state_dict_model(path, arch)
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise CorruptFileError(path, f"weights with NaN or inf: {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}")
    return model


def _state_dict_model(path: Path, arch: str | None) -> torch.nn.Module:
    obj = load_weights_only(path)
    if not isinstance(obj, dict):
        raise CorruptFileError(path, f"expected a state dict or a TorchScript archive, got {type(obj).__name__}")
    arch = arch or obj.get("arch")
    if not isinstance(arch, str):
        raise ValueError(f"--model-file {path}: a state dict; name its zoo architecture with --arch")
    if arch not in MODEL_ZOO:
        raise ValueError(f"--model-file {path}: architecture {arch!r} is not in the model zoo {sorted(MODEL_ZOO)}")
    model = get_spec(arch).build()
    try:
        model.load_state_dict(obj.get("state_dict", obj))
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ValueError(f"--model-file {path}: not a state dict of {arch} ({one_line(exc)})") from None
    return model.eval()

"""Model files a user hands the command line, and what each trusts.

A state dict is data, read with ``weights_only=True`` (tensors and plain containers, nothing else
is unpickled): the architecture comes from the model zoo (``arch``) or from the user's own code,
a factory imported by name (``model_class``, "package.module:Factory"), never from the file. A
TorchScript or torch.export archive is code (it runs when the file is loaded and when the model
is called, with the user's rights), loaded only when the caller says it trusts it
(``trust_code``, the CLI's --trust-model-code: the convention of `trust_remote_code` in Hugging
Face libraries). Every refusal names the routes that work; weights that are not finite are
named with the file.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import zipfile
from pathlib import Path

import torch

from ..errors import CorruptFileError, UnsafeFileError
from ..storage import json_digest, load_weights_only, one_line, state_dict_digest
from .zoo import MODEL_ZOO, get_spec

STATE_DICT_ROUTES = (
    "save model.state_dict() and pass it with --arch NAME (a model-zoo architecture) or with "
    "--model-class package.module:Factory (your own, imported by name; nothing is unpickled)"
)
EXPORT_HOW = (
    "torch.export.save(torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim('batch')},)), 'model.pt2')"
)
ARCHIVE_ROUTES = f"or export the model ({EXPORT_HOW}, or torch.jit.script(model).save(...)) and pass --trust-model-code"
ARCHIVES = {"torchscript": "TorchScript", "export": "torch.export"}


class ExportedModel(torch.nn.Module):
    """A torch.export program as a module. It runs as it was exported (dropout and batch norm in
    the mode they had then), so train() and eval() change nothing inside it, where the program's
    own module refuses them."""

    def __init__(self, program: torch.export.ExportedProgram) -> None:
        super().__init__()
        self.program = program.module()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)

    def train(self, mode: bool = True) -> ExportedModel:
        self.training = mode
        return self


def archive_kind(path: Path) -> str | None:
    """ "torchscript" (a zip with constants.pkl or code/), "export" (a zip whose archive_format says
    pt2), or None (anything else, the zips of torch.save included)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
                return "torchscript"
            formats = [n for n in names if n.endswith("archive_format")]
            return "export" if formats and archive.read(formats[0]).strip() == b"pt2" else None
    except zipfile.BadZipFile:
        return None


def is_archive(model: torch.nn.Module) -> bool:
    """A model loaded from an archive: no Python modules inside to hook (no memory estimate)."""
    return isinstance(model, (torch.jit.ScriptModule, ExportedModel))


def load_model_file(
    path: Path, arch: str | None = None, model_class: str | None = None, trust_code: bool = False
) -> torch.nn.Module:
    """The model of ``path`` in eval mode: a state dict (bare or under "state_dict") of the zoo
    architecture ``arch`` (default: the file's "arch" entry) or of ``model_class()``, or with
    ``trust_code`` a TorchScript or torch.export archive; errors name ``--model-file`` and the file."""
    if not path.is_file():
        raise FileNotFoundError(f"--model-file: no file {path}")
    kind = archive_kind(path)
    if kind is None:
        model = _state_dict_model(path, arch, model_class)
    elif arch is not None or model_class is not None:
        raise ValueError(
            f"--model-file {path}: a {ARCHIVES[kind]} archive holds its own architecture; drop "
            f"{'--arch' if arch is not None else '--model-class'}"
        )
    elif not trust_code:
        raise ValueError(
            f"--model-file {path}: a {ARCHIVES[kind]} archive is code that runs when it is loaded and "
            f"called; pass --trust-model-code to load it (only a file you trust), or {STATE_DICT_ROUTES}"
        )
    else:
        model = _archive_model(path, kind)
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise CorruptFileError(path, f"weights with NaN or inf: {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}")
    return model


def model_digest(model: torch.nn.Module) -> str:
    """What a model computes, for cache keys: its weights, the code of an archive, and the source
    files of the classes it is built from (a factory's module edited is another model)."""
    code = [
        getattr(m, "code", "") for m in model.modules() if isinstance(m, (torch.jit.ScriptModule, torch.fx.GraphModule))
    ]
    files = {
        _source_file(kind) for kind in {type(m) for m in model.modules()} if not kind.__module__.startswith("torch")
    }
    sources = {hashlib.sha256(Path(file).read_bytes()).hexdigest() for file in files - {None}}
    return json_digest([state_dict_digest(model.state_dict()), code, sorted(sources)])


def _source_file(kind: type) -> str | None:
    """The file a class is defined in, or None for one without Python source (a compiled extension's)."""
    try:
        return inspect.getsourcefile(kind)
    except TypeError:
        return None


def import_factory(spec: str) -> torch.nn.Module:
    """``package.module:Factory`` imported by name and called with no arguments: the user's model."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ValueError(
            f"--model-class: expected package.module:Factory (a class or function taking no arguments), got {spec!r}"
        )
    try:
        factory = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"--model-class {spec}: cannot import {module_name} ({one_line(exc)}); is its directory on "
            "PYTHONPATH? (python -m puts the current directory there)"
        ) from None
    for part in name.split("."):
        if not hasattr(factory, part):
            raise ValueError(f"--model-class {spec}: {module_name} has no {name}")
        factory = getattr(factory, part)
    try:
        model = factory()
    except Exception as exc:  # noqa: BLE001 - the user's code: any failure is theirs to see, on one line
        raise ValueError(f"--model-class {spec}: {name}() failed: {type(exc).__name__}: {one_line(exc)}") from None
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"--model-class {spec}: {name}() returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _state_dict_model(path: Path, arch: str | None, model_class: str | None) -> torch.nn.Module:
    try:
        obj = load_weights_only(path)
    except UnsafeFileError:
        raise UnsafeFileError(
            path,
            "refused: it holds pickled objects (a whole model saved with torch.save(model)?), "
            f"which are never unpickled: they can run any code; {STATE_DICT_ROUTES}, "
            f"{ARCHIVE_ROUTES}",
        ) from None
    if not isinstance(obj, dict):
        raise CorruptFileError(
            path, f"expected a state dict (a dict of tensors), got {type(obj).__name__}; {STATE_DICT_ROUTES}"
        )
    state = obj.get("state_dict", obj)
    if model_class is not None:
        if arch is not None:
            raise ValueError("--arch and --model-class: give one (a zoo architecture, or your own factory)")
        return _load_state(import_factory(model_class), state, path, model_class)
    arch = arch or obj.get("arch")
    if not isinstance(arch, str):
        raise ValueError(
            f"--model-file {path}: a state dict, whose architecture the file does not hold: name it with "
            f"--arch (zoo: {', '.join(sorted(MODEL_ZOO))}) or --model-class package.module:Factory"
        )
    if arch not in MODEL_ZOO:
        raise ValueError(
            f"--model-file {path}: architecture {arch!r} is not in the model zoo "
            f"({', '.join(sorted(MODEL_ZOO))}); for your own, pass --model-class package.module:Factory"
        )
    return _load_state(get_spec(arch).build(), state, path, arch)


def _load_state(model: torch.nn.Module, state: dict, path: Path, what: str) -> torch.nn.Module:
    """``model`` with ``state`` loaded strictly, or an error listing what does not fit."""
    expected = model.state_dict()
    problems = [
        f"{len(keys)} {label} ({_few(keys)})"
        for label, keys in (
            ("missing", [k for k in expected if k not in state]),
            ("unexpected", [k for k in state if k not in expected]),
            (
                "of another shape",
                [
                    f"{k} {tuple(state[k].shape)} for {tuple(v.shape)}"
                    for k, v in expected.items()
                    if isinstance(state.get(k), torch.Tensor) and state[k].shape != v.shape
                ],
            ),
        )
        if keys
    ]
    if problems:
        raise ValueError(f"--model-file {path}: not a state dict of {what}: entries {'; '.join(problems)}")
    model.load_state_dict(state)
    return model.eval()


def _archive_model(path: Path, kind: str) -> torch.nn.Module:
    try:
        if kind == "torchscript":
            return torch.jit.load(str(path), map_location="cpu").eval()
        program = torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001 - each loader raises its own kinds; all mean an unusable file
        raise CorruptFileError(path, f"a {ARCHIVES[kind]} archive that does not load ({one_line(exc)})") from None
    inputs = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in program.graph_signature.user_inputs]
    batch = inputs[0].meta.get("val").shape[0] if len(inputs) == 1 and "val" in inputs[0].meta else None
    if len(inputs) != 1 or isinstance(batch, int):
        what = f"a fixed batch size of {batch}" if isinstance(batch, int) else f"{len(inputs)} inputs"
        raise ValueError(
            f"--model-file {path}: exported with {what}; the attack feeds one tensor of images, in "
            f"batches of any size: export it with a batch dimension, {EXPORT_HOW}"
        )
    return ExportedModel(program).eval()


def _few(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

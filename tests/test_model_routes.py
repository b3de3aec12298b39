"""Every way a user's own model reaches `bulk_attack`: a state dict with --model-class (the
factory imported by name, nothing unpickled), a torch.export archive and a TorchScript one (code:
only with --trust-model-code), and the refusals, each naming the routes that work. Inputs of
other shapes (3x32x32, flat) and other numbers of classes."""

import pytest
import torch

from intriguing_fast import bulk_attack as cli
from intriguing_fast.models.files import load_model_file, model_digest

MODELS = '''
import torch

class ColourNet(torch.nn.Module):
    """A 3x32x32 input, 5 classes."""
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 5, stride=3)
        self.fc = torch.nn.Linear(4 * 10 * 10, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))

def not_a_model():
    return 3

def flat_net():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
'''


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    """A module `user_models_<n>` in tmp_path, importable as the user's own code would be."""
    name = f"user_models_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def data_file(path, model, shape, count=4):
    torch.manual_seed(2)
    images = torch.rand(count, *shape)
    with torch.no_grad():
        torch.save({"images": images, "labels": model(images).argmax(1)}, path)
    return f"file:{path}"


def attack(model_args, data, out, *extra):
    cli.main([*model_args, "--data", data, "--targets", "random", "--steps", "3", "--out", str(out), *extra])
    return cli.load_adversarials(out)


def check_fooled(model, got):
    assert got["success"].all()
    with torch.no_grad():
        assert torch.equal(model(got["adversarial"]).argmax(1), got["targets"])


def test_factory_and_state_dict_attack_a_colour_model_with_five_classes(tmp_path, user_models):
    module = __import__(user_models)
    model = module.ColourNet().eval()
    torch.save(model.state_dict(), tmp_path / "colour.pt")
    data = data_file(tmp_path / "data.pt", model, (3, 32, 32))
    got = attack(
        ["--model-file", str(tmp_path / "colour.pt"), "--model-class", f"{user_models}:ColourNet"],
        data,
        tmp_path / "adv.pt",
    )
    assert got["adversarial"].shape == (4, 3, 32, 32) and int(got["targets"].max()) < 5
    check_fooled(model, got)


def test_factory_function_with_flat_inputs(tmp_path, user_models):
    model = __import__(user_models).flat_net().eval()
    torch.save({"state_dict": model.state_dict()}, tmp_path / "flat.pt")
    got = attack(
        ["--model-file", str(tmp_path / "flat.pt"), "--model-class", f"{user_models}:flat_net"],
        data_file(tmp_path / "data.pt", model, (64,)),
        tmp_path / "adv.pt",
    )
    check_fooled(model, got)


def test_an_edited_factory_is_another_model(tmp_path, user_models):
    """The cache key holds the source of the model's classes: the same weights under edited code differ."""
    module = __import__(user_models)
    before = model_digest(module.ColourNet())
    (tmp_path / f"{user_models}.py").write_text(MODELS.replace("torch.relu", "torch.tanh"))
    assert model_digest(module.ColourNet()) != before


def export(model, path, x, batch=True):
    dims = ({0: torch.export.Dim("batch")},) if batch else None
    torch.export.save(torch.export.export(model, (x,), dynamic_shapes=dims), str(path))


def test_export_archive_is_attacked_with_trust_and_refused_without(tmp_path, user_models, monkeypatch, capsys):
    model = __import__(user_models).ColourNet().eval()
    export(model, tmp_path / "colour.pt2", torch.rand(2, 3, 32, 32))
    data = data_file(tmp_path / "data.pt", model, (3, 32, 32))
    check_fooled(
        model, attack(["--model-file", str(tmp_path / "colour.pt2"), "--trust-model-code"], data, tmp_path / "adv.pt")
    )
    capsys.readouterr()
    loads = []
    monkeypatch.setattr(torch.export, "load", lambda *a, **k: loads.append(a))
    with pytest.raises(SystemExit) as exit_:
        attack(["--model-file", str(tmp_path / "colour.pt2")], data, tmp_path / "refused.pt")
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and not loads
    assert "a torch.export archive is code that runs when it is loaded and called; pass --trust-model-code" in err
    assert "--model-class package.module:Factory" in err and not (tmp_path / "refused.pt.parts").exists()


def test_exported_module_is_used_as_exported():
    """eval() and train() reach the wrapper only (an exported program's own module refuses them)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 3)).eval()
    from intriguing_fast.models.files import ExportedModel

    wrapped = ExportedModel(
        torch.export.export(net, (torch.rand(2, 6),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    )
    x = torch.rand(5, 6)
    assert torch.equal(wrapped.train().eval()(x), net(x)) and not wrapped.training


def test_export_with_a_fixed_batch_is_refused_with_the_fix(tmp_path):
    torch.manual_seed(0)
    export(torch.nn.Linear(6, 3).eval(), tmp_path / "fixed.pt2", torch.rand(2, 6), batch=False)
    with pytest.raises(ValueError, match=r"exported with a fixed batch size of 2; .*Dim\('batch'\)"):
        load_model_file(tmp_path / "fixed.pt2", trust_code=True)


def test_a_pickled_module_is_refused_naming_every_route(tmp_path):
    from intriguing_fast.errors import UnsafeFileError

    torch.save(torch.nn.Linear(6, 3), tmp_path / "whole.pt")
    with pytest.raises(UnsafeFileError) as err:
        load_model_file(tmp_path / "whole.pt", arch="FC10(1e-4)")
    message = str(err.value)
    for route in (
        "never unpickled",
        "--arch",
        "--model-class package.module:Factory",
        "torch.export.save",
        "torch.jit.script",
        "--trust-model-code",
    ):
        assert route in message


@pytest.mark.parametrize(
    "spec, message",
    [
        ("ColourNet", "expected package.module:Factory"),
        ("no_such_module_xyz:Net", "cannot import no_such_module_xyz"),
        ("MODULE:Missing", "has no Missing"),
        ("MODULE:not_a_model", r"not_a_model\(\) returned a int, not a torch.nn.Module"),
        ("torch:tensor", r"tensor\(\) failed: TypeError: .*argument"),
    ],
)
def test_bad_model_class_is_named(tmp_path, user_models, spec, message):
    torch.save(__import__(user_models).ColourNet().state_dict(), tmp_path / "colour.pt")
    with pytest.raises(ValueError, match=message):
        load_model_file(tmp_path / "colour.pt", model_class=spec.replace("MODULE", user_models))


def test_a_state_dict_of_another_architecture_lists_whole_names(tmp_path, user_models):
    """The mismatch is listed by entry (a few names and a count), never cut mid-word."""
    torch.save(__import__(user_models).flat_net().state_dict(), tmp_path / "flat.pt")
    with pytest.raises(ValueError) as err:
        load_model_file(tmp_path / "flat.pt", model_class=f"{user_models}:ColourNet")
    assert str(err.value).endswith(
        "entries 4 missing (conv.weight, conv.bias, fc.weight and 1 more); "
        "4 unexpected (0.weight, 0.bias, 2.weight and 1 more)"
    )
    with pytest.raises(ValueError, match=r"not a state dict of FC10\(1e-4\): entries 2 missing"):
        load_model_file(tmp_path / "flat.pt", arch="FC10(1e-4)")


def test_arch_and_model_class_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["--model-file", "m.pt", "--arch", "FC10(1e-4)", "--model-class", "a:B", "--out", "x.pt"])
    assert "not allowed with argument" in capsys.readouterr().err

"""The attacks a user would pick instead of ours, each behind one signature:
``method.run(model, images, targets) -> (adversarials, evaluations)``: adversarials shaped as
the images, and each image's model evaluations where the method counts them (ours), else None.

Ours at several budgets; our faithful scipy baselines (per image; one flattened call per c
step); foolbox 3's DDN, FMN-L2 (as shipped and with its projection corrected) and
Carlini-Wagner L2; advertorch's LBFGSAttack. foolbox and advertorch are optional (the `bench`
extra): `unavailable()` says which do not import, and why.

Two shims, both needed by the releases on PyPI and neither changing what the attacks compute:
- advertorch 0.2.3 imports `zero_gradients` from `torch.autograd.gradcheck`, which torch
  removed (2.0). `torch.autograd.gradcheck` as an attribute is the function gradcheck, so the
  helper is put back on the module object in `sys.modules`. It also builds two torchvision
  transforms at package import, for a JPEG defence the benchmark never uses: a stub module
  stands in when torchvision is absent (calling its transforms raises).
- foolbox 3.3.4's `L2FMNAttack.project` scales by `min(1, norms / norms)`, always 1, so the
  step is never projected onto the L2 ball of radius epsilon. `CorrectedL2FMN` computes
  `min(1, epsilon / ||x - x0||)`, the projection of the FMN paper (Pintor et al., 2021).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass
from typing import Callable

import torch

from intriguing_fast import LBFGSAttack, attack_engine

Run = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor | None]"]


@dataclass(frozen=True)
class Method:
    """One attack at one budget: `family` groups the budgets of one attack in tables and plots."""

    family: str
    budget: str
    run: Run

    @property
    def name(self) -> str:
        return f"{self.family}, {self.budget}"


def ours(steps: int | None = None, max_iter: int = 100, temperature: float | None = None) -> Method:
    """Our attack with `steps` c steps (None: the default) of at most `max_iter` iterations each,
    at `temperature` (None: the default, 0.1)."""
    attack = LBFGSAttack(steps=steps, temperature=temperature, engine=attack_engine(max_iter))
    steps, temperature = attack.resolved()[1], attack.resolved()[0]

    def run(model, x, t):
        result = attack(model, x, t, progress=False)
        return result.adversarial, result.nfev

    return Method("intriguing_fast", f"{steps} c steps x {max_iter} it, T = {temperature:g}", run)


def scipy_baseline(flat: bool) -> Method:
    """The same objective and c search as ours (its default steps x 100 iterations) with scipy's
    L-BFGS-B, per image or flattened."""
    from intriguing_fast.attack.scipy_baselines import scipy_flat_batch, scipy_per_image  # scipy: not on every GPU box

    solve = scipy_flat_batch if flat else scipy_per_image
    steps = LBFGSAttack().resolved()[1]

    def run(model, x, t):
        return solve(model, x, t, steps=steps)[0].reshape(x.shape).to(x.dtype), None

    return Method("scipy, flattened batch" if flat else "scipy per image", f"{steps} c steps x 100 it", run)


def unavailable() -> dict[str, str]:
    """For foolbox and advertorch: why it does not import ("" if it does)."""
    why = {}
    for name in ("foolbox", "advertorch"):
        try:
            _import(name)
            why[name] = ""
        except ImportError as exc:
            why[name] = f"{name} unavailable ({exc}); install the bench extra: pip install -e '.[bench]'"
    return why


def _import(name: str) -> types.ModuleType:
    if name == "advertorch":
        _advertorch_shims()
    return importlib.import_module(name)


def _advertorch_shims() -> None:
    gradcheck = importlib.import_module("torch.autograd.gradcheck")
    if not hasattr(gradcheck, "zero_gradients"):
        def zero_gradients(x):
            if isinstance(x, torch.Tensor) and x.grad is not None:
                x.grad.detach_().zero_()
            elif not isinstance(x, torch.Tensor):
                for item in x:
                    zero_gradients(item)

        sys.modules["torch.autograd.gradcheck"].zero_gradients = zero_gradients
    if importlib.util.find_spec("torchvision") is None and "torchvision" not in sys.modules:
        class _Unavailable:  # the two transforms advertorch builds at import, for its JPEG defence
            def __call__(self, *args, **kwargs):
                raise RuntimeError("torchvision is not installed (a stub stands in for advertorch's import)")

        stub = types.ModuleType("torchvision")
        stub.transforms = types.ModuleType("torchvision.transforms")
        stub.transforms.ToPILImage = stub.transforms.ToTensor = _Unavailable
        sys.modules["torchvision"], sys.modules["torchvision.transforms"] = stub, stub.transforms


def _foolbox(attack_factory: Callable[[], object]) -> Run:
    def run(model, x, t):
        fb = _import("foolbox")
        fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
        _, adv, _ = attack_factory()(fmodel, x, fb.criteria.TargetedMisclassification(t), epsilons=None)
        return adv, None

    return run


def ddn(steps: int) -> Method:
    return Method("foolbox DDN", f"{steps} steps", _foolbox(lambda: _import("foolbox").attacks.DDNAttack(steps=steps)))


def fmn(steps: int, corrected: bool) -> Method:
    def factory():
        fb = _import("foolbox")
        return (corrected_l2fmn(fb) if corrected else fb.attacks.L2FMNAttack)(steps=steps)

    return Method("foolbox FMN-L2, projection corrected" if corrected else "foolbox FMN-L2 as shipped",
                  f"{steps} steps", _foolbox(factory))


def corrected_l2fmn(fb: types.ModuleType) -> type:
    """foolbox's L2FMNAttack with the L2 projection its `project` means to make."""
    import eagerpy as ep
    from foolbox.devutils import atleast_kd, flatten

    class CorrectedL2FMN(fb.attacks.L2FMNAttack):
        def project(self, x, x0, epsilon):
            norms = ep.maximum(flatten(x - x0).norms.l2(axis=-1), 1e-12)
            return x0 + (x - x0) * atleast_kd(ep.minimum(1, epsilon / norms), x.ndim)

    return CorrectedL2FMN


def carlini_wagner(binary_steps: int, steps: int) -> Method:
    return Method("foolbox Carlini-Wagner L2", f"{binary_steps} x {steps} steps", _foolbox(
        lambda: _import("foolbox").attacks.L2CarliniWagnerAttack(binary_search_steps=binary_steps, steps=steps)))


def advertorch_lbfgs(binary_steps: int = 9, max_iterations: int = 100) -> Method:
    """advertorch's LBFGSAttack: one scipy call per c step over the flattened batch, c on the loss."""
    def run(model, x, t):
        attack = _import("advertorch.attacks").LBFGSAttack(model, num_classes=10, binary_search_steps=binary_steps,
                                                           max_iterations=max_iterations, targeted=True)
        return attack.perturb(x, t), None

    return Method("advertorch LBFGSAttack", f"{binary_steps} c steps x {max_iterations} it", run)

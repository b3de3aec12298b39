"""The attacks a user would pick instead of ours, each behind one signature:
``method.run(model, images, labels, targets) -> (adversarials, evaluations)``: `targets` None for
an untargeted attack (any class but `labels`); adversarials shaped as the images, and each
image's model evaluations where the method counts them (ours), else None.

Ours at several budgets; our faithful scipy baselines (per image; one flattened call per c
step); foolbox 3.3.4's DDN, FMN-L2 (as shipped and with its projection corrected) and
Carlini-Wagner L2; adv_lib 0.2.8's DDN, ALMA, FMN, FAB and Carlini-Wagner L2; torchattacks
3.5.1's DeepFool and CW; advertorch 0.2.3's LBFGSAttack. All are optional (foolbox and advertorch:
the `peers` extra, ``pip install -e '.[peers]' -c constraints/torch.txt``; adv_lib and torchattacks:
``pip install --no-deps -c constraints/torch.txt adv-lib==0.2.8 torchattacks==3.5.1``, as their
requirements would pull torchvision and with it another torch; the constraint keeps the installed
torch): `unavailable()` says which do not import, and why.

Shims, none changing what an attack computes:
- advertorch 0.2.3 imports `zero_gradients` from `torch.autograd.gradcheck`, which torch
  removed (2.0). `torch.autograd.gradcheck` as an attribute is the function gradcheck, so the
  helper is put back on the module object in `sys.modules`. It also builds two torchvision
  transforms at package import, for a JPEG defence the benchmark never uses; adv_lib imports
  torchvision's models at package import for its LPIPS distance and visdom for its plots, neither
  used by an L2 attack: stub modules stand in when they are absent (using them raises).
- foolbox 3.3.4's `L2FMNAttack.project` scales by `min(1, norms / norms)`, always 1, so the
  step is never projected onto the L2 ball of radius epsilon. `CorrectedL2FMN` computes
  `min(1, epsilon / ||x - x0||)`, the projection of the FMN paper (Pintor et al., 2021).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass

import torch

from intriguing_fast import LBFGSAttack, attack_engine
from intriguing_fast.attack.search import PULL_BACK_AFTER

Run = Callable[
    [torch.nn.Module, torch.Tensor, torch.Tensor, "torch.Tensor | None"], "tuple[torch.Tensor, torch.Tensor | None]"
]
MODES = ("untargeted", "targeted")


@dataclass(frozen=True)
class Method:
    """One attack at one budget: `family` groups the budgets of one attack in tables and plots;
    `modes`: the ones it has (untargeted, targeted)."""

    family: str
    budget: str
    run: Run
    modes: tuple[str, ...] = MODES

    @property
    def name(self) -> str:
        return f"{self.family}, {self.budget}"


def ours(
    steps: int | None = None,
    max_iter: int = 100,
    temperature: float | None = None,
    hedges: int = LBFGSAttack.hedges,
    restarts: int = 0,
    walk_steps: int = 0,
    pull_back: float | None = None,
    early_ftol: float | None = None,
) -> Method:
    """Our attack with `steps` c steps (None: the default) of at most `max_iter` iterations each,
    at `temperature` (None: the default schedule, 1 until a solve finds an adversarial, then 0.1),
    `hedges` classes tried besides the untargeted solve's own, `restarts` more c searches per image,
    `walk_steps` steps along the boundary at the end, `pull_back` for the fourth solve's start (None:
    the attack's default, 0.5 with more than 3 c steps; the label names the fraction used), `early_ftol`
    for the solves before it (None: the attack's default, 1e-3 where it pulls back; the label names 0)."""
    attack = LBFGSAttack(
        steps=steps,
        temperature=temperature,
        hedges=hedges,
        restarts=restarts,
        walk_steps=walk_steps,
        pull_back=pull_back,
        early_ftol=early_ftol,
        engine=attack_engine(max_iter),
    )
    steps, pull_back = attack.resolved()[1], attack.resolved_pull_back

    def run(model, x, y, t):
        result = attack(model, x, "untargeted" if t is None else t, labels=y, progress=False)
        return result.adversarial, result.nfev

    budget = (
        f"{steps} c steps x {max_iter} it"
        + (f", T = {temperature:g}" if temperature else "")
        + (f", {hedges} hedge{'s' * (hedges != 1)}" if hedges != LBFGSAttack.hedges else "")
        + (f", {restarts} restart{'s' * (restarts > 1)}" if restarts else "")
        + (f", {walk_steps} walk steps" if walk_steps else "")
        + (f", pull back {pull_back:g}" if pull_back else ", no pull back" if steps > PULL_BACK_AFTER else "")
        + (", early solves at the full ftol" if pull_back and not attack.resolved_early_ftol else "")
    )
    return Method(
        "intriguing_fast", budget, run, MODES if hedges == LBFGSAttack.hedges else ("untargeted",)
    )  # hedges: untargeted only


def scipy_baseline(flat: bool) -> Method:
    """Our objective at T = 0.1 and c search from c = 10 (its default steps x 100 iterations, no
    schedule of T, hedges or pull back) with scipy's L-BFGS-B, per image or flattened."""
    from intriguing_fast.attack.reference.scipy_baselines import (  # scipy: not on every GPU box
        scipy_flat_batch,
        scipy_per_image,
    )

    solve = scipy_flat_batch if flat else scipy_per_image
    steps = LBFGSAttack().resolved()[1]

    def run(model, x, y, t):
        return solve(model, x, t, steps=steps)[0].reshape(x.shape).to(x.dtype), None

    return Method(
        "scipy, flattened batch" if flat else "scipy per image", f"{steps} c steps x 100 it", run, ("targeted",)
    )


PEERS = {
    "foolbox": "pip install -e '.[peers]' -c constraints/torch.txt",
    "advertorch": "pip install -e '.[peers]' -c constraints/torch.txt",
    "adv_lib": "pip install --no-deps -c constraints/torch.txt adv-lib==0.2.8",
    "torchattacks": "pip install --no-deps -c constraints/torch.txt torchattacks==3.5.1",
}


def unavailable() -> dict[str, str]:
    """For each peer library: why it does not import ("" if it does)."""
    why = {}
    for name, install in PEERS.items():
        try:
            _import(name)
            why[name] = ""
        except ImportError as exc:
            why[name] = f"{name} unavailable ({exc}); install it: {install}"
    return why


def _import(name: str) -> types.ModuleType:
    if name == "advertorch":
        _advertorch_shims()
    if name.startswith("adv_lib"):
        _stub("visdom")
        _stub("torchvision.models")
    return importlib.import_module(name)


def _stub(name: str) -> types.ModuleType:
    """Module `name` (and its parents) as installed, or an empty stand-in (no __spec__) where the
    package is not installed."""
    if name in sys.modules:
        return sys.modules[name]
    parent, _, child = name.rpartition(".")
    root = sys.modules.get(name.split(".")[0])
    if root is not None and root.__spec__ is not None or root is None and importlib.util.find_spec(name.split(".")[0]):
        return importlib.import_module(name)
    module = sys.modules[name] = types.ModuleType(name)
    if parent:
        setattr(_stub(parent), child, module)
    return module


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
    transforms = _stub("torchvision.transforms")
    if transforms.__spec__ is None:  # the two transforms advertorch builds at import, for its JPEG defence

        class _Unavailable:
            def __call__(self, *args, **kwargs):
                raise RuntimeError("torchvision is not installed (a stub stands in for advertorch's import)")

        transforms.ToPILImage = transforms.ToTensor = _Unavailable


def _foolbox(attack_factory: Callable[[], object]) -> Run:
    def run(model, x, y, t):
        fb = _import("foolbox")
        fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
        criterion = fb.criteria.Misclassification(y) if t is None else fb.criteria.TargetedMisclassification(t)
        _, adv, _ = attack_factory()(fmodel, x, criterion, epsilons=None)
        return adv, None

    return run


def ddn(steps: int) -> Method:
    return Method("foolbox DDN", f"{steps} steps", _foolbox(lambda: _import("foolbox").attacks.DDNAttack(steps=steps)))


def fmn(steps: int, corrected: bool) -> Method:
    def factory():
        fb = _import("foolbox")
        return (corrected_l2fmn(fb) if corrected else fb.attacks.L2FMNAttack)(steps=steps)

    return Method(
        "foolbox FMN-L2, projection corrected" if corrected else "foolbox FMN-L2 as shipped",
        f"{steps} steps",
        _foolbox(factory),
    )


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
    return Method(
        "foolbox Carlini-Wagner L2",
        f"{binary_steps} x {steps} steps",
        _foolbox(
            lambda: _import("foolbox").attacks.L2CarliniWagnerAttack(binary_search_steps=binary_steps, steps=steps)
        ),
    )


def advertorch_lbfgs(binary_steps: int = 9, max_iterations: int = 100) -> Method:
    """advertorch's LBFGSAttack: one scipy call per c step over the flattened batch, c on the loss."""

    def run(model, x, y, t):
        attack = _import("advertorch.attacks").LBFGSAttack(
            model,
            num_classes=10,
            binary_search_steps=binary_steps,
            max_iterations=max_iterations,
            targeted=t is not None,
        )
        return attack.perturb(x, y if t is None else t), None

    return Method("advertorch LBFGSAttack", f"{binary_steps} c steps x {max_iterations} it", run)


def _adv_lib(name: str, **settings) -> Run:
    def run(model, x, y, t):
        attack = getattr(_import("adv_lib.attacks"), name)
        return attack(model, x, y if t is None else t, targeted=t is not None, **settings), None

    return run


def adv_lib_ddn(steps: int) -> Method:
    return Method("adv_lib DDN", f"{steps} steps", _adv_lib("ddn", steps=steps))


def adv_lib_alma(steps: int) -> Method:
    return Method("adv_lib ALMA", f"{steps} steps", _adv_lib("alma", num_steps=steps))


def adv_lib_fmn(steps: int) -> Method:
    return Method("adv_lib FMN-L2", f"{steps} steps", _adv_lib("fmn", norm=2, steps=steps))


def adv_lib_fab(iterations: int) -> Method:
    """adv_lib's FAB, untargeted only (its targeted mode returns the inputs)."""
    return Method(
        "adv_lib FAB-L2", f"{iterations} iterations", _adv_lib("fab", norm=2, n_iter=iterations), ("untargeted",)
    )


def adv_lib_cw(binary_steps: int, steps: int) -> Method:
    return Method(
        "adv_lib Carlini-Wagner L2",
        f"{binary_steps} x {steps} steps",
        _adv_lib("carlini_wagner_l2", binary_search_steps=binary_steps, max_iterations=steps),
    )


def torchattacks_deepfool(steps: int = 50) -> Method:
    """torchattacks' DeepFool (untargeted only), overshoot 0.02 as shipped."""

    def run(model, x, y, t):
        return _import("torchattacks").DeepFool(model, steps=steps)(x, y), None

    return Method("torchattacks DeepFool", f"{steps} steps", run, ("untargeted",))


def torchattacks_cw(c: float = 1.0, steps: int = 100) -> Method:
    """torchattacks' CW: one fixed c (no search over it), Adam on tanh-space variables."""

    def run(model, x, y, t):
        attack = _import("torchattacks").CW(model, c=c, steps=steps)
        if t is not None:
            attack.set_mode_targeted_by_label(quiet=True)
        return attack(x, y if t is None else t), None

    return Method("torchattacks CW", f"c = {c:g}, {steps} steps", run)

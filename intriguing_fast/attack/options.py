"""The attack's options: one typed, frozen object, checked when it is built."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real

from ..engine import LBFGSBOptions
from ..seeds import SEED_LIMIT
from .boundary import BOUNDARY_STEPS
from .search import (
    DEFAULT_PULL_BACK,
    DEFAULT_STEPS,
    DEFAULT_TEMPERATURE,
    EARLY_FTOL,
    EXPLORE_TEMPERATURE,
    PULL_BACK_AFTER,
    SEARCHES,
    default_c,
)

# Outside this range the loss means little in floating point: logits / T, the loss's gradient
# and the first c (1 / T) grow as 1 / T and soon overflow float32 as T -> 0, and as T grows
# CE(logits / T) flattens to log(num_classes), its gradient lost under rounding.
TEMPERATURE_RANGE = (1e-3, 1e3)


# The relative decrease per iteration under which a solve of the c search stops. On a ReLU network
# the objective is piecewise smooth and L-BFGS creeps on in tiny steps long after the minimiser's
# side of the boundary is settled: 1e-4 took 2.6x fewer evaluations than 1e-6 for a 0.3% larger
# mean L2 on a ReLU CNN, and 1.6x fewer for the same L2 on a sigmoid MLP (BENCHMARKS.md).
ATTACK_FTOL = 1e-4
# What the reproduction's attack has always used (`AttackOptions.paper`).
PAPER_FTOL = 1e-6
# The version of the attack's arithmetic (the engine's and kernels' included), in every cache key of
# its results (`AttackOptions.key`): bump it with any change that moves a result, not with one to how
# an option is named or shown. tests/test_attack_version.py holds the results of a fixed case for
# this version and fails when they move without a bump.
ALGORITHM_VERSION = 4


def attack_engine(max_iter: int = 100, **settings) -> LBFGSBOptions:
    """Engine settings for the solves of the c search: at most `max_iter` iterations and
    2 max_iter evaluations each (the search brackets c, so the early steps need no exact
    minimiser), ftol `ATTACK_FTOL`, and no first step to P(x - g) (from an image or a warm start
    that step overshoots and costs evaluations, BENCHMARKS.md);
    `settings` override any `LBFGSBOptions` field."""
    if not _int(max_iter) or max_iter < 1:
        raise ValueError(f"max_iter: expected an int >= 1 (a solve may make 2 max_iter evaluations), got {max_iter!r}")
    return LBFGSBOptions(
        **{
            "max_iter": max_iter,
            "max_fun": 2 * max_iter,
            "gtol": 1e-5,
            "ftol": ATTACK_FTOL,
            "box_first_step": False,
            **settings,
        }
    )


@dataclass(frozen=True)
class AttackOptions:
    """The options of the L-BFGS attack (`LBFGSAttack` is this object made callable).

    Attributes:
        kappa: required margin of the target's logit over every other (untargeted: of some
            other logit over the label's); the loss is shifted by it too.
        temperature: T in the loss, in [1e-3, 1e3] (TEMPERATURE_RANGE), for the whole c search;
            None: 1 for each problem's solves until one finds an adversarial, then 0.1, or 1
            throughout with search="cleverhans". T = 1 is the paper's objective literally;
            dividing the logits by T keeps the arg-max (the constraint) and, with T < 1, brings the
            minimiser at the critical c closer to the exact minimal perturbation (docs/attack.md
            gives the measurement); T = 1 first leads the search nearer (attack/search.py).
        search: "ours" (start at c = 1 / T, x10 until bracketed, then regula falsi on the
            margins in log c) or "cleverhans" (its convention: loss weight 1e-2 x10 then
            bisection) -- see attack/search.py.
        steps: engine solves per image in the c search (None: 7, cleverhans 9).
        c_init: first c (None: 1 / T at the first temperature, cleverhans 100, i.e. loss weight
            1e-2); checked against the range of the images' dtype when the attack runs. c is
            scaled with T when the temperature changes (c T weighs the penalty against the loss).
        warm_start: start each solve from the best adversarial so far (else the last
            minimiser) rather than from the input.
        reuse_curvature: each solve of an image's c search keeps the curvature pairs of its
            previous solve, shifted to the new c (y + 2 (c_new - c_old) s: the penalty's
            Hessian is 2c I), instead of starting its L-BFGS history afresh: fewer evaluations
            at the same distortion (BENCHMARKS.md).
        hedges: untargeted only. An image's solves minimise the untargeted loss until one finds
            an adversarial; its c search then goes on targeted at that adversarial's class, and
            `hedges` more classes (the next ones by the model's logits on the
            image) are tried, targeted, beside it; the nearest goes on, the others stop
            (attack/hedges.py); at most the model's classes but the label and that one (a
            binary classifier: none). None: the untargeted loss for the whole c search, one problem
            per image (the paper's untargeted attack).
        pull_back: None or a float in [0, 1): one solve of each c search (the one after the first
            `PULL_BACK_AFTER`, attack/search.py) starts this fraction of the way back from the best
            adversarial to the image instead of at it: from inside the boundary L-BFGS approaches
            it again, with the curvature learnt so far, and on a ReLU network often reaches a
            nearer region of the class than the warm start's (BENCHMARKS.md). That solve costs
            more evaluations than a warm one. None (default): `DEFAULT_PULL_BACK` (0.5) where our
            search warm-starts and has more than `PULL_BACK_AFTER` steps, else 0
            (`resolved_pull_back`); 0: every solve starts warm. A value > 0 needs warm_start and
            more than `PULL_BACK_AFTER` steps.
        early_ftol: None or a float in [0, 1): the first `PULL_BACK_AFTER` solves of each c search
            stop once an iteration lowers f by no more than this fraction of it (of 1 where
            |f| < 1), the engine's own ftol still applying: they only bracket c and lead the search
            near the boundary, where the pulled-back solve takes it up at the full tolerance (an
            untargeted hedge's solves before its score: `HEDGE_FTOL_FACTOR` times it). None
            (default): `EARLY_FTOL` (1e-3) where a solve starts pulled back, else 0
            (`resolved_early_ftol`); 0: every solve at the engine's ftol.
        restarts: more c searches per image, each from a random point about the image at a
            scale of its own (attack/restarts.py), beside the one from the image; the nearest
            adversarial of all is returned. A ReLU network's distance to the boundary has many
            local minima and the starting point picks one: each restart costs about one more
            search for a smaller mean L2 (BENCHMARKS.md).
        boundary_steps: after the c search, regula falsi steps towards the decision boundary
            on the segment between each image's best adversarial and the last failing minimiser
            of its search (the clean image if none failed): 1 + steps forward passes, each
            counted as one evaluation; what they find replaces the best adversarial if nearer
            (attack/boundary.py). 0: the paper's attack alone. With few c steps they recover
            most of the distortion the search left.
        walk_steps: after the boundary search, steps of a walk along the decision boundary
            towards the image (attack/boundary.py): each linearises the margin at the best
            adversarial (one forward and backward pass), projects the image onto that linear
            boundary within the box (one pass) and, where the projection fails, searches the
            boundary between it and the best adversarial (1 + boundary_steps passes); each pass
            counts as one evaluation, and what it finds replaces the best adversarial if nearer.
            0 (default): none. It sharpens the last digits on a smooth model (BENCHMARKS.md).
        flush_denormals: on CPU, treat subnormal floats as zero in the model and the engine
            while the attack runs (every thread of torch's pool; restored after): saturated
            sigmoid units make subnormal gradients, many times slower on x86 cores
            (engine/backends/denormals.py, BENCHMARKS.md). Needs the native core; False keeps IEEE subnormals.
        seed: for targets="random" and the restarts' starting points.
        batch_size: images per chunk (None: as many as fit in `memory_budget` bytes).
        memory_budget: bytes of solver state and activations per chunk.
        engine: the settings of every engine solve, passed to `minimize_lbfgsb` unchanged
            (its backend and history dtype included); default `attack_engine()`.
    """

    kappa: float = 0.0
    temperature: float | None = None
    search: str = "ours"
    steps: int | None = None
    c_init: float | None = None
    warm_start: bool = True
    reuse_curvature: bool = True
    hedges: int | None = 2
    pull_back: float | None = None
    early_ftol: float | None = None
    restarts: int = 0
    boundary_steps: int = BOUNDARY_STEPS
    walk_steps: int = 0
    flush_denormals: bool = True
    seed: int = 0
    batch_size: int | None = None
    memory_budget: int = 2**30
    engine: LBFGSBOptions = field(default_factory=attack_engine)

    def __post_init__(self) -> None:
        if not _real(self.kappa) or not 0 <= self.kappa < math.inf:
            raise ValueError(f"kappa: expected a finite float >= 0, got {self.kappa!r}")
        low, high = TEMPERATURE_RANGE
        if self.temperature is not None and (not _real(self.temperature) or not low <= self.temperature <= high):
            raise ValueError(
                f"temperature: expected None or a finite float in [{low:g}, {high:g}] (outside it logits / T "
                f"overflow or the loss goes flat), got {self.temperature!r}"
            )
        if self.c_init is not None and (not _real(self.c_init) or not 0 < self.c_init < math.inf):
            raise ValueError(f"c_init: expected None or a finite float > 0, got {self.c_init!r}")
        if self.search not in SEARCHES:
            raise ValueError(f"search: expected one of {SEARCHES}, got {self.search!r}")
        for name in ("steps", "batch_size", "memory_budget"):
            value = getattr(self, name)
            if value is not None and (not _int(value) or value < 1):
                raise ValueError(
                    f"{name}: expected {'' if name == 'memory_budget' else 'None or '}an int >= 1, got {value!r}"
                )
        if self.hedges is not None and (not _int(self.hedges) or self.hedges < 0):
            raise ValueError(f"hedges: expected None or an int >= 0, got {self.hedges!r}")
        if self.pull_back is not None and (not _real(self.pull_back) or not 0 <= self.pull_back < 1):
            raise ValueError(f"pull_back: expected None or a float in [0, 1), got {self.pull_back!r}")
        if self.pull_back and not self.warm_start:
            raise ValueError("pull_back: pulls a warm start back towards the image; it needs warm_start=True")
        if self.pull_back and (self.steps or DEFAULT_STEPS[self.search]) <= PULL_BACK_AFTER:
            raise ValueError(
                f"pull_back: the solve after the first {PULL_BACK_AFTER} starts pulled back; it needs steps > "
                f"{PULL_BACK_AFTER}, got {self.steps}"
            )
        if self.early_ftol is not None and (not _real(self.early_ftol) or not 0 <= self.early_ftol < 1):
            raise ValueError(f"early_ftol: expected None or a float in [0, 1), got {self.early_ftol!r}")
        if not _int(self.restarts) or self.restarts < 0:
            raise ValueError(f"restarts: expected an int >= 0, got {self.restarts!r}")
        for name in ("boundary_steps", "walk_steps"):
            if not _int(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {getattr(self, name)!r}")
        for name in ("warm_start", "reuse_curvature", "flush_denormals"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name}: expected a bool, got {getattr(self, name)!r}")
        if not _int(self.seed):
            raise TypeError(f"seed: expected an int, got {self.seed!r}")
        if not 0 <= self.seed < SEED_LIMIT:
            raise ValueError(f"seed: expected an int in [0, 2**62), got {self.seed!r}")
        if not isinstance(self.engine, LBFGSBOptions):
            raise TypeError(f"engine: expected an LBFGSBOptions, got {type(self.engine).__name__}")

    def key(self) -> dict:
        """What a cache of this attack's results is keyed by, as canonical JSON: ALGORITHM_VERSION
        and the value of every option (the engine's settings field by field, the pull back and
        the early solves' ftol as resolved); a repr changed for looks leaves it alone."""
        options = {**asdict(self), "pull_back": self.resolved_pull_back, "early_ftol": self.resolved_early_ftol}
        return json.loads(json.dumps({"algorithm": ALGORITHM_VERSION, **options}, default=str))

    def resolved(self) -> tuple[float, int, float]:
        """(temperature, steps, c_init) with the search's defaults filled in: the temperature the
        c search refines at, its steps, and its first c (at `first_temperature`)."""
        temperature = self.temperature or DEFAULT_TEMPERATURE[self.search]
        return (
            temperature,
            self.steps or DEFAULT_STEPS[self.search],
            self.c_init or default_c(self.search, self.first_temperature),
        )

    @property
    def resolved_pull_back(self) -> float:
        """The fraction `pull_back` gives, its default filled in (0 where no solve would start pulled back)."""
        if self.pull_back is not None:
            return self.pull_back
        pulls = self.search == "ours" and self.warm_start and (self.steps or DEFAULT_STEPS["ours"]) > PULL_BACK_AFTER
        return DEFAULT_PULL_BACK if pulls else 0.0

    @property
    def resolved_early_ftol(self) -> float:
        """The early solves' ftol `early_ftol` gives, its default filled in (0: none looser than the engine's)."""
        if self.early_ftol is not None:
            return self.early_ftol
        return EARLY_FTOL if self.resolved_pull_back else 0.0

    @property
    def first_temperature(self) -> float:
        """T of each problem's solves until one finds an adversarial: `EXPLORE_TEMPERATURE` with our
        search and no temperature given (attack/search.py), else the temperature throughout."""
        if self.temperature is None and self.search == "ours":
            return EXPLORE_TEMPERATURE
        return self.temperature or DEFAULT_TEMPERATURE[self.search]

    def problems_per_image(self, targeted: bool) -> int:
        """The engine problems each image of a chunk brings: its c searches (1 + restarts), each
        with its hedges if untargeted."""
        hedged = not targeted and self.hedges is not None
        return (1 + self.restarts) * (1 + (self.hedges if hedged else 0))

    @classmethod
    def paper(cls, max_iter: int = 100, **options) -> AttackOptions:
        """The attack `reproduce` runs, as it has since the first reproduction: the paper's
        objective and our c search at T = 0.1, 7 c steps of at most `max_iter` iterations with
        ftol 1e-6, each solve warm-started (no pull back), the untargeted loss throughout an
        untargeted attack (no hedges) and no boundary search (adversarials on the boundary itself
        would change what Table 2 measures).
        `options` override any field."""
        return cls(
            **{
                "temperature": 0.1,
                "hedges": None,
                "pull_back": 0.0,
                "boundary_steps": 0,
                "engine": attack_engine(max_iter, ftol=PAPER_FTOL),
                **options,
            }
        )


def _real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)

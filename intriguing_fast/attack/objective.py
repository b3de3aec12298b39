"""The attack's batched objective c ||r||^2 + loss(f(x + r)), which also records the best
adversarial seen at every evaluation (line-search probes included), and what every call of the
model is held to: logits of the right shape (`check_logits`) and a success by more than rounding
(`rounding_slack`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .boundary import search_boundary, walk_boundary

# The rounding slack of a 16-bit model, in its own eps: float16 0.4%, bfloat16 3% of the largest |logit|.
SLACK_EPS_16 = 4


def rounding_slack(logits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[k]: a margin past the success threshold that rounding in a model computing in `dtype`
    cannot undo: 1024 eps times each row's largest |logit| (at least 1); 1.2e-4 times that scale
    in float32. An image's logits differ in their last bits between batch sizes and thread
    counts (by up to 5 eps of the largest on the MLPs of tests/ and bench/, measured one at a
    time, in chunks of 7 and with 2 threads), so a point found exactly on the boundary could be
    judged on its other side when the model is evaluated again: without the slack, 14 of 64 of
    a toy MLP's did (measured while developing it). The attack counts a success only with this
    margin (`AttackObjective.robust`), and the boundary search stops this far inside.

    A 16-bit model (float16, bfloat16) gets SLACK_EPS_16 of its own eps instead: 1024 of them
    would be about the whole logit (float16's eps is 2**13 float32's), and no attack could
    succeed. Its products accumulate in float32 and are rounded once to 16 bits: on CPU an
    image's 16-bit logits were identical alone, in chunks of 7, in a batch of 200 and with 2
    threads (a toy MLP, measured while developing it); the slack covers a different
    accumulation order changing that one rounding (a GPU's split reductions)."""
    units = 1024 if torch.finfo(dtype).bits > 16 else SLACK_EPS_16
    return units * torch.finfo(dtype).eps * logits.abs().amax(dim=1).clamp_min(1.0)


def check_logits(logits: object, k: int, classes: int | None = None) -> torch.Tensor:
    """The model's output on k inputs must be logits [k, num_classes] with num_classes >= 2, and
    `classes` of them where the model gave that many before."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != k:
        got = f"shape {tuple(logits.shape)}" if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"model: expected its output to be logits of shape [{k}, num_classes] for {k} inputs, got {got}"
        )
    if logits.shape[1] < 2:
        raise ValueError(
            f"model: expected logits [{k}, num_classes] with num_classes >= 2, got shape "
            f"{tuple(logits.shape)}: the attack needs a class other than the label (random targets "
            "need at least 2 classes)"
        )
    if classes is not None and logits.shape[1] != classes:
        raise ValueError(
            f"model: its logits changed from {classes} to {logits.shape[1]} classes between calls "
            f"(shape {tuple(logits.shape)}); a model must give the same classes on every call"
        )
    return logits


@contextlib.contextmanager
def attack_mode(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients for the attack; the caller's settings come back after."""
    training = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in grads:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for m, t in training:
            m.training = t  # each module's own flag as it was (no train(), which some modules refuse)
        for p, r in grads:
            p.requires_grad_(r)


def rows_of(mask: torch.Tensor, fixed: bool) -> torch.Tensor:
    """The rows an update that `mask` [k] selects is computed on: every row in the engine's
    fixed-shape rounds (the mask keeps the others: shapes that never change, no host
    synchronisation), only mask's rows in compact rounds (less memory traffic, for a
    synchronisation that costs nothing on CPU). Either way the rows mask selects get the same values."""
    return torch.arange(mask.shape[0], device=mask.device) if fixed else mask.nonzero().squeeze(1)


def per_row(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A row mask [k] shaped to broadcast over `like` [k, ...]."""
    return mask.view(-1, *(1,) * (like.dim() - 1))


def class_mask(classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[k, num_classes] bool, True at each row's class: one_hot without its range check, which
    reads the classes on the host (a synchronisation on CUDA)."""
    return classes[:, None] == torch.arange(num_classes, device=classes.device)


def margin_and_loss(
    logits: torch.Tensor,
    classes: torch.Tensor,
    targeted: bool | torch.Tensor,
    kappa: float,
    temperature: float | torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row success, margin (how far past the success threshold: >= 0 where it succeeds) and
    a smooth loss whose minimisation drives towards success.

    Targeted: success when `classes` is the arg-max and its logit beats every other by
    kappa (margin: own logit - best other - kappa); loss = CE((logits - kappa e_l) / T, l).
    Untargeted: success when some other class beats `classes` (the true label) by kappa
    (margin: best other - own - kappa); loss = -log(1 - softmax((logits + kappa e_y) / T)_y),
    bounded below and with its true gradient (not a negated cross-entropy).
    `targeted` and `temperature` may be given per row ([k] tensors): each row takes its own.
    """
    mixed = isinstance(targeted, torch.Tensor)  # per row: both modes' terms, each row picking its own
    per_entry = temperature[:, None] if isinstance(temperature, torch.Tensor) else temperature
    onehot = class_mask(classes, logits.shape[1])
    own = logits.gather(1, classes[:, None]).squeeze(1)
    values, own_value = logits.detach(), own.detach()  # the margin and success take no gradient: no graph for them
    other_best, hit = values.masked_fill(onehot, -float("inf")).amax(dim=1), values.argmax(dim=1) == classes

    def pick(if_targeted: torch.Tensor, if_not: torch.Tensor) -> torch.Tensor:  # rows [k] or [k, classes]
        if mixed:
            return torch.where(per_row(targeted, if_targeted), if_targeted, if_not)
        return if_targeted if targeted else if_not

    margin = pick(own_value - other_best, other_best - own_value)
    success = pick(hit, ~hit) & (margin >= 0)
    shifted = logits
    if kappa:  # kappa = 0 shifts no bit of these: skipped
        margin, own = margin - kappa, own - kappa
        shifted = logits - pick(kappa * onehot, -kappa * onehot)
    shifted = shifted / per_entry
    lse = torch.logsumexp(shifted, dim=1)
    if not mixed and targeted:
        return success, margin, lse - own / temperature
    others = torch.logsumexp(shifted.masked_fill(onehot, -float("inf")), dim=1)  # -log(1 - p_y): all but y
    loss = lse - pick(own / temperature, others)
    return success, margin, loss


class AttackObjective:
    """fun(x, index) for the engine, whose problem `index[i]` is row i of x. A problem is one image
    attacked towards one class: `images` [P, n] holds each problem's image (flattened), `classes`
    [P] its target (or, untargeted, its true label), `targeted` and `temperature` are shared or
    per problem ([P]); c [P] holds each problem's penalty weight.

    x is the adversarial image x + r, flattened. best_x, best_sq [P] hold the smallest
    successful image found so far for each problem (a success with a margin of at least the
    rounding slack: `robust`), best_class its class; last_success, last_margin and last_other: each row's success,
    margin and nearest class other than its own in the last call (zeros [P] before any);
    last_logits: those of the last `classify`.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        images: torch.Tensor,
        shape: tuple[int, ...],
        classes: torch.Tensor,
        targeted: bool | torch.Tensor,
        kappa: float,
        temperature: float | torch.Tensor,
        model_dtype: torch.dtype,
        num_classes: int | None = None,
    ) -> None:
        """`num_classes`: the model's classes, as the caller saw them (None: from its first call here)."""
        self.model, self.images, self.shape, self.model_dtype = model, images, shape, model_dtype
        self.classes, self.targeted, self.kappa, self.temperature = classes, targeted, kappa, temperature
        P = images.shape[0]
        self.c = torch.zeros(P, dtype=images.dtype, device=images.device)
        self.best_x = images.clone()
        self.best_sq = torch.full((P,), float("inf"), dtype=images.dtype, device=images.device)
        self.best_class = torch.full((P,), -1, dtype=torch.long, device=images.device)
        self.num_classes = num_classes  # the model's: its logits must keep them on every call
        # [P] bool or None: the rows of a call that count (the engine's fixed-shape rounds evaluate
        # every problem, the stopped ones too); None: all of them.
        self.counted: torch.Tensor | None = None
        self.last_success = torch.zeros(P, dtype=torch.bool, device=images.device)
        self.last_margin = torch.zeros_like(self.c)
        self.last_other = torch.zeros_like(self.best_class)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out = check_logits(
            self.model(x.reshape(x.shape[0], *self.shape).to(self.model_dtype)), x.shape[0], self.num_classes
        )
        self.num_classes = out.shape[1]
        return out.to(x.dtype)

    def margin_and_loss(
        self, logits: torch.Tensor, rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`margin_and_loss` of problems `rows` (their classes, modes and temperatures)."""
        targeted = self.targeted[rows] if isinstance(self.targeted, torch.Tensor) else self.targeted
        temperature = self.temperature[rows] if isinstance(self.temperature, torch.Tensor) else self.temperature
        return margin_and_loss(logits, self.classes[rows], targeted, self.kappa, temperature)

    def classify(self, x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Success (`robust`) and margin of each row of x for problems `rows`, without gradients;
        records successes as candidates."""
        with torch.no_grad():
            logits = self.logits(x)
            success, margin, _ = self.margin_and_loss(logits, rows)
            success = self.robust(success, margin, logits)
            r = x - self.images.index_select(0, rows)
            self.record(x, rows, success, torch.linalg.vecdot(r, r), logits)
        self.last_logits = logits
        return success, margin

    def linear_distance(self, rows: torch.Tensor) -> torch.Tensor:
        """[k]: the distance from problems rows' images to the model's boundary linearised there,
        |margin| / ||grad margin|| (DeepFool's first step): the scale of their restarts."""
        margin, _, grad = self.margin_gradient(self.images[rows], rows)
        return margin.abs() / torch.linalg.vector_norm(grad, dim=1)

    def margin_gradient(self, x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The margins of x [k, n] for problems `rows`, their rounding slacks, and the gradient of
        the gap between each row's class logit and the best other (one forward and backward pass):
        the margin is +gap - kappa targeted, -gap - kappa untargeted, so the gradient is the
        margin's up to its sign."""
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            logits = self.logits(xr)
            onehot = class_mask(self.classes[rows], logits.shape[1])
            gap = logits.gather(1, self.classes[rows, None]).squeeze(1) - logits.masked_fill(
                onehot, -float("inf")
            ).amax(1)
            (grad,) = torch.autograd.grad(gap.sum(), xr)
        logits = logits.detach()
        return self.margin_and_loss(logits, rows)[1], rounding_slack(logits, self.model_dtype), grad

    def robust(self, success: torch.Tensor, margin: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The successes whose margin is at least the rounding slack (`rounding_slack`): only they
        count, so that every adversarial returned stays one when the model sees it again in another
        batch or with other threads (a point whose margin is within rounding of 0 may not)."""
        return success & (margin >= rounding_slack(logits.detach(), self.model_dtype))

    def record(
        self,
        x: torch.Tensor,
        rows: torch.Tensor,
        success: torch.Tensor,
        sq: torch.Tensor,
        logits: torch.Tensor | None = None,
    ) -> None:
        """Keep x as problem rows' best adversarial where it succeeds with a smaller ||r||^2 = sq
        (and its class, where its `logits` are given), among the rows `counted` marks if set.
        Masks, not a selection: no host synchronisation."""
        better = success & (sq < self.best_sq[rows])
        if self.counted is not None:
            better &= self.counted[rows]
        at = rows_of(better, self.counted is not None)
        if not at.numel():  # compact rounds, none better
            return
        better, problems = better[at], rows[at]
        self._keep(self.best_sq, problems, better, sq[at])
        self._keep(self.best_x, problems, better, x.index_select(0, at))
        if logits is not None:
            self._keep(self.best_class, problems, better, logits[at].argmax(dim=1))

    def _keep(self, best: torch.Tensor, problems: torch.Tensor, better: torch.Tensor, value: torch.Tensor) -> None:
        """best[problems] = value where `better` (in compact rounds, every one of them is)."""
        if self.counted is not None:
            value = torch.where(per_row(better, value), value, best.index_select(0, problems))
        best.index_copy_(0, problems, value)

    def margins(self, x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The margins of x [k, n] for problems `rows` and their rounding slacks (one forward pass)."""
        with torch.no_grad():
            logits = self.logits(x)
        return self.margin_and_loss(logits, rows)[1], rounding_slack(logits, self.model_dtype)

    def search_boundary(
        self, rows: torch.Tensor, outside: torch.Tensor, outside_margin: torch.Tensor, steps: int
    ) -> torch.Tensor:
        """`steps` steps of the search for the boundary (attack/boundary.py) between problems rows'
        best adversarials and `outside` [len(rows), n], failing with `outside_margin`; what it
        finds replaces the best adversarial if nearer the image. Returns the forward passes spent
        on each row."""
        have = torch.isfinite(self.best_sq[rows])
        if not steps or not have.any():
            return torch.zeros_like(rows)
        at = rows[have]
        found = search_boundary(
            lambda x: self.margins(x, at), self.best_x[at], outside[have], outside_margin[have], steps
        )
        r = found - self.images[at]
        self.record(found, at, torch.ones_like(have[have]), torch.linalg.vecdot(r, r))
        return (1 + steps) * have.long()

    def walk_boundary(
        self, rows: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, steps: int, boundary_steps: int
    ) -> torch.Tensor:
        """`steps` steps of the walk along the boundary (attack/boundary.py) from problems rows'
        best adversarials towards their images, within [`lower`, `upper`]; what it finds replaces
        the best adversarial if nearer. Returns the evaluations spent on each row (a gradient pass
        counted as one, as in the c search)."""
        have = torch.isfinite(self.best_sq[rows])
        if not steps or not have.any():
            return torch.zeros_like(rows)
        at = rows[have]
        targeted = self.targeted[at] if isinstance(self.targeted, torch.Tensor) else torch.full_like(at, self.targeted)
        sign = torch.where(targeted.bool(), 1.0, -1.0)

        def gradient(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            margin, slack, grad = self.margin_gradient(x, at)
            return margin, slack, grad * sign[:, None].to(grad.dtype)

        found, calls = walk_boundary(
            gradient,
            lambda x, which: self.margins(x, at[which]),
            self.images[at],
            self.best_x[at],
            lower,
            upper,
            steps,
            boundary_steps,
        )
        r = found - self.images[at]
        self.record(found, at, torch.ones_like(have[have]), torch.linalg.vecdot(r, r))
        return torch.zeros_like(rows).masked_scatter_(have, calls)

    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f = c ||r||^2 + loss and its gradient, the loss's through autograd and the penalty's,
        2 c r, in closed form (one pass over r instead of a graph through it)."""
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            logits = self.logits(xr)
            if not logits.requires_grad:
                raise ValueError("model: its logits do not depend on its input through autograd (no gradient)")
            success, margin, loss = self.margin_and_loss(logits, index)
            success = self.robust(success, margin, logits)
            (grad,) = torch.autograd.grad(loss.sum(), xr)
        with torch.no_grad():
            r = x - self.images.index_select(0, index)
            sq, c = torch.linalg.vecdot(r, r), self.c[index]  # sq before r is scaled in place below
            # Products and sums as separate ops, not addcmul: its scalar tail may fuse them (FMA)
            # where its vector body does not, and a row's bits would depend on the batch's size.
            f = c * sq + loss.detach()
            grad = grad.add_(r.mul_((2 * c)[:, None]))
            self.record(x, index, success, sq, logits)
        self.last_success, self.last_margin = success, margin
        self.last_other = logits.detach().scatter(1, self.classes[index, None], -float("inf")).argmax(dim=1)
        return f, grad

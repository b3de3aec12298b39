"""The fixed-shape rounds (issue 29): every round works on every problem with masks, in shapes
that never change and with no host synchronisation but a look every `check_every` rounds, so a
round can run on CUDA without waiting for the host and be captured as a CUDA graph. Proven on
CPU: a recorder of every operator a round dispatches (tests/round_recorder.py), and the compact
rounds' results, bitwise, where fun's rows do not depend on their batch-mates."""

import dataclasses

import pytest
import torch
from kernel_cases import clone_state, every_row, random_state, run_step, step_rows, trial_outcome
from round_recorder import RoundRecorder, record
from test_attack import CLASSES, RowwiseMLP, one_thread, toy_data, toy_mlp  # noqa: F401  (one_thread: autouse)

from intriguing_fast import LBFGSAttack, attack_engine, random_targets
from intriguing_fast.attack import chunk
from intriguing_fast.engine import LBFGSBOptions, minimize_lbfgsb
from intriguing_fast.engine.backends import TorchKernels
from intriguing_fast.engine.fixed_rounds import MIN_BUCKET, FixedShapeSolver, batch_solver
from intriguing_fast.engine.problems import convex_quadratic, rosenbrock, softmax_attack
from intriguing_fast.engine.solver import BatchSolver

FIELDS = ("x", "fun", "grad", "pg_norm", "nit", "nfev", "status")
PROBLEMS = {
    "quadratic": lambda: convex_quadratic(12, 10),
    "rosenbrock": lambda: rosenbrock(6, 5),
    "softmax": lambda: softmax_attack(5, 40, c=0.05),
}


def rowwise(fun):
    """fun one row at a time: each row's (f, grad) bitwise independent of its batch-mates."""

    def each(x: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [fun(x[i : i + 1], index[i : i + 1]) for i in range(x.shape[0])]
        return torch.cat([f for f, _ in rows]), torch.cat([g for _, g in rows])

    return each


@pytest.mark.parametrize("step", ["direction", "trial", "accept"])
def test_reference_steps_over_every_row_match_them_over_running_rows(step):
    """The reference takes every problem in fixed-shape rounds: the stopped ones are left as they
    are and the running ones get, bitwise, what a step over the running rows alone gives them."""
    st = random_state(14, 37, 3, torch.float64, seed=5)
    f_t, g_t = trial_outcome(st)
    rows = step_rows(st)
    compact, every = clone_state(st), clone_state(st)
    f_all, g_all = every_row(every, f_t, g_t)
    run_step(TorchKernels(), step, compact, rows, f_t, g_t)
    run_step(TorchKernels(), step, every, torch.arange(14), f_all, g_all)
    assert torch.equal(every.x_trial[rows], compact.x_trial[: len(rows)])
    for field in (f.name for f in dataclasses.fields(st) if f.name != "x_trial"):
        assert torch.equal(getattr(every, field), getattr(compact, field)), field


@pytest.mark.parametrize("name", PROBLEMS)
@pytest.mark.parametrize("check_every", [1, 3])
def test_engine_fixed_rounds_give_the_compact_results(name, check_every):
    problem = PROBLEMS[name]()
    fun = rowwise(problem.fun)
    results = {
        rounds: minimize_lbfgsb(
            fun,
            problem.x0,
            problem.lower,
            problem.upper,
            backend="torch",
            rounds=rounds,
            check_every=check_every,
            max_iter=300,
        )
        for rounds in ("compact", "fixed")
    }
    for field in FIELDS:
        assert torch.equal(getattr(results["compact"], field), getattr(results["fixed"], field)), field


def solve_with_restarts(rounds: str) -> tuple[torch.Tensor, ...]:
    """Each problem, when it first stops, starts again from half its minimiser: the even ones
    keeping their curvature pairs (a zero shift), the odd ones with a new history."""
    problem = convex_quadratic(6, 5)
    solver = batch_solver(
        rowwise(problem.fun),
        problem.x0,
        problem.lower,
        problem.upper,
        LBFGSBOptions(backend="torch", rounds=rounds, check_every=2),
    )
    restarted = torch.zeros(6, dtype=torch.bool)
    shift = torch.where(torch.arange(6) % 2 == 0, 0.0, float("nan")).double()
    while True:
        again = solver.just_stopped & ~restarted
        restarted |= again
        solver.restart(again, 0.5 * solver.st.x, shift)
        if not solver.round():
            break
    return tuple(getattr(solver.result(), field) for field in FIELDS) + (restarted,)


def test_engine_fixed_rounds_restart_as_compact_ones():
    compact, fixed = solve_with_restarts("compact"), solve_with_restarts("fixed")
    assert compact[-1].all()
    for a, b in zip(compact, fixed):
        assert torch.equal(a, b)


def test_engine_fixed_rounds_never_synchronise_and_keep_their_shapes():
    problem = convex_quadratic(8, 6)
    fixed = FixedShapeSolver(
        problem.fun,
        problem.x0,
        problem.lower,
        problem.upper,
        LBFGSBOptions(backend="torch", rounds="fixed", check_every=100),
    )
    rounds = [record(fixed.round) for _ in range(6)]
    assert all(not r.synchronising() for r in rounds)
    assert all(r.calls == rounds[0].calls for r in rounds)
    # The recorder does see what the compact rounds do: they select the running problems.
    compact = BatchSolver(
        problem.fun, problem.x0, problem.lower, problem.upper, LBFGSBOptions(backend="torch", rounds="compact")
    )
    assert "aten.nonzero.default" in record(compact.round).synchronising()


def test_engine_looks_every_check_every_rounds_and_stops_within_two_looks():
    problem = convex_quadratic(8, 6)
    solver = FixedShapeSolver(
        problem.fun,
        problem.x0,
        problem.lower,
        problem.upper,
        LBFGSBOptions(backend="torch", rounds="fixed", check_every=4),
    )
    recorded = []
    while True:
        recorder = RoundRecorder()
        with recorder:
            went_on = solver.round()
        recorded.append(recorder)
        if not went_on:
            break
    looks = set(range(4, len(recorded), 4))
    assert all(not r.synchronising() for i, r in enumerate(recorded) if i not in looks)
    # A look reads the flag it copied at the look before (no device read); shrinking a bucket selects its rows.
    assert all(set(recorded[i].synchronising()) <= {"aten.nonzero.default"} for i in looks)
    last = int(solver.st.nit.max())  # each of a quadratic's rounds is an accepted step or a backtrack
    compact = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper, backend="torch", rounds="compact")
    assert last <= int(compact.nit.max()) and solver.rounds <= int(compact.nfev.max()) + 2 * 4


def test_fixed_rounds_options_are_checked():
    problem = convex_quadratic(2, 3)
    with pytest.raises(ValueError, match="rounds: expected one of"):
        LBFGSBOptions(rounds="graphs")
    with pytest.raises(ValueError, match="check_every: expected an int >= 1"):
        LBFGSBOptions(check_every=0)
    with pytest.raises(ValueError, match="backend: the fixed-shape rounds need steps that take every problem"):
        minimize_lbfgsb(problem.fun, problem.x0, backend="cpp", rounds="fixed")
    assert not batch_solver(problem.fun, problem.x0, -1.0, 1.0, LBFGSBOptions()).fixed  # auto: compact on CPU
    with pytest.raises(ValueError, match="asks for fixed-shape rounds on cpu: build the solver with"):
        BatchSolver(problem.fun, problem.x0, -1.0, 1.0, LBFGSBOptions(rounds="fixed"))


ATTACKS = [
    ({}, True),
    ({}, False),
    ({"boundary_steps": 0, "restarts": 1}, True),
    ({"boundary_steps": 0, "restarts": 1, "reuse_curvature": False}, False),
]


@pytest.mark.parametrize("options,targeted", ATTACKS)
def test_attack_fixed_rounds_give_the_compact_results(options, targeted):
    model = RowwiseMLP(toy_mlp())  # each row's output is bitwise independent of its batch-mates
    images, labels = toy_data(40, seed=2)  # enough problems that the bucket shrinks (MIN_BUCKET)
    targets = random_targets(labels, CLASSES, seed=1) if targeted else "untargeted"
    results = {
        rounds: LBFGSAttack(engine=attack_engine(backend="torch", rounds=rounds, check_every=4), **options)(
            model, images, targets, labels=labels
        )
        for rounds in ("compact", "fixed")
    }
    compact, fixed = results["compact"], results["fixed"]
    assert compact.success.all()
    for field in ("adversarial", "l2", "c", "nit", "nfev", "success", "predicted"):
        assert torch.equal(getattr(compact, field).nan_to_num(-1), getattr(fixed, field).nan_to_num(-1)), field
    assert compact.rounds <= fixed.rounds <= compact.rounds + 2 * 4


def test_attack_fixed_rounds_never_synchronise_and_keep_their_shapes(monkeypatch):
    """A round of the attack (its bookkeeping, then the engine's round with the model's forward
    and backward passes) with hedges, restarts, both temperatures, the c search and a bucket
    that shrinks: no synchronisation outside the looks, the same operators on the same shapes
    in every round of a bucket."""
    rounds: list[tuple[int, int, RoundRecorder]] = []
    after_round, fixed_round = chunk._CSearchRun.after_round, FixedShapeSolver.round

    def recorded_after_round(search):
        rounds.append((search.solver.rounds, search.solver.st.x.shape[0], RoundRecorder()))
        with rounds[-1][2]:
            return after_round(search)

    def recorded_round(solver):
        with rounds[-1][2]:
            return fixed_round(solver)

    monkeypatch.setattr(chunk._CSearchRun, "after_round", recorded_after_round)
    monkeypatch.setattr(FixedShapeSolver, "round", recorded_round)
    images, labels = toy_data(12, seed=2)
    result = LBFGSAttack(engine=attack_engine(rounds="fixed", check_every=8), restarts=1)(
        toy_mlp(), images, "untargeted", labels=labels
    )
    assert result.success.all() and len(rounds) > 30
    looks = [recorder for at, _, recorder in rounds if at and at % 8 == 0]
    buckets: dict[int, list[RoundRecorder]] = {}
    for at, size, recorder in rounds:
        if not (at and at % 8 == 0):
            buckets.setdefault(size, []).append(recorder)
    assert len(buckets) >= 2, "the bucket never shrank"
    for recorders in buckets.values():
        assert all(not r.synchronising() for r in recorders)
        assert all(r.calls == recorders[0].calls for r in recorders)
    assert all(set(r.synchronising()) <= {"aten.nonzero.default"} for r in looks)


def test_buckets_shrink_and_keep_every_problem_result():
    """minimize_lbfgsb in fixed rounds retires each problem that stops; once half the bucket has,
    the rest moves to a smaller one, and the results stay those of the compact rounds."""
    problem = convex_quadratic(100, 8)
    fun = rowwise(problem.fun)
    solver = FixedShapeSolver(
        fun, problem.x0, problem.lower, problem.upper, LBFGSBOptions(backend="torch", rounds="fixed", check_every=2)
    )
    sizes = set()
    while solver.round():
        solver.retire(solver.just_stopped)
        sizes.add(solver.st.x.shape[0])
    assert min(sizes) == MIN_BUCKET < 100 and len(sizes) >= 2
    compact = minimize_lbfgsb(fun, problem.x0, problem.lower, problem.upper, backend="torch", rounds="compact")
    fixed = solver.result()
    for field in FIELDS:
        assert torch.equal(getattr(compact, field), getattr(fixed, field)), field

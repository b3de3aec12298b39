"""BatchSolver.restart: a problem restarted between rounds continues as a fresh solve from its
new point, and its batch-mates go on as if nothing happened (the attack's rounds rest on this)."""

import pytest
import torch

from intriguing_fast import LBFGSBOptions, Status, minimize_lbfgsb
from intriguing_fast.engine.problems import rosenbrock
from intriguing_fast.engine.solver import BatchSolver

OPTIONS = dict(max_iter=60, max_fun=120)


def assert_same(res, ref, rows, ref_rows):
    for name in ("x", "fun", "grad", "nit", "nfev", "status"):
        assert torch.equal(getattr(res, name)[rows], getattr(ref, name)[ref_rows]), name


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_restarted_problem_equals_a_fresh_solve(backend, dtype):
    problem = rosenbrock(6, 12, seed=3, dtype=dtype)  # elementwise: each row's f and g are batch-independent
    new_start = (problem.x0.flip(0) * 0.5).contiguous()
    opt = LBFGSBOptions(backend=backend, **OPTIONS)
    solver = BatchSolver(problem.fun, problem.x0, problem.lower, problem.upper, opt)
    restarted = set()
    while True:
        stopped = [b for b in solver.stopped().tolist() if b in (0, 3) and b not in restarted]
        if stopped:
            rows = torch.tensor(stopped)
            solver.restart(rows, new_start[rows] + 5.0 * (rows[:, None] == 3))  # row 3 starts outside its box
            restarted |= set(stopped)
        if not solver.round():
            break
    res = solver.result()
    plain = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper, backend=backend, **OPTIONS)
    others = [1, 2, 4, 5]
    assert_same(res, plain, others, others)  # batch-mates untouched

    def fun_of(rows):  # the restarted problems alone: index maps back to their own data
        return lambda x, index: problem.fun(x, rows[index])

    rows = torch.tensor([0, 3])
    fresh = minimize_lbfgsb(
        fun_of(rows),
        torch.stack([new_start[0], new_start[3] + 5.0]),
        problem.lower[rows],
        problem.upper[rows],
        backend=backend,
        **OPTIONS,
    )
    assert restarted == {0, 3}
    assert_same(res, fresh, rows, torch.arange(2))
    assert (res.x >= problem.lower).all() and (res.x <= problem.upper).all()


def test_a_round_evaluates_every_running_problem_once():
    """Without restarts the rounds are the longest problem's evaluations: one call of fun each."""
    problem = rosenbrock(4, 8, seed=1)
    calls = []

    def fun(x, index):
        calls.append(index.clone())
        return problem.fun(x, index)

    solver = BatchSolver(fun, problem.x0, problem.lower, problem.upper, LBFGSBOptions(**OPTIONS))
    while solver.round():
        pass
    res = solver.result()
    assert solver.rounds == len(calls) == int(res.nfev.max())
    assert [len(c) for c in calls] == [int((res.nfev > i).sum()) for i in range(len(calls))]


def test_restart_checks_its_arguments():
    problem = rosenbrock(3, 5, seed=0)
    solver = BatchSolver(problem.fun, problem.x0, problem.lower, problem.upper, LBFGSBOptions(**OPTIONS))
    with pytest.raises(TypeError, match="options: expected an LBFGSBOptions, got dict"):
        BatchSolver(problem.fun, problem.x0, problem.lower, problem.upper, {"max_iter": 3})
    with pytest.raises(ValueError, match="restarts only once it has stopped"):
        solver.restart(torch.tensor([0]), problem.x0[:1])
    with pytest.raises(ValueError, match=r"rows: problem indices must lie in \[0, 2\]"):
        solver.restart(torch.tensor([3]), problem.x0[:1])
    with pytest.raises(TypeError, match="rows: expected an int64 tensor"):
        solver.restart(torch.tensor([0.0]), problem.x0[:1])
    with pytest.raises(ValueError, match=r"rows, x: expected \[k\] and \[k, 5\]"):
        solver.restart(torch.tensor([0]), problem.x0[:1, :3])
    while solver.round():
        pass
    with pytest.raises(ValueError, match="once per round"):
        solver.restart(torch.tensor([1, 1]), problem.x0[:2])
    assert (solver.result().status != Status.RUNNING).all()


def test_a_restart_with_a_curvature_shift_keeps_exact_pairs_of_the_new_objective(backend):
    """f_c(x) = 0.5 x'Ax - b'x + 0.5 c |x|^2: after a solve at c = 1 (to the attack's ftol), a restart at c = 3 with
    curvature_shift 2 keeps every pair, now with y = (A + 3 I) s exactly, and converges to the
    new minimiser in fewer evaluations than a fresh history; a problem restarted without a shift
    in the same round starts a new history."""
    gen = torch.Generator().manual_seed(0)
    B, n = 3, 30
    Q = torch.linalg.qr(torch.randn(B, n, n, generator=gen, dtype=torch.float64))[0]
    A = Q @ torch.diag_embed(torch.logspace(-2, 1, n, dtype=torch.float64).expand(B, n)) @ Q.transpose(1, 2)
    b = torch.randn(B, n, generator=gen, dtype=torch.float64)
    c = torch.ones(B, dtype=torch.float64)

    def fun(x, index):
        H = A[index] + c[index, None, None] * torch.eye(n, dtype=x.dtype)
        Hx = (H @ x[:, :, None]).squeeze(2)
        return 0.5 * (x * Hx).sum(1) - (b[index] * x).sum(1), Hx - b[index]

    def solve(shift):
        c.fill_(1.0)
        solver = BatchSolver(
            fun,
            torch.zeros(B, n, dtype=torch.float64),
            -10.0,
            10.0,
            LBFGSBOptions(backend=backend, gtol=1e-7, ftol=1e-6),
        )
        while solver.round():
            pass
        first = solver.result()
        S, Y, hist = solver.st.S.clone(), solver.st.Y.clone(), solver.st.hist_len.clone()
        c[:2] = 3.0
        rows = torch.tensor([0, 1])
        solver.restart(rows, first.x[rows], None if shift is None else torch.full((2,), shift, dtype=torch.float64))
        solver.restart(torch.tensor([2]), first.x[2:])  # in the same round, a fresh history
        solver.round()
        return solver, S, Y, hist

    solver, S, Y, hist = solve(2.0)
    st = solver.st
    assert torch.equal(st.hist_len[:2], hist[:2]) and (hist > 0).all() and st.hist_len[2] == 0
    valid = torch.arange(S.shape[1]) < hist[:2, None]
    want = ((A[:2, None] + 3.0 * torch.eye(n, dtype=torch.float64)) @ S[:2, :, :, None]).squeeze(3)
    assert torch.allclose(st.Y[:2][valid], want[valid], rtol=1e-9, atol=1e-12)
    assert torch.equal(st.S, S) and torch.equal(st.Y[2], Y[2])
    while solver.round():
        pass
    kept = solver.result()
    fresh_solver = solve(None)[0]
    while fresh_solver.round():
        pass
    fresh = fresh_solver.result()
    exact = torch.linalg.solve(A[:2] + 3.0 * torch.eye(n, dtype=torch.float64), b[:2])
    assert torch.allclose(kept.x[:2], exact, atol=1e-3) and torch.allclose(fresh.x[:2], exact, atol=1e-3)
    assert (kept.nfev[:2] < fresh.nfev[:2]).all(), (kept.nfev, fresh.nfev)


@pytest.mark.parametrize("shift", [torch.tensor([1.0]), torch.tensor([1.0, float("inf")]), [1.0, 1.0]])
def test_a_bad_curvature_shift_is_refused(shift):
    problem = rosenbrock(2, 4, seed=1)
    solver = BatchSolver(problem.fun, problem.x0, problem.lower, problem.upper, LBFGSBOptions(max_iter=1))
    solver.round()
    with pytest.raises(ValueError, match="curvature_shift: expected None or a tensor of shape"):
        solver.restart(torch.tensor([0, 1]), problem.x0, shift)


def test_waiting_problems_start_at_their_restart_and_stopped_ones_hold(backend):
    """`start` leaves problems unevaluated (STOPPED) until a restart starts them; `stop` halts a
    running problem where it is, and a restart takes it up again; the others never notice."""
    problem = rosenbrock(4, 10, seed=2)  # elementwise: each row's f and g are batch-independent
    opt = LBFGSBOptions(backend=backend, **OPTIONS)
    seen: list[list[int]] = []

    def fun(x, index):
        seen.append(index.tolist())
        return problem.fun(x, index)

    solver = BatchSolver(
        fun, problem.x0, problem.lower, problem.upper, opt, start=torch.tensor([True, False, True, True])
    )
    assert seen == [[0, 2, 3]] and solver.st.status[1] == Status.STOPPED and solver.st.nfev[1] == 0
    solver.round()
    solver.stop(torch.tensor([3]))
    held = solver.st.x[3].clone()
    while solver.round():
        pass
    assert all(1 not in rows and 3 not in rows for rows in seen[2:])
    assert solver.st.status[3] == Status.STOPPED and torch.equal(solver.st.x[3], held)
    solver.restart(torch.tensor([1, 3]), problem.x0[[1, 3]])
    while solver.round():
        pass
    res = solver.result()
    plain = minimize_lbfgsb(problem.fun, problem.x0, problem.lower, problem.upper, backend=backend, **OPTIONS)
    assert_same(res, plain, [0, 1, 2, 3], [0, 1, 2, 3])


def test_a_bad_start_mask_is_refused():
    problem = rosenbrock(2, 4, seed=1)
    with pytest.raises(ValueError, match=r"start: expected None or a bool tensor of shape \[2\]"):
        BatchSolver(problem.fun, problem.x0, problem.lower, problem.upper, LBFGSBOptions(), start=torch.tensor([1, 0]))

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
    fresh = minimize_lbfgsb(fun_of(rows), torch.stack([new_start[0], new_start[3] + 5.0]), problem.lower[rows],
                            problem.upper[rows], backend=backend, **OPTIONS)
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

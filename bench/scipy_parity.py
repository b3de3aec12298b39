"""The engine against scipy's L-BFGS-B on the parity suite (intriguing_fast/engine/suite.py):
every problem solved alone by both, with the same tolerances; evaluations, objectives, statuses.

    python bench/scipy_parity.py                      # float64, cpp backend, summary per family
    python bench/scipy_parity.py --dtype float32      # float32: no LINE_SEARCH_FAILED where scipy converges
    python bench/scipy_parity.py --worst 15 --json parity.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import scipy.optimize
import torch

from intriguing_fast import Status, minimize_lbfgsb
from intriguing_fast.engine.suite import suite

SETTINGS = dict(history=10, max_iter=15000, max_fun=15000, gtol=1e-5, ftol=2.220446049250313e-09, max_ls=20)


def solve_scipy(p) -> dict:
    lo, hi = p.lower.numpy(), p.upper.numpy()
    bounds = list(zip(np.where(np.isinf(lo), None, lo), np.where(np.isinf(hi), None, hi)))
    res = scipy.optimize.minimize(
        p.numpy_fun,
        p.x0.numpy(),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options=dict(
            maxcor=SETTINGS["history"],
            maxiter=SETTINGS["max_iter"],
            maxfun=SETTINGS["max_fun"],
            gtol=SETTINGS["gtol"],
            ftol=SETTINGS["ftol"],
            maxls=SETTINGS["max_ls"],
        ),
    )
    return dict(f=p.numpy_fun(res.x)[0], nfev=int(res.nfev), converged=bool(res.success))


def solve_ours(p, dtype: torch.dtype, backend: str, **overrides) -> dict:
    res = minimize_lbfgsb(
        lambda x, index: tuple(v.to(dtype) for v in p.fun(x.double(), index)),
        p.x0[None].to(dtype),
        p.lower[None].to(dtype),
        p.upper[None].to(dtype),
        backend=backend,
        **{**SETTINGS, **overrides},
    )
    return dict(
        f=p.numpy_fun(res.x[0].double().numpy())[0], nfev=int(res.nfev[0]), status=Status(int(res.status[0])).name
    )


def compare(problems, dtype: torch.dtype, backend: str) -> list[dict]:
    rows = []
    for p in problems:
        ref, ours = solve_scipy(p), solve_ours(p, dtype, backend)
        scale = max(abs(ref["f"]), 1.0)
        row = dict(
            name=p.name,
            family=p.family,
            convex=p.convex,
            ours=ours,
            scipy=ref,
            ratio=ours["nfev"] / ref["nfev"],
            worse=(ours["f"] - ref["f"]) / scale,
        )
        if p.convex and row["worse"] > 1e-6:
            # Stopped higher: is it where ftol stopped, or how far it got? Ours again without the
            # ftol test, given scipy's evaluations.
            budget = solve_ours(p, dtype, backend, ftol=0.0, max_fun=ref["nfev"])
            row["worse_at_budget"] = (budget["f"] - ref["f"]) / scale
        rows.append(row)
    return rows


def solved_by_scipy(r: dict) -> bool:
    return r["scipy"]["converged"] and r["worse"] >= -1e-6


def summary(rows: list[dict]) -> list[str]:
    """Per family: evaluation ratios where scipy solved the problem (converged, to an objective
    no worse than ours by 1e-6 relative: elsewhere its count is no yardstick), objectives
    against scipy's, statuses."""
    lines = [
        "| family | problems | scipy solved | median evaluations ratio | worst | "
        "convex, worse than scipy by > 1e-6 rel | the same given scipy's evaluations, no ftol | scipy failed or worse, ours at least as good | "
        "LINE_SEARCH_FAILED where scipy converged | our statuses |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for family in [None] + sorted({r["family"] for r in rows}):
        sel = [r for r in rows if family in (None, r["family"])]
        conv = [r for r in sel if solved_by_scipy(r)]
        ratios = [r["ratio"] for r in conv] or [float("nan")]
        worse = sum(r["convex"] and r["worse"] > 1e-6 for r in sel)
        worse_at_budget = sum(r.get("worse_at_budget", 0.0) > 1e-6 for r in sel)
        rescued = sum(not solved_by_scipy(r) and r["worse"] <= 1e-6 for r in sel)
        failed = sum(r["ours"]["status"] == "LINE_SEARCH_FAILED" for r in conv)
        statuses = {}
        for r in sel:
            statuses[r["ours"]["status"]] = statuses.get(r["ours"]["status"], 0) + 1
        status_text = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        lines.append(
            f"| {family or '**all**'} | {len(sel)} | {len(conv)} | {statistics.median(ratios):.3f} | "
            f"{max(ratios):.2f} | {worse} | {worse_at_budget} | {rescued} of {len(sel) - len(conv)} | {failed} | {status_text} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="engine dtype (default float64)")
    ap.add_argument("--backend", default="cpp", help="engine backend (default cpp)")
    ap.add_argument("--family", default=None, help="only this family (default: all)")
    ap.add_argument("--worst", type=int, default=10, help="list this many problems with the largest ratio (default 10)")
    ap.add_argument("--json", default=None, help="write every problem's figures here")
    ap.add_argument("--seed", type=int, default=0, help="suite seed (default 0)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    problems = [p for p in suite(args.seed) if args.family in (None, p.family)]
    start = time.perf_counter()
    rows = compare(problems, getattr(torch, args.dtype), args.backend)
    print(f"{len(rows)} problems, {args.dtype}, backend {args.backend}, {time.perf_counter() - start:.0f} s\n")
    print("\n".join(summary(rows)))
    print("\nlargest evaluation ratios (where scipy solved the problem):")
    for r in sorted((r for r in rows if solved_by_scipy(r)), key=lambda r: -r["ratio"])[: args.worst]:
        print(
            f"  {r['ratio']:6.2f}  {r['name']:45s} ours {r['ours']['nfev']:6d} {r['ours']['status']:20s} f {r['ours']['f']:.10g}"
            f" | scipy {r['scipy']['nfev']:6d} f {r['scipy']['f']:.10g}"
        )
    bad = [r for r in rows if r["convex"] and r["worse"] > 1e-6]
    for r in bad:
        print(
            f"  worse objective: {r['name']}: ours {r['ours']['f']:.10g} ({r['ours']['status']}, {r['ours']['nfev']} "
            f"evaluations), scipy {r['scipy']['f']:.10g} ({r['scipy']['nfev']}); given scipy's evaluations without "
            f"ftol, ours is worse by {r['worse_at_budget']:.2e} relative"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()

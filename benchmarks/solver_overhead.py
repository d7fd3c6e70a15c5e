"""Solver overhead and time-to-tolerance on the poster's layer at the tutorial's size.

Measures, in one process, on the same f and the same input:
  * the solver's own cost per iteration (everything but evaluating f) as a
    fraction of one f evaluation, for Anderson and forward iteration;
  * wall time and NFE to reach tol from zeros: andersonn's Anderson and forward
    iteration vs TorchDEQ 0.1.0's ``anderson`` (``pip install -e .[bench]``).

Run: ``python benchmarks/solver_overhead.py`` (writes benchmarks/results/solver_overhead.json).
"""

from __future__ import annotations

import argparse

import torch

import andersonn
from common import TimedMap, environment, median_time, poster_layer_problem, save


def ours(f, x, method, tol, max_iter, **opts):
    timed = TimedMap(f)
    r = andersonn.solve(timed, torch.zeros_like(x), method=method, args=(x,), tol=tol, max_iter=max_iter,
                        store_trace=False, **opts)
    return r, timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--m", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    f, x = poster_layer_problem(batch=args.batch)
    torch.set_grad_enabled(False)

    t_f, _ = median_time(lambda: f(torch.randn_like(x), x), reps=5)
    rows = {}

    for label, method, opts in (("andersonn anderson", "anderson", {"m": args.m}),
                                ("andersonn forward", "forward", {})):
        wall, (r, timed) = median_time(lambda: ours(f, x, method, args.tol, args.max_iter, **opts), args.reps)
        overhead = (wall - timed.seconds) / r.iterations
        rows[label] = {
            "wall_s": wall, "iterations": r.iterations, "mean_nfe": r.mean_nfe,
            "sample_evals": r.sample_evals, "max_residual": float(r.rel_residual.max()),
            "converged": float(r.converged.float().mean()),
            "f_time_s": timed.seconds, "overhead_per_iter_s": overhead,
            "overhead_fraction_of_f": overhead / t_f,
        }

    try:
        from torchdeq.solver.anderson import anderson_solver
    except ImportError:
        print("torchdeq not installed (pip install -e '.[bench]'): skipping the TorchDEQ comparison")
    else:
        def torchdeq_run():
            timed = TimedMap(lambda z: f(z, x))
            z, _, info = anderson_solver(timed, torch.zeros_like(x), max_iter=args.max_iter, tol=args.tol,
                                         stop_mode="rel", m=args.m, lam=1e-4)
            return z, info, timed

        wall, (z, info, timed) = median_time(torchdeq_run, args.reps)
        fz = f(z, x)
        res = ((fz - z).flatten(1).norm(dim=1) / fz.flatten(1).norm(dim=1)).max()
        rows["torchdeq anderson"] = {
            "wall_s": wall, "iterations": timed.calls, "mean_nfe": float(timed.calls),
            "sample_evals": timed.rows, "max_residual": float(res), "converged": float((res < args.tol)),
            "f_time_s": timed.seconds, "overhead_per_iter_s": (wall - timed.seconds) / timed.calls,
            "overhead_fraction_of_f": (wall - timed.seconds) / timed.calls / t_f,
        }

    base = rows["andersonn anderson"]
    for r in rows.values():
        r["wall_ratio_to_ours"] = r["wall_s"] / base["wall_s"]
        r["nfe_ratio_to_ours"] = r["mean_nfe"] / base["mean_nfe"]
    payload = {"benchmark": "solver_overhead", "env": environment(), "batch": args.batch, "tol": args.tol,
               "m": args.m, "f_eval_s": t_f, "results": rows}
    path = save("solver_overhead", payload)
    print(f"one f evaluation (batch {args.batch}, 48/64 channels, 32x32): {t_f * 1e3:.1f} ms")
    print("| solver | wall s | x ours | mean NFE | f-rows evaluated | max residual | overhead/iter (% of f) |")
    print("|---|---|---|---|---|---|---|")
    for k, r in rows.items():
        print(f"| {k} | {r['wall_s']:.2f} | {r['wall_ratio_to_ours']:.2f} | {r['mean_nfe']:.1f} | "
              f"{r['sample_evals']} | {r['max_residual']:.1e} | {100 * r['overhead_fraction_of_f']:.1f}% |")
    print(f"saved {path}")


if __name__ == "__main__":
    main()

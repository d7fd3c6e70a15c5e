"""Does ``torch.compile`` pay for the solver's loop body, or for f, on the CPU?

Times, in one process on the poster's layer at the tutorial's size:

* the Anderson iteration's own work (``residual`` + ``step``: the Gram row, the small
  bordered solve, the mixing) eager against ``torch.compile``-d, at a fixed batch (no
  retirement, so the compiled graph is not recompiled mid-run);
* f itself (the poster's layer) eager against ``torch.compile``-d;
* a whole solve to ``tol`` with the compiled f (retirement changes the batch size, so
  this shows the cost of recompilation / dynamic shapes).

Run: ``python benchmarks/compile_probe.py`` (writes benchmarks/results/compile_probe.json).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import andersonn
from andersonn.solvers import get_solver
from common import environment, median_time, poster_layer_problem, save


def anderson_body(method):
    """One Anderson iteration without f: residual (Gram row) + step (solve, mixing)."""

    def body(z, fz, k, reject):
        g = method.residual(z, fz, k)
        method.residual_norm(g)
        return method.step(z, fz, g, k, reject)[0]

    return body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--solve-reps", type=int, default=5, help="timed whole solves per variant")
    args = ap.parse_args()
    f, x = poster_layer_problem(batch=args.batch)
    b = x.shape[0]
    n = x[0].numel()
    out: dict = {"benchmark": "compile_probe", "env": environment(), "batch": b, "state": n}

    # 1. The Anderson iteration body, eager vs compiled, fixed shapes.
    cls = get_solver("anderson")
    results = {}
    for mode in ("eager", "compiled"):
        method = cls(cls.Options.from_kwargs("anderson", m=5))
        z = torch.randn(b, n)
        method.start(z, 100)
        reject = torch.zeros(b, dtype=torch.bool)
        body = anderson_body(method)
        if mode == "compiled":
            body = torch.compile(body, dynamic=False)
        fz = torch.randn(b, n)
        t0 = time.perf_counter()
        for k in range(6):  # fill the window, and compile (k changes the slot: one graph per slot or a guard)
            body(z, fz + 0.01 * k, k, reject)
        warm = time.perf_counter() - t0
        k_iter = iter(range(6, 10_000))
        results[mode] = {"warmup_s": warm,
                         "per_iter_ms": 1e3 * median_time(lambda: body(z, fz, next(k_iter), reject), args.reps, 0)[0]}
    out["anderson_body"] = results | {"speedup": results["eager"]["per_iter_ms"] / results["compiled"]["per_iter_ms"]}

    # 2. f itself, eager and compiled calls alternating (the machine's load drifts).
    xs = x.clone()
    zs = torch.zeros_like(xs)
    fc = torch.compile(f)
    t0 = time.perf_counter()
    with torch.no_grad():
        fc(zs, xs)
        warm = time.perf_counter() - t0
        times: dict[str, list[float]] = {"eager": [], "compiled": []}
        for _ in range(args.reps):
            for name, fn in (("eager", f), ("compiled", fc)):
                t0 = time.perf_counter()
                fn(zs, xs)
                times[name].append(time.perf_counter() - t0)
    eager, comp = statistics.median(times["eager"]), statistics.median(times["compiled"])
    out["f"] = {"eager_ms": 1e3 * eager, "compiled_ms": 1e3 * comp, "warmup_s": warm, "speedup": eager / comp}

    # 3. Whole solves with eager and compiled f (the batch shrinks as samples retire: dynamic
    # shapes, one graph for every batch size). First call (compilation) apart, then medians of
    # interleaved solves after a pause each.
    solves: dict[str, dict] = {}
    fns = (("eager_f", f), ("compiled_f", torch.compile(f, dynamic=True)))
    walls: dict[str, list[float]] = {k: [] for k, _ in fns}
    with torch.no_grad():
        for rep in range(args.solve_reps + 1):
            for name, fn in fns if rep % 2 == 0 else fns[::-1]:
                time.sleep(0.5)
                t0 = time.perf_counter()
                r = andersonn.solve(fn, torch.zeros_like(x), args=(x,), method="anderson", tol=1e-4,
                                    max_iter=60, m=5, store_trace=False)
                wall = time.perf_counter() - t0
                if rep == 0:
                    solves[name] = {"first_s": wall, "mean_nfe": r.mean_nfe,
                                    "max_residual": float(r.residual.max())}
                else:
                    walls[name].append(wall)
    for name, w in walls.items():
        solves[name] |= {"median_s": statistics.median(w), "all_s": w}
    per_rep = [a / b for a, b in zip(walls["eager_f"], walls["compiled_f"])]
    solves["speedup"] = statistics.median(per_rep)
    solves["speedup_per_rep"] = per_rep
    out["solve"] = solves
    path = save("compile_probe", out)
    print(f"Anderson body per iteration: eager {results['eager']['per_iter_ms']:.1f} ms, compiled "
          f"{results['compiled']['per_iter_ms']:.1f} ms (warm-up {results['compiled']['warmup_s']:.0f} s)")
    print(f"f: eager {out['f']['eager_ms']:.1f} ms, compiled {out['f']['compiled_ms']:.1f} ms "
          f"(warm-up {warm:.0f} s)")
    for k in ("eager_f", "compiled_f"):
        v = solves[k]
        print(f"solve with {k}: first {v['first_s']:.2f} s, median {v['median_s']:.2f} s, NFE {v['mean_nfe']:.1f}")
    print(f"compiled f speeds a solve up {solves['speedup']:.2f}x ({min(per_rep):.2f}-{max(per_rep):.2f})")
    print(f"-> {path}")


if __name__ == "__main__":
    main()

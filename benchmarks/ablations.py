"""Leave-one-out ablation of the solver speed changes, in one process, interleaved.

Each variant is the current solver with exactly one speed change switched off
from the outside (a module constant or a method swapped back to the plain
version), so what a change buys is measured on its own against the full solver
on the same problems: wall time, overhead outside f per iteration, and the work
done (f-rows). Answers must agree where the change does not alter the iteration
(same NFE per sample), which the script checks and reports.

Changes that cannot be switched off from outside are measured elsewhere: the
args compacted once per retirement and the closure written in place (during
development, see NOTES.md), the IFT adjoint compaction (``train_speed.py``).

Run: ``python benchmarks/ablations.py [--reps 7]`` (writes results/ablations.json).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from typing import Callable, Iterator

import torch

import andersonn
from andersonn.solvers import anderson as anderson_mod
from andersonn.solvers import base as base_mod
from andersonn.solvers.base import FixedPointMethod
from common import environment, save
from suite import PROBLEMS, SETTLE_S


@contextlib.contextmanager
def patched(obj, name: str, value) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


# name -> (what is switched off, context manager factory, solver options changed)
VARIANTS: dict[str, tuple[str, Callable[[], contextlib.AbstractContextManager], dict]] = {
    "full": ("nothing: the solver as shipped", contextlib.nullcontext, {}),
    "no block-copy compaction": (
        "history and state compacted with index_select (an element-wise gather on the CPU) instead of "
        "block copies of runs of kept rows, and F/G reallocated instead of compacted in place",
        lambda: patched(base_mod, "_BLOCK_COPY_BYTES", float("inf")), {}),
    "no Gram-diagonal norm": (
        "residual norm by a separate pass over g (vector_norm) instead of the Gram row's diagonal entry",
        lambda: patched(anderson_mod.Anderson, "residual_norm", FixedPointMethod.residual_norm), {}),
    "no buffer views at retirement": (
        "f(z) and g copied at each retirement instead of handed back as views of the compacted history",
        lambda: patched(anderson_mod.Anderson, "current", FixedPointMethod.current), {}),
    "no clean-iteration loop": (
        "the loop's safeguard bookkeeping (non-finite checks, restart counters) runs every iteration",
        lambda: patched(base_mod, "_CPU_FAST_PATH", False), {}),
    "no uniform window": (
        "Anderson builds the masked (m+1)x(m+1) bordered systems every step instead of solving the "
        "leading block of the incrementally kept float64 matrix",
        lambda: patched(anderson_mod.Anderson, "uniform_fast_path", False), {}),
    "no per-sample compaction": (
        "converged samples stay in the batch until all are done (compact_fraction=1: batch-wide work)",
        contextlib.nullcontext, {"compact_fraction": 1.0}),
}


def one(p, opts: dict) -> dict:
    f_time = [0.0]

    def f(z, *a):
        t = time.perf_counter()
        out = p.f(z, *a)
        f_time[0] += time.perf_counter() - t
        return out

    t = time.perf_counter()
    r = andersonn.solve(f, p.z0, method="anderson", args=p.args, tol=p.tol, max_iter=p.max_iter,
                        store_trace=False, **opts)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "f_s": f_time[0], "iterations": r.iterations, "f_rows": r.sample_evals,
            "overhead_per_iter_s": (wall - f_time[0]) / r.iterations, "nfe": r.nfe.tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions (a multiple of the 7 variants "
                    "puts every variant equally often in every position)")
    ap.add_argument("--problems", nargs="*", default=["poster_random", "linear", "mixed"])
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    out: dict[str, dict] = {}
    for name in args.problems:
        p = PROBLEMS[name]()
        runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        names = list(VARIANTS)
        for rep in range(args.reps + 1):  # rep 0: warm-up
            # Rotate the order every rep: a fixed order let the variant that always ran first
            # measure ~15% slow on the poster layer, whatever it was.
            shift = rep % len(names)
            for v in names[shift:] + names[:shift]:
                _, ctx, opts = VARIANTS[v]
                time.sleep(SETTLE_S)
                with ctx():
                    r = one(p, opts)
                if rep:
                    runs[v].append(r)
        full = statistics.median(r["wall_s"] for r in runs["full"])
        rows = {}
        for v, rs in runs.items():
            row = {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "nfe"}
            row["switched_off"] = VARIANTS[v][0]
            row["slowdown"] = row["wall_s"] / full
            row["same_nfe"] = rs[0]["nfe"] == runs["full"][0]["nfe"]
            row["wall_all_s"] = [r["wall_s"] for r in rs]
            rows[v] = row
            print(f"{name:14s} {v:30s} wall {row['wall_s']:.4f}s x{row['slowdown']:.2f} "
                  f"overhead/iter {1e3 * row['overhead_per_iter_s']:.2f} ms f-rows {row['f_rows']:.0f} "
                  f"same NFE {row['same_nfe']}", flush=True)
        out[name] = rows
    save("ablations", {"benchmark": "ablations", "env": environment(), "reps": args.reps, "results": out})


if __name__ == "__main__":
    main()

"""Leave-one-out ablation of the solver speed changes, in one process, interleaved.

Each variant is the current solver with exactly one speed change switched off
from the outside (a module constant or a method swapped back to the plain
version), so what a change buys is measured on its own against the full solver
on the same problems: wall time, overhead outside f per iteration, and the work
done (f-rows). Answers must agree where the change does not alter the iteration
(same NFE per sample), which the script checks and reports.

The closure written in place only matters when f is a closure over the whole
batch (no ``args``: what the DEQ's adjoint solve was), so it is measured on that
path: the variant "full, closure f" is its baseline. The IFT adjoint compaction
is measured at training level (``train_speed.py``).

Run: ``python benchmarks/ablations.py [--reps 10]`` (writes results/ablations.json).
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
from common import TimedMap, environment, save
from suite import PROBLEMS, SETTLE_S


@contextlib.contextmanager
def patched(obj, name: str, value) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


# name -> (what is switched off, context manager factory, solver options changed, baseline variant).
# The option "closure" (not a solver option) makes f a closure over the args instead of passing them.
VARIANTS: dict[str, tuple[str, Callable[[], contextlib.AbstractContextManager], dict, str]] = {
    "full": ("nothing: the solver as shipped", contextlib.nullcontext, {}, "full"),
    "no block-copy compaction": (
        "history and state compacted with index_select (an element-wise gather on the CPU) instead of "
        "block copies of runs of kept rows, and F/G reallocated instead of compacted in place",
        lambda: patched(base_mod, "_BLOCK_COPY_BYTES", float("inf")), {}, "full"),
    "no Gram-diagonal norm": (
        "residual norm by a separate pass over g (vector_norm) instead of the Gram row's diagonal entry",
        lambda: patched(anderson_mod.Anderson, "residual_norm", FixedPointMethod.residual_norm), {}, "full"),
    "no buffer views at retirement": (
        "f(z) and g copied at each retirement instead of handed back as views of the compacted history",
        lambda: patched(anderson_mod.Anderson, "current", FixedPointMethod.current), {}, "full"),
    "no clean-iteration loop": (
        "the loop's safeguard bookkeeping (non-finite checks, restart counters) runs every iteration",
        lambda: patched(base_mod, "_CPU_FAST_PATH", False), {}, "full"),
    "no uniform window": (
        "Anderson builds the masked (m+1)x(m+1) bordered systems every step instead of solving the "
        "leading block of the incrementally kept float64 matrix",
        lambda: patched(anderson_mod.Anderson, "uniform_fast_path", False), {}, "full"),
    "no per-sample compaction": (
        "converged samples stay in the batch until all are done (compact_fraction=1: batch-wide work)",
        contextlib.nullcontext, {"compact_fraction": 1.0}, "full"),
    "no args compaction at retirement": (
        "the active rows of every batch arg gathered (index_select) at every evaluation instead of once "
        "when samples retire",
        lambda: patched(base_mod, "_ARGS_COMPACTED_AT_RETIREMENT", False), {}, "full"),
    "full, closure f": (
        "nothing, but f is a closure over the whole batch (no args: done samples stay in the batch, "
        "frozen); the baseline of the next variant",
        contextlib.nullcontext, {"closure": True}, "full, closure f"),
    "no in-place closure": (
        "closure f: the frozen full batch rebuilt as a new tensor (index_copy) at every evaluation "
        "instead of written in place",
        lambda: patched(base_mod, "_CLOSURE_IN_PLACE", False), {"closure": True}, "full, closure f"),
    "with reused buffers": (
        "nothing switched off: a Workspace kept across repetitions is added (what a DEQ layer does); "
        "slowdown < 1 is its gain over fresh buffers",
        contextlib.nullcontext, {"workspace": True}, "full"),
}
_WORKSPACE = andersonn.Workspace()  # lives across this process's repetitions


def one(p, opts: dict) -> dict:
    f = TimedMap(p.f)
    opts = dict(opts)
    if opts.pop("workspace", False):
        opts["workspace"] = _WORKSPACE
    if opts.pop("closure", False):
        fn, args = (lambda z: f(z, *p.args)), ()
    else:
        fn, args = f, p.args
    t = time.perf_counter()
    r = andersonn.solve(fn, p.z0, method="anderson", args=args, tol=p.tol, max_iter=p.max_iter,
                        store_trace=False, **opts)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "f_s": f.seconds, "iterations": r.iterations, "f_rows": r.sample_evals,
            "overhead_per_iter_s": (wall - f.seconds) / r.iterations, "nfe": r.nfe.tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=len(VARIANTS), help="timed repetitions (a multiple of the "
                    f"{len(VARIANTS)} variants "
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
                _, ctx, opts, _ = VARIANTS[v]
                time.sleep(SETTLE_S)
                with ctx():
                    r = one(p, opts)
                if rep:
                    runs[v].append(r)
        rows = {}
        for v, rs in runs.items():
            base = VARIANTS[v][3]
            row = {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "nfe"}
            row["switched_off"] = VARIANTS[v][0]
            row["baseline"] = base
            # Ratio within each repetition (both ran minutes apart at most), then the median.
            per_rep = [a["wall_s"] / b["wall_s"] for a, b in zip(rs, runs[base])]
            row["slowdown"] = statistics.median(per_rep)
            row["slowdown_per_rep"] = per_rep
            row["same_nfe"] = rs[0]["nfe"] == runs[base][0]["nfe"]
            row["wall_all_s"] = [r["wall_s"] for r in rs]
            rows[v] = row
            print(f"{name:14s} {v:34s} wall {row['wall_s']:.4f}s x{row['slowdown']:.2f} "
                  f"overhead/iter {1e3 * row['overhead_per_iter_s']:.2f} ms f-rows {row['f_rows']:.0f} "
                  f"same NFE {row['same_nfe']}", flush=True)
        out[name] = rows
    save("ablations", {"benchmark": "ablations", "env": environment(), "reps": args.reps, "results": out})


if __name__ == "__main__":
    main()

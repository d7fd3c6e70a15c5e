"""Leave-one-out ablation of the solver speed changes, in one process, interleaved.

Each variant is the current solver with exactly one speed change switched off
(a solve option, the block-copy threshold or a method swapped back to the plain
version), so what a change buys is measured on its own against the full solver
on the same problems: wall time, overhead outside f per iteration, and the work
done (f-rows). Answers must agree where the change does not alter the iteration
(same NFE per sample), which the script checks and reports.

The IFT adjoint compaction is measured at training level (``train_speed.py``). Two
earlier rows, the args compacted at retirement and the closure written in place,
are no longer switchable (both measured 0.95-1.00x, within noise, in the run
tabled in results/README.md before their switches were removed).

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
from andersonn.solvers import FixedPointMethod
from andersonn.solvers import anderson as anderson_mod
from andersonn.solvers import rows as rows_mod
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
VARIANTS: dict[str, tuple[str, Callable[[], contextlib.AbstractContextManager], dict, str]] = {
    "full": ("nothing: the solver as shipped", contextlib.nullcontext, {}, "full"),
    "no block-copy compaction": (
        "history and state compacted with index_select (an element-wise gather on the CPU) instead of "
        "block copies of runs of kept rows, and F/G reallocated instead of compacted in place",
        lambda: patched(rows_mod, "_BLOCK_COPY_BYTES", float("inf")), {}, "full"),
    "no Gram-diagonal norm": (
        "residual norm by a separate pass over g (vector_norm) instead of the Gram row's diagonal entry",
        lambda: patched(anderson_mod.Anderson, "residual_norm", FixedPointMethod.residual_norm), {}, "full"),
    "no buffer views at retirement": (
        "f(z) and g copied at each retirement instead of handed back as views of the compacted history",
        lambda: patched(anderson_mod.Anderson, "current", FixedPointMethod.current), {}, "full"),
    "no CPU shortcuts": (
        "the general path accelerators run (solve(cpu_shortcuts=False)): the loop's safeguard bookkeeping "
        "every iteration and Anderson's masked (m+1)x(m+1) bordered systems every step, instead of skipping "
        "the bookkeeping in clean iterations and solving the leading block of the kept float64 matrix while "
        "every window is whole",
        contextlib.nullcontext, {"cpu_shortcuts": False}, "full"),
    "no per-sample compaction": (
        "converged samples stay in the batch until all are done (compact_fraction=1: batch-wide work)",
        contextlib.nullcontext, {"compact_fraction": 1.0}, "full"),
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
    t = time.perf_counter()
    r = andersonn.solve(f, p.z0, method="anderson", args=p.args, tol=p.tol, max_iter=p.max_iter,
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

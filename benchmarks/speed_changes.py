"""Before/after of the solver speed work, in one process, interleaved.

Loads the solver package as it was at ``--before`` (a git commit; default: the
solver core before this work) next to the installed one, and runs both on the
same problems: wall time, f time, and solver overhead per iteration (wall and
CPU time: CPU time is steadier on a shared machine). The answers must agree
(same NFE per sample).

Run: ``python benchmarks/speed_changes.py`` (writes benchmarks/results/speed_changes.json).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import andersonn
from common import environment, save
from suite import PROBLEMS

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "60ec4fc"  # solver core + training, before the benchmark-suite speed work
FILES = ["__init__", "anderson", "base", "forward", "registry", "result"]


def load_before(commit: str, tmp: str):
    pkg = Path(tmp) / "andersonn_before"
    pkg.mkdir()
    for name in FILES:
        src = subprocess.run(["git", "show", f"{commit}:src/andersonn/solvers/{name}.py"], cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout
        (pkg / f"{name}.py").write_text(src)
    sys.path.insert(0, tmp)
    return importlib.import_module("andersonn_before")


class Timed:
    def __init__(self, f):
        self.f, self.wall, self.cpu = f, 0.0, 0.0

    def __call__(self, z, *a):
        w, c = time.perf_counter(), time.process_time()
        out = self.f(z, *a)
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c
        return out


def one(solve, p, method):
    t = Timed(p.f)
    w, c = time.perf_counter(), time.process_time()
    r = solve(t, p.z0, method=method, args=p.args, tol=p.tol, max_iter=p.max_iter, store_trace=False)
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    return {"wall_s": wall, "f_wall_s": t.wall, "iterations": r.iterations,
            "overhead_wall_per_iter_s": (wall - t.wall) / r.iterations,
            "overhead_cpu_per_iter_s": (cpu - t.cpu) / r.iterations,
            "f_cpu_per_iter_s": t.cpu / r.iterations, "nfe": r.nfe.tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default=BEFORE)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--problems", nargs="*", default=["poster_random", "linear", "mixed"])
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        before = load_before(args.before, tmp)
        for name in args.problems:
            p = PROBLEMS[name]()
            for method in ("anderson", "forward"):
                runs = {"before": [], "after": []}
                pair = [("before", before.solve), ("after", andersonn.solve)]
                for rep in range(args.reps + 1):
                    for label, solve in (pair if rep % 2 else pair[::-1]):  # alternate who goes first
                        r = one(solve, p, method)
                        if rep:
                            runs[label].append(r)
                row = {}
                for label, rs in runs.items():
                    row[label] = {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "nfe"}
                row["same_nfe"] = runs["before"][0]["nfe"] == runs["after"][0]["nfe"]
                row["wall_speedup"] = row["before"]["wall_s"] / row["after"]["wall_s"]
                row["overhead_cpu_ratio"] = (row["after"]["overhead_cpu_per_iter_s"]
                                             / row["before"]["overhead_cpu_per_iter_s"])
                out[f"{name} {method}"] = row
                b, a = row["before"], row["after"]
                print(f"{name:14s} {method:8s} wall {b['wall_s']:.3f}s -> {a['wall_s']:.3f}s "
                      f"(x{row['wall_speedup']:.2f}); overhead/iter cpu {1e3 * b['overhead_cpu_per_iter_s']:.1f} -> "
                      f"{1e3 * a['overhead_cpu_per_iter_s']:.1f} ms (f {1e3 * a['f_cpu_per_iter_s']:.1f} ms); "
                      f"same NFE: {row['same_nfe']}", flush=True)
    save("speed_changes", {"benchmark": "speed_changes", "before": args.before, "env": environment(),
                           "reps": args.reps, "results": out})


if __name__ == "__main__":
    main()

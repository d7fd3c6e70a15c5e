"""Before/after speed of the solver across two source trees (e.g. a refactor), interleaved in subprocesses.

Each round runs this file once per tree (PYTHONPATH=<tree>/src, the tree's own benchmarks/suite.py problems),
alternating trees, and each run reports the median of 7 timed Anderson solves per problem after 2 warm-ups and
the total NFE (equal NFE means the iteration did not change). Ratios are after/before per round.

Usage: python benchmarks/compare_trees.py BEFORE_TREE AFTER_TREE [--rounds 3] [--out results/compare_trees.json]
(a tree is a checkout, e.g. `git worktree add /tmp/before <commit>`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROBLEM_NAMES = ("poster_random", "linear", "mixed")


def one_tree(tree: str) -> dict:
    import torch

    sys.path.insert(0, str(Path(tree) / "benchmarks"))
    import andersonn
    from suite import PROBLEMS

    torch.set_grad_enabled(False)
    out = {}
    for name in PROBLEM_NAMES:
        p = PROBLEMS[name]()
        run = lambda: andersonn.solve(p.f, p.z0, args=p.args, tol=p.tol, max_iter=p.max_iter, store_trace=False)  # noqa: E731
        for _ in range(2):
            run()
        times = []
        for _ in range(7):
            t = time.perf_counter()
            r = run()
            times.append(time.perf_counter() - t)
        out[name] = {"median_s": statistics.median(times), "nfe_total": int(r.nfe.sum())}
    return {"solvers": andersonn.solvers.__file__, "problems": out}


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(one_tree(sys.argv[2])))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "compare_trees.json")
    args = ap.parse_args()
    for tree in (args.before, args.after):
        if not (tree / "src" / "andersonn").is_dir():
            sys.exit(f"error: {tree} is not a checkout of this project (no src/andersonn)")
    rounds = []
    for _ in range(args.rounds):
        row = {}
        for label, tree in (("before", args.before), ("after", args.after)):
            env = {**os.environ, "PYTHONPATH": str(tree.resolve() / "src")}
            proc = subprocess.run([sys.executable, __file__, "--one", str(tree.resolve())], env=env,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                sys.exit(f"error: the timing run in {tree} failed: {last}")
            row[label] = json.loads(proc.stdout.strip().splitlines()[-1])
        rounds.append(row)
    summary = {}
    for name in PROBLEM_NAMES:
        ratios = [r["after"]["problems"][name]["median_s"] / r["before"]["problems"][name]["median_s"] for r in rounds]
        same = all(r["after"]["problems"][name]["nfe_total"] == r["before"]["problems"][name]["nfe_total"] for r in rounds)
        summary[name] = {"after_over_before": statistics.median(ratios), "range": [min(ratios), max(ratios)],
                         "same_nfe": same}
        print(f"{name:14s} after/before x{summary[name]['after_over_before']:.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}) same NFE {same}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    commits = {label: subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True,
                                     text=True).stdout.strip() or "not a git checkout"
               for label, tree in (("before", args.before), ("after", args.after))}
    args.out.write_text(json.dumps({"before": str(args.before), "after": str(args.after), "commits": commits,
                                    "rounds": rounds,
                                    "summary": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

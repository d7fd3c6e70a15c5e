"""``make bench``: every comparison in its own process, then the Markdown report.

    python benchmarks/run_all.py [--reps 5] [--only linear mixed ...] [--skip-train] [--device cuda]

Each problem of ``suite.py`` runs in a fresh interpreter (same f, inputs,
tolerance and thread count for all solvers inside it), the poster-layer problems
once more with the ``andersonn`` command's allocator setting for every solver
(``--tuned-allocator``) and once beside a competing 2-thread process
(``--competing-load 2``, a busy machine), then ``speed_changes.py``
(before/after of the solver speed work), ``ablations.py`` (each change
switched off alone), ``compile_probe.py`` (torch.compile of the
loop body and of f), ``malloc_probe.py`` (the CPU allocator setting), then ``train_speed.py`` (epochs of DEQ training on the demo's
dataset) and ``time_to_accuracy.py`` (time to a test accuracy against TorchDEQ, on digits), then ``report.py`` writes ``benchmarks/results/README.md``.
The thread count is ``OMP_NUM_THREADS`` (default 2) for every process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROBLEMS = ["poster_random", "poster_trained", "linear", "mixed"]


def run(args: list[str], env: dict) -> None:
    t = time.perf_counter()
    print("$ python " + " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=HERE, env=env, check=True)
    print(f"  ({time.perf_counter() - t:.0f}s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=None, help=f"a subset of {PROBLEMS}")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-changes", action="store_true")
    ap.add_argument("--skip-tuned", action="store_true",
                    help="skip the poster-layer suite rerun with the andersonn command's allocator setting")
    ap.add_argument("--skip-loaded", action="store_true",
                    help="skip the poster-layer suite rerun beside a competing 2-thread process")
    ap.add_argument("--device", default="cpu",
                    help="cuda: run only the solver suite on the GPU (results/PROBLEM_cuda.json), then the report")
    args = ap.parse_args()
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    env.setdefault("MKL_NUM_THREADS", env["OMP_NUM_THREADS"])
    for p in args.only or PROBLEMS:
        run(["suite.py", p, "--reps", str(args.reps), "--device", args.device], env)
    if args.device != "cpu":
        run(["report.py"], env)
        return
    if not args.skip_tuned:  # the poster's layer again, every solver with the command's allocator setting
        for p in [p for p in args.only or PROBLEMS if p.startswith("poster")]:
            run(["suite.py", p, "--reps", str(args.reps), "--tuned-allocator"], env)
    if not args.skip_loaded:  # the poster's layer with a competing 2-thread process: a busy machine
        for p in [p for p in args.only or PROBLEMS if p.startswith("poster")]:
            run(["suite.py", p, "--reps", str(max(args.reps, 4)), "--competing-load", "2"], env)
    if not args.skip_changes:
        run(["speed_changes.py", "--reps", str(min(args.reps, 2))], env)
        run(["ablations.py"], env)  # as many reps as variants, rotated: each in every position once
        run(["compile_probe.py"], env)
        run(["malloc_probe.py", "--train"], env)  # tuned vs default glibc allocator, fresh processes
    if not args.skip_train:
        # Epochs vary by up to 50% between repetitions on a shared machine: 3 repetitions, not 2.
        run(["train_speed.py", "--reps", str(min(args.reps, 3))], env)
        # Time to accuracy against TorchDEQ (needs the bench extra): every recipe in its own process.
        run(["time_to_accuracy.py", "--dataset", "digits", "--epochs", "6", "--reps", str(min(args.reps, 3))], env)
    run(["report.py"], env)


if __name__ == "__main__":
    main()

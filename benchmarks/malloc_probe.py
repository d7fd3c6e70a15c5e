"""What ``andersonn.tune_cpu_allocator()`` buys: the same work in fresh processes with glibc's
default allocator settings and with the tuned ones, alternating.

Each child process builds the poster's layer at the tutorial's size, warms up, and times
solves to 1e-4 with Anderson and with forward iteration (median of 3); with ``--train`` it
also trains the demo's model for one epoch with Anderson (the ``andersonn`` command's
path). Children run one after another, tuned and untuned alternating, ``--rounds`` times;
the ratio is untuned / tuned within a round, median over rounds. Also records the child's
resident memory at the end (the price: freed heap is kept for reuse).

Run: ``python benchmarks/malloc_probe.py [--rounds 3] [--train]`` (writes results/malloc_probe.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import environment, save

HERE = Path(__file__).resolve().parent


def child(train: bool) -> dict:
    import psutil
    import torch

    import andersonn
    from common import poster_layer_problem

    tuned = andersonn.tune_cpu_allocator()
    torch.set_grad_enabled(False)
    f, x = poster_layer_problem()
    z0 = torch.zeros_like(x)
    out: dict = {"tuned": tuned}
    for method in ("anderson", "forward"):
        times = []
        for i in range(4):  # 1 warm-up
            t = time.perf_counter()
            r = andersonn.solve(f, z0, method=method, args=(x,), tol=1e-4, max_iter=100, store_trace=False)
            if i:
                times.append(time.perf_counter() - t)
        out[method] = {"solve_s": statistics.median(times), "mean_nfe": r.mean_nfe}
    if train:
        torch.set_grad_enabled(True)
        from andersonn.study.demo import DEMO_OPTIONS, pick_dataset
        from andersonn.train import TrainConfig, train as run_train

        dataset = pick_dataset("auto")
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(dataset=dataset, dataset_options=dict(DEMO_OPTIONS.get(dataset, {})),
                              solver="anderson", epochs=1, out_dir=tmp, seed=0)
            r = run_train(cfg, progress=False)
        out["train_epoch_s"] = r.metrics[0]["epoch_time_s"]
        out["test_accuracy"] = r.metrics[0]["test_accuracy"]
    out["rss_mb"] = psutil.Process().memory_info().rss / 2**20
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--train", action="store_true", help="also one training epoch per child (~30 s each)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.train)))
        return
    runs: dict[str, list[dict]] = {"default": [], "tuned": []}
    for rnd in range(args.rounds):
        for mode in ("default", "tuned") if rnd % 2 == 0 else ("tuned", "default"):
            env = dict(os.environ, ANDERSONN_TUNE_MALLOC="1" if mode == "tuned" else "0")
            env.setdefault("OMP_NUM_THREADS", "2")
            cmd = [sys.executable, str(HERE / "malloc_probe.py"), "--child"] + (["--train"] if args.train else [])
            res = subprocess.run(cmd, env=env, cwd=HERE, capture_output=True, text=True, check=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            assert r["tuned"] == (mode == "tuned"), r
            runs[mode].append(r)
            print(mode, json.dumps({k: v for k, v in r.items() if k != "tuned"}), flush=True)
    keys = ["anderson", "forward"] + (["train"] if args.train else [])

    def seconds(r: dict, k: str) -> float:
        return r["train_epoch_s"] if k == "train" else r[k]["solve_s"]

    summary = {}
    for k in keys:
        per = [seconds(d, k) / seconds(t, k) for d, t in zip(runs["default"], runs["tuned"])]
        summary[k] = {"speedup": statistics.median(per), "speedup_per_round": per,
                      "default_s": statistics.median(seconds(d, k) for d in runs["default"]),
                      "tuned_s": statistics.median(seconds(t, k) for t in runs["tuned"])}
    summary["rss_mb"] = {m: statistics.median(r["rss_mb"] for r in runs[m]) for m in runs}
    path = save("malloc_probe", {"benchmark": "malloc_probe", "env": environment(), "rounds": args.rounds,
                                 "summary": summary, "runs": runs})
    for k in keys:
        s = summary[k]
        print(f"{k}: default {s['default_s']:.3f} s, tuned {s['tuned_s']:.3f} s, speedup {s['speedup']:.2f}x "
              f"({min(s['speedup_per_round']):.2f}-{max(s['speedup_per_round']):.2f})")
    print(f"resident memory at exit: default {summary['rss_mb']['default']:.0f} MB, "
          f"tuned {summary['rss_mb']['tuned']:.0f} MB -> {path}")


if __name__ == "__main__":
    main()

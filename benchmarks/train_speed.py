"""Training-level speed: whole epochs of DEQ training on the embedded default dataset
(the one `make demo` trains: alms-polarity at the demo's size, or digits where the
chemistry stack is missing), Anderson (forward solve and IFT backward solve) against
forward iteration, plus Anderson with the adjoint solve kept batch-wide
(``--no-backward-compact``) to attribute what compacting the backward solve buys.

Same seed, data order, model and tolerances; the two runs are interleaved
(``--reps`` rounds) in this one process and the per-epoch wall times are
medians.  Reported in the poster's terms: speedup = forward time / Anderson
time, compute saved = 1 - Anderson NFE / forward NFE (and 1 - time ratio).

Run: ``python benchmarks/train_speed.py`` (writes benchmarks/results/train_speed.json).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch

import andersonn.deq
from andersonn.study.demo import DEMO_OPTIONS, pick_dataset
from andersonn.train import TrainConfig, train
from common import environment, save

# Count the work the solves really do (SolverResult.sample_evals: rows of f or of the adjoint's
# vector-Jacobian product actually computed).  The forward solve passes (x,) as its one batch arg;
# the adjoint solve passes (u, z*, x) when compacted and nothing when it is a whole-batch closure.
_plain_solve = andersonn.deq.solve
WORK: dict[str, int] = {}


def _counting_solve(f, z0, *a, **kw):
    r = _plain_solve(f, z0, *a, **kw)
    key = "fwd" if len(kw.get("args") or ()) == 1 else "bwd"
    WORK[f"{key}_iterations"] = WORK.get(f"{key}_iterations", 0) + r.iterations
    WORK[f"{key}_f_rows"] = WORK.get(f"{key}_f_rows", 0) + r.sample_evals
    WORK[f"{key}_sum_nfe"] = WORK.get(f"{key}_sum_nfe", 0) + int(r.nfe.sum())
    WORK[f"{key}_solves"] = WORK.get(f"{key}_solves", 0) + 1
    return r


andersonn.deq.solve = _counting_solve


VARIANTS = {  # name -> (solver, backward_compact)
    "anderson": ("anderson", True),
    "anderson_batchwide_backward": ("anderson", False),
    "forward": ("forward", True),
}


def one(dataset: str, options: dict, variant: str, epochs: int, tol: float, max_iter: int, out: str) -> dict:
    solver, compact = VARIANTS[variant]
    cfg = TrainConfig(dataset=dataset, dataset_options=options, solver=solver, epochs=epochs, tol=tol,
                      backward_tol=tol, max_iter=max_iter, backward_max_iter=max_iter, backward_compact=compact,
                      out_dir=out, seed=0)
    WORK.clear()
    r = train(cfg)
    ms = r.metrics
    return {
        "work": dict(WORK),
        "epoch_time_s": [m["epoch_time_s"] for m in ms],
        "forward_nfe": [m["forward_nfe"] for m in ms],
        "backward_nfe": [m["backward_nfe"] for m in ms],
        "test_accuracy": [m["test_accuracy"] for m in ms],
        "train_accuracy": [m["train_accuracy"] for m in ms],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="auto", help="'auto': the demo's dataset and size")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--max-iter", type=int, default=30)
    args = ap.parse_args()
    dataset = pick_dataset(args.dataset)
    options = DEMO_OPTIONS.get(dataset, {}) if args.dataset == "auto" else {}
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for variant in runs:
                print(f"rep {rep}: {variant}", flush=True)
                runs[variant].append(one(dataset, options, variant, args.epochs, args.tol, args.max_iter,
                                         f"{tmp}/{variant}{rep}"))
    summary = {}
    for solver, rs in runs.items():
        # Median over repetitions of the total training time; NFE and accuracy are deterministic.
        total = statistics.median(sum(r["epoch_time_s"]) for r in rs)
        summary[solver] = {
            "train_time_s": total, "epoch_time_s": total / args.epochs,
            "forward_nfe_per_epoch": rs[0]["forward_nfe"], "backward_nfe_per_epoch": rs[0]["backward_nfe"],
            "nfe_total": sum(rs[0]["forward_nfe"]) + sum(rs[0]["backward_nfe"]),
            "final_test_accuracy": rs[0]["test_accuracy"][-1], "test_accuracy": rs[0]["test_accuracy"],
            "all_train_times_s": [sum(r["epoch_time_s"]) for r in rs],
            # Per solve (forward solves include the test-set evaluation): iterations, f-rows / vjp-rows evaluated.
            "work": {k: v / rs[0]["work"].get(k.split("_")[0] + "_solves", 1) for k, v in rs[0]["work"].items()
                     if not k.endswith("_solves")},
        }
    a, f, b = summary["anderson"], summary["forward"], summary["anderson_batchwide_backward"]
    payload = {
        "benchmark": "train_speed", "env": environment(), "dataset": dataset, "dataset_options": options,
        "epochs": args.epochs,
        "reps": args.reps, "tol": args.tol, "max_iter": args.max_iter, "results": summary,
        "speedup_wall": f["train_time_s"] / a["train_time_s"],
        "compute_saved_nfe": 1 - a["nfe_total"] / f["nfe_total"],
        "time_saved": 1 - a["train_time_s"] / f["train_time_s"],
        # What was really evaluated (forward f-rows + backward vjp-rows), per step.
        "work_saved_rows": 1 - (a["work"]["fwd_f_rows"] + a["work"]["bwd_f_rows"])
        / (f["work"]["fwd_f_rows"] + f["work"]["bwd_f_rows"]),
        # The backward compaction on its own: Anderson with it vs Anderson with a batch-wide adjoint solve.
        "speedup_backward_compaction": b["train_time_s"] / a["train_time_s"],
        "speedup_wall_batchwide_backward": f["train_time_s"] / b["train_time_s"],
    }
    path = save("train_speed", payload)
    for s, r in summary.items():
        print(f"{s:9s} epoch {r['epoch_time_s']:.2f}s  fwd NFE {r['forward_nfe_per_epoch']}  "
              f"bwd NFE {r['backward_nfe_per_epoch']}  test acc {r['test_accuracy']}")
    for s, r in summary.items():
        print(s, "work per step:", {k: round(v, 1) for k, v in r["work"].items()})
    print(f"speedup {payload['speedup_wall']:.2f}x, NFE saved {100 * payload['compute_saved_nfe']:.0f}%, "
          f"time saved {100 * payload['time_saved']:.0f}%; backward compaction alone "
          f"{payload['speedup_backward_compaction']:.2f}x  -> {path}")


if __name__ == "__main__":
    torch.set_num_threads(torch.get_num_threads())
    main()

"""Time to accuracy against TorchDEQ: the poster's classifier trained to a fixed test accuracy with each recipe.

    python benchmarks/time_to_accuracy.py [--dataset digits] [--epochs 10] [--reps 3] [--target 0.9]

Recipes (the same model, initial weights, data order, optimiser and schedule; only the DEQ layer differs):

- ``torchdeq default``: TorchDEQ 0.1.0's ``get_deq()`` as it comes (forward: fixed-point iteration;
  backward: the one-step phantom gradient), with this project's tolerance and iteration cap;
- ``torchdeq anderson+ift``: TorchDEQ's Anderson forward and backward, implicit differentiation;
- ``standard``: this project's forward iteration + IFT (the poster's "standard");
- ``accelerated``: this project's Anderson + IFT (the poster's "accelerated");
- ``accelerated+phantom``, ``accelerated+jfb``: this project's Anderson with the k-step phantom gradient /
  the Jacobian-free backward; "best" in the report is the recipe of this project that reached the
  target soonest (median over repetitions).

Both libraries solve to the same relative residual (``tol``, ``max_iter``; TorchDEQ's ``stop_mode="rel"``,
its default being absolute). Each (recipe, repetition) trains in a fresh interpreter, the recipes in a
rotated order every repetition, so no run inherits another's heap or caches. Time is training time only
(the test split is scored after every epoch, outside the clock). Ratios are TorchDEQ-default time over the
recipe's time, one per repetition, reported as median and range. Writes
``benchmarks/results/time_to_accuracy_DATASET.json``.

The training loop is this script's own (Adam, cosine schedule, cross-entropy), so that both libraries run
under one loop; ``andersonn train`` adds BatchNorm recalibration and checkpoints, which are not measured here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common import environment, save

RECIPES = {  # name -> (library, options)
    "torchdeq default": ("torchdeq", {}),
    "torchdeq anderson+ift": ("torchdeq", {"f_solver": "anderson", "b_solver": "anderson", "ift": True}),
    "standard": ("andersonn", {"solver": "forward", "backward": "ift"}),
    "accelerated": ("andersonn", {"solver": "anderson", "backward": "ift"}),
    "accelerated+phantom": ("andersonn", {"solver": "anderson", "backward": "phantom"}),
    "accelerated+jfb": ("andersonn", {"solver": "anderson", "backward": "jfb"}),
}
BASELINE = "torchdeq default"
DEFAULT_TARGET = {"digits": 0.90, "alms-polarity": 0.70}


class TorchDEQLayer(nn.Module):
    """The poster's implicit block solved by a TorchDEQ ``DEQ`` (what replaces ``DEQClassifier.deq``)."""

    def __init__(self, block: nn.Module, tol: float, max_iter: int, **options) -> None:
        super().__init__()
        from torchdeq import get_deq

        self.f = block
        self.solver = get_deq(f_tol=tol, b_tol=tol, f_max_iter=max_iter, b_max_iter=max_iter,
                              f_stop_mode="rel", b_stop_mode="rel", **options)
        self.nfe = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, info = self.solver(lambda z: self.f(z, x), torch.zeros_like(x))
        self.nfe = float(info["nstep"].float().mean())
        return states[-1]


def _data(name: str):
    from andersonn.data import load_dataset
    from andersonn.study.demo import DEMO_OPTIONS

    return load_dataset(name, **DEMO_OPTIONS.get(name, {}))


def build_model(recipe: str, image_shape: tuple[int, int, int], num_classes: int, tol: float, max_iter: int) -> nn.Module:
    """The poster's classifier with the DEQ layer of ``recipe``; the same initial weights for every recipe
    under the same torch seed (the TorchDEQ layer wraps the block the andersonn model was built with)."""
    from andersonn.models import deq_classifier
    from andersonn.train.trainer import default_pool

    library, options = RECIPES[recipe]
    c, h, _ = image_shape
    deq_options = dict(options, tol=tol, max_iter=max_iter) if library == "andersonn" else {"solver": "forward"}
    model = deq_classifier(in_channels=c, image_size=h, num_classes=num_classes, pool=default_pool(h), **deq_options)
    if library == "torchdeq":  # same block, same initial weights: only the solve and its gradient differ
        model.deq = TorchDEQLayer(model.deq.f, tol, max_iter, **options)
    return model


def train_one(recipe: str, dataset: str, epochs: int, batch_size: int, lr: float, seed: int, tol: float,
              max_iter: int) -> dict:
    """Trains one recipe in this process; per-epoch training time, test accuracy and forward NFE."""
    library = RECIPES[recipe][0]
    ds = _data(dataset)
    torch.manual_seed(seed)
    model = build_model(recipe, ds.image_shape, ds.num_classes, tol, max_iter)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = ds.x_train.shape[0]
    steps = math.ceil(n / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps, eta_min=1e-6)
    rows, clock = [], 0.0
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        model.train()
        t0, nfe = time.perf_counter(), 0.0
        for k in range(steps):
            idx = perm[k * batch_size:(k + 1) * batch_size]
            loss = F.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            nfe += model.deq.nfe if library == "torchdeq" else model.deq.last_forward.mean_nfe
        clock += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(ds.x_test[i:i + 500]).argmax(1) == ds.y_test[i:i + 500]).sum())
                          for i in range(0, ds.x_test.shape[0], 500))
        rows.append({"epoch": epoch + 1, "train_time_s": clock, "test_accuracy": correct / ds.x_test.shape[0],
                     "forward_nfe": nfe / steps})
    return {"recipe": recipe, "epochs": rows}


def time_to(rows: list[dict], target: float) -> float | None:
    """Training time at the first epoch whose test accuracy reaches ``target`` (None: never)."""
    return next((r["train_time_s"] for r in rows if r["test_accuracy"] >= target), None)


def speedup_per_rep(base_reps: list[list[dict]], reps: list[list[dict]], target: float) -> dict | None:
    """Time to ``target`` of the base recipe over this recipe's, one ratio per repetition (the lists hold each
    repetition's per-epoch rows, in repetition order), as median and range; None when no pair reached it."""
    pairs = [(time_to(b, target), time_to(r, target)) for b, r in zip(base_reps, reps)]
    return _spread([b / t for b, t in pairs if b is not None and t is not None])


def _spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="digits", help="digits or alms-polarity (the demo's size)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--target", type=float, default=None, help="test accuracy to reach (default per dataset)")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--max-iter", type=int, default=30)
    ap.add_argument("--recipes", nargs="*", default=list(RECIPES), help=f"a subset of {list(RECIPES)}")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child mode: RECIPE:SEED:OUT.json
    args = ap.parse_args()
    unknown = [r for r in args.recipes if r not in RECIPES]
    if unknown:
        ap.error(f"unknown recipe(s) {unknown}; choose from {list(RECIPES)}")
    if args.one:
        recipe, seed, out = args.one.split(":", 2)
        res = train_one(recipe, args.dataset, args.epochs, args.batch_size, args.lr, int(seed), args.tol, args.max_iter)
        Path(out).write_text(json.dumps(res))
        return
    target = args.target if args.target is not None else DEFAULT_TARGET.get(args.dataset, 0.9)
    runs: dict[str, list[dict]] = {r: [] for r in args.recipes}
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"tta_{os.getpid()}.json"
    for rep in range(args.reps):
        order = args.recipes[rep % len(args.recipes):] + args.recipes[:rep % len(args.recipes)]
        for recipe in order:
            cmd = [sys.executable, __file__, "--dataset", args.dataset, "--epochs", str(args.epochs),
                   "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--tol", str(args.tol),
                   "--max-iter", str(args.max_iter), "--one", f"{recipe}:0:{tmp}"]
            subprocess.run(cmd, check=True)
            res = json.loads(tmp.read_text())
            runs[recipe].append(res)
            last = res["epochs"][-1]
            t = time_to(res["epochs"], target)
            print(f"rep {rep} {recipe:22s} final acc {last['test_accuracy']:.3f}  time {last['train_time_s']:.1f}s  "
                  f"to {target:.0%}: {'never' if t is None else f'{t:.1f}s'}", flush=True)
    tmp.unlink(missing_ok=True)
    summary = {}
    for recipe, rs in runs.items():
        times = [time_to(r["epochs"], target) for r in rs]
        summary[recipe] = {
            "time_to_target_s": _spread([t for t in times if t is not None]),
            "reached_target": sum(t is not None for t in times), "runs": len(rs),
            "final_test_accuracy": _spread([r["epochs"][-1]["test_accuracy"] for r in rs]),
            "train_time_s": _spread([r["epochs"][-1]["train_time_s"] for r in rs]),
            "forward_nfe_per_epoch": rs[0]["epochs"] and [e["forward_nfe"] for e in rs[0]["epochs"]],
            "per_rep": [r["epochs"] for r in rs],
        }
        if BASELINE in runs and recipe != BASELINE:
            summary[recipe]["speedup_to_target_vs_torchdeq_default"] = speedup_per_rep(
                [r["epochs"] for r in runs[BASELINE]], [r["epochs"] for r in rs], target)
    ours = {r: s for r, s in summary.items() if RECIPES[r][0] == "andersonn" and s["time_to_target_s"]
            and s["reached_target"] == s["runs"]}
    best = min(ours, key=lambda r: ours[r]["time_to_target_s"]["median"]) if ours else None
    payload = {"benchmark": "time_to_accuracy", "env": environment(), "dataset": args.dataset, "target": target,
               "epochs": args.epochs, "reps": args.reps, "batch_size": args.batch_size, "lr": args.lr, "tol": args.tol,
               "max_iter": args.max_iter, "recipes": {r: {"library": RECIPES[r][0], "options": RECIPES[r][1]}
                                                       for r in args.recipes},
               "best_andersonn_recipe": best, "results": summary}
    path = save(f"time_to_accuracy_{args.dataset}", payload)
    for recipe, s in summary.items():
        t, sp = s["time_to_target_s"], s.get("speedup_to_target_vs_torchdeq_default")
        print(f"{recipe:22s} to {target:.0%}: " + ("never" if not t else f"{t['median']:.1f}s [{t['min']:.1f}, {t['max']:.1f}]")
              + (f"  speedup vs torchdeq default {sp['median']:.2f}x [{sp['min']:.2f}, {sp['max']:.2f}]" if sp else "")
              + f"  final acc {s['final_test_accuracy']['median']:.3f}")
    print(f"best recipe of this project: {best} -> {path}")


if __name__ == "__main__":
    main()

"""Scoring a trained model on a held-out split: probabilities, wall time and solver work, and the
standard-vs-accelerated comparison the ALMS reports print.

>>> import torch
>>> from andersonn.models import deq_classifier
>>> model = deq_classifier(in_channels=1, image_size=8, num_classes=3, channels=8, inner_channels=8,
...                        groups=4, pool=4, solver="anderson", m=3, tol=1e-3, max_iter=10).eval()
>>> prob, seconds, nfe = predict_proba(model, torch.randn(5, 1, 8, 8), batch=2)
>>> prob.shape, bool(abs(prob.sum(1) - 1).max() < 1e-5), 1 <= nfe <= 10
((5, 3), True, True)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["predict_proba", "epoch_speedups", "solver_comparison", "score_trained_run"]


def predict_proba(model: torch.nn.Module, x: torch.Tensor, batch: int = 500) -> tuple[np.ndarray, float, float]:
    """Class probabilities ``(n, k)``, wall seconds and mean forward NFE per sample (0 for an explicit model)."""
    probs, nfe = [], 0.0
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            xb = x[i: i + batch]
            probs.append(torch.softmax(model(xb), 1).numpy())
            last = getattr(getattr(model, "deq", None), "last_forward", None)
            if last is not None:
                nfe += last.mean_nfe * xb.shape[0]
    return np.concatenate(probs), time.perf_counter() - t0, nfe / max(1, x.shape[0])


def epoch_speedups(standard_epoch_times: list[float], accelerated_epoch_times: list[float]) -> dict[str, Any]:
    """Training speedups that stay fair when early stopping ended two runs at different epochs.

    The whole-run ratio (``train_time_s`` over ``train_time_s``) credits a run for stopping sooner;
    these compare equal work: ``speedup_train_per_epoch`` the mean epoch times, and
    ``speedup_train_common_epochs`` the time of the epochs both ran (the first ``min`` of them).

    >>> epoch_speedups([10.0, 10.0, 10.0], [5.0, 5.0])
    {'epochs_run': {'standard': 3, 'accelerated': 2}, 'speedup_train_per_epoch': 2.0, 'speedup_train_common_epochs': 2.0}
    """
    s, a = list(standard_epoch_times), list(accelerated_epoch_times)
    if not s or not a:
        return {}
    k = min(len(s), len(a))
    return {"epochs_run": {"standard": len(s), "accelerated": len(a)},
            "speedup_train_per_epoch": (sum(s) / len(s)) / (sum(a) / len(a)),
            "speedup_train_common_epochs": sum(s[:k]) / sum(a[:k])}


def solver_comparison(standard: dict[str, Any], accelerated: dict[str, Any], note: str) -> dict[str, Any]:
    """Speedups and compute saved of ``accelerated`` over ``standard`` (each a report's run entry with
    ``train_time_s``, ``inference_s``, ``forward_nfe``, ``backward_nfe``, ``inference_nfe``, ``accuracy``
    and, where timed more than once, ``inference_s_range``; with ``epoch_times_s`` in both, the
    equal-work speedups of :func:`epoch_speedups` too).

    >>> s = dict(train_time_s=30.0, inference_s=2.0, forward_nfe=20, backward_nfe=20, inference_nfe=25, accuracy=0.9,
    ...          epoch_times_s=[10.0, 10.0, 10.0])
    >>> a = dict(train_time_s=10.0, inference_s=1.0, forward_nfe=10, backward_nfe=10, inference_nfe=12, accuracy=0.91,
    ...          epoch_times_s=[5.0, 5.0])
    >>> c = solver_comparison(s, a, "toy")
    >>> c["speedup_train"], c["speedup_train_per_epoch"], c["compute_saved_by_nfe"], round(c["accuracy_difference"], 2)
    (3.0, 2.0, 0.5, 0.01)
    """
    s_work = standard["forward_nfe"] + standard["backward_nfe"]
    a_work = accelerated["forward_nfe"] + accelerated["backward_nfe"]
    out = {
        "speedup_train": standard["train_time_s"] / accelerated["train_time_s"],
        **epoch_speedups(standard.get("epoch_times_s") or [], accelerated.get("epoch_times_s") or []),
        "speedup_inference": standard["inference_s"] / accelerated["inference_s"],
        "compute_saved_by_nfe": 1 - a_work / s_work,
        "compute_saved_by_time": 1 - accelerated["train_time_s"] / standard["train_time_s"],
        "inference_nfe": {"standard": standard["inference_nfe"], "accelerated": accelerated["inference_nfe"]},
        "accuracy_difference": accelerated["accuracy"] - standard["accuracy"],
        "note": note,
    }
    if "inference_s_range" in standard and "inference_s_range" in accelerated:
        out["speedup_inference_range"] = [standard["inference_s_range"][0] / accelerated["inference_s_range"][1],
                                          standard["inference_s_range"][1] / accelerated["inference_s_range"][0]]
    return out


def score_trained_run(run_dir: str | Path, x: torch.Tensor, y: np.ndarray, target: np.ndarray, threshold: float,
                      class_names: list[str] | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """A trained run folder (``andersonn train --out``) scored on a binary threshold task, with what its
    training cost: :func:`~andersonn.study.metrics.threshold_task_metrics` of its probabilities on ``x``
    against ``y`` (``target >= threshold``), inference time and NFE, and from the folder's summary the
    parameters, training time, chosen epoch, forward/backward NFE and per-epoch curves. Returns the
    entry and the probabilities of class 1.

    >>> import tempfile, torch
    >>> from andersonn.train import TrainConfig, train
    >>> from andersonn.data.registry import ImageDataset
    >>> g = torch.Generator().manual_seed(0); x = torch.randn(40, 1, 6, 6, generator=g); y = (x.mean((1, 2, 3)) > 0).long()
    >>> ds = ImageDataset("toy", x[:30], y[:30], x[30:], y[30:], ["neg", "pos"])
    >>> out = tempfile.mkdtemp()
    >>> _ = train(TrainConfig(dataset="toy", epochs=1, batch_size=10, channels=8, inner_channels=8, groups=4, pool=3,
    ...                       out_dir=out), dataset=ds, progress=False)
    >>> entry, prob = score_trained_run(out, x[30:], y[30:].numpy(), x[30:].mean((1, 2, 3)).numpy(), 0.0)
    >>> sorted(k for k in ("accuracy", "train_time_s", "inference_nfe") if k in entry), prob.shape
    (['accuracy', 'inference_nfe', 'train_time_s'], (10,))
    """
    from ..train.saved_model import load_trained
    from .metrics import threshold_task_metrics

    run_dir = Path(run_dir)
    model, meta = load_trained(run_dir)
    proba, seconds, nfe = predict_proba(model, x)
    prob = proba[:, 1]
    summary_path = run_dir / "summary.json"
    summary = json.loads((summary_path if summary_path.exists() else run_dir / "interim.json").read_text())
    epochs = summary.get("metrics") or _epoch_metrics(run_dir)
    m = threshold_task_metrics(y, prob, target, threshold, class_names=class_names)
    m.update(inference_s=round(seconds, 2), inference_nfe=round(nfe, 2), params=summary["params"],
             train_time_s=summary["train_time_s"], epochs_run=summary.get("epochs_run", summary.get("epochs_done")),
             chosen_epoch=summary.get("chosen_epoch"), val_accuracy=summary.get("val_accuracy"),
             interim=bool(summary.get("interim")),
             forward_nfe=summary.get("forward_nfe"), backward_nfe=summary.get("backward_nfe"),
             epoch_times_s=[r["epoch_time_s"] for r in epochs], val_accuracy_by_epoch=[r.get("val_accuracy") for r in epochs],
             forward_nfe_by_epoch=[r["forward_nfe"] for r in epochs], backward_nfe_by_epoch=[r["backward_nfe"] for r in epochs],
             solver=meta["config"]["solver"], arch=meta["config"]["arch"])
    return m, prob


def _epoch_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Per-epoch rows of a run folder: ``metrics.json``, else ``metrics.csv`` (a shipped model keeps only it)."""
    if (run_dir / "metrics.json").exists():
        return json.loads((run_dir / "metrics.json").read_text())
    import csv

    with open(run_dir / "metrics.csv", newline="") as fh:
        return [{k: (float(v) if v not in ("", None) else None) for k, v in row.items()} for row in csv.DictReader(fh)]

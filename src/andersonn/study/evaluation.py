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

import time
from typing import Any

import numpy as np
import torch

__all__ = ["predict_proba", "solver_comparison"]


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


def solver_comparison(standard: dict[str, Any], accelerated: dict[str, Any], note: str) -> dict[str, Any]:
    """Speedups and compute saved of ``accelerated`` over ``standard`` (each a report's run entry with
    ``train_time_s``, ``inference_s``, ``forward_nfe``, ``backward_nfe``, ``inference_nfe``, ``accuracy``
    and, where timed more than once, ``inference_s_range``).

    >>> s = dict(train_time_s=10.0, inference_s=2.0, forward_nfe=20, backward_nfe=20, inference_nfe=25, accuracy=0.9)
    >>> a = dict(train_time_s=5.0, inference_s=1.0, forward_nfe=10, backward_nfe=10, inference_nfe=12, accuracy=0.91)
    >>> c = solver_comparison(s, a, "toy")
    >>> c["speedup_train"], c["compute_saved_by_nfe"], round(c["accuracy_difference"], 2)
    (2.0, 0.5, 0.01)
    """
    s_work = standard["forward_nfe"] + standard["backward_nfe"]
    a_work = accelerated["forward_nfe"] + accelerated["backward_nfe"]
    out = {
        "speedup_train": standard["train_time_s"] / accelerated["train_time_s"],
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

"""The m trade-off: accuracy, time and NFE to tolerance against the Anderson window m."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from ..data import ImageDataset
from ..train import evaluate
from ..train.saved_model import load_trained


def m_tradeoff(run_dir: str | Path, dataset: ImageDataset, ms: Sequence[int] = (1, 2, 3, 5, 8),
               batch_size: int = 100, max_test: int | None = None) -> list[dict[str, Any]]:
    """Evaluate a trained model's test accuracy, inference time and NFE with Anderson(m) for each m
    (and with forward iteration as the baseline), at the tolerance it was trained with."""
    x, y = dataset.x_test[:max_test], dataset.y_test[:max_test]
    rows = []
    settings = [("forward", {"solver": "forward"})] + [(f"anderson m={m}", {"solver": "anderson", "m": m}) for m in ms]
    for label, override in settings:
        model, _ = load_trained(run_dir, **override)
        ev = evaluate(model, x, y, batch_size, torch.device("cpu"))
        rows.append({"solver": label, "m": override.get("m"), "test_accuracy": ev["accuracy"],
                     "inference_time_s": ev["time_s"], "inference_nfe": ev["nfe"]})
    return rows

"""Screening with a trained ALMS model: molecules (polarity) or MOF structures (pore size).

The trained run folder decides the task: a model trained on ``alms-pores`` screens CIF
files, one trained on ``alms-polarity`` screens molecule files (CSV ``name,smiles`` or SMILES).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .train import load_trained

TASKS = {"alms-pores": "pores", "alms-polarity": "molecules"}


def load_predictor(run_dir: str | Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
    """``predict(images) -> probabilities`` of a trained model, and its saved metadata."""
    model, meta = load_trained(run_dir)

    @torch.no_grad()
    def predict(images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(images.float()), dim=1)

    return predict, meta


def task_of(meta: dict[str, Any], task: str = "auto") -> str:
    if task != "auto":
        if task not in ("pores", "molecules"):
            raise ValueError(f"--task must be 'auto', 'pores' or 'molecules', got {task!r}")
        return task
    dataset = meta["config"]["dataset"]
    if dataset not in TASKS:
        raise ValueError(f"the model was trained on {dataset!r}, not an ALMS task ({', '.join(TASKS)}); "
                         "screening needs an alms-pores or alms-polarity model")
    return TASKS[dataset]


def screen(paths: Sequence[str | Path], run_dir: str | Path, task: str = "auto",
           with_labels: bool = False) -> list[dict[str, Any]]:
    """Classify every structure or molecule in ``paths`` with the model in ``run_dir``; one row each.

    Unreadable inputs give a row with an ``error`` and the rest carry on.
    """
    predict, meta = load_predictor(run_dir)
    kind = task_of(meta, task)
    size = meta["model"]["image_size"]
    if meta["config"]["dataset"] in TASKS and TASKS[meta["config"]["dataset"]] != kind:
        raise ValueError(f"the model in {run_dir} was trained for {TASKS[meta['config']['dataset']]}, not {kind}")
    if kind == "pores":
        from .materials.screen import screen_cifs

        return screen_cifs(list(paths), predict, image_size=size, class_names=meta["class_names"])
    from .chem.screen import screen_file

    rows: list[dict[str, Any]] = []
    for path in paths:
        rows.extend(screen_file(path, predict, with_labels=with_labels, image_size=size))
    return rows


def write_rows(rows: list[dict[str, Any]], out: Path) -> None:
    """CSV (probabilities flattened to ``p_<class>`` columns) or JSON, by the suffix of ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".json":
        out.write_text(json.dumps(rows, indent=2, default=str))
        return
    flat = []
    for r in rows:
        row = {k: v for k, v in r.items() if k != "probabilities"}
        row.update({f"p_{k}": v for k, v in (r.get("probabilities") or {}).items()})
        flat.append(row)
    keys: list[str] = []
    for r in flat:
        keys += [k for k in r if k not in keys]
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(flat)

"""`andersonn demo`: the poster's study end to end on the embedded default data."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..data import available_datasets, load_dataset
from ..fileio import atomic_write_text
from ..train import TrainConfig
from ..train.saved_model import load_trained
from .compare import compare
from .m_tradeoff import m_tradeoff
from .report import write_report
from .residuals import residual_study

DEFAULT_ALMS = "alms-polarity"
# Sized so that `make demo` (both solvers, the analyses, the report) stays well under 10 minutes on 2 cores.
DEMO_OPTIONS: dict[str, dict] = {"alms-polarity": {"max_molecules": 1000}}


def pick_dataset(name: str) -> str:
    """'auto' -> the ALMS polarity task when it is registered and loads, else scikit-learn digits."""
    if name != "auto":
        return name
    if DEFAULT_ALMS in available_datasets():
        try:
            load_dataset(DEFAULT_ALMS, **DEMO_OPTIONS[DEFAULT_ALMS])
            return DEFAULT_ALMS
        except Exception as exc:  # any failure of the optional pipeline falls back to the shipped digits
            print(f"note: {DEFAULT_ALMS} could not be loaded ({exc}); falling back to digits")
    return "digits"


def run_demo(out: Path, dataset: str = "auto", epochs: int = 4, max_train: int | None = None,
             max_test: int | None = None, resume: bool = True, progress: bool = True) -> Path:
    """Train standard and accelerated DEQs, run the residual and m analyses, write the report."""
    name = pick_dataset(dataset)
    print(f"dataset: {name}")
    options = DEMO_OPTIONS.get(name, {})
    cfg = TrainConfig(dataset=name, epochs=epochs, max_train=max_train, max_test=max_test, dataset_options=options)
    results = compare(cfg, out, resume=resume, progress=progress)
    f_model, meta = load_trained(out / "accelerated")
    mc = meta["model"]
    torch.manual_seed(0)
    x = torch.randn(32, mc["channels"], mc["image_size"], mc["image_size"])
    residual_rows = residual_study(f_model.deq.f, x, ms=(1, 2, 3, 5, 8), tol=1e-4, max_iter=60)
    ds = load_dataset(name, **options)
    trained_rows = m_tradeoff(out / "accelerated", ds, ms=(1, 2, 3, 5, 8), max_test=max_test)
    atomic_write_text(json.dumps({"residuals": residual_rows, "m_trained": trained_rows}, indent=2), out / "analyses.json")
    return write_report(out, results, residual_rows, residual_rows, trained_rows)

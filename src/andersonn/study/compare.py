"""Standard (forward iteration) vs accelerated (Anderson) training on the same data, seed and schedule."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from ..data import ImageDataset, load_dataset
from ..train import ConfigError, TrainConfig, evaluate, train
from ..train.saved_model import load_trained
from ..train.config import NOT_COMPARED, setting_differences
from ..fileio import atomic_write_text
from .evaluation import epoch_speedups

SOLVERS = {"standard": "forward", "accelerated": "anderson"}
BLOCK_KEYS = ["params", "train_accuracy", "test_accuracy", "best_test_accuracy", "train_time_s",
              "inference_time_s", "inference_time_per_batch_s", "forward_nfe", "backward_nfe", "inference_nfe"]


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def results_table(standard: dict[str, Any], accelerated: dict[str, Any], dataset: str,
                  history: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The poster's results table from two training summaries (``results.json`` schema).

    Compute saved is reported two ways: by function evaluations per training step
    (forward + backward NFE) and by training wall time. With ``history`` (each run's per-epoch
    metrics, keyed ``"standard"`` / ``"accelerated"``) the table also has the equal-work speedups of
    :func:`~andersonn.study.evaluation.epoch_speedups`, which stay fair when early stopping ended
    the two runs at different epochs.
    """
    s_work = standard["forward_nfe"] + standard["backward_nfe"]
    a_work = accelerated["forward_nfe"] + accelerated["backward_nfe"]
    per_epoch = {}
    if history:
        per_epoch = epoch_speedups([r["epoch_time_s"] for r in history.get("standard", [])],
                                   [r["epoch_time_s"] for r in history.get("accelerated", [])])
    return {
        "dataset": dataset,
        "standard": {k: standard[k] for k in BLOCK_KEYS},
        "accelerated": {k: accelerated[k] for k in BLOCK_KEYS},
        "speedup_train": _ratio(standard["train_time_s"], accelerated["train_time_s"]),
        **per_epoch,
        "speedup_inference": _ratio(standard["inference_time_s"], accelerated["inference_time_s"]),
        "compute_saved": {
            "by_nfe": 1.0 - _ratio(a_work, s_work),
            "by_time": 1.0 - _ratio(accelerated["train_time_s"], standard["train_time_s"]),
        },
    }


def compare(base: TrainConfig, out_dir: str | Path, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train standard and accelerated DEQs with everything else equal; write ``results.json``.

    Returns the results table (see :func:`results_table`) with the per-epoch metrics
    of both runs under ``"history"``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(base.dataset, base.data_dir, **base.dataset_options)
    summaries, history = {}, {}
    for label, solver in SOLVERS.items():
        cfg = dataclasses.replace(base, solver=solver, out_dir=str(out / label))
        if solver != "anderson":
            cfg = dataclasses.replace(cfg, solver_options={})  # the base's options are Anderson's
        run_dir = Path(cfg.out_dir)
        if resume and (run_dir / "summary.json").is_file() and _check_same_run(run_dir, cfg):
            summaries[label] = _read_run_json(run_dir / "summary.json")
            history[label] = _read_run_json(run_dir / "metrics.json")
            continue
        result = train(cfg, resume=resume, progress=progress, dataset=ds)
        summaries[label], history[label] = result.summary, result.metrics
    table = results_table(summaries["standard"], summaries["accelerated"], base.dataset, history)
    table["dataset_summary"] = ds.summary()
    # What the runs really used (--max-train / --max-test cut the splits)
    table["dataset_summary"]["train"] = min(ds.y_train.numel(), base.max_train or ds.y_train.numel())
    table["dataset_summary"]["test"] = min(ds.y_test.numel(), base.max_test or ds.y_test.numel())
    subsets = subset_accuracies(out, ds, base)
    if subsets:
        table["subsets"] = subsets
    table["config"] = {k: v for k, v in base.to_dict().items() if k not in ("solver", "out_dir")}
    atomic_write_text(json.dumps(table, indent=2), out / "results.json")
    table["history"] = history
    return table


def _read_run_json(path: Path) -> Any:
    """A finished run's JSON file, or a ConfigError naming it (a run folder edited or cut short by hand)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--resume: {path} cannot be read as a finished run's file ({type(exc).__name__}: {exc}); "
                          "remove that run folder to train it again, or choose another --out") from None


def _check_same_run(run_dir: Path, cfg: TrainConfig) -> bool:
    """A finished run is reused by ``--resume`` (True) only if it was trained with these settings (where it is
    written and its checkpoint cadence aside); False when only ``--epochs`` grew, for :func:`train` to extend it."""
    saved = _read_run_json(run_dir / "config.json").get("config", {})
    diffs = setting_differences(saved, cfg.to_dict(), NOT_COMPARED | {"epochs"})
    if diffs:
        raise ConfigError(f"--resume: {run_dir} is a finished run with other settings: {'; '.join(diffs)}; "
                          "choose another --out, or ask for the same settings")
    if saved.get("epochs") == cfg.epochs:
        return True
    if not (run_dir / "checkpoint.pt").is_file():
        raise ConfigError(f"--resume --epochs {cfg.epochs}: {run_dir} is a finished run of {saved.get('epochs')} "
                          "epochs without its checkpoint.pt, so it cannot be extended; choose another --out")
    return False  # train(resume=True) extends it, or refuses fewer epochs in one line


def subset_accuracies(out: Path, ds: ImageDataset, base: TrainConfig) -> dict[str, Any]:
    """Test accuracy of both trained models on the named test subsets a dataset declares
    (``meta["<name>_test_indices"]``, e.g. the held-out COVID-19 drugs of ``alms-polarity``)."""
    result: dict[str, Any] = {}
    for key, idx in ds.meta.items():
        if not key.endswith("_test_indices") or not idx:
            continue
        name = key[: -len("_test_indices")]
        rows = torch.as_tensor(idx, dtype=torch.long)
        rows = rows[rows < (base.max_test or ds.y_test.numel())]
        x, y = ds.x_test[rows], ds.y_test[rows]
        entry: dict[str, Any] = {"count": int(rows.numel()),
                                 "class_counts": torch.bincount(y, minlength=ds.num_classes).tolist()}
        for label in SOLVERS:
            model, _ = load_trained(out / label)
            entry[label] = evaluate(model, x, y, base.batch_size, torch.device("cpu"))["accuracy"]
        result[name] = entry
    return result

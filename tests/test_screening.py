"""`andersonn screen` for MOF structures with a (tiny) trained pore-size model."""

import os
import re
import subprocess
import sys

import pytest
import torch

from andersonn.data import ImageDataset
from andersonn.materials.cif import read_structure
from andersonn.materials.examples import example_cif_path
from andersonn.materials.image import structure_image
from andersonn.materials.pores import CLASS_NAMES
from andersonn.screening import screen, write_rows
from andersonn.train import TrainConfig, train


@pytest.fixture(scope="module")
def pores_model(tmp_path_factory):
    """A tiny pore classifier trained on images of the shipped example structures."""
    imgs = [torch.from_numpy(structure_image(read_structure(example_cif_path(n)), 8)) for n in ("NaCl", "chain")]
    x = torch.stack(imgs * 4).float()
    y = torch.tensor([0, 3] * 4)
    return _tiny_run(ImageDataset("alms-pores", x, y, x, y, list(CLASS_NAMES)), tmp_path_factory.mktemp("pores"))


def _tiny_run(ds, folder):
    """Train a tiny classifier on ``ds`` (whose name is the ALMS task) and return its run folder."""
    out = folder / "run"
    cfg = TrainConfig(dataset=ds.name, out_dir=str(out), epochs=2, batch_size=ds.y_train.numel(), channels=16,
                      inner_channels=16, max_iter=8, backward_max_iter=8, tol=1e-2, backward_tol=1e-2)
    train(cfg, progress=False, dataset=ds)
    return out


def test_screen_cifs_reports_bad_file_and_carries_on(pores_model, tmp_path):
    rows = screen([example_cif_path("NaCl"), example_cif_path("corrupt"), example_cif_path("chain")], pores_model)
    assert [("error" in r) for r in rows] == [False, True, False]
    assert rows[0]["predicted_class"] in CLASS_NAMES
    assert abs(sum(rows[0]["probabilities"].values()) - 1.0) < 1e-5
    write_rows(rows, tmp_path / "out.csv")
    text = (tmp_path / "out.csv").read_text()
    assert "p_gas" in text.splitlines()[0] and "corrupt" in text


@pytest.mark.slow
def test_screen_cli(pores_model, tmp_path):
    p = subprocess.run([sys.executable, "-m", "andersonn", "screen", str(example_cif_path("NaCl")),
                        str(example_cif_path("disordered")), "--model", str(pores_model), "--out", str(tmp_path / "s.json")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "NaCl.cif:" in p.stdout and "disordered.cif: skipped" in p.stdout
    assert (tmp_path / "s.json").is_file()
    bad = subprocess.run([sys.executable, "-m", "andersonn", "screen", str(example_cif_path("NaCl")),
                          "--model", str(tmp_path / "nope")], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a trained model folder" in bad.stderr


@pytest.fixture(scope="module")
def polarity_model(tmp_path_factory):
    """A tiny polarity classifier trained on images of a few real molecules."""
    from andersonn.chem.image import smiles_to_image

    smiles = ["CCO", "c1ccccc1", "CC(=O)N", "CCCC", "O=C1NC=CC(=O)N1", "CC(C)C"]
    x = torch.stack([torch.from_numpy(smiles_to_image(s, 12)) for s in smiles]).float()
    y = torch.tensor([1, 0, 1, 0, 1, 0])
    ds = ImageDataset("alms-polarity", x, y, x, y, ["weakly polar", "strongly polar"])
    return _tiny_run(ds, tmp_path_factory.mktemp("polarity"))


def test_screen_molecules_file_with_a_bad_line(polarity_model, tmp_path):
    f = tmp_path / "mols.csv"
    f.write_text("name,smiles\nethanol,CCO\nbroken,C1CC(\nfavipiravir,NC(=O)c1nc(F)c[nH]c1=O\n")
    p = subprocess.run([sys.executable, "-m", "andersonn", "screen", str(f), "--model", str(polarity_model),
                        "--out", str(tmp_path / "out.csv")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "ethanol:" in p.stdout and "favipiravir:" in p.stdout
    assert "p=nan" not in p.stdout and re.search(r"ethanol: \S+ polar \(p=[01]\.\d\d", p.stdout), p.stdout
    assert ":3:" in p.stderr and "broken" in p.stderr  # the bad line is reported with its line number
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[0].startswith("") and len(rows) >= 3
    with pytest.raises(ValueError, match="trained for molecules"):
        screen([f], polarity_model, task="pores")


@pytest.mark.slow
def test_screen_refuses_a_model_of_another_dataset_and_bad_model_files(tmp_path):
    digits = tmp_path / "digits"
    cfg = TrainConfig(dataset="digits", dataset_options={"image_size": 8}, out_dir=str(digits), epochs=1, max_train=50,
                      max_test=20, batch_size=50, channels=16, inner_channels=16, max_iter=5, backward_max_iter=5)
    train(cfg, progress=False)
    with pytest.raises(ValueError, match="trained on digits, not on pores"):
        screen([example_cif_path("NaCl")], digits, task="pores")
    (digits / "model.safetensors").write_bytes((digits / "model.safetensors").read_bytes()[:100])  # truncated
    p = subprocess.run([sys.executable, "-m", "andersonn", "screen", str(example_cif_path("NaCl")), "--model", str(digits),
                        "--task", "pores"], capture_output=True, text=True)
    assert p.returncode == 2 and "model.safetensors: cannot load these weights" in p.stderr and "Traceback" not in p.stderr
    for command in (["m-tradeoff", "--ms", "1,2", "--max-test", "10"], ["residuals", "--ms", "1,2"]):
        p = subprocess.run([sys.executable, "-m", "andersonn", *command, "--model", str(digits),
                            "--out", str(tmp_path / command[0])], capture_output=True, text=True)
        assert p.returncode == 2 and "model.safetensors: cannot load these weights" in p.stderr, (command, p.stderr)
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    (digits / "config.json").write_text("{not json")
    p = subprocess.run([sys.executable, "-m", "andersonn", "m-tradeoff", "--model", str(digits), "--ms", "0,abc"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "--ms '0,abc': expected comma-separated positive integers" in p.stderr
    p = subprocess.run([sys.executable, "-m", "andersonn", "m-tradeoff", "--model", str(digits), "--ms", "0"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "must be >= 1" in p.stderr
    p = subprocess.run([sys.executable, "-m", "andersonn", "m-tradeoff", "--model", str(digits)],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "config.json: not a model config" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "andersonn", "residuals", "--batch", "0"], capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_a_molecule_goes_to_the_first_model_whose_image_holds_it():
    from andersonn.chem.screen import heavy_atom_count
    from andersonn.screening import _first_fitting

    specs = [{"image_size": 9}, {"image_size": 32}]
    counts = {s: heavy_atom_count(s) for s in ("O", "CCCCCCCCC", "CCCCCCCCCC", "C" * 40, "C1CC")}
    assert counts == {"O": 1, "CCCCCCCCC": 9, "CCCCCCCCCC": 10, "C" * 40: 40, "C1CC": None}
    assert [_first_fitting(n, specs) for n in counts.values()] == [0, 0, 1, 1, 0]
    assert _first_fitting(40, specs[:1]) == 0


@pytest.mark.slow
def test_screen_with_labels_prints_the_xtb_dipole_beside_the_class(polarity_model, tmp_path):
    f = tmp_path / "mols.csv"
    f.write_text("name,smiles\nethanol,CCO\n")
    p = subprocess.run([sys.executable, "-m", "andersonn", "screen", str(f), "--model", str(polarity_model),
                        "--with-labels"], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr
    dipole = re.search(r"ethanol: .*xTB dipole (\d+\.\d\d) D", p.stdout)
    assert dipole and 1.0 < float(dipole.group(1)) < 2.5, p.stdout  # ethanol: ~1.5-1.7 D

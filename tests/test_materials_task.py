"""alms-pores, issue #14: the 13-channel image and cache, channel selection, the full-set mode
(natural balance, stratified train/val/test) and the baselines on the same split.

Everything runs on hand-made structures and a fake CoRE MOF table (monkeypatched), so no
real CoRE MOF structure is built here.
"""

import shutil

import numpy as np
import pytest

pytest.importorskip("pymatgen")
pytest.importorskip("sklearn")

from pymatgen.core import Lattice, Structure  # noqa: E402

from andersonn.data import DatasetError, load_dataset  # noqa: E402
from andersonn.materials import baseline as bl  # noqa: E402
from andersonn.materials import cache as cache_mod  # noqa: E402
from andersonn.materials import pores as pores_mod  # noqa: E402
from andersonn.materials import porespace  # noqa: E402
from andersonn.materials.cache import IMAGE_VERSION, build_image_cache, cache_key, load_image  # noqa: E402
from andersonn.materials.channels import CHANNELS, GRAPH_CHANNELS, PORE_CHANNELS, PORE_SIZE_CHANNELS, select_channels  # noqa: E402
from andersonn.materials.cif import read_structure  # noqa: E402
from andersonn.materials.examples import example_cif_path  # noqa: E402
from andersonn.materials.graph import structure_to_graph  # noqa: E402
from andersonn.materials.image import graph_to_image, structure_image  # noqa: E402
from andersonn.materials.pores import CLASS_NAMES, load_pores, pore_class, split_indices  # noqa: E402
from andersonn.parallel import ResultCache  # noqa: E402


def _framework(a: float = 9.0) -> Structure:
    """A porous toy framework: Zn nodes at the corners of a cubic cell joined by O-C-O rods."""
    species, coords = ["Zn"], [[0.0, 0.0, 0.0]]
    for axis in range(3):
        for el, x in (("O", 0.22), ("C", 0.5), ("O", 0.78)):
            p = [0.0, 0.0, 0.0]
            p[axis] = x
            species.append(el)
            coords.append(p)
    return Structure(Lattice.cubic(a), species, coords)


def _write_cif(structure: Structure, path) -> str:
    from pymatgen.io.cif import CifWriter

    CifWriter(structure).write_file(str(path))
    return str(path)


# --------------------------------------------------------------------------
# 1. the 16-channel image and the cache


@pytest.mark.parametrize("which", ["chain", "framework"])
def test_task_image_is_graph_then_porespace_then_poresize_channels(which):
    s = read_structure(example_cif_path("chain")) if which == "chain" else _framework()
    img = structure_image(s, 8)
    assert img.shape == (16, 8, 8) and img.dtype == np.float32
    assert CHANNELS == GRAPH_CHANNELS + PORE_CHANNELS + PORE_SIZE_CHANNELS and porespace.CHANNELS == PORE_CHANNELS
    assert np.array_equal(img[:9], graph_to_image(structure_to_graph(s), 8))
    assert np.array_equal(img[9:13], porespace.porespace_channels(s, 8))
    ours = porespace.pore_diameters(s)
    for k, name in enumerate(("pld", "lcd", "lfpd")):   # constant planes of our own estimates / 20 A
        assert np.allclose(img[13 + k], min(ours[name] / 20.0, 1.0))
    assert img[CHANNELS.index("accessible_fraction"), 0, 0] > 0.3  # an open structure
    grid = porespace.distance_grid(s)
    assert np.array_equal(structure_image(s, 8, grid=grid), img)


def test_cache_stores_13_channels_and_our_pore_numbers_and_loads_16(tmp_path):
    s = _framework()
    cifs = {"fw": _write_cif(s, tmp_path / "fw.cif"), "chain": example_cif_path("chain")}
    recs = build_image_cache(cifs, tmp_path / "cache", 8, scheduler="synchronous")
    for ref, path in cifs.items():
        st = read_structure(path)
        img = load_image(tmp_path / "cache", recs[ref])
        assert np.load(tmp_path / "cache" / recs[ref]["npy"]).shape == (13, 8, 8)
        assert img.shape == (len(CHANNELS), 8, 8) == (16, 8, 8)
        assert np.array_equal(img, structure_image(st, 8))
        ours = porespace.pore_diameters(st)
        rec = recs[ref]["porespace"]
        assert rec["pld"] == pytest.approx(ours["pld"]) and rec["lcd"] == pytest.approx(ours["lcd"])
        assert rec["lfpd"] == pytest.approx(ours["lfpd"]) and rec["dimensionality"] == ours["dimensionality"]
    assert recs["fw"]["porespace"]["pld"] > 2.0 and recs["fw"]["porespace"]["dimensionality"] == 3


def test_cache_version_bumped_and_old_records_not_reused(tmp_path, monkeypatch):
    assert IMAGE_VERSION >= 4  # 3 was the 9-channel image
    assert cache_key("X", 32) == f"X@s32@v{IMAGE_VERSION}" != "X@s32@v3"
    root = tmp_path / "cache"
    root.mkdir()
    with ResultCache(root / "records.sqlite") as cache:  # a record of the old, 9-channel image
        cache.put("a@s8@v3", {"npy": "images/s8v3/a.npy", "formula": "old"})
    calls = []
    real = cache_mod.build_image_record
    monkeypatch.setattr(cache_mod, "build_image_record", lambda item: calls.append(item) or real(item))
    recs = build_image_cache({"a": example_cif_path("NaCl")}, root, 8, scheduler="synchronous")
    assert len(calls) == 1 and recs["a"]["formula"] == "NaCl"
    assert recs["a"]["npy"] == f"images/s8v{IMAGE_VERSION}/a.npy"


# --------------------------------------------------------------------------
# 2. the full-set mode on a fake CoRE MOF table


def _fake_table(n_per_class=(20, 10, 6, 4)):
    """A CoRE-MOF-like table: refcode -> row with a Zeo++ PLD in each class."""
    pld = {0: 3.0, 1: 5.0, 2: 7.5, 3: 12.0}
    table = {}
    for c, n in enumerate(n_per_class):
        for i in range(n):
            table[f"M{c}_{i:02d}"] = {"filename": f"M{c}_{i:02d}", "PLD": pld[c] + 0.01 * i, "LCD": pld[c] + 1.0}
    return table


@pytest.fixture()
def fake_coremof(tmp_path, monkeypatch):
    """Fake table of 40 structures; their CIFs are copies of the shipped examples, two of them
    corrupt, one disordered and one missing from the 'archive'."""
    table = _fake_table()
    bad = {"M0_00": "corrupt", "M1_00": "corrupt", "M0_01": "disordered"}
    missing = {"M0_02"}

    def extract(refcodes, dest, dataset=None):
        dest.mkdir(parents=True, exist_ok=True)
        out = {}
        for i, r in enumerate(sorted(refcodes)):
            if r in missing:
                continue
            out[r] = dest / f"{r}.cif"
            if not out[r].is_file():
                shutil.copy(example_cif_path(bad.get(r, "NaCl" if i % 2 else "chain")), out[r])
        return out

    monkeypatch.setattr(pores_mod, "coremof_table", lambda dataset=None: table)
    monkeypatch.setattr(pores_mod, "extract_cifs", extract)
    return table, tmp_path / "cache"


def test_full_mode_natural_balance_stratified_disjoint(fake_coremof):
    table, root = fake_coremof
    d = load_pores(root, image_size=8, mode="full", scheduler="synchronous")
    m = d["meta"]
    assert m["mode"] == "full" and m["n_selected"] == 40 and m["n_used"] == 36
    assert m["skipped_reasons"] == {"unreadable CIF": 2, "disordered: partial or mixed occupancy": 1,
                                    "CIF not found in the core-mof archive": 1}
    parts = {p: m[f"refcodes_{p}"] for p in ("train", "val", "test")}
    assert all(set(parts[a]).isdisjoint(parts[b]) for a, b in (("train", "val"), ("train", "test"), ("val", "test")))
    assert sorted(sum(parts.values(), [])) == sorted(set(table) - set(m["skipped"]))
    for p, refs in parts.items():
        assert d[f"x_{p}"].shape == (len(refs), 16, 8, 8)
        assert d[f"y_{p}"].tolist() == [pore_class(table[r]["PLD"]) for r in refs]  # labels: the table's PLD
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == (28, 4, 4)
    # natural balance: the used structures hold 17 / 9 / 6 / 4; every part keeps the proportions
    all_counts = np.array(list(m["class_balance"]["all"].values()))
    assert all_counts.tolist() == [17, 9, 6, 4]
    for p, frac in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        counts = np.array([m["class_balance"][p][c] for c in CLASS_NAMES])
        assert np.all(np.abs(counts - frac * all_counts) <= 1.0), (p, counts)
    again = load_pores(root, image_size=8, mode="full", scheduler="synchronous")
    assert again["meta"]["refcodes_test"] == parts["test"]
    other = load_pores(root, image_size=8, mode="full", seed=1, scheduler="synchronous")
    assert other["meta"]["refcodes_test"] != parts["test"]


def test_split_indices_stratified_on_the_coremof_balance():
    y = np.repeat(np.arange(4), [570, 376, 206, 50])  # CoRE MOF 2019 ASR / 10
    tr, va, te = split_indices(y, seed=0)
    assert len(np.intersect1d(tr, va)) == len(np.intersect1d(tr, te)) == len(np.intersect1d(va, te)) == 0
    assert len(tr) + len(va) + len(te) == len(y) and abs(len(va) - 120) <= 1 and abs(len(te) - 120) <= 1
    counts = np.bincount(y)
    for part, frac in ((tr, 0.8), (va, 0.1), (te, 0.1)):
        assert np.all(np.abs(np.bincount(y[part], minlength=4) - frac * counts) <= 1.0)
    assert [a.tolist() for a in split_indices(y, seed=0)] == [tr.tolist(), va.tolist(), te.tolist()]


def test_balanced_mode_unchanged_has_no_validation(fake_coremof):
    _, root = fake_coremof
    d = load_pores(root, image_size=8, max_structures=16, scheduler="synchronous")
    assert "x_val" not in d and d["meta"]["mode"] == "balanced"
    assert set(d["meta"]["class_balance"]) == {"all", "train", "test"}


# --------------------------------------------------------------------------
# 3. channel selection


def test_select_channels_names_groups_and_errors():
    assert select_channels("graph") == list(range(9)) and select_channels(None) == list(range(16))
    assert select_channels("poresize") == [13, 14, 15]
    assert select_channels(["void_fraction", "metal"]) == [10, 2]
    with pytest.raises(ValueError, match="unknown channel.*'pld'.*accessible_fraction"):
        select_channels("metal,pld")
    with pytest.raises(ValueError, match="twice"):
        select_channels("graph,metal")


def test_loader_channel_selection(fake_coremof):
    _, root = fake_coremof
    with pytest.raises(DatasetError, match=r"unknown channel\(s\) \['nope'\].*atomic_number"):
        load_dataset("alms-pores", root, channels="nope")
    with pytest.raises(DatasetError, match="modes are balanced, full"):
        load_dataset("alms-pores", root, mode="everything")
    full = load_dataset("alms-pores", root, image_size=8, mode="full", scheduler="synchronous")
    assert full.x_train.shape[1] == 16 and full.x_val is not None and full.meta["channels"] == list(CHANNELS)
    graph = load_dataset("alms-pores", root, image_size=8, mode="full", channels="graph", scheduler="synchronous")
    assert graph.meta["channels"] == list(GRAPH_CHANNELS)
    for split in ("x_train", "x_val", "x_test"):
        assert getattr(graph, split).shape[1] == 9
        assert np.array_equal(getattr(graph, split).numpy(), getattr(full, split).numpy()[:, :9])
    pick = load_dataset("alms-pores", root, image_size=8, mode="full", channels="void_fraction, metal",
                        scheduler="synchronous")
    assert pick.meta["channels"] == ["void_fraction", "metal"]
    assert np.array_equal(pick.x_test.numpy(), full.x_test.numpy()[:, [10, 2]])


def test_screen_cifs_channels():
    import torch

    from andersonn.materials.screen import screen_cifs

    seen = []

    def predict(x):
        seen.append(x.shape[1])
        return torch.full((x.shape[0], 4), 0.25)

    screen_cifs([example_cif_path("NaCl")], predict, image_size=8)
    screen_cifs([example_cif_path("NaCl")], predict, image_size=8, channels="graph")
    assert seen == [16, 9]


# --------------------------------------------------------------------------
# 4. baselines on the same split


def _synthetic(n=120, seed=0):
    """A synthetic split and table: Zeo++-like columns that follow the PLD, and our PLD 0.4 A low."""
    rng = np.random.default_rng(seed)
    pld = rng.uniform(2.0, 14.0, n)
    table, records = {}, {}
    for i, p in enumerate(pld):
        ref = f"S{i:03d}"
        table[ref] = {"PLD": p, "LCD": p + rng.uniform(0, 2), "LFPD": p + rng.uniform(0, 1), "cm3_g": 2.0 - p / 10,
                      "ASA_m2_cm3": 100 * p, "ASA_m2_g": "150", "NASA_m2_cm3": 0, "NASA_m2_g": 0,
                      "AV_VF": p / 20, "AV_cm3_g": p / 30, "NAV_cm3_g": 0, "Has_OMS": "Yes"}
        records[ref] = {"porespace": {"pld": p - 0.4}}
    refs = sorted(table)
    y = np.array([pore_class(table[r]["PLD"]) for r in refs])
    tr, va, te = split_indices(y, seed)
    data = {"class_names": list(CLASS_NAMES), "meta": {}}
    for name, part in (("train", tr), ("val", va), ("test", te)):
        data[f"y_{name}"] = y[part]
        data["meta"][f"refcodes_{name}"] = [refs[i] for i in part]
    return data, table, records


def test_zeo_baseline_excludes_the_pld_column():
    data, table, _ = _synthetic()
    assert "PLD" not in bl.ZEO_FEATURES
    res = bl.zeo_baseline(data, table=table)
    assert res["features"] == list(bl.ZEO_FEATURES) and "PLD" not in res["features"]
    assert res["early_stopping_on"] == "validation split" and res["n_train"] == len(data["y_train"])
    assert res["n_test"] == len(data["y_test"]) and 0.0 <= res["balanced_accuracy"] <= 1.0
    assert set(res["per_class_recall"]) == set(CLASS_NAMES) and len(res["confusion_matrix"]) == 4
    assert {"precision", "recall"} <= set(res["nucleic_acid"])
    # the label column has no way in: scrambling it changes nothing
    scrambled = {r: {**row, "PLD": -1.0 * i} for i, (r, row) in enumerate(table.items())}
    again = bl.zeo_baseline(data, table=scrambled)
    assert again["confusion_matrix"] == res["confusion_matrix"]
    assert np.array_equal(bl.zeo_matrix(list(table.values())), bl.zeo_matrix(list(scrambled.values())))
    with pytest.raises(ValueError, match="label column"):
        bl.zeo_matrix(list(table.values()), ["LCD", "PLD"])


def test_pld_threshold_baselines():
    assert bl.pld_threshold_predict([5.0]).tolist() == [pore_class(5.0)] == [1]  # 4-6 A: small-molecule
    assert bl.pld_threshold_predict([3.99, 4.0, 5.99, 6.0, 9.99, 10.0]).tolist() == [0, 1, 1, 2, 2, 3]
    data, table, records = _synthetic()
    res = bl.pld_threshold_baselines(data, records=records, table=table)
    assert res["raw"]["offset"] == 0.0 and res["shifted"]["offset"] == pytest.approx(0.4)
    assert res["shifted"]["accuracy"] == 1.0 and res["shifted"]["nucleic_acid"]["recall"] == 1.0
    assert res["raw"]["accuracy"] < 1.0  # 0.4 A low: structures just above an edge fall one class down
    # a test structure whose estimate is 5 A (Zeo++: 5.3 A) lands in the 4-6 A class, raw and shifted
    tiny = {"class_names": list(CLASS_NAMES), "y_train": np.array([0, 1]), "y_test": np.array([1]),
            "meta": {"refcodes_train": ["a", "b"], "refcodes_test": ["t"]}}
    recs = {"a": {"porespace": {"pld": 3.0}}, "b": {"porespace": {"pld": 4.5}}, "t": {"porespace": {"pld": 5.0}}}
    rows = {"a": {"PLD": 3.2}, "b": {"PLD": 4.7}, "t": {"PLD": 5.3}}
    res = bl.pld_threshold_baselines(tiny, records=recs, table=rows)
    assert res["shifted"]["offset"] == pytest.approx(0.2)
    for variant in ("raw", "shifted"):
        assert res[variant]["confusion_matrix"][1] == [0, 1, 0, 0]


def test_descriptor_and_all_baselines_on_the_fake_full_split(fake_coremof):
    table, root = fake_coremof
    d = load_pores(root, image_size=8, mode="full", scheduler="synchronous")
    zeo_rows = {r: {**row, **{c: row["PLD"] for c in bl.ZEO_FEATURES}} for r, row in table.items()}
    res = bl.all_baselines(d, table=zeo_rows)
    assert set(res) == {"descriptor", "zeo", "pld_threshold", "pld_threshold_shifted"}
    desc = res["descriptor"]
    assert desc["early_stopping_on"] == "validation split" and desc["n_train"] == len(d["y_train"])
    assert desc["n_early_stopping"] == len(d["y_val"]) and "density_g_cm3" in desc["features"]
    for r in res.values():
        assert r["n_test"] == len(d["y_test"]) and 0.0 <= r["accuracy"] <= 1.0


def test_refcode_lists_are_not_saved_with_a_model(fake_coremof):
    _, root = fake_coremof
    m = load_pores(root, image_size=8, mode="full", scheduler="synchronous")["meta"]
    assert set(m["not_saved"]) == {"refcodes_train", "refcodes_val", "refcodes_test"} <= set(m)


def test_the_size_option_reaches_the_loader_from_the_cli_and_is_checked(monkeypatch):
    from andersonn.data import parse_dataset_options

    # `--dataset-option max_structures=12` -> the loader's keyword, as an int
    assert parse_dataset_options("alms-pores", ["max_structures=12", "mode=full"]) == {"max_structures": 12, "mode": "full"}
    with pytest.raises(DatasetError, match=r"max_structures='abc'"):
        parse_dataset_options("alms-pores", ["max_structures=abc"])

    def no_build(*a, **k):
        raise AssertionError("a bad size reached the image build")

    monkeypatch.setattr(pores_mod, "load_pores", no_build)
    for mode in ("balanced", "full"):  # -3 drew every structure (balanced) or a broken draw (full)
        with pytest.raises(DatasetError, match=r"alms-pores: max_structures must be >= 0 \(0: every structure\), got -3"):
            load_dataset("alms-pores", max_structures=-3, mode=mode)


def test_train_and_compare_take_the_pores_size_from_the_command_line(fake_coremof, tmp_path):
    """`--dataset-option max_structures=N` sets alms-pores' size in `train` and in `compare`, and the runs
    really use N structures (the fake table has 40; a corrupt, a disordered and a missing one fail)."""
    import json

    from typer.testing import CliRunner

    from andersonn.cli import app

    _, root = fake_coremof
    root.mkdir(parents=True, exist_ok=True)
    small = ["--dataset", "alms-pores", "--data-dir", str(root), "--image-size", "8",
             "--dataset-option", "max_structures=12", "--dataset-option", "scheduler=synchronous",
             "--epochs", "1", "--batch-size", "4", "--max-iter", "3", "--backward-max-iter", "3", "--device", "cpu"]
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--out", str(run), "--channels", "8", "--inner-channels", "8", *small])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "config.json").read_text())["config"]["dataset_options"]
    assert saved["max_structures"] == 12 and saved["image_size"] == 8
    summary = json.loads((run / "summary.json").read_text())
    assert summary["train_size"] + summary["test_size"] <= 12
    study = tmp_path / "study"
    result = runner.invoke(app, ["compare", "--out", str(study), *small])
    assert result.exit_code == 0, result.output
    used = json.loads((study / "results.json").read_text())
    assert used["config"]["dataset_options"]["max_structures"] == 12
    assert used["dataset_summary"]["train"] + used["dataset_summary"]["test"] <= 12
    bad = runner.invoke(app, ["compare", "--out", str(tmp_path / "bad"), *small[:6], "--dataset-option",
                              "max_structures=-3"])
    err = bad.stderr if bad.stderr_bytes else bad.output
    assert bad.exit_code == 2 and "Traceback" not in err and "max_structures must be >= 0" in err, err

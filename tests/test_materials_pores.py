"""alms-pores: class bins, seeded balanced selection, load_pores and the descriptor baseline
on a handful of real CoRE MOF structures."""

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # subprocesses, clusters or large fixtures: `make test` runs it, `make test-fast` does not

pytest.importorskip("pymatgen")
pytest.importorskip("CoRE_MOF")

from andersonn.materials import cache as cache_mod  # noqa: E402
from andersonn.materials.baseline import descriptor_baseline  # noqa: E402
from andersonn.materials.coremof import coremof_table  # noqa: E402
from andersonn.materials.image import CHANNELS  # noqa: E402
from andersonn.materials.pores import (  # noqa: E402
    CLASS_NAMES, load_pores, pore_class, select_structures)


def test_bins():
    assert [pore_class(v) for v in (2.4, 3.99, 4.0, 5.99, 6.0, 9.99, 10.0, 70.0)] == \
        [0, 0, 1, 1, 2, 2, 3, 3]
    assert len(CLASS_NAMES) == 4


def test_selection_balanced_seeded_and_labels_match_table():
    table = coremof_table()
    assert len(table) == 12020
    a = select_structures(40, seed=0)
    assert a == select_structures(40, seed=0) and a != select_structures(40, seed=1)
    assert np.bincount(list(a.values()), minlength=4).tolist() == [10, 10, 10, 10]
    assert all(pore_class(table[r]["PLD"]) == y for r, y in a.items())
    assert select_structures(None) == select_structures(2000)
    full = select_structures(0)
    assert len(full) == 12020 and np.bincount(list(full.values())).tolist() == [5699, 3760, 2060, 501]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("pores")
    return root, load_pores(cache_dir=root, image_size=8, max_structures=24, scheduler="synchronous")


def test_load_pores_shapes_split_and_meta(small):
    root, d = small
    m = d["meta"]
    n_tr, n_te = len(d["y_train"]), len(d["y_test"])
    assert d["x_train"].dtype == np.float32 and d["y_train"].dtype == np.int64
    assert d["x_train"].shape == (n_tr, len(CHANNELS), 8, 8) and d["x_test"].shape[0] == n_te
    assert n_tr + n_te == m["n_used"] == 24 - m["n_skipped"]
    assert d["class_names"] == CLASS_NAMES
    assert set(m["refcodes_train"]).isdisjoint(m["refcodes_test"])
    table = coremof_table()
    assert [pore_class(table[r]["PLD"]) for r in m["refcodes_test"]] == d["y_test"].tolist()
    assert sum(m["class_balance"]["all"].values()) == m["n_used"]
    for reason in m["skipped"].values():
        assert reason.startswith("CifError")
    assert 0 < m["build_seconds_per_structure"] < 30


def test_load_pores_second_call_reads_cache(small, monkeypatch):
    root, d = small

    def boom(item):
        raise AssertionError("rebuilt a cached structure")

    monkeypatch.setattr(cache_mod, "build_image_record", boom)
    again = load_pores(cache_dir=root, image_size=8, max_structures=24, scheduler="synchronous")
    assert np.array_equal(again["x_train"], d["x_train"]) and np.array_equal(again["y_test"], d["y_test"])


def test_descriptor_baseline_runs_on_the_same_split(small):
    _, d = small
    res = descriptor_baseline(d)
    assert res["n_train"] == len(d["y_train"]) and res["n_test"] == len(d["y_test"])
    assert 0.0 <= res["accuracy"] <= 1.0
    assert "density_g_cm3" in res["features"]


def test_real_mof_image_independent_of_atom_order(small):
    from pymatgen.core import Structure

    from andersonn.materials.cif import read_structure
    from andersonn.materials.graph import structure_to_graph
    from andersonn.materials.image import graph_to_image

    root, d = small
    ref = d["meta"]["refcodes_train"][0]
    s = read_structure(root / "cifs" / f"{ref}.cif")
    perm = np.random.default_rng(1).permutation(len(s))
    shuffled = Structure(s.lattice, [s[i].specie for i in perm], [s[i].frac_coords for i in perm])
    a = graph_to_image(structure_to_graph(s), 16)
    assert np.array_equal(a, graph_to_image(structure_to_graph(shuffled), 16))
    assert (a[0] > 0).all()  # a MOF cell fills the whole 16-atom crop

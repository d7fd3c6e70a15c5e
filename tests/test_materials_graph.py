"""CIF -> periodic atom-bond graph on hand-made structures whose bonds are known."""

import numpy as np
import pytest

pytest.importorskip("pymatgen")

from pymatgen.core import Lattice, Structure  # noqa: E402

from andersonn.materials.cif import read_structure  # noqa: E402
from andersonn.materials.examples import example_cif_path  # noqa: E402
from andersonn.materials.graph import structure_to_graph  # noqa: E402


def test_chain_bond_inside_and_across_the_cell():
    g = structure_to_graph(read_structure(example_cif_path("chain")))
    assert g.symbols == ("C", "O")
    assert g.n_atoms == 2 and g.n_bonds == 2
    assert g.coordination.tolist() == [2, 2]
    c_nbrs = g.neighbors(0)
    assert sorted((j, img) for j, img, _ in c_nbrs) == [(1, (-1, 0, 0)), (1, (0, 0, 0))]
    assert np.allclose([d for *_, d in c_nbrs], 1.4, atol=1e-6)
    o_nbrs = g.neighbors(1)
    assert sorted((j, img) for j, img, _ in o_nbrs) == [(0, (0, 0, 0)), (0, (1, 0, 0))]
    # the across-the-cell bond really joins O to the C of the next cell
    assert np.isclose(np.linalg.norm(g.cart(0, (1, 0, 0)) - g.cart(1)), 1.4)


def test_rocksalt_every_ion_six_bonds_all_na_cl():
    g = structure_to_graph(read_structure(example_cif_path("NaCl")))
    assert g.n_atoms == 8 and g.n_bonds == 24
    assert (g.coordination == 6).all()
    pairs = {frozenset((g.symbols[i], g.symbols[j])) for i, j in zip(g.src, g.dst)}
    assert pairs == {frozenset(("Na", "Cl"))}
    assert np.allclose(g.length, 2.82)
    assert (np.abs(g.image).sum(axis=1) > 0).sum() > 0  # some bonds cross the cell
    # directed bonds come in pairs (i->j at image t, j->i at -t)
    fwd = {(int(i), int(j), tuple(t)) for i, j, t in zip(g.src, g.dst, g.image)}
    assert all((j, i, tuple(-np.array(t))) in fwd for i, j, t in fwd)


def test_tolerance_decides_bond():
    s = Structure(Lattice.cubic(2.0), ["C"], [[0, 0, 0]])  # C-C 2.0 A; 2*0.73+0.4 = 1.86
    assert structure_to_graph(s).n_bonds == 0
    g = structure_to_graph(s, tolerance=0.6)
    assert g.n_bonds == 3 and g.coordination.tolist() == [6]  # bonds only to own images

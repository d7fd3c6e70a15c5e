"""Geometry-aware molecule images: hand-computed channels, invariances, QM9 structures, the cache."""

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("rdkit")
pytest.importorskip("tblite")

from rdkit import Chem  # noqa: E402

from andersonn.chem.errors import MoleculeError  # noqa: E402
from andersonn.chem.geometry import (  # noqa: E402
    DEBYE_PER_E_ANGSTROM, atomic_charges, structure_from_smiles, structure_from_xyz, xtb_charges_and_dipole,
)
from andersonn.chem.image import GEOMETRY_CHANNELS, structure_to_image  # noqa: E402

CH = {name: k for k, name in enumerate(GEOMETRY_CHANNELS)}
WATER = (np.array([8, 1, 1]), np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]]))
FORMALDEHYDE = (np.array([6, 8, 1, 1]), np.array([[0.0, 0.0, -0.5296], [0.0, 0.0, 0.6750],
                                                  [0.0, 0.9376, -1.1169], [0.0, -0.9376, -1.1169]]))


def _random_rotation(seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _moved(molh, rotation, shift):
    m = Chem.Mol(molh)
    conf = m.GetConformer()
    pos = conf.GetPositions() @ rotation.T + shift
    for i, p in enumerate(pos):
        conf.SetAtomPosition(i, p.tolist())
    return m


def test_water_channels_by_hand():
    molh = structure_from_xyz(*WATER, smiles="O")
    q = np.array([-0.86, 0.43, 0.43])  # MMFF94 charges of water (O type 70, H type 31)
    assert np.allclose(atomic_charges(molh, "mmff"), q, atol=1e-6)
    img = structure_to_image(molh, size=3)
    r = WATER[1] - WATER[1].mean(axis=0)
    mu = (q[:, None] * r).sum(axis=0) * DEBYE_PER_E_ANGSTROM  # one row: O with both H folded in
    assert img[CH["dipole_dot_mmff"], 0, 0] == pytest.approx(mu @ mu, rel=1e-5)
    assert img[CH["charge_product_mmff"], 0, 0] == pytest.approx(0.0, abs=1e-6)  # neutral group
    assert img[CH["distance"], 0, 0] == 0.0 and img[CH["inverse_distance"], 0, 0] == 0.0
    assert img[CH["num_h_over_4"], 0, 0] == pytest.approx(0.5)
    q_x, mu_x = xtb_charges_and_dipole(molh)
    assert img[CH["dipole_dot_gfn2"], 0, 0] == pytest.approx(mu_x @ mu_x, rel=1e-5)
    assert 1.5 < np.linalg.norm(mu_x) < 2.6  # GFN2-xTB water, experiment 1.85 D
    assert np.abs(img[:, 1:, :]).sum() == 0 and np.abs(img[:, :, 1:]).sum() == 0  # padding stays empty


def test_formaldehyde_channels_by_hand():
    molh = structure_from_xyz(*FORMALDEHYDE, smiles="C=O")
    img = structure_to_image(molh, size=4)
    q = atomic_charges(molh, "mmff")
    numbers = [a.GetAtomicNum() for a in molh.GetAtoms()]
    pos = molh.GetConformer().GetPositions()
    c, o = numbers.index(6), numbers.index(8)
    hs = [i for i, z in enumerate(numbers) if z == 1]
    centred = pos - pos.mean(axis=0)
    group_c = [c] + hs
    p_c = (q[group_c, None] * centred[group_c]).sum(axis=0) * DEBYE_PER_E_ANGSTROM
    p_o = q[o] * centred[o] * DEBYE_PER_E_ANGSTROM
    q_c, q_o = q[group_c].sum(), q[o]
    # rows in canonical order: find which row is oxygen from the element channel
    row_o = int(np.argmax(img[CH["element_O"]].diagonal()[:2]))
    row_c = 1 - row_o
    d = np.linalg.norm(pos[c] - pos[o])
    assert d == pytest.approx(1.2046, abs=1e-4)
    assert img[CH["bond_order"], row_c, row_o] == 2.0
    assert img[CH["distance"], row_c, row_o] == pytest.approx(d, rel=1e-6)
    assert img[CH["inverse_distance"], row_c, row_o] == pytest.approx(1 / d, rel=1e-6)
    assert img[CH["charge_product_mmff"], row_c, row_o] == pytest.approx(q_c * q_o, rel=1e-5)
    assert img[CH["dipole_dot_mmff"], row_c, row_o] == pytest.approx(p_c @ p_o, rel=1e-5)
    assert img[CH["dipole_dot_mmff"], row_o, row_o] == pytest.approx(p_o @ p_o, rel=1e-5)
    mu = p_c + p_o
    assert img[CH["dipole_dot_mmff"]].sum() == pytest.approx(mu @ mu, rel=1e-5)
    # |mu|^2 = -1/2 sum_ab q_a q_b d_ab^2 for a neutral molecule (the identity the channel rests on)
    d2 = ((pos[:, None] - pos[None]) ** 2).sum(-1)
    assert -0.5 * (q[:, None] * q[None] * d2).sum() * DEBYE_PER_E_ANGSTROM**2 == pytest.approx(mu @ mu, rel=1e-6)
    _, mu_x = xtb_charges_and_dipole(molh)
    assert img[CH["dipole_dot_gfn2"]].sum() == pytest.approx(mu_x @ mu_x, rel=1e-4)


@pytest.mark.parametrize("smiles", ["CC(=O)Nc1ccc(O)cc1", "OC(CF)C#N", "CC(C)(C)O"])
@pytest.mark.parametrize("hydrogens", ["folded", "explicit"])
def test_invariant_to_rotation_translation_and_atom_order(smiles, hydrogens):
    molh = structure_from_smiles(smiles, n_conformers=3)
    ref = structure_to_image(molh, 32, hydrogens=hydrogens)
    rng = np.random.default_rng(7)
    for seed in range(3):
        moved = _moved(molh, _random_rotation(seed), rng.normal(scale=5.0, size=3))
        perm = rng.permutation(molh.GetNumAtoms()).tolist()
        shuffled = Chem.RenumberAtoms(moved, perm)
        img = structure_to_image(shuffled, 32, hydrogens=hydrogens)
        # float32 rounding of rotated coordinates only
        assert np.allclose(img, ref, atol=2e-4, rtol=1e-4), (smiles, hydrogens, seed)


def test_geometry_ties_do_not_follow_input_order():
    """Two graph-equivalent atoms that differ in 3-D keep their rows whatever the input order says."""
    molh = structure_from_smiles("CC(O)C", n_conformers=1)  # the two methyls are graph-equivalent
    ref = structure_to_image(molh, 8)
    heavy = [a.GetIdx() for a in molh.GetAtoms() if a.GetAtomicNum() > 1]
    a, b = [i for i in heavy if molh.GetAtomWithIdx(i).GetDegree() == 4 and molh.GetAtomWithIdx(i).GetTotalNumHs(includeNeighbors=True) == 3]
    perm = list(range(molh.GetNumAtoms()))
    perm[a], perm[b] = perm[b], perm[a]
    assert np.allclose(structure_to_image(Chem.RenumberAtoms(molh, perm), 8), ref, atol=1e-5)


def test_explicit_hydrogens_rows_and_too_large():
    molh = structure_from_smiles("CO", n_conformers=1)
    img = structure_to_image(molh, 8, hydrogens="explicit")
    assert img[CH["element_H"]].diagonal().sum() == 4
    assert structure_to_image(molh, 8)[CH["element_H"]].sum() == 0
    with pytest.raises(MoleculeError, match="exceed the image size"):
        structure_to_image(molh, 4, hydrogens="explicit")


def test_qm9_geometry_keeps_the_smiles_graph_in_strained_cages():
    """A cage whose ring atoms sit 1.5-1.8 A apart: the SMILES's bonds are found, the close contact ignored."""
    from andersonn.chem.sources import load_qm9

    mols = {m["smiles"]: m for m in load_qm9(400, seed=0, with_geometry=True)}
    cage = mols["CCC1C2CC1O2"]
    molh = structure_from_xyz(cage["numbers"], cage["positions"], cage["smiles"])
    assert Chem.MolToSmiles(Chem.RemoveHs(molh)) == Chem.MolToSmiles(Chem.MolFromSmiles("CCC1C2CC1O2"))
    assert np.allclose(sorted(molh.GetConformer().GetPositions()[:, 0]), sorted(cage["positions"][:, 0]))


def test_charged_molecule_has_no_gfn2_dipole():
    molh = structure_from_smiles("C[N+](C)(C)C", n_conformers=1)
    with pytest.raises(MoleculeError, match="net charge"):
        xtb_charges_and_dipole(molh)


@pytest.mark.slow
def test_qm9_cache_resumes_after_kill(tmp_path):
    """Kill the build after its first chunk: the rerun builds only the chunks that are missing."""
    from andersonn.chem import qm9

    script = textwrap.dedent(f"""
        from andersonn.chem import qm9
        qm9.CHUNK = 10
        real = qm9._build_chunk
        def slow(item):
            import time; time.sleep(1.0)
            return real(item)
        qm9._build_chunk = slow
        qm9.build_qm9_cache({str(tmp_path)!r}, max_molecules=40, scheduler="synchronous", progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    folder = None
    while time.time() < deadline and proc.poll() is None:
        found = list(tmp_path.glob("qm9_*/chunk*.npz"))
        if found:
            folder = found[0].parent
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert folder is not None, "the build wrote no chunk before the deadline"
    done = {p.name: p.stat().st_mtime_ns for p in folder.glob("chunk*.npz")}
    assert 1 <= len(done) < 4
    assert not list(folder.glob("*.tmp.npz")) or True  # a temporary file may be left; it is never read
    old_chunk = qm9.CHUNK
    qm9.CHUNK = 10
    try:
        folder2, records = qm9.build_qm9_cache(tmp_path, max_molecules=40, scheduler="synchronous", progress=False)
    finally:
        qm9.CHUNK = old_chunk
    assert folder2 == folder and len(records) == 4 and sum(r["n"] for r in records) == 40
    for name, mtime in done.items():
        assert (folder / name).stat().st_mtime_ns == mtime, f"{name} was rebuilt"


def _first_typing_charges(smiles):
    """MMFF94 charges of a molecule RDKit has never typed (what a first typing gives), by atom index."""
    from rdkit.Chem import AllChem

    molh = Chem.AddHs(Chem.MolFromSmiles(smiles))
    props = AllChem.MMFFGetMoleculeProperties(molh)
    return molh, np.array([props.GetMMFFPartialCharge(i) for i in range(molh.GetNumAtoms())])


def test_mmff_charges_of_a_relaxed_structure_are_those_of_a_first_typing():
    # WEHI-0097285: once MMFF has relaxed its conformers (typing it once), typing it again assigned charges
    # that summed to -2 e on this neutral molecule; they must match a first typing, atom by atom.
    smiles = "Fc1cc2c(cc1)N=C(NN=C2c3ccc(cc3)OCCCC)c4sccc4"
    molh = structure_from_smiles(smiles)
    q = atomic_charges(molh, "mmff")
    assert abs(q.sum()) < 1e-6
    fresh, q_fresh = _first_typing_charges(smiles)
    match = molh.GetSubstructMatch(fresh)  # fresh atom i is molh atom match[i]
    assert len(match) == molh.GetNumAtoms()
    assert np.allclose(q[list(match)], q_fresh, atol=1e-9)
    assert np.array_equal(atomic_charges(molh, "mmff"), q)  # a second call: the same charges
    molh_image = structure_to_image(molh, 32)
    dipole_sum = molh_image[GEOMETRY_CHANNELS.index("charge_product_mmff")].sum()
    assert abs(dipole_sum) < 1e-4  # the pixels sum to (sum of charges)^2


def test_mmff_charges_that_do_not_sum_to_the_net_charge_are_refused():
    # WEHI-0052068 (a sulfonyl bis-amidine): MMFF94 types it as carrying -2 e even on a first typing.
    with pytest.raises(MoleculeError, match=r"MMFF94 charges sum to -2\.00 e on a molecule of net charge \+0 e"):
        atomic_charges(structure_from_smiles("S(=O)(=O)(N=C1N(C(=O)N(C1)C)C)N=C2N(C(=O)N(C2)C)C"), "mmff")
    # an ion's charges sum to its net charge and pass
    assert atomic_charges(structure_from_smiles("C[N+](C)(C)C"), "mmff").sum() == pytest.approx(1.0)


def test_qm9_split_keeps_each_molecule_in_its_split_when_others_fail():
    from andersonn.chem.qm9 import _split

    rng = np.random.default_rng(0)
    index = np.arange(1, 2001)
    dipoles = rng.gamma(2.0, 1.5, size=index.size)
    y = (dipoles >= 3.0).astype(np.int64)
    full = _split(index, y, [], 3.0, 0)
    drop = np.array([4, 500, 1999])
    keep = np.setdiff1d(np.arange(index.size), drop)
    failed = [{"name": f"gdb_{index[i]}", "dipole_dft": dipoles[i]} for i in drop]
    part = _split(index[keep], y[keep], failed, 3.0, 0)
    for whole, reduced in zip(full, part):
        assert np.array_equal(index[keep][reduced], np.setdiff1d(index[whole], index[drop]))
    assert sum(len(p) for p in part) == keep.size


def test_deuterium_is_folded_like_hydrogen():
    """A deuterated drug (dutetrabenazine is one) has its parent's electronic structure: its [2H] fold into
    their heavy atoms, and the image is the one of the same geometry with plain hydrogens (RDKit's RemoveHs
    keeps isotopes, which once made the graph larger than the image's rows: an IndexError in a screen)."""
    deuterated = structure_from_smiles("[2H]C([2H])([2H])Oc1ccccc1")
    plain = Chem.Mol(deuterated)
    for atom in plain.GetAtoms():
        atom.SetIsotope(0)
    img = structure_to_image(deuterated, 8)
    assert img.shape == (len(GEOMETRY_CHANNELS), 8, 8)
    assert img[GEOMETRY_CHANNELS.index("bond_order")].any(axis=1).sum() == 8  # O, the methyl C, six ring atoms
    np.testing.assert_array_equal(img, structure_to_image(plain, 8))

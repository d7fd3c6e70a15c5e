"""Molecule -> image: determinism under atom reordering, layout, clear errors, PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem

from andersonn.chem.errors import MoleculeError, MoleculeTooLargeError
from andersonn.chem.image import CHANNELS, N_CHANNELS, mol_to_image, render_png, smiles_to_image
from andersonn.chem.mol import parse_smiles

DRUGS = {
    "favipiravir": "NC(=O)c1nc(F)cnc1O",
    "hydroxychloroquine": "CCN(CCO)CCCC(C)Nc1ccnc2cc(Cl)ccc12",
    "dexamethasone": "C[C@@H]1C[C@H]2[C@@H]3CCC4=CC(=O)C=C[C@]4(C)[C@@]3(F)[C@@H](O)C[C@]2(C)[C@@]1(O)C(=O)CO",
}


@pytest.mark.parametrize("name", sorted(DRUGS))
def test_same_molecule_different_atom_order_gives_same_image(name: str) -> None:
    smiles = DRUGS[name]
    ref = smiles_to_image(smiles)
    mol = Chem.MolFromSmiles(smiles)
    for seed in range(5):
        shuffled = Chem.MolToSmiles(mol, doRandom=True, canonical=False)  # RDKit random atom order
        Chem.rdBase.SeedRandomNumberGenerator(seed)
        perm = list(np.random.default_rng(seed).permutation(mol.GetNumAtoms()))
        renumbered = Chem.MolToSmiles(Chem.RenumberAtoms(mol, [int(i) for i in perm]), canonical=False)
        assert np.array_equal(smiles_to_image(shuffled), ref), shuffled
        assert np.array_equal(smiles_to_image(renumbered), ref), renumbered


def test_hand_written_reorderings() -> None:
    assert np.array_equal(smiles_to_image("OCC"), smiles_to_image("C(O)C"))
    assert np.array_equal(smiles_to_image("c1ccccc1C(=O)O"), smiles_to_image("OC(=O)c1ccccc1"))
    assert not np.array_equal(smiles_to_image("CCO"), smiles_to_image("COC"))


def test_layout_shape_bond_orders_and_padding() -> None:
    img = smiles_to_image("C#CC(=O)c1ccccc1", size=16)
    assert img.shape == (N_CHANNELS, 16, 16) and img.dtype == np.float32
    assert len(CHANNELS) == N_CHANNELS
    adj = img[0]
    assert np.array_equal(adj, adj.T)
    assert sorted(set(np.round(adj[adj > 0], 2).tolist())) == [1.0, 1.5, 2.0, 3.0]
    n = 10  # heavy atoms
    assert not img[:, n:, :].any() and not img[:, :, n:].any()
    carbon = img[CHANNELS.index("element_C")]
    oxygen = img[CHANNELS.index("element_O")]
    assert np.diag(carbon)[:n].sum() == 9 and np.diag(oxygen)[:n].sum() == 1


def test_salt_is_stripped() -> None:
    assert np.array_equal(smiles_to_image("CCN(CC)CC.Cl"), smiles_to_image("CCN(CC)CC"))


@pytest.mark.parametrize("bad", ["C1CC", "C(C", "Xx", "c1cccc1", ""])
def test_bad_smiles_raise_clear_error(bad: str) -> None:
    with pytest.raises(MoleculeError) as err:
        smiles_to_image(bad, name="badmol")
    assert err.value.smiles == bad and err.value.reason
    if bad:
        assert bad in str(err.value)


def test_oversize_molecule_raises_with_name_and_size() -> None:
    smiles = "C" * 30
    with pytest.raises(MoleculeTooLargeError) as err:
        smiles_to_image(smiles, size=20, name="triacontane")
    msg = str(err.value)
    assert "triacontane" in msg and "30 heavy atoms" in msg and "20" in msg
    assert err.value.n_atoms == 30 and err.value.size == 20
    assert smiles_to_image(smiles, size=30).shape == (N_CHANNELS, 30, 30)  # fits exactly


def test_render_png(tmp_path: Path) -> None:
    p = render_png(DRUGS["favipiravir"], tmp_path / "fav.png", name="favipiravir")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_image_independent_of_explicit_hydrogens() -> None:
    mol = Chem.AddHs(Chem.MolFromSmiles("CC(=O)N"))
    assert np.array_equal(mol_to_image(parse_smiles(Chem.MolToSmiles(mol))), smiles_to_image("NC(C)=O"))

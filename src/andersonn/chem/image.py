"""Molecule -> fixed-size node-neighbour image, and a PNG renderer for people.

Image layout: ``float32`` array of shape ``(C, N, N)`` with ``C = 15`` channels
and ``N = DEFAULT_IMAGE_SIZE = 48`` rows by default.  Row/column ``i`` is the
``i``-th heavy atom in :func:`~andersonn.chem.mol.canonical_order`; rows past
the last atom are zero padding.

Channel 0 is the adjacency with bond order (1, 1.5 aromatic, 2, 3).  Every
other channel ``k`` holds an atom feature ``f_k`` in node-neighbour form:
pixel ``(i, j) = f_k(atom j)`` when ``j == i`` or ``j`` is bonded to ``i``, else
0 -- row ``i`` shows atom ``i`` and its neighbours.  The features are listed in
:data:`CHANNELS`: an element one-hot (C, N, O, F, S, Cl, Br, P, other),
formal charge, aromaticity, number of attached hydrogens / 4, ring membership
and the Gasteiger partial charge (a graph-only electronegativity equalization;
no 3-D or quantum information enters the image).

A molecule with more heavy atoms than ``N`` raises
:class:`~andersonn.chem.errors.MoleculeTooLargeError`; it is never truncated.
48 rows hold all of QM9 (<= 9 heavy atoms), ~99% of RDKit's NCI/WEHI sets and
33 of the 39 shipped COVID-19 drugs (ritonavir, atazanavir, itraconazole,
azithromycin, daclatasvir, ivermectin need ``image_size=64``).

>>> from andersonn.chem.image import smiles_to_image
>>> img = smiles_to_image("CC(=O)O")
>>> img.shape, img.dtype, float(img[0, 0, 1])
((15, 48, 48), dtype('float32'), 1.0)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem

from andersonn.chem.errors import MoleculeTooLargeError
from andersonn.chem.mol import canonical_order, parse_smiles

__all__ = ["CHANNELS", "DEFAULT_IMAGE_SIZE", "N_CHANNELS", "mol_to_image", "smiles_to_image", "render_png"]

DEFAULT_IMAGE_SIZE = 48
_ELEMENTS = ("C", "N", "O", "F", "S", "Cl", "Br", "P")
CHANNELS: tuple[str, ...] = (
    ("bond_order",)
    + tuple(f"element_{e}" for e in _ELEMENTS)
    + ("element_other", "formal_charge", "aromatic", "num_h_over_4", "in_ring", "gasteiger_charge")
)
N_CHANNELS = len(CHANNELS)


def _atom_features(mol: Chem.Mol) -> np.ndarray:
    """(n_atoms, C-1) float features in the order of CHANNELS[1:]."""
    mol = Chem.Mol(mol)
    AllChem.ComputeGasteigerCharges(mol)
    feats = np.zeros((mol.GetNumAtoms(), N_CHANNELS - 1), dtype=np.float32)
    for a in mol.GetAtoms():
        i = a.GetIdx()
        sym = a.GetSymbol()
        col = _ELEMENTS.index(sym) if sym in _ELEMENTS else len(_ELEMENTS)
        feats[i, col] = 1.0
        base = len(_ELEMENTS) + 1
        feats[i, base + 0] = a.GetFormalCharge()
        feats[i, base + 1] = float(a.GetIsAromatic())
        feats[i, base + 2] = a.GetTotalNumHs() / 4.0
        feats[i, base + 3] = float(a.IsInRing())
        q = a.GetDoubleProp("_GasteigerCharge") if a.HasProp("_GasteigerCharge") else 0.0
        feats[i, base + 4] = q if np.isfinite(q) else 0.0
    return feats


def mol_to_image(mol: Chem.Mol, size: int = DEFAULT_IMAGE_SIZE, name: str | None = None) -> np.ndarray:
    """Node-neighbour image ``(C, size, size)`` of a standardized molecule.

    >>> from andersonn.chem.mol import parse_smiles
    >>> mol_to_image(parse_smiles("C#N"), size=4)[0].tolist()[0]
    [0.0, 3.0, 0.0, 0.0]
    """
    n = mol.GetNumAtoms()
    if n > size:
        raise MoleculeTooLargeError(Chem.MolToSmiles(mol), n, size, name)
    order = canonical_order(mol)
    pos = {atom: k for k, atom in enumerate(order)}
    adj = np.zeros((n, n), dtype=np.float32)
    for b in mol.GetBonds():
        i, j = pos[b.GetBeginAtomIdx()], pos[b.GetEndAtomIdx()]
        adj[i, j] = adj[j, i] = b.GetBondTypeAsDouble()
    feats = _atom_features(mol)[order]  # rows in canonical order
    mask = (adj > 0).astype(np.float32) + np.eye(n, dtype=np.float32)
    img = np.zeros((N_CHANNELS, size, size), dtype=np.float32)
    img[0, :n, :n] = adj
    # channel k: (i, j) = f_k(j) for j == i or j bonded to i
    img[1:, :n, :n] = mask[None, :, :] * feats.T[:, None, :]
    return img


def smiles_to_image(smiles: str, size: int = DEFAULT_IMAGE_SIZE, name: str | None = None) -> np.ndarray:
    """Parse, standardize and image a SMILES (see :func:`mol_to_image`).

    >>> import numpy as np
    >>> bool(np.array_equal(smiles_to_image("OCC"), smiles_to_image("CCO")))
    True
    """
    return mol_to_image(parse_smiles(smiles, name), size, name)


def render_png(smiles: str, path: str | Path, size: int = DEFAULT_IMAGE_SIZE, name: str | None = None) -> Path:
    """Write a PNG: the 2-D structure next to the bond-order, element and charge channels.

    >>> import tempfile, os
    >>> p = render_png("CC(=O)O", os.path.join(tempfile.mkdtemp(), "acetic.png"))
    >>> p.exists()
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rdkit.Chem import Draw

    mol = parse_smiles(smiles, name)
    img = mol_to_image(mol, size, name)
    n = mol.GetNumAtoms()
    element_map = np.zeros((size, size), dtype=np.float32)
    for k in range(len(_ELEMENTS) + 1):
        element_map += (k + 1) * img[1 + k]
    panels = [
        ("bond order", img[0], "viridis"),
        ("element (row: atom, cols: neighbours)", element_map, "tab10"),
        ("Gasteiger charge", img[CHANNELS.index("gasteiger_charge")], "coolwarm"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    axes[0].imshow(Draw.MolToImage(mol, size=(300, 300)))
    axes[0].set_title(name or Chem.MolToSmiles(mol), fontsize=8)
    axes[0].axis("off")
    for ax, (title, data, cmap) in zip(axes[1:], panels):
        lim = max(n, 1)
        if cmap == "coolwarm":
            v = float(np.abs(data).max()) or 1.0
            im = ax.imshow(data[:lim, :lim], cmap=cmap, vmin=-v, vmax=v)
        else:
            im = ax.imshow(data[:lim, :lim], cmap=cmap)
        ax.set_title(f"{title} [{n}x{n} of {size}x{size}]", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

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

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem

from andersonn.chem.errors import MoleculeTooLargeError
from andersonn.chem.mol import canonical_order, parse_smiles

__all__ = [
    "CHANNELS", "DEFAULT_IMAGE_SIZE", "N_CHANNELS", "mol_to_image", "smiles_to_image", "render_png",
    "GEOMETRY_CHANNELS", "GEOMETRY_CHARGE_MODELS", "GEOMETRY_IMAGE_VERSION", "HYDROGEN_MODES", "structure_to_image",
    "charge_models_of", "pack_crops", "unpack_crops",
]

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


# --------------------------------------------------------------------------------------------------
# Geometry-aware images: the node-neighbour layout above plus pairwise channels from a 3-D structure.
# --------------------------------------------------------------------------------------------------

#: Version of the geometry-aware image definition (part of every cache key built on it).
GEOMETRY_IMAGE_VERSION = 2  # 2: MMFF94 charges typed on a clean copy, and refused when they do not sum to the net charge
GEOMETRY_CHARGE_MODELS: tuple[str, ...] = ("mmff", "gfn2")
GEOMETRY_CHANNELS: tuple[str, ...] = (
    ("bond_order", "element_H")
    + tuple(f"element_{e}" for e in _ELEMENTS)
    + ("element_other", "formal_charge", "aromatic", "num_h_over_4", "in_ring", "gasteiger_charge")
    + ("distance", "inverse_distance")
    + tuple(f"{kind}_{model}" for model in GEOMETRY_CHARGE_MODELS for kind in ("charge_product", "dipole_dot"))
)
HYDROGEN_MODES = ("folded", "explicit")


def _geometric_ranks(mol: Chem.Mol, dist: np.ndarray) -> list[int]:
    """Canonical ranks with ties between graph-equivalent atoms broken by their distances to all atoms.

    RDKit's tie-breaking follows the input atom order, which would let the SMILES's atom order pick
    which of two graph-equivalent atoms (different in 3-D) takes which row. Distances are compared to
    1e-8 A (a rotation changes them by ~1e-15); atoms still tied are equivalent in 3-D to that
    precision, so either order gives the same image.
    """
    base = list(Chem.CanonicalRankAtoms(mol, breakTies=False))
    # Sorted distances to the atoms of each canonical class, classes in rank order.
    classes = sorted(set(base))
    keys = []
    for i in range(mol.GetNumAtoms()):
        key = [base[i]]
        for c in classes:
            key.extend(sorted(np.round(dist[i, [j for j in range(len(base)) if base[j] == c]], 8).tolist()))
        keys.append(tuple(key))
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    ranks = [0] * len(keys)
    for r, i in enumerate(order):
        ranks[i] = r
    return ranks


def charge_models_of(channels: Sequence[str] | None) -> tuple[str, ...]:
    """The charge models whose channels are among ``channels`` (all of them for ``None``): what an image
    restricted to ``channels`` needs computed, so that an image without ``*_gfn2`` channels costs no xTB.

    >>> charge_models_of(["distance", "dipole_dot_mmff"]), charge_models_of(None)
    (('mmff',), ('mmff', 'gfn2'))
    """
    if channels is None:
        return GEOMETRY_CHARGE_MODELS
    return tuple(m for m in GEOMETRY_CHARGE_MODELS if any(c.endswith(f"_{m}") for c in channels))


def structure_to_image(molh: Chem.Mol, size: int = DEFAULT_IMAGE_SIZE, *, hydrogens: str = "folded",
                       name: str | None = None, xtb: tuple[np.ndarray, np.ndarray] | None = None,
                       charge_models: Sequence[str] = GEOMETRY_CHARGE_MODELS) -> np.ndarray:
    """Geometry-aware node-neighbour image ``(len(GEOMETRY_CHANNELS), size, size)`` of a 3-D structure.

    ``molh`` has explicit hydrogens and one conformer (see :mod:`andersonn.chem.geometry`). A row is a
    heavy atom with its hydrogens folded in (``hydrogens="folded"``) or any atom (``"explicit"``), in a
    canonical order whose ties are broken by geometry. Channels (:data:`GEOMETRY_CHANNELS`):

    * the graph channels of :func:`mol_to_image` (bond order; element one-hot, now with H; formal charge,
      aromatic, attached H / 4, ring, Gasteiger charge) in node-neighbour form;
    * ``distance`` d_ij (Angstrom) and ``inverse_distance`` 1/d_ij (0 on the diagonal) for every pair;
    * for each charge model M (MMFF94 and GFN2-xTB): ``charge_product_M`` Q_i Q_j, the product of the
      rows' charges (a row's charge sums its hydrogens'), and ``dipole_dot_M`` p_i . p_j (Debye^2), where
      p_i = sum over the row's atoms of q_a (r_a - c) about the centroid c. Its pixels sum to |sum_i p_i|^2,
      the squared point-charge dipole; for GFN2-xTB the part of xTB's dipole the charges miss (its atomic
      dipoles) is shared equally between the rows, so the pixels sum to the squared GFN2-xTB dipole.

    Every channel is invariant to rotation, translation and the input atom order. ``xtb`` passes
    precomputed ``(charges, dipole in Debye)`` of this structure. The channels of a charge model left
    out of ``charge_models`` are zero (see :func:`charge_models_of`). Raises :class:`MoleculeTooLargeError`
    when the rows do not fit.

    >>> from andersonn.chem.geometry import structure_from_smiles
    >>> img = structure_to_image(structure_from_smiles("O"), size=4)
    >>> img.shape, round(float(img[GEOMETRY_CHANNELS.index("dipole_dot_gfn2")].sum()) ** 0.5, 1)
    ((22, 4, 4), 2.3)
    """
    from andersonn.chem.geometry import (
        DEBYE_PER_E_ANGSTROM, atomic_charges, heavy_atom_groups, with_ring_info, xtb_charges_and_dipole,
    )

    if hydrogens not in HYDROGEN_MODES:
        raise ValueError(f"hydrogens must be one of {HYDROGEN_MODES}, got {hydrogens!r}")
    unknown = sorted(set(charge_models) - set(GEOMETRY_CHARGE_MODELS))
    if unknown:
        raise ValueError(f"unknown charge model(s) {unknown}; choose from {GEOMETRY_CHARGE_MODELS}")
    if molh.GetNumConformers() != 1:
        raise ValueError(f"a structure has exactly one conformer, this one has {molh.GetNumConformers()}")
    molh = with_ring_info(molh)
    pos = molh.GetConformer().GetPositions()
    if hydrogens == "folded":
        rows, group = heavy_atom_groups(molh)
        # every hydrogen is folded, so the graph drops every one: RemoveHs would keep deuterium ([2H]),
        # whose rows the image does not have
        graph = Chem.RemoveAllHs(molh, sanitize=False)
        graph.UpdatePropertyCache(strict=False)
    else:
        rows, group = np.arange(molh.GetNumAtoms()), np.arange(molh.GetNumAtoms())
        graph = molh
    n = len(rows)
    if n > size:
        raise MoleculeTooLargeError(Chem.MolToSmiles(Chem.RemoveHs(molh)), n, size, name)
    row_pos = pos[rows]
    dist = np.linalg.norm(row_pos[:, None, :] - row_pos[None, :, :], axis=-1)
    order = canonical_order(graph, _geometric_ranks(graph, dist))
    # graph atom k is molh atom rows[k] (RemoveHs keeps the heavy atoms in their order)
    perm = np.asarray(order, dtype=np.int64)
    dist = dist[np.ix_(perm, perm)]
    inv_perm = np.empty(n, dtype=np.int64)
    inv_perm[perm] = np.arange(n)
    row_of_atom = inv_perm[group]  # image row of every atom of molh

    adj = np.zeros((n, n), dtype=np.float32)
    for b in graph.GetBonds():
        i, j = inv_perm[b.GetBeginAtomIdx()], inv_perm[b.GetEndAtomIdx()]
        adj[i, j] = adj[j, i] = b.GetBondTypeAsDouble()
    feats = _atom_features(graph)[perm]
    is_h = np.array([graph.GetAtomWithIdx(int(k)).GetAtomicNum() == 1 for k in perm], dtype=np.float32)
    node = np.concatenate([is_h[:, None], feats], axis=1)  # element_H first, then the 2-D features
    mask = (adj > 0).astype(np.float32) + np.eye(n, dtype=np.float32)

    img = np.zeros((len(GEOMETRY_CHANNELS), size, size), dtype=np.float32)
    img[0, :n, :n] = adj
    n_node = node.shape[1]
    img[1: 1 + n_node, :n, :n] = mask[None, :, :] * node.T[:, None, :]
    k = 1 + n_node
    img[k, :n, :n] = dist
    with np.errstate(divide="ignore"):
        img[k + 1, :n, :n] = np.where(dist > 0, 1.0 / np.maximum(dist, 1e-12), 0.0)
    k += 2
    centred = pos - pos.mean(axis=0)
    for model in GEOMETRY_CHARGE_MODELS:
        if model not in charge_models:
            k += 2
            continue
        if model == "gfn2":
            q, mu = xtb if xtb is not None else xtb_charges_and_dipole(molh)
        else:
            q, mu = atomic_charges(molh, model), None
        row_q = np.bincount(row_of_atom, weights=q, minlength=n)
        p = np.zeros((n, 3))
        np.add.at(p, row_of_atom, q[:, None] * centred * DEBYE_PER_E_ANGSTROM)
        if mu is not None:  # xTB's atomic dipoles, shared equally
            p += (np.asarray(mu) - p.sum(axis=0)) / n
        img[k, :n, :n] = np.outer(row_q, row_q)
        img[k + 1, :n, :n] = p @ p.T
        k += 2
    return img


def pack_crops(images: Sequence[np.ndarray], rows: Sequence[int]) -> np.ndarray:
    """The occupied ``rows x rows`` corner of each ``(C, size, size)`` image, flattened and concatenated:
    how image caches store molecules of different sizes without the empty padding.

    >>> x = np.zeros((2, 4, 4), np.float32); x[:, :2, :2] = 1
    >>> flat = pack_crops([x], [2]); flat.shape, bool((unpack_crops(flat, [2], 2, 4)[0] == x).all())
    ((8,), True)
    """
    if not len(images):
        return np.zeros(0, np.float32)
    return np.concatenate([np.asarray(img[:, :n, :n], np.float32).ravel() for img, n in zip(images, rows)])


def unpack_crops(flat: np.ndarray, rows: Sequence[int], channels: int, size: int) -> np.ndarray:
    """Images ``(len(rows), channels, size, size)`` from :func:`pack_crops`'s output, zero-padded."""
    out = np.zeros((len(rows), channels, size, size), dtype=np.float32)
    pos = 0
    for k, n in enumerate(rows):
        n = int(n)
        out[k, :, :n, :n] = flat[pos: pos + channels * n * n].reshape(channels, n, n)
        pos += channels * n * n
    if pos != flat.size:
        raise ValueError(f"{flat.size} packed values, the row counts account for {pos}")
    return out

"""3-D structures of molecules and the charges on them: what the geometry-aware image is built from.

A *structure* is an RDKit molecule with explicit hydrogens and exactly one conformer. It comes
either from a geometry that belongs to the label (QM9's own B3LYP geometry, :func:`structure_from_xyz`)
or, for any other molecule, from RDKit: ETKDGv3 conformers relaxed with MMFF94 and the one of lowest
MMFF energy kept (:func:`structure_from_smiles`) -- the structure ``andersonn screen`` images. The
drug-like labels (:mod:`andersonn.chem.labels`) are computed on every conformer of the same seeded
embedding, and :func:`conformer_structure` takes out the one a label names.

Charge models (:data:`CHARGE_MODELS`), measured on 2,000 QM9 molecules at the DFT geometry, as the
point-charge dipole ``|sum q_a r_a|`` thresholded at 3.0 D after a scale fitted on half of them:
MMFF94 87.9%, Gasteiger 75.3%, GFN2-xTB Mulliken charges 88.4%, and the full GFN2-xTB dipole
(charges plus atomic dipoles) 94.7%.  ``gfn2`` therefore carries xTB's whole dipole
(:func:`xtb_charges_and_dipole`).

>>> s = structure_from_smiles("O")
>>> s.GetNumAtoms(), s.GetNumConformers()
(3, 1)
>>> q = atomic_charges(s, "mmff")
>>> round(float(q.sum()), 6), bool(q[0] < 0)
(0.0, True)
"""

from __future__ import annotations

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem, rdDetermineBonds

from andersonn.chem.errors import MoleculeError

__all__ = [
    "CHARGE_MODELS", "DEBYE_PER_E_ANGSTROM", "structure_from_xyz", "structure_from_smiles", "conformer_structure",
    "atomic_charges", "point_charge_dipole",
    "xtb_charges_and_dipole", "heavy_atom_groups", "with_ring_info",
]

CHARGE_MODELS = ("mmff", "gasteiger", "gfn2")
#: 1 e*Angstrom in Debye.
DEBYE_PER_E_ANGSTROM = 4.80320471
_SYMBOLS = {1: "H", 5: "B", 6: "C", 7: "N", 8: "O", 9: "F", 14: "Si", 15: "P", 16: "S", 17: "Cl", 35: "Br", 53: "I"}
# Covalent-radius factors tried in turn when finding a SMILES's bonds in a geometry: 1.3 (RDKit's
# default) finds them in almost all of QM9, 1.45 the stretched bonds of the rest.
_COV_FACTORS = (1.3, 1.45)


def _xyz_block(numbers: np.ndarray, positions: np.ndarray) -> str:
    lines = [str(len(numbers)), ""]
    for z, (x, y, w) in zip(numbers, positions):
        sym = _SYMBOLS.get(int(z)) or Chem.GetPeriodicTable().GetElementSymbol(int(z))
        lines.append(f"{sym} {x:.6f} {y:.6f} {w:.6f}")
    return "\n".join(lines) + "\n"


def structure_from_xyz(numbers: np.ndarray, positions: np.ndarray, smiles: str | None = None,
                       name: str | None = None) -> Chem.Mol:
    """A molecule with explicit H whose conformer is the given geometry (Angstrom), atoms in input order.

    With ``smiles`` the molecule is the SMILES's (bond orders, charges; its atom order), placed on the
    geometry by matching its bonds to atom pairs the geometry puts within bonding distance; when the
    geometry does not hold the SMILES's graph (or without ``smiles``), bond orders are perceived from
    the geometry alone, in input atom order (neutral molecule).  A geometry whose bonds cannot be made
    sense of raises :class:`MoleculeError`.

    >>> import numpy as np
    >>> m = structure_from_xyz(np.array([8, 1, 1]), np.array([[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]]))
    >>> Chem.MolToSmiles(Chem.RemoveHs(m))
    'O'
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.float64)
    if positions.shape != (len(numbers), 3):
        raise MoleculeError(smiles or "", f"positions of shape {positions.shape} for {len(numbers)} atoms", name)
    block = _xyz_block(numbers, positions)
    if smiles is not None:
        mol = _template_on_geometry(smiles, numbers, positions, block)
        if mol is not None:
            return mol
    mol = Chem.MolFromXYZBlock(block)
    if mol is None:
        raise MoleculeError(smiles or "", "unreadable geometry", name)
    try:
        rdDetermineBonds.DetermineBonds(mol, charge=0)
        Chem.SanitizeMol(mol)
    except Exception as exc:
        raise MoleculeError(smiles or "", f"bonds cannot be perceived from the geometry ({exc})", name) from None
    return mol


def _plain_graph(mol: Chem.Mol) -> Chem.Mol:
    """Copy of ``mol`` with every bond single and no charges: elements and connectivity only."""
    rw = Chem.RWMol(mol)
    for a in rw.GetAtoms():
        a.SetFormalCharge(0)
        a.SetIsAromatic(False)
        a.SetNoImplicit(True)
    for b in rw.GetBonds():
        b.SetBondType(Chem.BondType.SINGLE)
        b.SetIsAromatic(False)
    return rw.GetMol()


def _template_on_geometry(smiles: str, numbers: np.ndarray, positions: np.ndarray, block: str) -> Chem.Mol | None:
    """The SMILES's molecule (with H) placed on the geometry, or ``None`` when its graph is not in it.

    Every bond of the SMILES must join two atoms of the same elements within ``covFactor`` times the sum
    of their covalent radii; extra close contacts (strained cages put ring atoms 1.5-1.8 A apart) are
    ignored, so a loose factor is safe.
    """
    template = Chem.MolFromSmiles(smiles)
    if template is None:
        return None
    template = Chem.AddHs(template)
    if template.GetNumAtoms() != len(numbers):
        return None
    geometry = Chem.MolFromXYZBlock(block)
    if geometry is None:
        return None
    for factor in _COV_FACTORS:
        try:
            rdDetermineBonds.DetermineConnectivity(geometry, covFactor=factor)
        except Exception:  # RDKit raises ValueError and its own types: try the next factor
            continue
        match = _plain_graph(geometry).GetSubstructMatch(_plain_graph(template))
        if len(match) == template.GetNumAtoms():
            conf = Chem.Conformer(template.GetNumAtoms())
            for i, j in enumerate(match):
                conf.SetAtomPosition(i, positions[j].tolist())
            template.RemoveAllConformers()
            template.AddConformer(conf, assignId=True)
            return template
        geometry = Chem.MolFromXYZBlock(block)
    return None


def structure_from_smiles(smiles_or_mol: str | Chem.Mol, n_conformers: int | None = None, seed: int | None = None,
                          name: str | None = None) -> Chem.Mol:
    """The lowest-MMFF94-energy of ``n_conformers`` ETKDGv3 conformers (UFF where MMFF has no parameters).

    ``n_conformers`` and ``seed`` default to :data:`~andersonn.chem.conformers.DEFAULT_CONFORMERS` and
    :data:`~andersonn.chem.conformers.DEFAULT_SEED` (the labels' set). Deterministic for a given RDKit
    version and ``seed``. Raises :class:`MoleculeError` when RDKit
    cannot embed the molecule or no force field has parameters for it.

    >>> structure_from_smiles("CC(=O)C").GetNumAtoms()
    10
    """
    from andersonn.chem.conformers import DEFAULT_CONFORMERS, DEFAULT_SEED, embed_conformers
    from andersonn.chem.mol import parse_smiles

    mol = parse_smiles(smiles_or_mol, name) if isinstance(smiles_or_mol, str) else smiles_or_mol
    molh, energies, ff = embed_conformers(mol, n_conformers=DEFAULT_CONFORMERS if n_conformers is None else n_conformers,
                                          seed=DEFAULT_SEED if seed is None else seed)
    if ff == "none":
        raise MoleculeError(Chem.MolToSmiles(mol), "neither MMFF94 nor UFF has parameters for it", name)
    return conformer_structure(molh, int(np.argmin(energies)), ff)


def conformer_structure(molh: Chem.Mol, index: int, force_field: str | None = None) -> Chem.Mol:
    """The ``index``-th conformer (in embedding order) of ``molh`` as a structure of its own.

    >>> from andersonn.chem.conformers import embed_conformers
    >>> from andersonn.chem.mol import parse_smiles
    >>> molh, _, ff = embed_conformers(parse_smiles("OCCO"), n_conformers=3, seed=1)
    >>> conformer_structure(molh, 1, ff).GetNumConformers()
    1
    """
    confs = molh.GetConformers()
    if not 0 <= index < len(confs):
        raise IndexError(f"conformer {index} of a molecule with {len(confs)} conformers")
    out = Chem.Mol(molh, confId=confs[index].GetId())
    out.GetConformer().SetId(0)
    if force_field is not None:
        out.SetProp("force_field", force_field)
    return out


def with_ring_info(mol: Chem.Mol) -> Chem.Mol:
    """``mol`` itself, or a copy with ring information when it has none (``RenumberAtoms`` drops it;
    MMFF typing and ring channels need it)."""
    try:
        mol.GetRingInfo().NumRings()  # raises when ring perception has not run
        return mol
    except RuntimeError:
        pass
    mol = Chem.Mol(mol)
    mol.UpdatePropertyCache(strict=False)
    Chem.GetSymmSSSR(mol)
    return mol


def atomic_charges(molh: Chem.Mol, model: str) -> np.ndarray:
    """Partial charges (e) of every atom of ``molh`` under ``model`` (``mmff``, ``gasteiger``, ``gfn2``).

    ``mmff`` and ``gasteiger`` depend only on the bonds; ``gfn2`` is the GFN2-xTB Mulliken charge at the
    structure's geometry (tblite).

    >>> m = structure_from_smiles("C=O")
    >>> [round(float(v), 3) for v in atomic_charges(m, "mmff")]
    [0.45, -0.57, 0.06, 0.06]
    """
    molh = with_ring_info(molh)
    if model == "mmff":
        return _mmff_charges(molh)
    if model == "gasteiger":
        m = Chem.Mol(molh)
        AllChem.ComputeGasteigerCharges(m)
        q = np.array([a.GetDoubleProp("_GasteigerCharge") for a in m.GetAtoms()], dtype=np.float64)
        return np.nan_to_num(q)
    if model == "gfn2":
        return xtb_charges_and_dipole(molh)[0]
    raise ValueError(f"unknown charge model {model!r}; choose from {', '.join(CHARGE_MODELS)}")


#: How far MMFF94's charges may sum from the molecule's net formal charge (e) before they are refused.
MMFF_CHARGE_SUM_TOLERANCE = 1e-3


def _mmff_charges(molh: Chem.Mol) -> np.ndarray:
    """MMFF94 partial charges, typed on a fresh copy with RDKit's own aromaticity, and refused when they
    do not sum to the net formal charge.

    RDKit types a molecule once and marks it (``_MMFFSanitized``); typing a marked molecule again (a
    structure whose conformers MMFF relaxed) skips MMFF's aromaticity perception and can assign other
    atom types, whose charges then sum to a whole number of electrons on a neutral molecule
    (WEHI-0097285: -2 e, a 31 D "dipole"). Typing a clean copy gives the charges a first typing gives.
    A few groups are mistyped even then (WEHI-0052068, a sulfonyl bis-amidine: -2 e); their charges
    describe an ion that is not there, so the molecule is refused rather than imaged with them.
    """
    smiles = Chem.MolToSmiles(Chem.RemoveHs(molh, sanitize=False))
    clean = Chem.Mol(molh)
    if clean.HasProp("_MMFFSanitized"):
        clean.ClearProp("_MMFFSanitized")
    try:
        Chem.Kekulize(clean, clearAromaticFlags=True)
        Chem.SanitizeMol(clean)
    except Exception as exc:  # RDKit raises several types here; the molecule is what failed
        raise MoleculeError(smiles, f"cannot re-perceive aromaticity for MMFF94 typing ({exc})") from None
    props = AllChem.MMFFGetMoleculeProperties(clean)
    if props is None:
        raise MoleculeError(smiles, "MMFF94 has no parameters for it (no MMFF charges)")
    q = np.array([props.GetMMFFPartialCharge(i) for i in range(clean.GetNumAtoms())], dtype=np.float64)
    net = Chem.GetFormalCharge(clean)
    if abs(q.sum() - net) > MMFF_CHARGE_SUM_TOLERANCE:
        raise MoleculeError(smiles, f"MMFF94 charges sum to {q.sum():+.2f} e on a molecule of net charge "
                                    f"{net:+d} e (an MMFF94 typing failure)")
    return q


def point_charge_dipole(molh: Chem.Mol, model: str = "mmff") -> float:
    """|sum_a q_a (r_a - c)| in Debye: the dipole of ``model``'s partial charges at the structure's geometry
    (about the centroid c; for a neutral molecule the origin does not matter).

    >>> round(point_charge_dipole(structure_from_smiles("C=O")), 2) > 1.0
    True
    """
    q = atomic_charges(molh, model)
    pos = molh.GetConformer().GetPositions()
    return float(np.linalg.norm((q[:, None] * (pos - pos.mean(axis=0))).sum(axis=0)) * DEBYE_PER_E_ANGSTROM)


def xtb_charges_and_dipole(molh: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
    """GFN2-xTB Mulliken charges (e) and the molecular dipole vector (Debye) at the structure's geometry.

    The dipole includes xTB's atomic dipoles, so it differs from the point-charge sum of the charges.
    A charged or open-shell molecule, or an SCF that does not converge, raises :class:`MoleculeError`.
    """
    from tblite.interface import Calculator

    from andersonn.chem.qm import ANGSTROM_TO_BOHR, AU_TO_DEBYE

    smiles = Chem.MolToSmiles(Chem.RemoveHs(molh))
    charge = Chem.GetFormalCharge(molh)
    if charge != 0:
        raise MoleculeError(smiles, f"net charge {charge:+d}: its dipole depends on the origin")
    uhf = sum(a.GetNumRadicalElectrons() for a in molh.GetAtoms())
    numbers = np.array([a.GetAtomicNum() for a in molh.GetAtoms()])
    pos = molh.GetConformer().GetPositions() * ANGSTROM_TO_BOHR
    try:
        calc = Calculator("GFN2-xTB", numbers, pos, charge=0, uhf=uhf)
        calc.set("verbosity", 0)
        calc.set("max-iter", 250)
        res = calc.singlepoint()
    except Exception as exc:  # tblite raises RuntimeError with its own message
        raise MoleculeError(smiles, f"GFN2-xTB failed: {exc}") from None
    return np.asarray(res.get("charges"), dtype=np.float64), np.asarray(res.get("dipole"), dtype=np.float64) * AU_TO_DEBYE


def heavy_atom_groups(molh: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
    """``(heavy, group)``: indices in ``molh`` of its heavy atoms, and for every atom the position in
    ``heavy`` of the heavy atom it belongs to (a hydrogen belongs to the atom it is bonded to).

    >>> m = structure_from_smiles("CO")
    >>> heavy, group = heavy_atom_groups(m)
    >>> heavy.tolist(), group.tolist()
    ([0, 1], [0, 1, 0, 0, 0, 1])
    """
    heavy = np.array([a.GetIdx() for a in molh.GetAtoms() if a.GetAtomicNum() > 1], dtype=np.int64)
    pos_of = {int(i): k for k, i in enumerate(heavy)}
    group = np.empty(molh.GetNumAtoms(), dtype=np.int64)
    for a in molh.GetAtoms():
        if a.GetAtomicNum() > 1:
            group[a.GetIdx()] = pos_of[a.GetIdx()]
            continue
        nbrs = [n.GetIdx() for n in a.GetNeighbors() if n.GetAtomicNum() > 1]
        if len(nbrs) != 1:
            raise MoleculeError(Chem.MolToSmiles(molh), f"hydrogen {a.GetIdx()} is not bonded to exactly one heavy atom")
        group[a.GetIdx()] = pos_of[nbrs[0]]
    return heavy, group

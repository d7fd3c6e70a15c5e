"""3-D conformers: RDKit ETKDG embedding, relaxed with MMFF94 (UFF where MMFF has no parameters).

>>> from andersonn.chem.mol import parse_smiles
>>> molh, energies, ff = embed_conformers(parse_smiles("CCO"), n_conformers=3, seed=1)
>>> molh.GetNumAtoms(), ff, len(energies) >= 1
(9, 'MMFF94', True)
"""

from __future__ import annotations

import time

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem

from andersonn.chem.errors import MoleculeError

__all__ = ["DEFAULT_CONFORMERS", "DEFAULT_SEED", "embed_conformers", "conformer_coordinates"]

#: Conformers embedded per molecule, and the ETKDG seed, wherever a molecule's structure is built: the
#: labels (:mod:`andersonn.chem.labels`), the screen and the drug-like images all embed the same set, so
#: an image can be rebuilt from the conformer a label names.
DEFAULT_CONFORMERS = 10
DEFAULT_SEED = 0xA11


def embed_conformers(
    mol: Chem.Mol, n_conformers: int = DEFAULT_CONFORMERS, seed: int = DEFAULT_SEED, max_iters: int = 2000, time_budget_s: float = 30.0
) -> tuple[Chem.Mol, list[float], str]:
    """Embed up to ``n_conformers`` ETKDGv3 conformers (RMSD-pruned at 0.3 A) and relax them.

    Returns ``(mol with explicit H and conformers, force-field energies in kcal/mol
    in conformer order, force field name)``.  When neither MMFF94 nor UFF has
    parameters (e.g. aromatic selenium) the geometries are left unrelaxed, the
    energies are NaN and the force field is ``"none"``.  Raises :class:`MoleculeError` when
    embedding fails or does not finish within ``time_budget_s`` seconds of wall time.

    The budget exists because ETKDG can retry without end on some bridged polycycles with several
    stereocentres (buprenorphine: no conformer after 2 minutes). RDKit stops at the budget with whatever
    conformers it has; those depend on the machine's speed, so such a molecule is refused rather than
    labelled from a set a rerun could not reproduce.
    """
    smi = Chem.MolToSmiles(mol)
    molh = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    params.pruneRmsThresh = 0.3
    params.numThreads = 1
    params.timeout = max(1, int(round(time_budget_s)))
    start = time.perf_counter()
    ids = list(AllChem.EmbedMultipleConfs(molh, numConfs=int(n_conformers), params=params))
    if not ids and time.perf_counter() - start < 0.95 * time_budget_s:
        params.useRandomCoords = True
        ids = list(AllChem.EmbedMultipleConfs(molh, numConfs=int(n_conformers), params=params))
    if time.perf_counter() - start >= 0.95 * time_budget_s:
        raise MoleculeError(smi, f"ETKDG conformer embedding did not finish within {time_budget_s:g} s")
    if not ids:
        raise MoleculeError(smi, "ETKDG conformer embedding failed")
    if AllChem.MMFFHasAllMoleculeParams(molh):
        res = AllChem.MMFFOptimizeMoleculeConfs(molh, numThreads=1, maxIters=max_iters)
        ff = "MMFF94"
    elif AllChem.UFFHasAllMoleculeParams(molh):
        res = AllChem.UFFOptimizeMoleculeConfs(molh, numThreads=1, maxIters=max_iters)
        ff = "UFF"
    else:  # e.g. aromatic Se: leave the ETKDG geometry; callers relax it with GFN2-xTB
        return molh, [float("nan")] * len(ids), "none"
    energies = [float(e) for _, e in res]
    return molh, energies, ff


def conformer_coordinates(molh: Chem.Mol, conf_index: int) -> tuple[np.ndarray, np.ndarray]:
    """``(atomic numbers, positions in Angstrom)`` of the ``conf_index``-th conformer."""
    conf = molh.GetConformers()[conf_index]
    numbers = np.array([a.GetAtomicNum() for a in molh.GetAtoms()], dtype=np.int64)
    return numbers, np.asarray(conf.GetPositions(), dtype=np.float64)

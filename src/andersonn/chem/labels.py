"""Dipole-moment labels of molecules from quantum chemistry, cached and parallel.

Methods (``METHODS``):

``"gfn2"`` (default)
    Up to 10 ETKDGv3 conformers relaxed with MMFF94, a GFN2-xTB (tblite)
    single point on each, and the Boltzmann-weighted (298.15 K, xTB energies)
    root-mean-square dipole ``sqrt(sum_i w_i |mu_i|^2)``.  The record also keeps
    the dipole of the lowest-xTB-energy conformer and of the first conformer,
    and every conformer's energies and dipole.
``"gfn2-1conf"``
    The same on a single MMFF-relaxed ETKDG conformer (the baseline protocol).
``"gfn2-opt"``
    As ``gfn2``, then the 3 lowest-xTB-energy conformers are relaxed with
    GFN2-xTB (:func:`~andersonn.chem.qm.xtb_optimize`) and the Boltzmann RMS
    dipole is taken over the relaxed ones (closer to DFT geometries; ~5x slower).
``"b3lyp"``
    B3LYP/def2-SVP (PySCF, density fitting) on the lowest-xTB-energy conformer of
    the ``gfn2`` protocol (slow: for validation on a subset); the record also
    has the xTB dipole of that same geometry (``xtb_same_geometry_debye``).

Records are cached in a :class:`~andersonn.parallel.ResultCache` under
``"<InChIKey>|<method>"``.  A molecule that fails (parse, embedding, SCF, net
charge) is stored as ``{"error": reason}`` and skipped.

>>> rec = compute_label({"smiles": "CO", "method": "gfn2-1conf"})
>>> rec["method"], 1.0 < rec["dipole_debye"] < 2.5
('gfn2-1conf', True)
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from rdkit import Chem, rdBase

from andersonn.chem.conformers import DEFAULT_CONFORMERS, DEFAULT_SEED, conformer_coordinates, embed_conformers
from andersonn.chem.errors import MoleculeError
from andersonn.chem.mol import canonical_smiles, inchikey, parse_smiles
from andersonn.chem.qm import dft_dipole, pyscf_version, tblite_version, xtb_dipole, xtb_optimize
from andersonn.fileio import require_text_file, write_csv
from andersonn.parallel import ResultCache, map_cached

__all__ = ["METHODS", "LABEL_FIELDS", "compute_label", "label_molecules", "label_file", "read_molecule_file", "cache_key"]

METHODS = ("gfn2", "gfn2-1conf", "gfn2-opt", "b3lyp")
KT_HARTREE = 0.000944186  # k_B * 298.15 K in Hartree
#: The columns of a label CSV (:func:`label_file`; write others with
#: ``andersonn.fileio.write_csv(rows, path, LABEL_FIELDS, float_digits=4)``).
LABEL_FIELDS = [
    "name", "source", "smiles", "canonical_smiles", "inchikey", "n_heavy_atoms", "method", "dipole_debye",
    "dipole_lowest_debye", "dipole_first_debye", "lowest_conformer", "lowest_ff_conformer", "dipole_lowest_ff_debye",
    "xtb_same_geometry_debye", "n_conformers",
    "force_field", "seconds", "program", "program_version", "rdkit_version", "error",
]


def cache_key(key: str, method: str) -> str:
    """Cache key of a molecule (InChIKey) and a method."""
    return f"{key}|{method}"


def _net_charge_and_spin(mol: Chem.Mol, smiles: str) -> tuple[int, int]:
    charge = Chem.GetFormalCharge(mol)
    if charge != 0:
        raise MoleculeError(smiles, f"net charge {charge:+d} after neutralization: dipole is origin-dependent")
    unpaired = sum(a.GetNumRadicalElectrons() for a in mol.GetAtoms())
    return charge, unpaired


def _xtb_conformers(mol: Chem.Mol, n_conformers: int, seed: int) -> tuple[Chem.Mol, list[dict[str, Any]], str]:
    smiles = Chem.MolToSmiles(mol)
    charge, uhf = _net_charge_and_spin(mol, smiles)
    molh, ff_energies, ff = embed_conformers(mol, n_conformers=n_conformers, seed=seed)
    confs = []
    for k, e_ff in enumerate(ff_energies):
        numbers, pos = conformer_coordinates(molh, k)
        try:
            if ff == "none":  # no force field: relax the ETKDG geometry with GFN2-xTB itself
                _, e, mu, _ = xtb_optimize(numbers, pos, charge=charge, uhf=uhf)
            else:
                e, mu = xtb_dipole(numbers, pos, charge=charge, uhf=uhf)
        except Exception as exc:  # tblite raises RuntimeError on SCF failure
            confs.append({"ff_energy": e_ff, "error": str(exc)})
            continue
        confs.append({"ff_energy": e_ff, "xtb_energy": e, "dipole": [float(x) for x in mu]})
    ok = [c for c in confs if "error" not in c]
    if not ok:
        raise MoleculeError(smiles, f"GFN2-xTB failed on every conformer: {confs[0].get('error')}")
    return molh, confs, ("GFN2-xTB (no force-field parameters)" if ff == "none" else ff)


def aggregate_conformers(confs: list[dict[str, Any]]) -> dict[str, Any]:
    """Boltzmann RMS, lowest-energy and first-conformer dipoles (Debye) of conformer records, and
    ``lowest_conformer``: which conformer is the lowest (its ``"conformer"`` field, else its position
    in ``confs``), so that the structure the lowest-energy label belongs to can be rebuilt."""
    ok = [(k, c) for k, c in enumerate(confs) if "error" not in c]
    e = np.array([c["xtb_energy"] for _, c in ok])
    mu = np.array([np.linalg.norm(c["dipole"]) for _, c in ok])
    w = np.exp(-(e - e.min()) / KT_HARTREE)
    w /= w.sum()
    k_low, c_low = ok[int(np.argmin(e))]
    return {
        "dipole_debye": float(np.sqrt(np.sum(w * mu**2))),
        "dipole_lowest_debye": float(mu[int(np.argmin(e))]),
        "dipole_first_debye": float(mu[0]),
        "lowest_conformer": int(c_low.get("conformer", k_low)),
    }


def lowest_force_field_conformer(confs: list[dict[str, Any]]) -> dict[str, Any]:
    """``lowest_ff_conformer`` -- the conformer of lowest force-field energy, the one a screen images
    (:func:`~andersonn.chem.geometry.structure_from_smiles`) since it runs no xTB -- and
    ``dipole_lowest_ff_debye``, its GFN2-xTB dipole (``None`` where xTB failed on it). Empty when the
    conformers have no force-field energies (no MMFF/UFF parameters).

    >>> lowest_force_field_conformer([{"ff_energy": 2.0, "dipole": [1.0, 0, 0]}, {"ff_energy": 1.0, "dipole": [0, 0, 3.0]}])
    {'lowest_ff_conformer': 1, 'dipole_lowest_ff_debye': 3.0}
    """
    e = np.array([float(c.get("ff_energy", np.nan)) for c in confs])
    if not len(e) or not np.isfinite(e).all():
        return {}
    k = int(np.argmin(e))
    mu = confs[k].get("dipole")
    return {"lowest_ff_conformer": k, "dipole_lowest_ff_debye": None if mu is None else float(np.linalg.norm(mu))}


def compute_label(item: dict[str, Any]) -> dict[str, Any]:
    """Compute one label record.

    ``item`` has ``smiles`` and optionally ``name``, ``method`` (default
    ``"gfn2"``), ``n_conformers`` (default 10) and ``seed``.  Raises
    :class:`MoleculeError`/``RuntimeError`` on failure (``map_cached`` records it).
    """
    t0 = time.perf_counter()
    smiles, name = item["smiles"], item.get("name")
    method = item.get("method", "gfn2")
    seed = int(item.get("seed", DEFAULT_SEED))
    mol = parse_smiles(smiles, name)
    rec: dict[str, Any] = {
        "canonical_smiles": canonical_smiles(mol),
        "inchikey": inchikey(mol),
        "n_heavy_atoms": mol.GetNumAtoms(),
        "method": method,
        "rdkit_version": rdBase.rdkitVersion,
    }
    if method in ("gfn2", "gfn2-1conf"):
        n_conf = 1 if method == "gfn2-1conf" else int(item.get("n_conformers", DEFAULT_CONFORMERS))
        _, confs, ff = _xtb_conformers(mol, n_conf, seed)
        rec.update(aggregate_conformers(confs))
        rec.update(lowest_force_field_conformer(confs))
        rec.update(
            n_conformers=len(confs), force_field=ff, conformers=confs,
            program="tblite GFN2-xTB", program_version=tblite_version(),
        )
    elif method == "gfn2-opt":
        molh, confs, ff = _xtb_conformers(mol, int(item.get("n_conformers", DEFAULT_CONFORMERS)), seed)
        charge, uhf = _net_charge_and_spin(mol, smiles)
        ok = sorted((c["xtb_energy"], k) for k, c in enumerate(confs) if "error" not in c)
        relaxed = []
        for _, k in ok[: int(item.get("n_relax", 3))]:
            numbers, pos = conformer_coordinates(molh, k)
            _, e, mu, steps = xtb_optimize(numbers, pos, charge=charge, uhf=uhf)
            relaxed.append({"conformer": k, "xtb_energy": e, "dipole": [float(x) for x in mu], "steps": steps})
        agg = aggregate_conformers(relaxed)
        agg["dipole_first_debye"] = aggregate_conformers(confs)["dipole_first_debye"]
        rec.update(agg)
        rec.update(
            n_conformers=len(confs), force_field=ff + " + GFN2-xTB relaxation", conformers=relaxed,
            program="tblite GFN2-xTB", program_version=tblite_version(),
        )
    elif method == "b3lyp":
        molh, confs, ff = _xtb_conformers(mol, int(item.get("n_conformers", DEFAULT_CONFORMERS)), seed)
        ok = [(k, c) for k, c in enumerate(confs) if "error" not in c]
        k_best, best = min(ok, key=lambda kc: kc[1]["xtb_energy"])
        numbers, pos = conformer_coordinates(molh, k_best)
        charge, uhf = _net_charge_and_spin(mol, smiles)
        e, mu = dft_dipole(numbers, pos, charge=charge, spin=uhf)
        rec.update(
            dipole_debye=float(np.linalg.norm(mu)), dipole=[float(x) for x in mu], dft_energy=e,
            xtb_same_geometry_debye=float(np.linalg.norm(best["dipole"])), n_conformers=len(confs),
            force_field=ff, program="PySCF B3LYP/def2-SVP (density fitting)", program_version=pyscf_version(),
        )
    else:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    return rec


def read_molecule_file(path: str | Path) -> list[dict[str, Any]]:
    """Read molecules as ``[{"name", "smiles", "line"}]`` from a CSV, SMILES or SDF file.

    CSV: a header with a ``smiles`` column (any case) and optionally ``name``.
    SMILES file (``.smi``/``.txt``): ``SMILES [name]`` per line, whitespace separated;
    ``#`` comments and blank lines are skipped.  ``line`` is the 1-based line number.
    """
    path = require_text_file(path, "molecules (CSV with a smiles column, SMILES or SDF)")
    rows: list[dict[str, Any]] = []
    if path.suffix.lower() in (".sdf", ".sd", ".mol"):
        for i, mol in enumerate(Chem.SDMolSupplier(str(path))):
            if mol is None:
                rows.append({"name": f"record{i + 1}", "smiles": "", "line": i + 1})
                continue
            nm = mol.GetProp("_Name") if mol.HasProp("_Name") else f"record{i + 1}"
            rows.append({"name": nm or f"record{i + 1}", "smiles": Chem.MolToSmiles(mol), "line": i + 1})
        return rows
    with open(path, newline="") as fh:
        first = fh.readline()
        fh.seek(0)
        header = [h.strip().lower() for h in next(csv.reader([first]))] if first else []
        if path.suffix.lower() == ".csv" and "smiles" in header:
            reader = csv.reader(fh)
            next(reader)
            s_col = header.index("smiles")
            n_col = header.index("name") if "name" in header else None
            for lineno, r in enumerate(reader, start=2):
                if not r or not any(x.strip() for x in r):
                    continue
                smi = r[s_col].strip() if len(r) > s_col else ""
                nm = r[n_col].strip() if n_col is not None and len(r) > n_col else f"line{lineno}"
                rows.append({"name": nm, "smiles": smi, "line": lineno})
        else:
            for lineno, raw in enumerate(fh, start=1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.replace(",", " ").split() if path.suffix.lower() == ".csv" else line.split()
                if lineno == 1 and parts[0].lower() == "smiles":
                    continue
                rows.append({"name": parts[1] if len(parts) > 1 else f"line{lineno}", "smiles": parts[0], "line": lineno})
    return rows


def label_molecules(
    molecules: Iterable[dict[str, Any]],
    method: str = "gfn2",
    cache_path: str | Path = "cache/chem_labels.sqlite",
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    n_conformers: int = DEFAULT_CONFORMERS,
    desc: str = "",
    stats: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Label ``[{"name", "smiles"}]`` (deduplicated by InChIKey); one row per input molecule.

    Unparsable SMILES get a row with ``error`` and are not sent to the cluster. A ``stats`` dict is
    filled with the row counts ``labels`` (all rows), ``cached`` (labelled from the cache),
    ``computed`` (labelled by this call) and ``failed`` (rows with an error, cached or not).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    cache = ResultCache(cache_path)
    rows: list[dict[str, Any]] = []
    items: dict[str, dict[str, Any]] = {}
    for m in molecules:
        row = {"name": m.get("name", ""), "smiles": m.get("smiles", ""), "method": method}
        try:
            mol = parse_smiles(row["smiles"], row["name"])
            key = cache_key(inchikey(mol), method)
        except MoleculeError as exc:
            row["error"] = exc.reason
            rows.append(row)
            continue
        row["_key"] = key
        items.setdefault(key, {"smiles": row["smiles"], "name": row["name"], "method": method, "n_conformers": n_conformers})
        rows.append(row)
    try:
        cached = {k for k in items if k in cache}
        results = map_cached(compute_label, items, cache, scheduler=scheduler, n_workers=n_workers,
                             desc=desc or f"label {method}")
    finally:
        cache.close()
    counts = {"labels": len(rows), "cached": 0, "computed": 0, "failed": 0}
    for row in rows:
        key = row.pop("_key", None)
        if key is not None:
            rec = results[key]
            row.update({k: v for k, v in rec.items() if k not in ("name", "smiles", "traceback")})
            if method in ("gfn2", "gfn2-1conf") and "conformers" in rec and "lowest_ff_conformer" not in rec:
                row.update(lowest_force_field_conformer(rec["conformers"]))  # a record cached before the field existed
        counts["failed" if row.get("error") else "cached" if key in cached else "computed"] += 1
    if stats is not None:
        stats.update(counts)
    return rows


def label_file(
    input_path: str | Path,
    method: str = "gfn2",
    cache_path: str | Path = "cache/chem_labels.sqlite",
    scheduler: str | None = None,
    n_workers: int | None = None,
    output_path: str | Path | None = None,
    n_conformers: int = DEFAULT_CONFORMERS,
    limit: int | None = None,
    stats: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Label every molecule of a CSV/SMILES/SDF file with a dipole moment (``andersonn label``).

    Parameters
    ----------
    input_path: CSV with a ``smiles`` (and ``name``) column, a SMILES file, or an SDF.
    method: ``"gfn2"`` (multi-conformer GFN2-xTB, default), ``"gfn2-1conf"`` or ``"b3lyp"``.
    cache_path: SQLite result cache; rerunning resumes and recomputes nothing cached.
    scheduler: ``None`` = local Dask cluster, ``"tcp://host:port"`` = existing cluster,
        ``"synchronous"`` = in-process.
    n_workers: worker processes of the local cluster.
    output_path: CSV to write (columns include method, program and versions).
    n_conformers: conformers for ``gfn2``/``b3lyp``.
    limit: label only the first ``limit`` molecules.
    stats: filled with how many labels came from the cache, were computed, or failed
        (see :func:`label_molecules`).

    Returns one dict per input molecule (``error`` set for failures).

    Example
    -------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "m.smi")
    >>> _ = open(p, "w").write("CO methanol\\nC1CC broken\\n")
    >>> rows = label_file(p, "gfn2-1conf", os.path.join(d, "c.sqlite"), scheduler="synchronous")
    >>> [r["name"] for r in rows], rows[1]["error"][:20]
    (['methanol', 'broken'], 'RDKit could not pars')
    """
    mols = read_molecule_file(input_path)
    if limit is not None:
        mols = mols[:limit]
    rows = label_molecules(mols, method, cache_path, scheduler=scheduler, n_workers=n_workers, n_conformers=n_conformers,
                           stats=stats)
    if output_path is not None:
        write_csv(rows, output_path, LABEL_FIELDS, float_digits=4)
    return rows

"""The ``alms-qm9`` task: all of QM9 as geometry-aware images at its own DFT geometry, DFT dipole labels.

Every molecule's image is built from the B3LYP geometry its dipole was computed at
(:func:`~andersonn.chem.geometry.structure_from_xyz`), with MMFF94 and GFN2-xTB charges on it
(:func:`~andersonn.chem.image.structure_to_image`), so label and image belong to one structure.

The image cache is built once, in parallel on the Dask path of :func:`andersonn.parallel.map_cached`
(a local cluster by default, ``scheduler=ADDRESS`` for a real one), in chunks: each chunk is an
``.npz`` written atomically before its record is stored, so a killed build resumes at the first
missing chunk. Besides the image, each molecule keeps the physics references computed on the way:
the GFN2-xTB dipole and the MMFF94 point-charge dipole at the DFT geometry.

Splits: 80 / 10 / 10 train / validation / test, stratified by class, fixed by ``seed``; the
validation split chooses epochs and models, the test split is for the final report only.

>>> import tempfile
>>> d = load_qm9_images(tempfile.mkdtemp(), max_molecules=40, scheduler="synchronous", progress=False)
>>> d["x_train"].shape[1:], len(d["y_val"]) > 0, d["meta"]["threshold_debye"]
((22, 12, 12), True, 3.0)
>>> load_qm9_images(d["meta"]["cache_folder"] + "/..", size=9, max_molecules=40, progress=False)["x_test"].shape[1:]
(22, 9, 9)
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from andersonn.chem.errors import MoleculeError
from andersonn.chem.image import GEOMETRY_CHANNELS, GEOMETRY_IMAGE_VERSION, pack_crops, structure_to_image, unpack_crops
from andersonn.fileio import atomic_write_text, save_npz

__all__ = ["QM9_IMAGE_SIZE", "build_qm9_cache", "load_qm9_images", "qm9_image_record"]

#: Rows of the cached images (QM9 has at most 9 heavy atoms, 29 atoms with hydrogens); a loader crops
#: them to the ``image_size`` asked for, never below the largest molecule.
QM9_IMAGE_SIZE = 12
QM9_EXPLICIT_H_IMAGE_SIZE = 32
CHUNK = 500
_FIELDS = ("index", "n_rows", "dipole_dft", "dipole_xtb", "dipole_mmff")


def qm9_image_record(mol: dict[str, Any], size: int = QM9_IMAGE_SIZE, hydrogens: str = "folded") -> tuple[np.ndarray, dict[str, Any]]:
    """Image and reference numbers of one QM9 record (``numbers``, ``positions``, ``smiles``, ``dipole_debye``)."""
    from rdkit import Chem

    from andersonn.chem.geometry import point_charge_dipole, structure_from_xyz, xtb_charges_and_dipole

    molh = structure_from_xyz(mol["numbers"], mol["positions"], mol["smiles"], mol["name"])
    q, mu = xtb_charges_and_dipole(molh)
    img = structure_to_image(molh, size, hydrogens=hydrogens, name=mol["name"], xtb=(q, mu))
    mu_mmff = point_charge_dipole(molh, "mmff")
    rows = molh.GetNumAtoms() if hydrogens == "explicit" else Chem.RemoveHs(molh, sanitize=False).GetNumAtoms()
    return img, {"n_rows": rows, "dipole_xtb": float(np.linalg.norm(mu)), "dipole_mmff": mu_mmff,
                 "smiles": Chem.MolToSmiles(Chem.RemoveHs(molh))}


def _build_chunk(item: dict[str, Any]) -> dict[str, Any]:
    """Image one chunk of molecules into ``item["path"]`` (.npz, atomic); the record lists failures."""
    t0 = time.perf_counter()
    size, hydrogens = item["size"], item["hydrogens"]
    images, fields, smiles, failed = [], [], [], []
    for mol in item["molecules"]:
        try:
            img, ref = qm9_image_record(mol, size, hydrogens)
        except MoleculeError as exc:
            failed.append({"name": mol["name"], "smiles": mol["smiles"], "dipole_dft": mol["dipole_debye"], "reason": exc.reason})
            continue
        except Exception as exc:  # an RDKit/tblite error type we did not foresee: recorded, not fatal to the chunk
            failed.append({"name": mol["name"], "smiles": mol["smiles"], "dipole_dft": mol["dipole_debye"],
                           "reason": f"{type(exc).__name__}: {exc}"})
            continue
        images.append(img)
        fields.append([int(mol["name"].split("_")[1]), ref["n_rows"], mol["dipole_debye"], ref["dipole_xtb"], ref["dipole_mmff"]])
        smiles.append(ref["smiles"])
    path = Path(item["path"])
    save_npz(path, crops=pack_crops(images, [f[1] for f in fields]),
             fields=np.asarray(fields, dtype=np.float64).reshape(-1, len(_FIELDS)), smiles=np.asarray(smiles, dtype=str))
    return {"path": path.name, "n": len(fields), "failed": failed, "seconds": round(time.perf_counter() - t0, 2)}


def build_qm9_cache(cache_dir: str | Path, *, size: int = QM9_IMAGE_SIZE, hydrogens: str = "folded",
                    max_molecules: int | None = None, seed: int = 0, scheduler: str | None = None,
                    n_workers: int | None = None, progress: bool = True) -> tuple[Path, list[dict[str, Any]]]:
    """Image QM9 (all of it, or ``max_molecules`` drawn with ``seed``) into ``cache_dir``; resumable.

    Returns the folder of chunk files and the chunk records (``n``, ``failed``, ``seconds``).
    """
    from andersonn.chem.sources import load_qm9
    from andersonn.parallel import ResultCache, map_chunk_files

    tag = f"qm9_s{size}_{hydrogens}_v{GEOMETRY_IMAGE_VERSION}" + (f"_n{max_molecules}_seed{seed}" if max_molecules else "")
    folder = Path(cache_dir) / tag
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    if manifest.exists():  # a finished build: no need to read QM9's geometries again
        names = json.loads(manifest.read_text())["chunks"]
        with ResultCache(folder / "records.sqlite") as cache:
            records = [cache.get(name) for name in names]
        if all(isinstance(r, dict) and "error" not in r for r in records) and all((folder / n).exists() for n in names):
            return folder, records
    mols = load_qm9(max_molecules, seed=seed, with_geometry=True)
    items = {}
    for k in range(0, len(mols), CHUNK):
        name = f"chunk{k // CHUNK:04d}.npz"
        items[name] = {"molecules": mols[k: k + CHUNK], "size": size, "hydrogens": hydrogens, "path": str(folder / name)}
    records = map_chunk_files(_build_chunk, items, folder, scheduler=scheduler, n_workers=n_workers,
                              desc="QM9 images", progress=progress)
    out = [records[name] for name in sorted(items)]
    if all("error" not in r for r in out):
        atomic_write_text(json.dumps({"chunks": sorted(items), "n_molecules": len(mols)}), manifest)
    return folder, out


def _read_chunks(folder: Path, records: list[dict[str, Any]], size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    xs, fields, smiles = [], [], []
    for rec in records:
        z = np.load(folder / rec["path"], allow_pickle=False)
        f = z["fields"]
        xs.append(unpack_crops(z["crops"], f[:, 1].astype(int), len(GEOMETRY_CHANNELS), size))
        fields.append(f)
        smiles.extend(z["smiles"].tolist())
    if not xs:
        return np.zeros((0, len(GEOMETRY_CHANNELS), size, size), np.float32), np.zeros((0, len(_FIELDS))), []
    return np.concatenate(xs), np.concatenate(fields), smiles


def _split(index: np.ndarray, y: np.ndarray, failed: list[dict[str, Any]], threshold: float,
           seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / validation / test positions (80/10/10, stratified) of the imaged molecules.

    The split is drawn over every molecule asked for, failures included, in QM9-index order, and the
    failures are then dropped: a molecule keeps its split when a change to the imaging makes another
    molecule fail, so a model's validation and test molecules stay unseen by models trained before it.

    >>> [len(p) for p in _split(np.arange(1, 101), np.arange(100) % 2, [], 3.0, 0)]
    [80, 10, 10]
    """
    from sklearn.model_selection import train_test_split

    fail_index = np.array([int(f["name"].split("_")[1]) for f in failed], dtype=np.int64)
    fail_y = np.array([float(f["dipole_dft"]) >= threshold for f in failed], dtype=np.int64)
    all_index = np.concatenate([index, fail_index])
    all_y = np.concatenate([y, fail_y])
    order = np.argsort(all_index, kind="stable")
    ys = all_y[order]
    pos = np.arange(len(ys))
    strat = ys if len(set(ys.tolist())) > 1 and min(np.bincount(ys)) >= 5 else None
    tr, rest = train_test_split(pos, test_size=0.2, random_state=seed, stratify=strat)
    va, te = train_test_split(rest, test_size=0.5, random_state=seed, stratify=strat[rest] if strat is not None else None)
    imaged = order < len(index)  # sorted position -> was it imaged?
    return tuple(np.sort(order[p[imaged[p]]]) for p in (tr, va, te))


def load_qm9_images(cache_dir: str | Path | None = None, *, size: int | None = None, hydrogens: str = "folded",
                    max_molecules: int | None = None, seed: int = 0, threshold: float | None = None,
                    scheduler: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train / validation / test images and labels of QM9 (strongly polar: DFT dipole >= threshold).

    Returns ``x_train``, ``y_train``, ``x_val``, ``y_val``, ``x_test``, ``y_test``, ``class_names`` and
    ``meta`` (threshold, counts, failures with reasons, per-split reference dipoles and SMILES, build time).
    ``size`` crops the cached images (12 rows folded, 32 with explicit hydrogens) to ``size`` rows, which
    must hold the largest molecule (9 heavy atoms, 29 atoms): a molecule is never cut.
    """
    from andersonn.chem.dataset import CLASS_NAMES, POLARITY_THRESHOLD_DEBYE, default_cache_dir

    threshold = POLARITY_THRESHOLD_DEBYE if threshold is None else threshold
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    t0 = time.perf_counter()
    cache_size = QM9_IMAGE_SIZE if hydrogens == "folded" else QM9_EXPLICIT_H_IMAGE_SIZE
    size = cache_size if size is None else int(size)
    folder, records = build_qm9_cache(cache_dir, size=cache_size, hydrogens=hydrogens, max_molecules=max_molecules,
                                      seed=seed, scheduler=scheduler, progress=progress)
    x, fields, smiles = _read_chunks(folder, records, cache_size)
    largest = int(fields[:, 1].max()) if len(fields) else 0
    if size < largest:
        raise ValueError(f"image size {size} is smaller than the largest molecule ({largest} rows); molecules are never cut")
    if size > cache_size:
        raise ValueError(f"image size {size} exceeds the cached {cache_size} rows")
    x = x[:, :, :size, :size]
    y = (fields[:, 2] >= threshold).astype(np.int64)
    failed = [f for r in records for f in r.get("failed", [])]
    tr, va, te = _split(fields[:, 0].astype(np.int64), y, failed, threshold, seed)
    chunk_errors = [r["error"] for r in records if "error" in r]

    def refs(ii: np.ndarray) -> dict[str, list]:
        return {"index": fields[ii, 0].astype(int).tolist(), "dipole_dft": fields[ii, 2].round(4).tolist(),
                "dipole_xtb": fields[ii, 3].round(4).tolist(), "dipole_mmff": fields[ii, 4].round(4).tolist(),
                "smiles": [smiles[i] for i in ii]}

    meta = {
        "task": "alms-qm9", "threshold_debye": threshold, "class_names": list(CLASS_NAMES), "image_size": size,
        "hydrogens": hydrogens, "channels": list(GEOMETRY_CHANNELS), "image_version": GEOMETRY_IMAGE_VERSION,
        "label": "QM9 B3LYP/6-31G(2df,p) dipole at the QM9 geometry (the geometry the image is built from)",
        "counts": {"train": len(tr), "val": len(va), "test": len(te), "failed": len(failed),
                   "chunk_errors": len(chunk_errors)},
        "fraction_strongly_polar": round(float(y.mean()), 4) if len(y) else 0.0,
        "failed": failed, "chunk_errors": chunk_errors,
        "build_seconds_cpu": round(sum(r.get("seconds", 0.0) for r in records), 1),
        "load_seconds": round(time.perf_counter() - t0, 1),
        "cache_folder": str(folder),
        "cache_bytes": int(sum(p.stat().st_size for p in folder.glob("chunk*.npz"))),
        "references": {"train": refs(tr), "val": refs(va), "test": refs(te)},
        "not_saved": ["references"],  # per-molecule lists: too large for a model's config.json
    }
    return {"x_train": x[tr], "y_train": y[tr], "x_val": x[va], "y_val": y[va], "x_test": x[te], "y_test": y[te],
            "class_names": list(CLASS_NAMES), "meta": meta}

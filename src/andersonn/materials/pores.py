"""The ``alms-pores`` task: CoRE MOF 2019 structures classified by pore-limiting diameter.

Why the pore-limiting diameter (PLD)?  The PLD is the widest sphere that can
travel *through* the framework; the largest cavity (LCD) may be unreachable.
What a MOF can take up is therefore set by the PLD.  The four classes follow
the poster's question "which pores admit what":

=================  ============  ===============================================
class              PLD (A)       admits
=================  ============  ===============================================
``gas``            < 4.0         small gases only: He 2.6, H2 2.9, CO2 3.3,
                                 N2 3.6, CH4 3.8 A kinetic diameter
``small-molecule`` 4.0 - 6.0     + small organics and solvents (n-alkanes 4.3,
                                 benzene 5.9 A)
``large-molecule`` 6.0 - 10.0    + bulky, drug-sized molecules and single
                                 nucleotides
``nucleic-acid``   >= 10.0       + an unfolded single strand of DNA/RNA (about
                                 1 nm across; protein nanopores that thread
                                 ssDNA narrow to 1.2-1.4 nm, dsDNA needs 2 nm)
=================  ============  ===============================================

In the 12,020 structures of the CoRE MOF 2019 all-solvent-removed set the
classes hold 5699 / 3760 / 2060 / 501 structures (47 / 31 / 17 / 4 %).  So that
accuracy is not dominated by the gas class, the default data set draws the
*same number* of structures from every class (``max_structures // 4``, seeded;
``None`` means :data:`DEFAULT_MAX_STRUCTURES` = 2000); ``max_structures=0``
takes every structure with its natural balance.  The
class balance after skipping unreadable CIFs is reported in ``meta``.

>>> pore_class(3.3), pore_class(5.0), pore_class(12.0)
(0, 1, 3)
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from andersonn.materials.cache import build_image_cache, load_image
from andersonn.materials.coremof import DEFAULT_SET, coremof_table, extract_cifs
from andersonn.materials.image import CHANNELS

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_MAX_STRUCTURES",
    "PLD_EDGES",
    "PORE_BINS",
    "default_cache_dir",
    "load_pores",
    "pore_class",
    "select_structures",
]

#: Class edges on the pore-limiting diameter, angstrom.
PLD_EDGES: tuple[float, ...] = (4.0, 6.0, 10.0)
CLASS_NAMES: list[str] = ["gas", "small-molecule", "large-molecule", "nucleic-acid"]
PORE_BINS: list[dict[str, Any]] = [
    {"name": "gas", "pld_min": 0.0, "pld_max": 4.0,
     "admits": "small gases only (He, H2, CO2, N2, CH4: kinetic diameter 2.6-3.8 A)"},
    {"name": "small-molecule", "pld_min": 4.0, "pld_max": 6.0,
     "admits": "gases and small organics/solvents (n-alkanes 4.3 A, benzene 5.9 A)"},
    {"name": "large-molecule", "pld_min": 6.0, "pld_max": 10.0,
     "admits": "bulky, drug-sized molecules and single nucleotides"},
    {"name": "nucleic-acid", "pld_min": 10.0, "pld_max": None,
     "admits": "an unfolded single strand of DNA/RNA (~1 nm cross-section)"},
]

#: Default size: 500 structures per class, built in a few minutes on 2 cores.
DEFAULT_MAX_STRUCTURES = 2000


def pore_class(pld: float) -> int:
    """Class index of a pore-limiting diameter ``pld`` (A)."""
    return int(np.searchsorted(PLD_EDGES, pld, side="right"))


def default_cache_dir() -> Path:
    """``$ANDERSONN_CACHE/alms-pores``, else ``~/.cache/andersonn/alms-pores`` (as the chem side)."""
    env = os.environ.get("ANDERSONN_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "andersonn") / "alms-pores"


def select_structures(
    max_structures: int | None = None, seed: int = 0, dataset: str = DEFAULT_SET
) -> dict[str, int]:
    """``refcode -> class`` of the structures in the data set (seeded, deterministic).

    ``max_structures=0``: all structures.  Otherwise (``None``: 2000)
    ``max_structures // 4`` drawn at random (``seed``) from each class, or the
    whole class if smaller.
    """
    table = coremof_table(dataset)
    labels = {ref: pore_class(row["PLD"]) for ref, row in sorted(table.items())
              if np.isfinite(row["PLD"])}
    if max_structures is None:
        max_structures = DEFAULT_MAX_STRUCTURES
    if max_structures <= 0:
        return labels
    per_class = max(1, max_structures // len(CLASS_NAMES))
    rng = np.random.default_rng(seed)
    chosen: dict[str, int] = {}
    for c in range(len(CLASS_NAMES)):
        refs = sorted(r for r, y in labels.items() if y == c)
        take = rng.permutation(len(refs))[: min(per_class, len(refs))]
        for i in sorted(take):
            chosen[refs[i]] = c
    return dict(sorted(chosen.items()))


def _reason(error: str) -> str:
    """Short reason of an error record, for the skip summary (path and details dropped).

    >>> _reason("CifError: /x/A.cif: disordered: overlapping atoms H#1-C#2 at 0.16 A (< 0.5 A)")
    'disordered: overlapping atoms'
    """
    text = error
    if text.startswith("CifError: "):
        text = text[len("CifError: "):].split(": ", 1)[-1]
    return re.split(r" \(| at |\s\S+#\d", text, maxsplit=1)[0].strip()


def load_pores(
    cache_dir: Path | None = None,
    image_size: int = 32,
    max_structures: int | None = None,
    seed: int = 0,
    scheduler: str | None = None,
) -> dict:
    """The ``alms-pores`` data set: node-neighbour images of MOFs and their PLD class.

    Builds the image cache on first use (progress bar, resumable, parallel via
    :func:`andersonn.parallel.map_cached`), then loads from it.  The split is
    stratified 80/20, seeded by ``seed``.  ``max_structures``: ``None`` = 2000
    (500 per class), ``0`` = all 12,020 with their natural balance.

    Returns ``{"x_train": float32 (N, C, S, S), "y_train": int64 (N,), "x_test",
    "y_test", "class_names", "meta"}``; ``meta`` holds the bins, class balance,
    counts, skipped structures with reasons and the sources.

    >>> d = load_pores(max_structures=8, image_size=8, scheduler="synchronous")  # doctest: +SKIP
    >>> d["x_train"].shape[1:], d["class_names"][3]                             # doctest: +SKIP
    ((9, 8, 8), 'nucleic-acid')
    """
    from sklearn.model_selection import train_test_split

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    labels = select_structures(max_structures, seed)
    cifs = extract_cifs(labels, root / "cifs")
    missing = sorted(set(labels) - set(cifs))
    records = build_image_cache(
        {r: cifs[r] for r in sorted(cifs)}, root, image_size, scheduler=scheduler, desc="alms-pores images"
    )
    good = sorted(r for r, rec in records.items() if "error" not in rec)
    skipped = {r: rec["error"] for r, rec in sorted(records.items()) if "error" in rec}
    skipped.update({r: "CIF not found in the core-mof archive" for r in missing})
    if len(good) < 2:
        raise RuntimeError(f"alms-pores: only {len(good)} usable structures; skipped: {skipped}")
    x = np.stack([load_image(root, records[r]) for r in good]).astype(np.float32)
    y = np.array([labels[r] for r in good], dtype=np.int64)
    idx = np.arange(len(good))
    counts = np.bincount(y, minlength=len(CLASS_NAMES))
    n_present = int((counts > 0).sum())
    can_stratify = counts[counts > 0].min() >= 2 and int(0.2 * len(good)) >= n_present
    stratify = y if can_stratify else None
    tr, te = train_test_split(idx, test_size=0.2, random_state=seed, stratify=stratify)
    tr, te = np.sort(tr), np.sort(te)

    def balance(part: np.ndarray) -> dict[str, int]:
        c = np.bincount(y[part], minlength=len(CLASS_NAMES))
        return {name: int(n) for name, n in zip(CLASS_NAMES, c)}

    seconds = [records[r]["seconds"] for r in good]
    meta = {
        "task": "alms-pores",
        "label": "PLD (pore-limiting diameter, A; Zeo++ values from CoRE MOF 2019)",
        "bins": PORE_BINS,
        "channels": list(CHANNELS),
        "image_size": image_size,
        "seed": seed,
        "max_structures": DEFAULT_MAX_STRUCTURES if max_structures is None else max_structures,
        "n_selected": len(labels),
        "n_used": len(good),
        "n_skipped": len(skipped),
        "class_balance": {"all": balance(idx), "train": balance(tr), "test": balance(te)},
        "majority_test_accuracy": float(np.bincount(y[te]).max() / len(te)),
        "skipped": skipped,
        "skipped_reasons": dict(Counter(_reason(e) for e in skipped.values()).most_common()),
        "build_seconds_per_structure": float(np.mean(seconds)),
        "refcodes_train": [good[i] for i in tr],
        "refcodes_test": [good[i] for i in te],
        "cache_dir": str(root),
        "sources": {
            "structures": f"CoRE MOF 2019 ({DEFAULT_SET}, all solvent removed), pip package core-mof",
            "reference": "Chung et al., J. Chem. Eng. Data 64, 5985 (2019), doi:10.1021/acs.jced.9b00835",
            "pore_sizes": "Zeo++ PLD/LCD from the CoRE MOF 2019 property table",
        },
    }
    return {
        "x_train": x[tr],
        "y_train": y[tr],
        "x_test": x[te],
        "y_test": y[te],
        "class_names": list(CLASS_NAMES),
        "meta": meta,
    }

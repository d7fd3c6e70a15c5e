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
classes hold 5699 / 3760 / 2060 / 501 structures (47 / 31 / 17 / 4 %).  Two
modes (``mode``):

* ``"balanced"`` (default): so that accuracy is not dominated by the gas class,
  the *same number* of structures is drawn from every class
  (``max_structures // 4``, seeded; ``None`` means
  :data:`DEFAULT_MAX_STRUCTURES` = 2000; ``0`` takes every structure with its
  natural balance), split train/test 80/20 stratified by class.
* ``"full"``: every structure of the table with its natural balance (or, with
  ``max_structures=n``, a stratified draw of ``n`` that keeps the natural
  proportions), split train/val/test 80/10/10 stratified by class
  (:func:`split_indices`), so the test split has the natural balance and the
  validation split chooses the epoch.

In both, the structures that cannot be read are listed with their reason in
``meta["skipped"]`` and counted by reason in ``meta["skipped_reasons"]``; the
class balance of every split is in ``meta["class_balance"]``.  The images are
the 16-channel images of :func:`andersonn.materials.image.structure_image`;
``channels`` keeps a subset (:func:`andersonn.materials.channels.select_channels`,
e.g. ``"graph"`` for the 9 graph channels alone).

>>> pore_class(3.3), pore_class(5.0), pore_class(12.0)
(0, 1, 3)
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from andersonn.materials.cache import build_image_cache, load_image
from andersonn.materials.channels import CHANNELS, select_channels
from andersonn.materials.coremof import DEFAULT_SET, coremof_table, extract_cifs

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_MAX_STRUCTURES",
    "MODES",
    "PLD_EDGES",
    "PORE_BINS",
    "SPLIT_FRACTIONS",
    "default_cache_dir",
    "load_pores",
    "pore_class",
    "select_structures",
    "split_indices",
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

#: ``mode`` of :func:`load_pores` / :func:`select_structures`.
MODES: tuple[str, ...] = ("balanced", "full")

#: Train / validation / test fractions of the ``"full"`` mode.
SPLIT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)


def pore_class(pld: float) -> int:
    """Class index of a pore-limiting diameter ``pld`` (A)."""
    return int(np.searchsorted(PLD_EDGES, pld, side="right"))


def default_cache_dir() -> Path:
    """``$ANDERSONN_CACHE/alms-pores``, else ``~/.cache/andersonn/alms-pores`` (as the chem side)."""
    env = os.environ.get("ANDERSONN_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "andersonn") / "alms-pores"


def select_structures(
    max_structures: int | None = None, seed: int = 0, dataset: str = DEFAULT_SET, *, mode: str = "balanced"
) -> dict[str, int]:
    """``refcode -> class`` of the structures in the data set (seeded, deterministic).

    ``mode="balanced"``: ``max_structures=0`` all structures; otherwise
    (``None``: 2000) ``max_structures // 4`` drawn at random (``seed``) from
    each class, or the whole class if smaller.  ``mode="full"``: every
    structure with a Zeo++ PLD (``max_structures`` ``None`` or ``0``), or a
    draw of ``max_structures`` that keeps the class proportions (largest
    remainder, at least one of every class present).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; the modes are {', '.join(MODES)}")
    table = coremof_table(dataset)
    labels = {ref: pore_class(row["PLD"]) for ref, row in sorted(table.items())
              if np.isfinite(row["PLD"])}
    if mode == "full":
        if not max_structures or max_structures >= len(labels):
            return labels
        return _natural_draw(labels, max_structures, seed)
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


def _natural_draw(labels: dict[str, int], n: int, seed: int) -> dict[str, int]:
    """``n`` of ``labels`` drawn per class in proportion to the class sizes.

    >>> lab = {f"r{i}": 0 if i < 6 else 1 for i in range(8)}
    >>> sorted(np.bincount(list(_natural_draw(lab, 4, 0).values())).tolist())
    [1, 3]
    """
    counts = np.bincount(list(labels.values()), minlength=len(CLASS_NAMES))
    share = counts * n / counts.sum()
    take = np.floor(share).astype(int)
    take = np.where((counts > 0) & (take == 0), 1, take)  # keep every class present
    for c in np.argsort(-(share - np.floor(share)), kind="stable"):
        if take.sum() >= n:
            break
        if take[c] < counts[c]:
            take[c] += 1
    rng = np.random.default_rng(seed)
    chosen: dict[str, int] = {}
    for c in range(len(CLASS_NAMES)):
        refs = sorted(r for r, y in labels.items() if y == c)
        for i in sorted(rng.permutation(len(refs))[: take[c]]):
            chosen[refs[i]] = c
    return dict(sorted(chosen.items()))


def _can_stratify(y: np.ndarray, n_test: int) -> bool:
    counts = np.bincount(y)
    present = counts[counts > 0]
    return len(present) > 0 and present.min() >= 2 and min(n_test, len(y) - n_test) >= len(present)


def split_indices(
    y: np.ndarray, seed: int = 0, fractions: tuple[float, ...] = SPLIT_FRACTIONS
) -> tuple[np.ndarray, ...]:
    """Sorted index arrays of a seeded split of ``y`` stratified by class.

    ``fractions``: ``(train, test)`` or ``(train, val, test)``, summing to 1.
    The test part is split off first, then validation from the rest, each with
    scikit-learn's ``train_test_split(stratify=...)``, so every part keeps the
    class proportions (to within one structure per class).  A part too small
    for every class, or a class with one member, falls back to an
    unstratified split.

    >>> y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    >>> tr, va, te = split_indices(y, seed=0)
    >>> len(tr), len(va), len(te), np.bincount(y[te]).tolist(), np.bincount(y[va]).tolist()
    (80, 10, 10, [6, 3, 1], [6, 3, 1])
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    if len(fractions) not in (2, 3) or not np.isclose(sum(fractions), 1.0) or min(fractions) <= 0:
        raise ValueError(f"fractions must be 2 or 3 positive numbers summing to 1, got {fractions}")

    def cut(idx: np.ndarray, size: float | int) -> tuple[np.ndarray, np.ndarray]:
        n_test = size if isinstance(size, int) else int(np.ceil(size * len(idx)))
        strat = y[idx] if _can_stratify(y[idx], n_test) else None
        a, b = train_test_split(idx, test_size=size, random_state=seed, stratify=strat)
        return np.sort(a), np.sort(b)

    idx = np.arange(len(y))
    rest, te = cut(idx, float(fractions[-1]))
    if len(fractions) == 2:
        return rest, te
    # the validation size as a count of the whole set: a fraction of the rest
    # (0.1 / 0.9) would round up to one structure too many
    n_val = max(1, int(round(fractions[1] * len(y))))
    tr, va = cut(rest, n_val)
    return tr, va, te


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
    *,
    mode: str = "balanced",
    channels: str | Sequence[str] | None = None,
) -> dict:
    """The ``alms-pores`` data set: 16-channel images of MOFs and their PLD class.

    Builds the image cache on first use (progress bar, resumable, parallel via
    :func:`andersonn.parallel.map_cached`: ``scheduler`` ``None`` = a local
    Dask cluster, ``"synchronous"`` or a ``tcp://`` address), then loads from
    it.  ``mode="balanced"`` (default): ``max_structures`` ``None`` = 2000
    (500 per class), ``0`` = all 12,020 with their natural balance; split
    train/test 80/20 stratified, seeded by ``seed``.  ``mode="full"``: every
    structure with its natural balance (``max_structures=n``: a proportional
    draw of ``n``), split train/val/test 80/10/10 stratified (see
    :func:`split_indices`).  ``channels``: names or groups of
    :data:`~andersonn.materials.channels.CHANNELS` to keep (default all;
    ``ValueError`` for an unknown name).

    Returns ``{"x_train": float32 (N, C, S, S), "y_train": int64 (N,), "x_test",
    "y_test", "class_names", "meta"}``, plus ``"x_val"``, ``"y_val"`` in the
    full mode; ``meta`` holds the mode, bins, kept channels, class balance of
    every split, counts, skipped structures with reasons (and counts by
    reason), the refcodes of each split and the sources.

    >>> d = load_pores(max_structures=8, image_size=8, scheduler="synchronous")  # doctest: +SKIP
    >>> d["x_train"].shape[1:], d["class_names"][3]                             # doctest: +SKIP
    ((16, 8, 8), 'nucleic-acid')
    >>> d = load_pores(mode="full", channels="graph", scheduler="synchronous")  # doctest: +SKIP
    >>> d["x_val"].shape[1], d["meta"]["class_balance"]["test"]                 # doctest: +SKIP
    (9, {'gas': ..., 'small-molecule': ..., 'large-molecule': ..., 'nucleic-acid': ...})
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; the modes are {', '.join(MODES)}")
    keep = select_channels(channels)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    labels = select_structures(max_structures, seed, mode=mode)
    cifs = extract_cifs(labels, root / "cifs")
    missing = sorted(set(labels) - set(cifs))
    records = build_image_cache(
        {r: cifs[r] for r in sorted(cifs)}, root, image_size, scheduler=scheduler, desc="alms-pores images"
    )
    good = sorted(r for r, rec in records.items() if "error" not in rec)
    skipped = {r: rec["error"] for r, rec in sorted(records.items()) if "error" in rec}
    skipped.update({r: "CIF not found in the core-mof archive" for r in missing})
    need = 3 if mode == "full" else 2
    if len(good) < need:
        raise RuntimeError(f"alms-pores: only {len(good)} usable structures; skipped: {skipped}")
    y = np.array([labels[r] for r in good], dtype=np.int64)
    fractions = SPLIT_FRACTIONS if mode == "full" else (0.8, 0.2)
    parts = dict(zip(("train", "val", "test") if mode == "full" else ("train", "test"),
                     split_indices(y, seed, fractions)))

    def images(part: np.ndarray) -> np.ndarray:
        # filled in place: the full set is ~0.7 GB at 16 x 32 x 32, so no stacked copy
        out = np.empty((len(part), len(keep), image_size, image_size), dtype=np.float32)
        for k, i in enumerate(part):
            out[k] = load_image(root, records[good[i]])[keep]
        return out

    def balance(part: np.ndarray) -> dict[str, int]:
        c = np.bincount(y[part], minlength=len(CLASS_NAMES))
        return {name: int(n) for name, n in zip(CLASS_NAMES, c)}

    idx = np.arange(len(good))
    te = parts["test"]
    seconds = [records[r]["seconds"] for r in good]
    meta = {
        "task": "alms-pores",
        "mode": mode,
        "label": "PLD (pore-limiting diameter, A; Zeo++ values from CoRE MOF 2019)",
        "bins": PORE_BINS,
        "channels": [CHANNELS[i] for i in keep],
        "image_size": image_size,
        "seed": seed,
        "max_structures": (DEFAULT_MAX_STRUCTURES if max_structures is None and mode == "balanced"
                           else max_structures),
        "split": "/".join(parts) + " " + "/".join(f"{round(100 * f)}" for f in fractions)
                 + " %, stratified by class (unstratified only where a class is too small)",
        "n_selected": len(labels),
        "n_used": len(good),
        "n_skipped": len(skipped),
        "class_balance": {"all": balance(idx), **{k: balance(v) for k, v in parts.items()}},
        "majority_test_accuracy": float(np.bincount(y[te]).max() / len(te)),
        "skipped": skipped,
        "skipped_reasons": dict(Counter(_reason(e) for e in skipped.values()).most_common()),
        "build_seconds_per_structure": float(np.mean(seconds)),
        **{f"refcodes_{k}": [good[i] for i in v] for k, v in parts.items()},
        # per-structure lists: kept for the baselines, too large for a trained model's config.json
        "not_saved": [f"refcodes_{k}" for k in parts],
        "cache_dir": str(root),
        "sources": {
            "structures": f"CoRE MOF 2019 ({DEFAULT_SET}, all solvent removed), pip package core-mof",
            "reference": "Chung et al., J. Chem. Eng. Data 64, 5985 (2019), doi:10.1021/acs.jced.9b00835",
            "pore_sizes": "Zeo++ PLD/LCD from the CoRE MOF 2019 property table",
        },
    }
    out = {f"{xy}_{k}": (images(v) if xy == "x" else y[v]) for k, v in parts.items() for xy in ("x", "y")}
    return {**out, "class_names": list(CLASS_NAMES), "meta": meta}

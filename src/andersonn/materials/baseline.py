"""Baselines for ``alms-pores`` on the same split as the images: what a model without the image gives.

Four baselines, each fitted on the train split only and scored once on the
test split (:func:`andersonn.study.metrics.classification_metrics`: accuracy,
balanced accuracy, per-class recall, confusion matrix, and precision and
recall of the ``nucleic-acid`` class, PLD >= 10 A, on their own):

* :func:`descriptor_baseline`: gradient boosting on composition and density.
  Features per structure (no graph, no image): the atomic fraction of every
  element seen in the training set, crystal density (g/cm3), volume per atom
  (A^3) and the fraction of metal atoms.  Density and volume per atom alone
  already say a lot about porosity, which is why this is a bar the image has to
  clear.
* :func:`zeo_baseline`: gradient boosting on every Zeo++ descriptor of the
  CoRE MOF table *except the PLD*, the label's own column
  (:data:`ZEO_FEATURES`: LCD, LFPD, density, accessible and non-accessible
  surface areas and pore volumes, void fraction).  The LCD and LFPD bound the
  PLD from above, so this is close to an upper bar: what Zeo++'s geometry
  analysis gives without the one number the classes are cut on.
* :func:`pld_threshold_baselines`: no learning, only physics: our own PLD
  estimate (``2 x`` the percolation radius of
  :mod:`andersonn.materials.porespace`, stored in each cache record) cut at
  the class edges (``"raw"``), and cut after adding the offset
  ``median(Zeo++ PLD - ours)`` fitted on the training split (``"shifted"``;
  our PLD runs ~0.4 A low).

The gradient boosting is scikit-learn's ``HistGradientBoostingClassifier``
with early stopping on the validation split (``data["y_val"]``, the ``full``
mode of :func:`~andersonn.materials.pores.load_pores`), or, without one, on a
stratified 10 % slice of the train split held out from fitting.

>>> pld_threshold_predict([3.9, 5.0, 9.7], offset=0.0).tolist(), pld_threshold_predict([3.9, 9.7], 0.4).tolist()
([0, 1, 2], [1, 3])
>>> res = all_baselines(load_pores(mode="full", max_structures=40, scheduler="synchronous"))  # doctest: +SKIP
>>> sorted(res)                                                                             # doctest: +SKIP
['descriptor', 'pld_threshold', 'pld_threshold_shifted', 'zeo']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from andersonn.materials.cache import cache_key
from andersonn.materials.pores import PLD_EDGES, split_indices
from andersonn.parallel import ResultCache

__all__ = [
    "LABEL_COLUMN",
    "ZEO_FEATURES",
    "all_baselines",
    "descriptor_baseline",
    "descriptor_matrix",
    "fit_pld_offset",
    "pld_threshold_baselines",
    "pld_threshold_predict",
    "zeo_baseline",
    "zeo_matrix",
]

#: The label's column in the CoRE MOF table; never a feature.
LABEL_COLUMN = "PLD"

#: Zeo++ columns of the CoRE MOF 2019 table used by :func:`zeo_baseline` (all but the PLD):
#: largest cavity and largest free sphere diameter (A), density (g/cm3; the column is
#: named ``cm3_g``), accessible / non-accessible surface area (m2/cm3, m2/g), accessible
#: void fraction, accessible / non-accessible pore volume (cm3/g).
ZEO_FEATURES: tuple[str, ...] = (
    "LCD", "LFPD", "cm3_g", "ASA_m2_cm3", "ASA_m2_g", "NASA_m2_cm3", "NASA_m2_g",
    "AV_VF", "AV_cm3_g", "NAV_cm3_g",
)

_NUCLEIC = "nucleic-acid"
_GBM = dict(max_iter=1000, learning_rate=0.05, early_stopping=True, n_iter_no_change=20)


def _is_metal(symbol: str) -> bool:
    from pymatgen.core import Element

    return bool(Element(symbol).is_metal)


def descriptor_matrix(
    records: Sequence[Mapping[str, Any]], elements: Sequence[str]
) -> np.ndarray:
    """Feature matrix ``(len(records), len(elements) + 3)`` from cache records.

    >>> descriptor_matrix([{"composition": {"Na": .5, "Cl": .5}, "density": 2.2,
    ...                     "volume_per_atom": 22.4, "mean_coordination": 6.0}], ["Cl", "Na"])
    array([[ 0.5,  0.5,  2.2, 22.4,  0.5]])
    """
    col = {e: i for i, e in enumerate(elements)}
    x = np.zeros((len(records), len(elements) + 3))
    for r, rec in enumerate(records):
        comp = rec["composition"]
        for el, frac in comp.items():
            if el in col:
                x[r, col[el]] = frac
        x[r, -3] = rec["density"]
        x[r, -2] = rec["volume_per_atom"]
        x[r, -1] = sum(f for el, f in comp.items() if _is_metal(el))
    return x


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def zeo_matrix(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = ZEO_FEATURES) -> np.ndarray:
    """``(len(rows), len(columns))`` float matrix of table rows; unparseable cells are NaN.

    Refuses the label column :data:`LABEL_COLUMN`.

    >>> zeo_matrix([{"LCD": "7.5", "LFPD": 6.9, "PLD": 5.0}], ["LCD", "LFPD"]).tolist()
    [[7.5, 6.9]]
    >>> zeo_matrix([{"PLD": 5.0}], ["PLD"])
    Traceback (most recent call last):
    ...
    ValueError: 'PLD' is the label column and cannot be a feature
    """
    if LABEL_COLUMN in columns:
        raise ValueError(f"{LABEL_COLUMN!r} is the label column and cannot be a feature")
    return np.array([[_float(row.get(c)) for c in columns] for row in rows], dtype=np.float64).reshape(
        len(rows), len(columns))


def pld_threshold_predict(pld: Sequence[float] | np.ndarray, offset: float = 0.0) -> np.ndarray:
    """Class of each PLD estimate ``pld + offset`` (A) at the edges :data:`~andersonn.materials.pores.PLD_EDGES`.

    >>> pld_threshold_predict([5.0]).tolist()
    [1]
    """
    return np.searchsorted(PLD_EDGES, np.asarray(pld, dtype=float) + float(offset), side="right").astype(np.int64)


def fit_pld_offset(ours: Sequence[float] | np.ndarray, zeo: Sequence[float] | np.ndarray) -> float:
    """``median(zeo - ours)`` over the finite pairs: the shift that lines our PLD up with Zeo++'s.

    >>> fit_pld_offset([3.5, 5.6, 9.0], [4.0, 6.0, 9.3])
    0.4
    """
    d = np.asarray(zeo, dtype=float) - np.asarray(ours, dtype=float)
    d = d[np.isfinite(d)]
    return float(np.round(np.median(d), 10)) if len(d) else 0.0


# --------------------------------------------------------------------------
# the split, the records, the scoring


def _parts(data: Mapping[str, Any]) -> dict[str, tuple[list[str], np.ndarray]]:
    """``part -> (refcodes, labels)`` for train, test and (if present) val."""
    meta = data["meta"]
    out = {}
    for part in ("train", "val", "test"):
        if data.get(f"y_{part}") is not None and f"refcodes_{part}" in meta:
            refs, y = list(meta[f"refcodes_{part}"]), np.asarray(data[f"y_{part}"], dtype=np.int64)
            if len(refs) != len(y):
                raise ValueError(f"meta['refcodes_{part}'] has {len(refs)} entries, y_{part} {len(y)}")
            out[part] = (refs, y)
    return out


def _cache_records(data: Mapping[str, Any], refcodes: Sequence[str]) -> dict[str, dict[str, Any]]:
    meta = data["meta"]
    size = int(meta["image_size"])
    with ResultCache(Path(meta["cache_dir"]) / "records.sqlite") as cache:
        return {r: cache.get(cache_key(r, size)) for r in refcodes}


def _table(data: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    from andersonn.materials.coremof import DEFAULT_SET, coremof_table

    return coremof_table(data["meta"].get("dataset", DEFAULT_SET))


def _scores(y_true: np.ndarray, proba: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    from andersonn.study.metrics import classification_metrics

    m = classification_metrics(y_true, proba, class_names=names)
    out = {
        "n_test": int(len(y_true)),
        "accuracy": m["accuracy"],
        "balanced_accuracy": m["balanced_accuracy"],
        "per_class_recall": {n: v["recall"] for n, v in m["per_class"].items()},
        "confusion_matrix": m["confusion_matrix"],
        "majority_accuracy": float(np.bincount(y_true).max() / len(y_true)) if len(y_true) else math.nan,
        "metrics": m,
    }
    if _NUCLEIC in m["per_class"]:
        out["nucleic_acid"] = dict(m["per_class"][_NUCLEIC])  # PLD >= 10 A: precision, recall, support
    return out


def _one_hot(pred: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[pred]


def _gbm(x: dict[str, np.ndarray], y: dict[str, np.ndarray], names: Sequence[str], seed: int) -> dict[str, Any]:
    """Fit on train with early stopping (val split, else a slice of train), score on test."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x_tr, y_tr = x["train"], y["train"]
    n_train = len(y_tr)
    if "val" in y:
        x_va, y_va, stop_on = x["val"], y["val"], "validation split"
    else:
        fit, held = split_indices(y_tr, seed, (0.9, 0.1))
        x_va, y_va, stop_on = x_tr[held], y_tr[held], "10 % of the train split, held out from fitting"
        x_tr, y_tr = x_tr[fit], y_tr[fit]
    seen = np.isin(y_va, np.unique(y_tr))  # the booster cannot score a class it never saw
    opts = dict(_GBM)
    if not seen.any():  # only on toy sets: nothing to stop on
        opts.update(early_stopping=False, max_iter=100)
        stop_on = "none (no usable validation rows)"
    model = HistGradientBoostingClassifier(random_state=seed, **opts)
    if seen.any():
        model.fit(x_tr, y_tr, X_val=x_va[seen], y_val=y_va[seen])
    else:
        model.fit(x_tr, y_tr)
    proba = np.zeros((len(y["test"]), len(names)))
    proba[:, model.classes_] = model.predict_proba(x["test"])
    return {
        "model": f"HistGradientBoostingClassifier({', '.join(f'{k}={v}' for k, v in opts.items())})",
        "early_stopping_on": stop_on,
        "n_iter": int(model.n_iter_),
        "n_train": int(n_train),
        "n_fit": int(len(y_tr)),
        "n_early_stopping": int(seen.sum()),
        **_scores(y["test"], proba, names),
    }


# --------------------------------------------------------------------------
# the baselines


def descriptor_baseline(data: Mapping[str, Any], *, seed: int = 0,
                        records: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Gradient boosting on composition and density, on ``data``'s split.

    ``data`` is the output of :func:`andersonn.materials.pores.load_pores`
    (its ``meta`` names the cache and the refcodes of each split);
    ``records``: ``refcode -> cache record`` instead of reading the cache.
    Returns the scores of :func:`_scores` (``accuracy``,
    ``balanced_accuracy``, ``per_class_recall``, ``confusion_matrix``,
    ``nucleic_acid``, ``metrics``, ``majority_accuracy``, ``n_test``),
    ``per_class_accuracy`` (= recall), ``n_train`` (the train split),
    ``n_fit`` / ``n_early_stopping`` (rows fitted on / stopped on),
    ``early_stopping_on``, ``n_iter``, ``model``, ``features``.
    """
    parts = _parts(data)
    if records is None:
        records = _cache_records(data, [r for refs, _ in parts.values() for r in refs])
    elements = sorted({el for r in parts["train"][0] for el in records[r]["composition"]})
    x = {p: descriptor_matrix([records[r] for r in refs], elements) for p, (refs, _) in parts.items()}
    res = _gbm(x, {p: y for p, (_, y) in parts.items()}, list(data["class_names"]), seed)
    res["per_class_accuracy"] = {n: v for n, v in res["per_class_recall"].items() if not math.isnan(v)}
    res["features"] = [f"frac_{e}" for e in elements] + ["density_g_cm3", "volume_per_atom_A3", "metal_fraction"]
    return res


def zeo_baseline(data: Mapping[str, Any], *, seed: int = 0,
                 table: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Gradient boosting on the Zeo++ descriptors :data:`ZEO_FEATURES` (no PLD), on ``data``'s split.

    ``table``: ``refcode -> row`` (default: the CoRE MOF 2019 table of
    :func:`~andersonn.materials.coremof.coremof_table`).  Returns the scores
    as :func:`descriptor_baseline` and ``features``.
    """
    table = _table(data) if table is None else table
    parts = _parts(data)
    x = {p: zeo_matrix([table[r] for r in refs]) for p, (refs, _) in parts.items()}
    res = _gbm(x, {p: y for p, (_, y) in parts.items()}, list(data["class_names"]), seed)
    res["features"] = list(ZEO_FEATURES)
    return res


def pld_threshold_baselines(data: Mapping[str, Any], *,
                            records: Mapping[str, Mapping[str, Any]] | None = None,
                            table: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Our PLD estimate cut at the class edges: ``{"raw": ..., "shifted": ...}``.

    Our PLD is ``record["porespace"]["pld"]`` of each cache record (or
    ``records``).  ``raw``: the edges as they are.  ``shifted``: our PLD plus
    :func:`fit_pld_offset` of the train split against the Zeo++ PLD of
    ``table`` (default: the CoRE MOF table), i.e. the edges moved down by that
    offset.  Each result: the scores, ``offset`` (A) and ``n_train`` (the
    structures the offset was fitted on; 0 for ``raw``).
    """
    parts = _parts(data)
    if records is None:
        records = _cache_records(data, [r for p in ("train", "test") for r in parts[p][0]])
    names = list(data["class_names"])

    def ours(refs: Sequence[str]) -> np.ndarray:
        return np.array([records[r]["porespace"]["pld"] for r in refs], dtype=float)

    table = _table(data) if table is None else table
    tr_refs = parts["train"][0]
    offset = fit_pld_offset(ours(tr_refs), [_float(table[r][LABEL_COLUMN]) for r in tr_refs])
    te_refs, y_te = parts["test"]
    out = {}
    for name, off, n in (("raw", 0.0, 0), ("shifted", offset, len(tr_refs))):
        pred = pld_threshold_predict(ours(te_refs), off)
        scores = _scores(y_te, _one_hot(pred, len(names)), names)
        # a hard 0/1 prediction has no ranking to speak of
        scores["metrics"].pop("roc_auc", None)
        out[name] = {"model": f"our PLD (2 x percolation radius) + {off:.3f} A, cut at {list(PLD_EDGES)} A",
                     "offset": off, "n_train": n, **scores}
    return out


def all_baselines(data: Mapping[str, Any], *, seed: int = 0,
                  records: Mapping[str, Mapping[str, Any]] | None = None,
                  table: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """All four baselines on ``data``'s split: ``descriptor``, ``zeo``, ``pld_threshold``, ``pld_threshold_shifted``."""
    parts = _parts(data)
    if records is None:
        records = _cache_records(data, [r for refs, _ in parts.values() for r in refs])
    table = _table(data) if table is None else table
    thr = pld_threshold_baselines(data, records=records, table=table)
    return {
        "descriptor": descriptor_baseline(data, seed=seed, records=records),
        "zeo": zeo_baseline(data, seed=seed, table=table),
        "pld_threshold": thr["raw"],
        "pld_threshold_shifted": thr["shifted"],
    }

"""Baselines a polarity classifier must beat, on the same split: the physics alone and gradient boosting.

* :func:`cut_baseline`: one physics number (the point-charge or GFN2-xTB dipole at the same geometry)
  thresholded at the cut that is most accurate on a fitting split (the class threshold is on DFT
  dipoles; xTB runs high, so its best cut is not 3.0 D);
* :func:`fingerprint_features`: Morgan fingerprint (radius 2, 1,024 bits) and 120 RDKit 2-D descriptors;
* :func:`image_geometry_features`: rotation-invariant 3-D numbers read off a geometry-aware image
  (the squared MMFF94 and GFN2-xTB dipoles, group-dipole sizes, charges, distances);
* :func:`gbm_baseline`: scikit-learn's histogram gradient boosting on any of these, stopped early on
  its own slice of the training split (the test split is scored once).

>>> import numpy as np
>>> r = cut_baseline(np.array([1.0, 2.0, 4.0, 5.0]), np.array([0, 0, 1, 1]), np.array([1.5, 4.5]), np.array([0, 1]))
>>> r["cut"], r["test"]["accuracy"]
(3.0, 1.0)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from andersonn.study.metrics import classification_metrics

__all__ = ["cut_baseline", "fingerprint_features", "image_geometry_features", "gbm_baseline", "DESCRIPTOR_COUNT"]

DESCRIPTOR_COUNT = 120


def cut_baseline(score_fit: np.ndarray, y_fit: np.ndarray, score_test: np.ndarray, y_test: np.ndarray) -> dict[str, Any]:
    """Threshold ``score`` at the cut most accurate on the fitting split; metrics on the test split.

    The cut is the midpoint between consecutive sorted fitting scores that maximises accuracy.
    """
    order = np.argsort(score_fit)
    s, y = np.asarray(score_fit, float)[order], np.asarray(y_fit, int)[order]
    # accuracy when everything at or above position k is called class 1
    ones_above = np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    zeros_below = np.concatenate([[0], np.cumsum(1 - y)])
    acc = (ones_above + zeros_below) / len(y)
    k = int(np.argmax(acc))
    cut = float(s[0] - 1.0) if k == 0 else float(s[-1] + 1.0) if k == len(s) else float(0.5 * (s[k - 1] + s[k]))
    return {"cut": cut, "fit_accuracy": float(acc[k]),
            "test": classification_metrics(np.asarray(y_test, int), np.asarray(score_test, float) - cut, threshold=0.0)}


def _fingerprint_chunk(smiles: list[str]) -> list[np.ndarray | None]:
    from rdkit import Chem, DataStructs
    from rdkit.Chem import Descriptors, rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    fns = [fn for _, fn in Descriptors._descList[:DESCRIPTOR_COUNT]]
    out: list[np.ndarray | None] = []
    for smi in smiles:
        mol = Chem.MolFromSmiles(smi)
        if mol is None:
            out.append(None)
            continue
        bits = np.zeros(1024, dtype=np.float32)
        DataStructs.ConvertToNumpyArray(gen.GetFingerprint(mol), bits)
        desc = []
        for fn in fns:
            try:
                desc.append(float(fn(mol)))
            except Exception:  # a descriptor undefined for this molecule
                desc.append(np.nan)
        out.append(np.concatenate([bits, np.asarray(desc, dtype=np.float32)]))
    return out


def fingerprint_features(smiles: Sequence[str], scheduler: str | None = "synchronous", progress: bool = False) -> np.ndarray:
    """``(n, 1024 + 120)`` float32: Morgan bits and RDKit descriptors (NaN where undefined or unparsable).

    >>> fingerprint_features(["CCO", "c1ccccc1"]).shape
    (2, 1144)
    """
    from andersonn.parallel import map_chunks

    rows = map_chunks(_fingerprint_chunk, list(smiles), chunk_size=500, scheduler=scheduler,
                      desc="fingerprints", progress=progress)
    width = 1024 + DESCRIPTOR_COUNT
    return np.stack([r if r is not None else np.full(width, np.nan, np.float32) for r in rows]) if rows else np.zeros((0, width), np.float32)


def image_geometry_features(x: np.ndarray, channels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Rotation-invariant 3-D features from geometry-aware images ``(n, C, N, N)`` (see
    :func:`andersonn.chem.image.structure_to_image`): per charge model the squared dipole (sum of the
    ``dipole_dot`` pixels) and its square root, the largest and summed group-dipole sizes |p_i| (the
    diagonal), the largest |Q_i|; rows; largest and mean distance."""
    ch = {c: i for i, c in enumerate(channels)}
    rows = (np.diagonal(x[:, [i for c, i in ch.items() if c.startswith("element_")]], axis1=2, axis2=3).sum(1) > 0)
    feats, names = [rows.sum(1).astype(np.float32)], ["rows"]
    if "distance" in ch:
        d = x[:, ch["distance"]]
        feats += [d.max((1, 2)), d.sum((1, 2)) / np.maximum(rows.sum(1) ** 2, 1)]
        names += ["max_distance", "mean_distance"]
    for model in ("mmff", "gfn2"):
        if f"dipole_dot_{model}" in ch:
            dd = x[:, ch[f"dipole_dot_{model}"]]
            mu2 = dd.sum((1, 2))
            diag = np.sqrt(np.clip(np.diagonal(dd, axis1=1, axis2=2), 0, None))
            feats += [mu2, np.sqrt(np.clip(mu2, 0, None)), diag.max(1), diag.sum(1)]
            names += [f"mu2_{model}", f"mu_{model}", f"max_group_dipole_{model}", f"sum_group_dipole_{model}"]
        if f"charge_product_{model}" in ch:
            qq = np.diagonal(x[:, ch[f"charge_product_{model}"]], axis1=1, axis2=2)
            feats.append(np.sqrt(np.clip(qq, 0, None)).max(1))
            names.append(f"max_group_charge_{model}")
    return np.stack(feats, axis=1).astype(np.float32), names


def gbm_baseline(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                 seed: int = 0, max_iter: int = 500) -> dict[str, Any]:
    """Histogram gradient boosting (early stopping on 10% of the training split); test metrics.

    >>> rng = np.random.default_rng(0); x = rng.normal(size=(400, 3)); y = (x[:, 0] > 0).astype(int)
    >>> gbm_baseline(x[:300], y[:300], x[300:], y[300:])["test"]["accuracy"] > 0.9
    True
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=0.1, early_stopping=True,
                                         validation_fraction=0.1, n_iter_no_change=20, random_state=seed)
    clf.fit(x_train, y_train)
    prob = clf.predict_proba(x_test)[:, 1]
    return {"n_train": int(len(y_train)), "iterations": int(clf.n_iter_), "test": classification_metrics(y_test, prob),
            "test_probability": prob}

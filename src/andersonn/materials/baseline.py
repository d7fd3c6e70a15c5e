"""Descriptor baseline for ``alms-pores``: gradient boosting on composition and density.

Features per structure (no graph, no image): the atomic fraction of every
element seen in the training set, crystal density (g/cm3), volume per atom
(A^3) and the fraction of metal atoms; nothing from the bond graph.  Density and
volume per atom alone already say a lot about porosity, which is exactly why
this is the bar the graph image has to clear.  The model is scikit-learn's
``HistGradientBoostingClassifier`` on the same train/test split as the images.

>>> res = descriptor_baseline(load_pores(max_structures=40, scheduler="synchronous"))  # doctest: +SKIP
>>> 0.0 <= res["accuracy"] <= 1.0                                                       # doctest: +SKIP
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from andersonn.materials.cache import cache_key
from andersonn.parallel import ResultCache

__all__ = ["descriptor_baseline", "descriptor_matrix"]


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


def descriptor_baseline(data: Mapping[str, Any], *, seed: int = 0) -> dict[str, Any]:
    """Fit gradient boosting on descriptors of ``data``'s train split, score its test split.

    ``data`` is the output of :func:`andersonn.materials.pores.load_pores`
    (its ``meta`` names the cache and the refcodes of each split).  Returns
    ``{"accuracy", "majority_accuracy", "n_train", "n_test", "features",
    "per_class_accuracy"}``.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    meta = data["meta"]
    size = int(meta["image_size"])
    with ResultCache(Path(meta["cache_dir"]) / "records.sqlite") as cache:
        rec_tr = [cache.get(cache_key(r, size)) for r in meta["refcodes_train"]]
        rec_te = [cache.get(cache_key(r, size)) for r in meta["refcodes_test"]]
    elements = sorted({el for rec in rec_tr for el in rec["composition"]})
    x_tr, x_te = descriptor_matrix(rec_tr, elements), descriptor_matrix(rec_te, elements)
    y_tr, y_te = np.asarray(data["y_train"]), np.asarray(data["y_test"])
    model = HistGradientBoostingClassifier(random_state=seed, max_iter=300, learning_rate=0.05)
    model.fit(x_tr, y_tr)
    pred = model.predict(x_te)
    names = list(data["class_names"])
    per_class = {
        names[c]: float((pred[y_te == c] == c).mean()) for c in range(len(names)) if (y_te == c).any()
    }
    return {
        "model": "HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05)",
        "accuracy": float((pred == y_te).mean()),
        "majority_accuracy": float(np.bincount(y_te).max() / len(y_te)),
        "per_class_accuracy": per_class,
        "n_train": int(len(y_tr)),
        "n_test": int(len(y_te)),
        "features": [f"frac_{e}" for e in elements]
        + ["density_g_cm3", "volume_per_atom_A3", "metal_fraction"],
    }

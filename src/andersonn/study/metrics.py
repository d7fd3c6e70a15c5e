"""Classification metrics a screening decision needs: beyond accuracy, what the class balance asks for.

>>> import numpy as np
>>> m = classification_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.7, 0.9]))
>>> m["accuracy"], m["balanced_accuracy"], m["roc_auc"], m["confusion_matrix"]
(0.75, 0.75, 1.0, [[1, 1], [0, 2]])
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["classification_metrics", "accuracy_by_margin", "calibration_bins", "expected_calibration_error",
           "MARGIN_EDGES", "threshold_task_metrics"]

#: Bins of |target - threshold| (Debye for the polarity tasks) in :func:`threshold_task_metrics`.
MARGIN_EDGES = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 100.0)


def classification_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float = 0.5,
                           class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy, balanced accuracy, ROC-AUC, confusion matrix, per-class precision and recall, Brier score.

    ``score`` is the probability (or any monotone score) of class 1 for a binary task, or an
    ``(n, k)`` array of class probabilities; ``threshold`` cuts a binary score.
    """
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score

    y_true = np.asarray(y_true).astype(int)
    score = np.asarray(score, dtype=float)
    if score.ndim == 2:
        pred = score.argmax(axis=1)
        k = score.shape[1]
    else:
        pred = (score >= threshold).astype(int)
        k = 2
    labels = list(range(k))
    cm = confusion_matrix(y_true, pred, labels=labels)
    names = list(class_names) if class_names is not None else [str(i) for i in labels]
    per_class = {}
    for i, name in enumerate(names):
        tp = cm[i, i]
        per_class[name] = {"precision": float(tp / cm[:, i].sum()) if cm[:, i].sum() else float("nan"),
                           "recall": float(tp / cm[i].sum()) if cm[i].sum() else float("nan"), "support": int(cm[i].sum())}
    out: dict[str, Any] = {
        "n": int(len(y_true)), "accuracy": float((pred == y_true).mean()) if len(y_true) else float("nan"),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, pred)) if len(y_true) else float("nan"),
        "confusion_matrix": cm.tolist(), "per_class": per_class,
    }
    try:
        if score.ndim == 2:
            out["roc_auc"] = float(roc_auc_score(y_true, score, multi_class="ovr", labels=labels))
        else:
            out["roc_auc"] = float(roc_auc_score(y_true, score))
    except ValueError:  # one class only
        out["roc_auc"] = float("nan")
    if score.ndim == 1 and np.all((score >= 0) & (score <= 1)):
        out["brier"] = float(np.mean((score - y_true) ** 2))
    return out


def accuracy_by_margin(correct: np.ndarray, margin: np.ndarray, edges: Sequence[float]) -> list[dict[str, Any]]:
    """Accuracy in bins of ``margin`` (e.g. |dipole - threshold| in Debye): where the errors sit.

    >>> accuracy_by_margin(np.array([0, 1, 1, 1]), np.array([0.05, 0.1, 1.0, 2.0]), [0, 0.3, 10])
    [{'low': 0, 'high': 0.3, 'n': 2, 'accuracy': 0.5}, {'low': 0.3, 'high': 10, 'n': 2, 'accuracy': 1.0}]
    """
    correct = np.asarray(correct, dtype=float)
    margin = np.asarray(margin, dtype=float)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (margin >= lo) & (margin < hi)
        rows.append({"low": lo, "high": hi, "n": int(sel.sum()),
                     "accuracy": float(correct[sel].mean()) if sel.any() else float("nan")})
    return rows


def calibration_bins(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> list[dict[str, Any]]:
    """Reliability table: mean predicted probability of class 1 against the observed fraction, per bin.

    >>> calibration_bins(np.array([0, 1, 1, 1]), np.array([0.1, 0.9, 0.8, 0.95]), n_bins=2)[1]["observed"]
    1.0
    """
    y_true = np.asarray(y_true, dtype=float)
    prob = np.asarray(prob, dtype=float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(prob, edges[1:-1]), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = idx == b
        rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": int(sel.sum()),
                     "predicted": float(prob[sel].mean()) if sel.any() else float("nan"),
                     "observed": float(y_true[sel].mean()) if sel.any() else float("nan")})
    return rows


def expected_calibration_error(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> float:
    """Binary ECE over the :func:`calibration_bins` table: the sample-weighted mean of
    |observed fraction - mean predicted probability of class 1|.

    >>> round(expected_calibration_error(np.array([0, 1, 1, 1]), np.array([0.1, 0.9, 0.8, 0.95])), 4)
    0.1125
    """
    rows = calibration_bins(y_true, prob, n_bins)
    n = sum(r["n"] for r in rows)
    return float(sum(r["n"] * abs(r["observed"] - r["predicted"]) for r in rows if r["n"]) / max(1, n))


def threshold_task_metrics(y_true: np.ndarray, prob: np.ndarray, target: np.ndarray, threshold: float,
                           class_names: Sequence[str] | None = None,
                           margin_edges: Sequence[float] = MARGIN_EDGES) -> dict[str, Any]:
    """Everything a report gives a binary task defined by ``target >= threshold`` (a dipole, a pore size):
    :func:`classification_metrics` of ``prob`` (probability of class 1), its ECE, accuracy against
    |target - threshold| and the calibration table. The per-sample probabilities are left out.

    >>> m = threshold_task_metrics(np.array([0, 1, 1]), np.array([0.2, 0.7, 0.4]), np.array([2.0, 3.5, 3.1]), 3.0)
    >>> round(m["accuracy"], 3), [r["n"] for r in m["accuracy_by_margin"] if r["n"]]
    (0.667, [1, 1, 1])
    """
    m = {k: v for k, v in classification_metrics(y_true, prob, class_names=class_names).items() if k != "test_probability"}
    m["ece"] = expected_calibration_error(y_true, prob)
    m["accuracy_by_margin"] = accuracy_by_margin((prob >= 0.5) == y_true, np.abs(target - threshold), margin_edges)
    m["calibration"] = calibration_bins(y_true, prob)
    return m

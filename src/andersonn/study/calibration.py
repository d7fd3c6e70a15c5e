"""Recalibrating a trained classifier's probabilities for the inputs it will really see.

A model trained on one kind of input and used on another (alms-qm9: trained at DFT geometries,
screening RDKit conformers) keeps its training confidence and is wrong more often than it says.
:func:`fit_logit_scaling` fits ``softmax(a * logits + b)`` (one scale ``a``, a bias per class with
``b[0] = 0``; for two classes this is Platt scaling of the logit margin) by minimising the
negative log-likelihood on labelled examples of the new kind of input. A validation split, never
the test split, is what it should be fitted on.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 4000)
>>> margin = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.0, 4000)   # true P(y=1) = sigmoid(2 * margin)
>>> logits = np.stack([np.zeros(4000), 6 * margin], 1)               # an over-confident model: 6x too sharp
>>> s = fit_logit_scaling(logits, y)
>>> round(s.scale, 1), abs(s.bias[1]) < 0.1
(0.3, True)
>>> p = s.probabilities(logits)
>>> bool(expected_calibration_error(y, p[:, 1]) < expected_calibration_error(y, softmax(logits)[:, 1]))
True
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from andersonn.study.metrics import expected_calibration_error

__all__ = ["LogitScaling", "fit_logit_scaling", "softmax", "expected_calibration_error"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(n, k)`` logits, computed stably."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class LogitScaling:
    """``softmax(scale * logits + bias)``; ``fitted_on`` says on what (kept with the numbers when saved)."""

    scale: float
    bias: tuple[float, ...]
    fitted_on: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {self.scale}")
        if not all(math.isfinite(b) for b in self.bias):
            raise ValueError(f"bias must be finite, got {self.bias}")

    def logits(self, logits: Any) -> Any:
        """Rescaled logits (NumPy array or torch tensor in, the same kind out)."""
        if hasattr(logits, "new_tensor"):
            return logits * self.scale + logits.new_tensor(self.bias)
        return np.asarray(logits, dtype=np.float64) * self.scale + np.asarray(self.bias)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax(self.logits(logits))

    def save(self, path: str | Path) -> None:
        from andersonn.fileio import atomic_write_text

        atomic_write_text(json.dumps({"kind": "logit_scaling", **asdict(self)}, indent=1) + "\n", path)

    @classmethod
    def load(cls, path: str | Path) -> LogitScaling:
        """Read a file written by :meth:`save`; a malformed file is a ``ValueError`` naming it."""
        try:
            d = json.loads(Path(path).read_text())
            if d.get("kind") != "logit_scaling":
                raise ValueError(f"kind {d.get('kind')!r} is not 'logit_scaling'")
            return cls(float(d["scale"]), tuple(float(b) for b in d["bias"]), dict(d.get("fitted_on", {})))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a probability calibration file ({exc})") from None


def fit_logit_scaling(logits: np.ndarray, y: np.ndarray, fitted_on: dict[str, Any] | None = None,
                      max_iter: int = 500) -> LogitScaling:
    """Scale and per-class bias minimising the mean negative log-likelihood of ``y`` (int classes)."""
    import torch

    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    t = torch.as_tensor(np.asarray(y, dtype=np.int64))
    if z.ndim != 2 or len(z) != len(t) or len(t) == 0:
        raise ValueError(f"need (n, k) logits and n labels, got {tuple(z.shape)} and {tuple(t.shape)}")
    k = z.shape[1]
    log_scale = torch.zeros((), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(k - 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_scale, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        b = torch.cat([torch.zeros(1, dtype=torch.float64), bias])
        loss = torch.nn.functional.cross_entropy(z * log_scale.exp() + b, t)
        loss.backward()
        return loss

    opt.step(closure)
    b = (0.0, *(float(v) for v in bias.detach()))
    return LogitScaling(float(log_scale.detach().exp()), b, dict(fitted_on or {}))

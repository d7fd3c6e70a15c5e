"""Screen CIF files with a trained pore-size classifier.

>>> import torch
>>> from andersonn.materials.examples import example_cif_path
>>> uniform = lambda x: torch.full((x.shape[0], 4), 0.25)
>>> rows = screen_cifs([example_cif_path("NaCl"), example_cif_path("corrupt")], uniform, image_size=8)
>>> rows[0]["formula"], rows[0]["predicted_class"], "error" in rows[1]
('NaCl', 'gas', True)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from andersonn.materials.channels import select_channels
from andersonn.materials.cif import CifError, read_structure
from andersonn.materials.graph import structure_to_graph
from andersonn.materials.image import structure_image
from andersonn.materials.pores import CLASS_NAMES, PORE_BINS

__all__ = ["screen_cifs"]


def screen_cifs(
    paths: Sequence[str | os.PathLike[str]],
    predict_fn: Callable[[Any], Any],
    *,
    image_size: int = 32,
    class_names: Sequence[str] | None = None,
    batch_size: int = 256,
    channels: str | Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Classify each CIF in ``paths``; one row per path, in order.

    ``predict_fn(images)`` maps a ``torch.Tensor (B, C, S, S)`` float32 batch to
    class probabilities ``(B, n_classes)``.  The images are the task images of
    :func:`~andersonn.materials.image.structure_image` (16 channels);
    ``image_size`` and ``channels`` (names or groups, see
    :func:`~andersonn.materials.channels.select_channels`; default all) must be
    what the model was trained on.  A row is ``{"path", "formula", "n_atoms", "n_bonds",
    "predicted_class", "class_index", "probabilities": {name: p}, "admits"}``,
    or ``{"path", "error"}`` for a file that could not be read (the others are
    still classified).
    """
    import torch

    names = list(class_names) if class_names is not None else list(CLASS_NAMES)
    keep = select_channels(channels)
    admits = {b["name"]: b["admits"] for b in PORE_BINS}
    rows: list[dict[str, Any]] = []
    images: list[np.ndarray] = []
    slots: list[int] = []
    for path in paths:
        row: dict[str, Any] = {"path": str(path)}
        try:
            structure = read_structure(path)
            graph = structure_to_graph(structure)
            images.append(structure_image(structure, image_size, graph=graph)[keep])
            slots.append(len(rows))
            row.update(
                formula=structure.composition.reduced_formula,
                n_atoms=len(structure),
                n_bonds=graph.n_bonds,
            )
        except CifError as exc:
            row["error"] = exc.reason
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the screen
            row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.stack(images[start : start + batch_size]))
        with torch.no_grad():
            probs = torch.as_tensor(predict_fn(batch)).detach().cpu().double().numpy()
        if probs.shape != (len(batch), len(names)):
            raise ValueError(f"predict_fn returned shape {probs.shape}, expected ({len(batch)}, {len(names)})")
        for k, p in enumerate(probs):
            row = rows[slots[start + k]]
            c = int(np.argmax(p))
            row.update(
                predicted_class=names[c],
                class_index=c,
                probabilities={n: float(v) for n, v in zip(names, p)},
                admits=admits.get(names[c], ""),
            )
    return rows

"""The ALMS tasks in the dataset registry: molecules by polarity, MOFs by pore size.

The heavy lifting (RDKit/pymatgen featurisation, physics labels, caches) lives in
:mod:`andersonn.chem` and :mod:`andersonn.materials`; this module only adapts their
arrays to :class:`ImageDataset`, importing them lazily so the core package does not
need RDKit or pymatgen to start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .registry import DatasetError, ImageDataset, register_dataset


def _to_dataset(name: str, data: dict[str, Any]) -> ImageDataset:
    def t(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a)).to(dtype)

    return ImageDataset(
        name=name, x_train=t(data["x_train"], torch.float32), y_train=t(data["y_train"], torch.int64),
        x_test=t(data["x_test"], torch.float32), y_test=t(data["y_test"], torch.int64),
        class_names=list(data["class_names"]), meta=dict(data.get("meta", {})),
    )


@register_dataset("alms-pores", "CoRE MOF 2019 frameworks as periodic node-neighbour images, 4 classes by pore-limiting diameter")
def load_alms_pores(data_dir: Path | None = None, image_size: int = 32, max_structures: int | None = None,
                    seed: int = 0, scheduler: str | None = None) -> ImageDataset:
    """MOFs by pore size (see :func:`andersonn.materials.pores.load_pores`); ``data_dir`` is the image cache folder.

    The first call builds the image cache in parallel (a few minutes for the default 2,000 structures);
    later calls load it in seconds.
    """
    try:
        from ..materials.pores import load_pores
    except ImportError as exc:
        raise DatasetError(f"alms-pores needs pymatgen and core-mof ({exc}); reinstall the package") from None
    return _to_dataset("alms-pores", load_pores(cache_dir=data_dir, image_size=image_size,
                                                max_structures=max_structures, seed=seed, scheduler=scheduler))


@register_dataset("alms-polarity", "molecules (QM9 DFT + drug-like xTB dipoles) as node-neighbour images, weakly vs strongly polar; COVID-19 drugs held out in test")
def load_alms_polarity(data_dir: Path | None = None, image_size: int = 32, max_molecules: int | None = 3000,
                       seed: int = 0, n_qm9: int = 10_000, threshold: float | None = None) -> ImageDataset:
    """Molecules by dipole moment (see :func:`andersonn.chem.dataset.load_polarity`); ``data_dir`` is the image cache.

    Defaults sized for CPU training: 32x32 images (molecules of up to 32 heavy atoms; larger ones are
    listed in ``meta["skipped"]``) and 3,000 molecules; ``max_molecules=None`` takes the whole pool.
    """
    try:
        from ..chem.dataset import POLARITY_THRESHOLD_DEBYE, load_polarity
    except ImportError as exc:
        raise DatasetError(f"alms-polarity needs RDKit and qm9pack ({exc}); reinstall the package") from None
    data = load_polarity(cache_dir=data_dir, image_size=image_size, max_molecules=max_molecules, seed=seed,
                         n_qm9=n_qm9, threshold=POLARITY_THRESHOLD_DEBYE if threshold is None else threshold)
    return _to_dataset("alms-polarity", data)

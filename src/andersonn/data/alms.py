"""The ALMS tasks in the dataset registry: molecules by polarity, MOFs by pore size.

The heavy lifting (RDKit/pymatgen featurisation, physics labels, caches) lives in
:mod:`andersonn.chem` and :mod:`andersonn.materials`; this module only adapts their
arrays to :class:`ImageDataset`, importing them lazily so the core package does not
need RDKit or pymatgen to start. Loading one without its extra (``chem`` or ``materials``)
is a one-line :class:`~andersonn.extras.MissingExtraError` naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..extras import require_extra
from .registry import DatasetError, ImageDataset, register_dataset


def _to_dataset(name: str, data: dict[str, Any]) -> ImageDataset:
    def t(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a)).to(dtype)

    val = {}
    if data.get("x_val") is not None:
        val = {"x_val": t(data["x_val"], torch.float32), "y_val": t(data["y_val"], torch.int64)}
    return ImageDataset(
        name=name, x_train=t(data["x_train"], torch.float32), y_train=t(data["y_train"], torch.int64),
        x_test=t(data["x_test"], torch.float32), y_test=t(data["y_test"], torch.int64),
        class_names=list(data["class_names"]), meta=dict(data.get("meta", {})), **val,
    )


@register_dataset("alms-pores", "CoRE MOF 2019 frameworks as 16-channel images (periodic node-neighbour graph + pore profile + our pore-size estimates), 4 classes by pore-limiting diameter; mode=full: all 12,020, natural balance, train/val/test 80/10/10")
def load_alms_pores(data_dir: Path | None = None, image_size: int = 32, max_structures: int | None = None,
                    seed: int = 0, scheduler: str | None = None, mode: str = "balanced",
                    channels: str | None = None) -> ImageDataset:
    """MOFs by pore size (see :func:`andersonn.materials.pores.load_pores`); ``data_dir`` is the image cache folder.

    ``mode="balanced"`` (default): 2,000 structures, 500 per class, train/test 80/20. ``mode="full"``: every
    structure of CoRE MOF 2019 ASR with its natural balance, train/val/test 80/10/10 stratified by class
    (``max_structures=n``: a proportional draw of ``n``). ``channels``: a comma-separated subset of
    :data:`andersonn.materials.channels.CHANNELS`, or the groups ``graph`` (the 9 graph channels) and
    ``porespace`` (the 4 pore-profile channels) and ``poresize`` (our PLD/LCD/LFPD estimates as 3 constant planes), for
    ablations; the default keeps all 16. The first call
    builds the image cache in parallel (about 0.8 s a structure per worker); later calls load it.
    """
    require_extra("materials", "the alms-pores dataset", ["pymatgen", "CoRE_MOF"])
    from ..materials.channels import select_channels
    from ..materials.pores import MODES, load_pores

    if mode not in MODES:
        raise DatasetError(f"alms-pores: unknown mode {mode!r}; the modes are {', '.join(MODES)}")
    if max_structures is not None and max_structures < 0:  # would have drawn every structure, or a broken draw
        raise DatasetError(f"alms-pores: max_structures must be >= 0 (0: every structure), got {max_structures}")
    try:
        select_channels(channels)
    except ValueError as exc:
        raise DatasetError(f"alms-pores: {exc}") from None
    return _to_dataset("alms-pores", load_pores(cache_dir=data_dir, image_size=image_size,
                                                max_structures=max_structures, seed=seed, scheduler=scheduler,
                                                mode=mode, channels=channels))


@register_dataset("alms-polarity", "molecules (QM9 DFT + drug-like xTB dipoles) as node-neighbour images, weakly vs strongly polar; COVID-19 drugs held out in test")
def load_alms_polarity(data_dir: Path | None = None, image_size: int = 32, max_molecules: int | None = 3000,
                       seed: int = 0, n_qm9: int = 10_000, threshold: float | None = None) -> ImageDataset:
    """Molecules by dipole moment (see :func:`andersonn.chem.dataset.load_polarity`); ``data_dir`` is the image cache.

    Defaults sized for CPU training: 32x32 images (molecules of up to 32 heavy atoms; larger ones are
    listed in ``meta["skipped"]``) and 3,000 molecules; ``max_molecules=None`` takes the whole pool.
    """
    require_extra("chem", "the alms-polarity dataset", ["rdkit"])  # QM9 itself says so when its cache is built
    from ..chem.dataset import POLARITY_THRESHOLD_DEBYE, load_polarity

    data = load_polarity(cache_dir=data_dir, image_size=image_size, max_molecules=max_molecules, seed=seed,
                         n_qm9=n_qm9, threshold=POLARITY_THRESHOLD_DEBYE if threshold is None else threshold)
    return _to_dataset("alms-polarity", data)


@register_dataset("alms-qm9", "all of QM9 as geometry-aware images at its DFT geometry (MMFF94 and GFN2-xTB charge channels), DFT dipole >= 3 D; train/val/test 80/10/10")
def load_alms_qm9(data_dir: Path | None = None, image_size: int = 9, max_molecules: int | None = None,
                  seed: int = 0, threshold: float | None = None, hydrogens: str = "folded",
                  channels: str | None = None, scheduler: str | None = None) -> ImageDataset:
    """QM9 molecules by DFT dipole (see :func:`andersonn.chem.qm9.load_qm9_images`); ``data_dir`` is the cache.

    ``image_size``: rows of the image; 9 (the default) holds every QM9 molecule with hydrogens folded
    into their heavy atoms, explicit hydrogens need 29 or more (``hydrogens="explicit"``, up to 32).
    ``channels``: a comma-separated subset of :data:`andersonn.chem.image.GEOMETRY_CHANNELS` (for
    ablations); the default keeps them all. The first call images QM9 in parallel (~17 minutes on 2
    cores for all 130,831 molecules); later calls load the cache in about a minute.
    """
    require_extra("chem", "the alms-qm9 dataset", ["rdkit", "tblite"])  # tblite: checked here, not per molecule in a worker
    from ..chem.image import GEOMETRY_CHANNELS
    from ..chem.qm9 import load_qm9_images

    keep = None
    if channels:
        names = [c.strip() for c in channels.split(",") if c.strip()]
        unknown = [c for c in names if c not in GEOMETRY_CHANNELS]
        if unknown:
            raise DatasetError(f"alms-qm9: unknown channel(s) {unknown}; the channels are {', '.join(GEOMETRY_CHANNELS)}")
        keep = [GEOMETRY_CHANNELS.index(c) for c in names]
    try:
        data = load_qm9_images(data_dir, size=image_size, hydrogens=hydrogens, max_molecules=max_molecules,
                               seed=seed, threshold=threshold, scheduler=scheduler)
    except ValueError as exc:
        raise DatasetError(f"alms-qm9: {exc}") from None
    if keep is not None:
        for split in ("x_train", "x_val", "x_test"):
            data[split] = data[split][:, keep]
        data["meta"]["channels"] = [GEOMETRY_CHANNELS[i] for i in keep]
    return _to_dataset("alms-qm9", data)


@register_dataset("alms-druglike", "drug-like molecules (COVID-19 drugs, ChEMBL approved drugs, RDKit NCI/WEHI) dipole >= 3 D; label_mode=lowest|boltzmann|lowest_ff (xTB dipole of the lowest-MMFF conformer); structure=label (the labelled conformer, no xTB channels) | screen (the screen's lowest-MMFF conformer with its GFN2-xTB channels) | screen_mmff (that conformer, no xTB channels); train/val/test 80/10/10, COVID-19 drugs in test")
def load_alms_druglike(data_dir: Path | None = None, image_size: int = 32, max_molecules: int | None = None,
                       seed: int = 0, threshold: float | None = None, label_mode: str = "lowest",
                       structure: str = "label", scheduler: str | None = None) -> ImageDataset:
    """Drug-like molecules by GFN2-xTB dipole (see :mod:`andersonn.chem.druglike`); ``data_dir`` is the cache.

    ``label_mode``: ``lowest`` (the dipole of the lowest-energy conformer, the one imaged),
    ``boltzmann`` (the Boltzmann-averaged dipole) or ``lowest_ff`` (the dipole of the lowest-MMFF94 conformer,
    the one a screen builds). ``structure``: ``label`` images the labelled conformer without xTB channels,
    ``screen`` the conformer a screen builds (lowest MMFF94 energy) with its GFN2-xTB charges and dipoles,
    as ``andersonn screen`` will, ``screen_mmff`` that conformer without xTB channels. ``image_size`` rows (at most 32); molecules with more
    heavy atoms are skipped. The first call images the molecules in parallel; later calls load the cache.
    """
    require_extra("chem", "the alms-druglike dataset", ["rdkit"])
    from ..chem.druglike import LABEL_MODES, STRUCTURES, load_druglike_images

    if label_mode not in LABEL_MODES:
        raise DatasetError(f"alms-druglike: unknown label_mode {label_mode!r}; the modes are {', '.join(LABEL_MODES)}")
    if structure not in STRUCTURES:
        raise DatasetError(f"alms-druglike: unknown structure {structure!r}; the structures are {', '.join(STRUCTURES)}")
    try:
        data = load_druglike_images(data_dir, size=image_size, label_mode=label_mode, structure=structure, threshold=threshold, seed=seed,
                                    max_molecules=max_molecules, scheduler=scheduler)
    except ValueError as exc:
        raise DatasetError(f"alms-druglike: {exc}") from None
    for extra in ("x_val_screen", "x_test_screen"):  # evaluation arrays, not training ones
        data.pop(extra, None)
    return _to_dataset("alms-druglike", data)

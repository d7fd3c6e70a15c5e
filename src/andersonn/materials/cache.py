"""Build-once, resumable, parallel cache of structure images.

Layout of a cache directory::

    records.sqlite                 ResultCache: key -> JSON record (metadata or error)
    images/s<SIZE>v<VERSION>/<refcode>.npy   the first 13 channels, float32 (13, SIZE, SIZE)

The image is :func:`andersonn.materials.image.structure_image`: the 9 graph
channels, the 4 pore-profile channels, and 3 constant pore-size planes (names:
:data:`andersonn.materials.channels.CHANNELS`); the file holds the first 13
(:data:`~andersonn.materials.channels.CACHED_CHANNELS`), and
:func:`load_image` adds the planes from the record's ``porespace`` sizes.  A record also keeps our own
pore sizes from :func:`andersonn.materials.porespace.pore_diameters`, computed
on the same distance grid, under ``"porespace"``: ``pld``, ``lcd``, ``lfpd``
(A), ``dimensionality`` (0-3) and ``along`` (a, b, c).  They are estimates
from the atoms, kept so that reports can compare them with Zeo++'s; they are
not the labels (those are Zeo++'s PLD from the CoRE MOF table).

A key is ``"<refcode>@s<SIZE>@v<IMAGE_VERSION>"``.  Each image is written to a
temporary file and moved into place (:func:`andersonn.fileio.atomic_open`) *before* its record is
stored, so a build killed at any moment leaves only complete images and
records; re-running computes only the structures without a record.  The work
is spread by :func:`andersonn.parallel.map_cached` (a local Dask cluster by
default, ``scheduler="synchronous"`` in-process, or a scheduler address).

>>> import tempfile
>>> from andersonn.materials.examples import example_cif_path
>>> d = tempfile.mkdtemp()
>>> recs = build_image_cache({"NaCl": example_cif_path("NaCl")}, d, 8, scheduler="synchronous")
>>> recs["NaCl"]["formula"], load_image(d, recs["NaCl"]).shape
('NaCl', (16, 8, 8))
>>> sorted(recs["NaCl"]["porespace"])
['along', 'dimensionality', 'lcd', 'lfpd', 'pld', 'spacing']
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from andersonn.fileio import atomic_open
from andersonn.materials.channels import CACHED_CHANNELS
from andersonn.parallel import ResultCache, map_cached

__all__ = [
    "IMAGE_VERSION",
    "PORESPACE_SPACING",
    "build_image_cache",
    "build_image_record",
    "cache_key",
    "load_image",
]

#: Bump when the image definition changes, so old cache entries are not reused.
#: 4: the 4 pore-profile channels appended (13 channels), ``porespace`` in the record.
IMAGE_VERSION = 4

#: Grid spacing (A) of the distance grid behind the pore channels and estimates.
PORESPACE_SPACING = 0.5


def cache_key(refcode: str, image_size: int) -> str:
    """Record key of ``refcode`` at ``image_size``.

    >>> cache_key("ABAVIJ_clean", 32)
    'ABAVIJ_clean@s32@v4'
    """
    return f"{refcode}@s{image_size}@v{IMAGE_VERSION}"


def build_image_record(item: Mapping[str, Any]) -> dict[str, Any]:
    """Read one CIF, write its image, return its JSON record (used by the workers).

    ``item``: ``{"cif": path, "root": cache dir, "npy": path relative to root,
    "image_size": int}``.  Raises :class:`~andersonn.materials.cif.CifError`
    for a bad CIF (``map_cached`` records it as ``{"error": ...}``).
    """
    from andersonn.materials.cif import read_structure
    from andersonn.materials.graph import structure_to_graph
    from andersonn.materials.image import structure_image
    from andersonn.materials.porespace import distance_grid, pore_diameters

    t0 = time.perf_counter()
    structure = read_structure(item["cif"])
    t_read = time.perf_counter() - t0
    graph = structure_to_graph(structure)
    # one grid for both the pore channels and our PLD/LCD estimate
    grid = distance_grid(structure, PORESPACE_SPACING)
    pores = pore_diameters(structure, grid=grid)
    image = structure_image(structure, int(item["image_size"]), graph=graph, grid=grid, pores=pores)
    # the pore-size planes are constant: the file keeps the other channels, the record the sizes
    with atomic_open(Path(item["root"]) / item["npy"], "wb") as fh:
        np.save(fh, image[: len(CACHED_CHANNELS)])
    comp = structure.composition.fractional_composition.get_el_amt_dict()
    return {
        "npy": item["npy"],
        "formula": structure.composition.reduced_formula,
        "n_atoms": len(structure),
        "n_bonds": graph.n_bonds,
        "density": float(structure.density),
        "volume_per_atom": float(structure.volume / len(structure)),
        "composition": {k: float(v) for k, v in sorted(comp.items())},
        "mean_coordination": float(graph.coordination.mean()),
        "porespace": {
            "pld": float(pores["pld"]),
            "lcd": float(pores["lcd"]),
            "lfpd": float(pores["lfpd"]),
            "dimensionality": int(pores["dimensionality"]),
            "along": [bool(v) for v in pores["along"]],
            "spacing": PORESPACE_SPACING,
        },
        "seconds": time.perf_counter() - t0,
        "read_seconds": t_read,
    }


def build_image_cache(
    cifs: Mapping[str, str | os.PathLike[str]],
    cache_dir: str | os.PathLike[str],
    image_size: int = 32,
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    desc: str = "MOF images",
) -> dict[str, dict[str, Any]]:
    """Images of every ``refcode -> CIF path`` in ``cifs``, built once into ``cache_dir``.

    Returns ``refcode -> record``; a record with an ``"error"`` key says why the
    structure was skipped.  Interrupted builds resume where they stopped.
    """
    root = Path(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    cache = ResultCache(root / "records.sqlite")
    try:
        items = {
            cache_key(ref, image_size): {
                "cif": str(Path(path).resolve()),
                "root": str(root.resolve()),
                "npy": f"images/s{image_size}v{IMAGE_VERSION}/{ref}.npy",
                "image_size": int(image_size),
            }
            for ref, path in cifs.items()
        }
        records = map_cached(_call_builder, items, cache, scheduler=scheduler, n_workers=n_workers, desc=desc)
        # repair: an image deleted after its record was stored is rebuilt here
        for key, rec in records.items():
            if "error" not in rec and not (root / rec["npy"]).is_file():
                try:
                    rec = build_image_record(items[key])
                except Exception as exc:  # noqa: BLE001 - recorded like map_cached does
                    rec = {"error": f"{type(exc).__name__}: {exc}"}
                cache.put(key, rec)
                records[key] = rec
    finally:
        cache.close()
    by_key = {cache_key(ref, image_size): ref for ref in cifs}
    return {by_key[k]: v for k, v in records.items()}


def _call_builder(item: Mapping[str, Any]) -> dict[str, Any]:
    # looked up at call time so tests can slow it down in a subprocess
    return build_image_record(item)


def load_image(cache_dir: str | os.PathLike[str], record: Mapping[str, Any]) -> np.ndarray:
    """The task image of a (non-error) ``record``: its cached channels and the pore-size planes of its record."""
    from andersonn.materials.porespace import pore_size_planes

    stored = np.load(Path(cache_dir) / record["npy"])
    return np.concatenate([stored, pore_size_planes(record["porespace"], stored.shape[-1])], axis=0)

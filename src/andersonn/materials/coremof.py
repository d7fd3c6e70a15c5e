"""Access to the CoRE MOF 2019 database shipped by the ``core-mof`` package.

The package installs, under ``CoRE_MOF/data``, a property table ``<set>.csv``
(Zeo++ LCD, PLD, density, metals, ...) and the structures ``<set>.tar.xz``.
We use the *all-solvent-removed* set ``2019-ASR`` (12,020 structures).  Nothing
is downloaded: everything is read from the installed package.

>>> rows = coremof_table()                    # doctest: +SKIP
>>> rows["ABAVIJ_clean"]["PLD"] > 0           # doctest: +SKIP
True
"""

from __future__ import annotations

import csv
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

from andersonn.extras import require_extra
from andersonn.fileio import atomic_write_bytes

__all__ = ["DEFAULT_SET", "coremof_data_dir", "coremof_table", "extract_cifs"]

DEFAULT_SET = "2019-ASR"


def coremof_data_dir() -> Path:
    """Directory of the installed ``core-mof`` data files (raises if not installed).

    >>> (coremof_data_dir() / "2019-ASR.csv").is_file()   # doctest: +SKIP
    True
    """
    require_extra("materials", "the CoRE MOF 2019 database", ["CoRE_MOF"])
    import CoRE_MOF  # the import name of the ``core-mof`` distribution

    return Path(CoRE_MOF.__file__).resolve().parent / "data"


def coremof_table(dataset: str = DEFAULT_SET) -> dict[str, dict[str, object]]:
    """``refcode -> row`` of the property table; ``LCD``, ``PLD``, ``cm3_g`` as floats.

    The refcode is the CIF file name without ``.cif`` (e.g. ``ABAVIJ_clean``).
    """
    path = coremof_data_dir() / f"{dataset}.csv"
    out: dict[str, dict[str, object]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            row = {k: v for k, v in row.items() if k}  # the CSV has trailing empty columns
            for key in ("LCD", "PLD", "LFPD", "cm3_g", "AV_VF"):
                try:
                    row[key] = float(row[key])
                except (KeyError, TypeError, ValueError):
                    row[key] = float("nan")
            out[row["filename"]] = row
    return out


def extract_cifs(
    refcodes: Iterable[str], dest: str | os.PathLike[str], dataset: str = DEFAULT_SET
) -> dict[str, Path]:
    """Extract the CIFs of ``refcodes`` into ``dest`` (one pass over the archive).

    Files already in ``dest`` are kept; each new file is written atomically.
    Returns ``refcode -> path`` for every refcode found.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    wanted = set(refcodes)
    paths = {r: dest / f"{r}.cif" for r in wanted}
    missing = {r for r, p in paths.items() if not p.is_file()}
    if missing:
        archive = coremof_data_dir() / f"{dataset}.tar.xz"
        with tarfile.open(archive, "r:xz") as tar:
            for member in tar:
                if not member.isfile() or not member.name.endswith(".cif"):
                    continue
                ref = member.name.rsplit("/", 1)[-1][:-4]
                if ref not in missing:
                    continue
                atomic_write_bytes(tar.extractfile(member).read(), paths[ref])
                missing.discard(ref)
                if not missing:
                    break
    return {r: p for r, p in paths.items() if p.is_file()}

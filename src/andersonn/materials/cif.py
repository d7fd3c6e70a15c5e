"""Read a CIF into an ordered pymatgen ``Structure``, or say clearly why not.

Every failure is a :class:`CifError` that names the file and the reason, so a
batch build can record it and skip the structure:

* the file is missing, empty or not parseable as a crystal structure;
* the structure is *disordered*: a site with partial or mixed occupancy;
* two atoms overlap (closer than :data:`MIN_ATOM_DISTANCE`), the usual trace of
  disorder that was "resolved" by keeping every alternative position.

>>> from andersonn.materials.cif import read_structure, CifError
>>> try:
...     read_structure("no-such-file.cif")
... except CifError as e:
...     print(e.reason)
file not found
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np

__all__ = ["CifError", "MIN_ATOM_DISTANCE", "read_structure", "structure_from_text"]

#: Atoms closer than this (angstrom) are taken as overlapping alternative
#: positions of a disordered site; no real bond is shorter (H-H is 0.74 A).
MIN_ATOM_DISTANCE = 0.5


class CifError(ValueError):
    """A CIF that cannot be turned into an ordered periodic structure.

    Attributes
    ----------
    path:
        The file (or a label for text input).
    reason:
        A short human-readable reason, e.g. ``"disordered: partial occupancy"``.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep the two-argument signature picklable (Dask)
        return (type(self), (self.path, self.reason))


def structure_from_text(text: str, label: str = "<cif>"):
    """Parse CIF ``text`` into an ordered :class:`pymatgen.core.Structure`.

    ``label`` names the source in errors.  Raises :class:`CifError`.

    >>> from andersonn.materials.examples import example_cif_path
    >>> text = open(example_cif_path("NaCl")).read()
    >>> structure_from_text(text).composition.reduced_formula
    'NaCl'
    """
    from pymatgen.io.cif import CifParser

    if not text.strip():
        raise CifError(label, "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parser = CifParser(io.StringIO(text), occupancy_tolerance=1.0)
            structures = parser.parse_structures(primitive=False, on_error="raise")
    except CifError:
        raise
    except Exception as exc:  # pymatgen raises ValueError, KeyError, IndexError ...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CifError(label, f"unreadable CIF ({type(exc).__name__}: {msg[:200]})") from exc
    if not structures:
        raise CifError(label, "unreadable CIF (no structure in file)")
    structure = structures[0]
    _check_ordered(structure, label)
    return structure


def read_structure(path: str | os.PathLike[str]):
    """Read the first structure of the CIF at ``path``; raise :class:`CifError`.

    >>> from andersonn.materials.examples import example_cif_path
    >>> s = read_structure(example_cif_path("NaCl"))
    >>> s.composition.reduced_formula, len(s)
    ('NaCl', 8)
    """
    p = Path(path)
    if not p.is_file():
        raise CifError(p, "file not found")
    try:
        text = p.read_text(errors="replace")
    except OSError as exc:
        raise CifError(p, f"cannot read file ({exc.strerror or exc})") from exc
    return structure_from_text(text, label=str(p))


def _check_ordered(structure, label: str) -> None:
    if len(structure) == 0:
        raise CifError(label, "no atoms in structure")
    if not structure.is_ordered:
        bad = next(s for s in structure if not s.is_ordered)
        raise CifError(label, f"disordered: partial or mixed occupancy at {bad.species}")
    if structure.volume <= 1e-6:
        raise CifError(label, "degenerate unit cell (zero volume)")
    close = structure.get_neighbor_list(MIN_ATOM_DISTANCE)
    if len(close[0]):
        i, j, d = int(close[0][0]), int(close[1][0]), float(np.min(close[3]))
        raise CifError(
            label,
            f"disordered: overlapping atoms {structure[i].specie}#{i}-{structure[j].specie}#{j} "
            f"at {d:.2f} A (< {MIN_ATOM_DISTANCE} A)",
        )

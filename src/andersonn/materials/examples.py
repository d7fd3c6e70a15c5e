"""Small hand-made CIFs shipped with the package (for tests, docs and demos).

* ``NaCl``        rock salt, 8 atoms, every ion 6-coordinated, bonds across the cell.
* ``chain``       a -C-O-C-O- chain along *a*; one bond inside, one across the cell.
* ``disordered``  a site shared 50/50 by Zn and Co (must be rejected).
* ``corrupt``     not a crystal structure (must be rejected).

>>> from andersonn.materials.examples import example_cif_path
>>> example_cif_path("NaCl").name
'NaCl.cif'
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXAMPLES_DIR", "example_cif_path"]

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "data" / "files" / "materials"


def example_cif_path(name: str = "NaCl") -> Path:
    """Path of the shipped example CIF ``name`` (without ``.cif``).

    >>> example_cif_path("chain").is_file()
    True
    """
    path = EXAMPLES_DIR / f"{name}.cif"
    if not path.is_file():
        known = sorted(p.stem for p in EXAMPLES_DIR.glob("*.cif"))
        raise KeyError(f"no example CIF {name!r}; known: {known}")
    return path

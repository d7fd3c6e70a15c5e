"""Periodic atom-bond graph of a crystal structure.

Two atoms are bonded when their distance is at most the sum of their covalent
radii plus a tolerance (the Cambridge Structural Database rule,
``d <= r_i + r_j + 0.4 A``), with the radii of Cordero et al. (2008) as
tabulated by pymatgen.  Neighbours are searched over periodic images with
pymatgen's ``Structure.get_neighbor_list``, so a bond that crosses a face of
the unit cell is found and carries the lattice translation (``image``) that
takes the second atom to the neighbour.

>>> from andersonn.materials.cif import read_structure
>>> from andersonn.materials.examples import example_cif_path
>>> g = structure_to_graph(read_structure(example_cif_path("NaCl")))
>>> g.n_atoms, g.n_bonds, sorted(set(g.coordination.tolist()))
(8, 24, [6])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BOND_TOLERANCE", "PeriodicGraph", "covalent_radius", "structure_to_graph"]

#: Additive bond tolerance in angstrom (CSD convention).
BOND_TOLERANCE = 0.4

_DEFAULT_RADIUS = 1.5  # for the rare element without a tabulated radius


def covalent_radius(symbol: str) -> float:
    """Covalent radius (angstrom) of element ``symbol`` (Cordero et al. 2008).

    >>> covalent_radius("C"), covalent_radius("Cu")
    (0.73, 1.32)
    """
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius

    return float(CovalentRadius.radius.get(symbol, _DEFAULT_RADIUS))


@dataclass(frozen=True)
class PeriodicGraph:
    """Atom-bond graph of a periodic structure.

    Attributes
    ----------
    symbols:
        Element symbol of each atom of the cell, length ``n_atoms``.
    numbers:
        Atomic numbers, ``int64 (n_atoms,)``.
    frac_coords, lattice:
        Fractional coordinates ``(n_atoms, 3)`` and lattice rows ``(3, 3)`` (A).
    src, dst, image, length:
        Directed bonds: atom ``src[k]`` is bonded to atom ``dst[k]`` translated
        by the integer lattice vector ``image[k]`` (``(n_bonds_directed, 3)``),
        at distance ``length[k]``.  Each bond appears in both directions.
    """

    symbols: tuple[str, ...]
    numbers: np.ndarray
    frac_coords: np.ndarray
    lattice: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    image: np.ndarray
    length: np.ndarray

    @property
    def n_atoms(self) -> int:
        """Atoms in the unit cell."""
        return len(self.symbols)

    @property
    def n_bonds(self) -> int:
        """Undirected bonds per unit cell."""
        return len(self.src) // 2

    @property
    def coordination(self) -> np.ndarray:
        """Number of bonds of each atom (periodic images included)."""
        return np.bincount(self.src, minlength=self.n_atoms)

    def cart(self, atom: int, image: np.ndarray | tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
        """Cartesian position (A) of ``atom`` translated by lattice ``image``."""
        return (self.frac_coords[atom] + np.asarray(image)) @ self.lattice

    def neighbors(self, atom: int) -> list[tuple[int, tuple[int, int, int], float]]:
        """``[(atom_j, image_j, length), ...]`` bonded to ``atom`` (image relative)."""
        lo, hi = np.searchsorted(self.src, [atom, atom + 1])  # src is sorted
        idx = range(int(lo), int(hi))
        return [
            (int(self.dst[k]), tuple(int(v) for v in self.image[k]), float(self.length[k]))
            for k in idx
        ]


def structure_to_graph(structure, tolerance: float = BOND_TOLERANCE) -> PeriodicGraph:
    """Build the periodic atom-bond graph of a pymatgen ``Structure``.

    ``tolerance`` (A) is added to the sum of covalent radii.

    >>> from pymatgen.core import Lattice, Structure
    >>> s = Structure(Lattice.cubic(2.0), ["C"], [[0, 0, 0]])  # C-C 2.0 A: no bond
    >>> structure_to_graph(s).n_bonds, structure_to_graph(s, tolerance=0.6).n_bonds
    (0, 3)
    """
    symbols = tuple(site.specie.symbol for site in structure)
    numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
    radii = np.array([covalent_radius(s) for s in symbols])
    cutoff = 2.0 * float(radii.max()) + tolerance
    src, dst, image, dist = structure.get_neighbor_list(cutoff)
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    image = np.rint(np.asarray(image)).astype(np.int64).reshape(-1, 3)
    dist = np.asarray(dist, dtype=np.float64)
    keep = dist <= radii[src] + radii[dst] + tolerance
    src, dst, image, dist = src[keep], dst[keep], image[keep], dist[keep]
    # canonical bond order: by source atom, then length, then target, then image
    order = np.lexsort((image[:, 2], image[:, 1], image[:, 0], dst, np.round(dist, 4), src))
    return PeriodicGraph(
        symbols=symbols,
        numbers=numbers,
        frac_coords=np.asarray(structure.frac_coords, dtype=np.float64),
        lattice=np.asarray(structure.lattice.matrix, dtype=np.float64),
        src=src[order],
        dst=dst[order],
        image=image[order],
        length=dist[order],
    )

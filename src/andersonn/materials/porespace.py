"""Empty space of a periodic structure, computed from its atoms alone.

The pore-limiting diameter (PLD) is set by the narrowest window along a channel
through the *periodic* framework, which no local crop of atoms holds.  This
module measures it directly, without any Zeo++ number:

1. :func:`distance_grid` samples, on a grid over the unit cell (fractional
   coordinates, spacing at most ``spacing``), the distance ``d`` from each grid
   point to the nearest atomic *surface*: the distance to the atom centre minus
   its van der Waals radius (:func:`vdw_radius`), over all periodic images.
   ``d >= r`` is where the centre of a spherical probe of radius ``r`` fits.
2. :func:`percolation_radius` finds the largest probe radius ``r`` for which
   ``{d >= r}`` holds a component that wraps around the periodic cell (joins a
   point to one of its own periodic images).  ``2 r`` estimates the PLD and
   ``2 max(d)`` the largest cavity diameter (LCD); :func:`pore_diameters` gives
   both, plus the largest sphere along the free path (LFPD).
3. :func:`pore_profile` gives, for a list of probe radii, the accessible
   (percolating) and total volume fractions, the channel dimensionality and the
   accessible surface, and :func:`porespace_channels` lays that profile out as
   image channels that can be stacked onto the ``(9, S, S)`` graph image of
   :mod:`andersonn.materials.image`.

**Image channels** (:data:`CHANNELS`, float32 ``(4, S, S)``).  Column ``j``
stands for the probe radius ``r_j = j * max_radius / (S - 1)`` (``max_radius``
= 8 A by default, so ``S = 32`` steps by 0.26 A); every row of a column holds
the same value (the profile is one-dimensional, the rows only give it the
square shape of the graph image).  All values lie in ``[0, 1]``:

=========================  ====================================================
``accessible_fraction``    fraction of the cell volume that lies in a
                           percolating component of ``{d >= r_j}``: where the
                           centre of a probe of radius ``r_j`` can go *and* get
                           through the framework.  Drops to 0 at the
                           percolation radius (PLD / 2).
``void_fraction``          fraction of the cell volume with ``d >= r_j``,
                           closed cages included.  At ``r = 0`` it is the van der
                           Waals void fraction; it reaches 0 at LCD / 2.
``channel_dimensionality`` rank of the lattice of translations by which the
                           percolating components of ``{d >= r_j}`` wrap, / 3:
                           0 = no channel, 1/3 = one-dimensional channels,
                           2/3 = layers, 1 = a three-dimensional pore network.
``accessible_surface``     area of the surface ``{d = r}`` that bounds the
                           accessible region, per cell volume, in 1/A, averaged
                           over ``r`` in ``[r_j, r_j + h]`` (``h``: the longest
                           grid step), divided by :data:`SURFACE_SCALE` (0.5 / A)
                           and clipped at 1.  By the coarea formula
                           (``|grad d| = 1``) that average is the volume fraction
                           of the accessible region with ``r_j <= d < r_j + h``,
                           divided by ``h``, which is what is computed.
=========================  ====================================================

Why a profile over ``r`` and not the grid itself: the grid starts at the cell
origin, so an origin shift of the atoms moves it relative to the atoms and raw
grid values change.  Volume fractions, the percolation threshold and the
dimensionality of the pore network are properties of the periodic structure;
on a grid they change only by the sampling error (the threshold by about half
a grid step), whatever the origin, atom order, or choice of an equivalent cell
(a supercell or a different basis of the same lattice).  Per-axis directions
(``along`` a/b/c) depend on the chosen basis, so they are reported by
:func:`percolation_radius` but kept out of the channels.

Radii: pymatgen's tabulated van der Waals radii (C 1.70, N 1.55, O 1.52 A as
Bondi; H 1.10 A; metals about 2 A, e.g. Zn 2.01, Cu 1.96 A), with
:data:`FALLBACK_VDW_RADIUS` for elements without one.  Zeo++ uses its own
radius table; in the Bondi/CCDC set it resembles, metals are much smaller (Zn
1.39, Cu 1.40 A), so wherever a metal lines a window our pores come out
narrower.  On 30 CoRE MOF 2019 structures our PLD was 0.42 A below Zeo++'s on
average (never above), partly this and mostly the grid: a window centre that
falls between grid points is missed by up to about half a step (on 12 of them a
0.25 A grid cut the offset from 0.51 to 0.32 A).

>>> from pymatgen.core import Lattice, Structure
>>> s = Structure(Lattice.cubic(6.0), ["C"], [[0, 0, 0]])
>>> d = pore_diameters(s)
>>> round(d["pld"], 2), round(d["lcd"], 2), d["dimensionality"]   # 2 (6/sqrt2 - 1.7), 2 (6 sqrt3/2 - 1.7)
(5.09, 6.99, 3)
>>> porespace_channels(s, 8).shape
(4, 8, 8)
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from andersonn.materials.channels import PORE_CHANNELS

__all__ = [
    "CHANNELS",
    "DEFAULT_MAX_RADIUS",
    "FALLBACK_VDW_RADIUS",
    "Percolation",
    "PoreProfile",
    "SURFACE_SCALE",
    "distance_grid",
    "grid_shape",
    "percolation_radius",
    "pore_diameters",
    "pore_profile",
    "PORE_SIZE_SCALE",
    "pore_size_planes",
    "porespace_channels",
    "vdw_radius",
]

#: The 4 pore-profile channel names (:data:`andersonn.materials.channels.PORE_CHANNELS`).
CHANNELS: tuple[str, ...] = PORE_CHANNELS

#: Largest probe radius (A) of the image columns: an 16 A pore diameter, well
#: above the 10 A edge of the largest PLD class.
DEFAULT_MAX_RADIUS = 8.0

#: Van der Waals radius (A) for an element pymatgen has none for (the
#: superheavy elements from Lr on, dummy species): about the tabulated radius
#: of the transition metals (1.96-2.23 A), the atoms such an entry stands in for.
FALLBACK_VDW_RADIUS = 2.0

#: Scale of the ``accessible_surface`` channel (1/A): 0.5 / A = 5000 m2/cm3,
#: above the accessible surface of every MOF we have looked at.
SURFACE_SCALE = 0.5

_MIN_POINTS = 8


@lru_cache(maxsize=None)
def vdw_radius(symbol: str) -> float:
    """Van der Waals radius (A) of element ``symbol`` from pymatgen's table.

    Elements (or dummy species) without a tabulated radius get
    :data:`FALLBACK_VDW_RADIUS`.

    >>> vdw_radius("C"), vdw_radius("Zn"), vdw_radius("Og"), vdw_radius("X")
    (1.7, 2.01, 2.0, 2.0)
    """
    from pymatgen.core import Element

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = Element(symbol).van_der_waals_radius
    except (ValueError, KeyError, AttributeError):
        return FALLBACK_VDW_RADIUS
    return float(r) if r is not None and float(r) > 0 else FALLBACK_VDW_RADIUS


def _atom_radii(structure, radii) -> np.ndarray:
    """Radius of every site: ``"vdw"``, a ``symbol -> radius`` mapping (else vdW), or one number."""
    if not structure.is_ordered:
        raise ValueError("distance_grid needs an ordered structure (one species per site)")
    symbols = [getattr(site.specie, "element", site.specie).symbol for site in structure]
    if isinstance(radii, str):
        if radii != "vdw":
            raise ValueError(f"unknown radii {radii!r}; use 'vdw', a mapping or a number")
        return np.array([vdw_radius(s) for s in symbols], dtype=np.float64)
    if isinstance(radii, Mapping):
        return np.array([float(radii[s]) if s in radii else vdw_radius(s) for s in symbols])
    return np.full(len(symbols), float(radii))


def _lattice(lattice):
    from pymatgen.core import Lattice

    return lattice if isinstance(lattice, Lattice) else Lattice(np.asarray(lattice, dtype=float))


def grid_shape(lattice, spacing: float = 0.5) -> tuple[int, int, int]:
    """Grid points along a, b, c: spacing at most ``spacing`` A, at least 8 per axis.

    >>> from pymatgen.core import Lattice
    >>> grid_shape(Lattice.orthorhombic(10.0, 3.0, 10.2), 0.5)
    (20, 8, 21)
    """
    if spacing <= 0:
        raise ValueError("spacing must be positive")
    lengths = _lattice(lattice).abc
    # the 1e-9 keeps a length that is an exact multiple of the spacing from
    # gaining a point through rounding
    return tuple(max(_MIN_POINTS, math.ceil(L / spacing - 1e-9)) for L in lengths)


def _nearest_image_bound(lattice) -> float:
    """An upper bound on the distance from any point to the nearest image of any atom.

    Wrapping a fractional difference into ``[-1/2, 1/2]^3`` leaves a vector inside
    the cell parallelepiped centred at 0, whose farthest point is half its longest
    body diagonal, ``max |a +- b +- c| / 2``.  This holds for every basis of the
    lattice, so the smaller of the given and the LLL-reduced basis is taken (for
    an oblique cell the reduced one is much shorter).
    """
    signs = np.array([[1, sb, sc] for sb in (1, -1) for sc in (1, -1)], dtype=float)
    bases = (lattice.matrix, lattice.get_lll_reduced_lattice().matrix)
    return min(0.5 * float(np.linalg.norm(signs @ m, axis=1).max()) for m in bases)


def distance_grid(structure, spacing: float = 0.5, radii="vdw") -> np.ndarray:
    """Distance (A) from each grid point of the cell to the nearest atomic surface.

    Grid point ``(i, j, k)`` of the returned float32 array of shape
    :func:`grid_shape` ``(na, nb, nc)`` sits at fractional coordinates
    ``(i/na, j/nb, k/nc)``; its value is ``min over atoms and lattice
    translations of |x - atom| - R_atom``, negative inside an atom.  ``radii``:
    ``"vdw"`` (:func:`vdw_radius`), a mapping ``symbol -> radius`` (other
    elements: vdW), or one number for every atom (0: distance to the centres).

    Atoms are grouped by radius; each group gets one ``scipy.spatial.cKDTree``
    over its periodic images that lie within a proven bound of the cell (see
    the comment in the code), and the nearest-surface distance is the minimum
    over groups of (nearest centre distance - radius), which is exact.

    Timing (one core, ``OMP_NUM_THREADS=1``, the machine shared with another
    job): 3000 random atoms of 5 elements in a 40 A cubic cell (80^3 = 512,000
    points at 0.5 A) took 2.9 s; the same atoms in a triclinic 40 A cell
    (alpha, beta, gamma = 75, 100, 115 deg) 2.8 s.  The cost grows with the
    number of grid points (cell volume / spacing^3) times the number of
    distinct radii, and only logarithmically with the atoms.

    >>> from pymatgen.core import Lattice, Structure
    >>> s = Structure(Lattice.cubic(6.0), ["C"], [[0, 0, 0]])
    >>> d = distance_grid(s)
    >>> d.shape, d.dtype, round(float(d[6, 6, 6]), 3)    # body centre: 6 sqrt(3)/2 - 1.7
    ((12, 12, 12), dtype('float32'), 3.496)
    """
    from scipy.spatial import cKDTree

    lattice = structure.lattice
    matrix = np.asarray(lattice.matrix, dtype=np.float64)
    shape = grid_shape(lattice, spacing)
    atom_r = _atom_radii(structure, radii)
    frac = np.mod(np.asarray(structure.frac_coords, dtype=np.float64), 1.0)

    # Every grid point has fractional coordinates in [0, 1).  Its nearest atom of
    # each radius group is at most `bound` away (_nearest_image_bound).  A point
    # whose fractional coordinate along axis a differs by delta from the grid
    # point is at least |delta| / |a*| away (|a*|: reciprocal vector length, i.e.
    # 1 / the spacing of the lattice planes normal to a*), so images outside
    # [-t_a, 1 + t_a] with t_a = bound * |a*| can never be nearest and are left out.
    bound = _nearest_image_bound(lattice)
    recip = np.linalg.norm(np.linalg.inv(matrix), axis=0)  # |a*|, |b*|, |c*|
    pad = bound * recip
    reach = np.ceil(pad).astype(int)
    shifts = np.array(
        list(itertools.product(*[range(-n, n + 1) for n in reach])), dtype=np.float64
    )
    images = frac[None, :, :] + shifts[:, None, :]  # (n_shifts, n_atoms, 3)
    keep = np.all((images >= -pad - 1e-9) & (images <= 1.0 + pad + 1e-9), axis=-1)
    which = np.broadcast_to(np.arange(len(frac)), keep.shape)[keep]
    cart = images[keep] @ matrix

    axes = [np.arange(n, dtype=np.float64) / n for n in shape]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3) @ matrix
    out = np.full(len(points), np.inf)
    for radius in np.unique(atom_r):
        sel = atom_r[which] == radius
        dist, _ = cKDTree(cart[sel]).query(points, k=1)
        np.minimum(out, dist - radius, out=out)
    return out.reshape(shape).astype(np.float32)


# --------------------------------------------------------------------------
# periodic connected components


def _neighbour_offsets(lattice, shape) -> list[tuple[int, int, int]]:
    """Voxel offsets in {-1, 0, 1}^3 that count as adjacent: the 6 face neighbours,
    and any other offset no longer (in A) than the longest voxel edge.

    On an orthogonal grid with equal spacing this is 6-connectivity.  In an
    oblique cell some diagonal offsets are as short as an edge (the in-plane
    hexagonal neighbours at gamma = 120 or 60 deg); leaving them out would force
    a path along that diagonal into a staircase that cuts into atoms.
    """
    steps = np.asarray(_lattice(lattice).matrix, dtype=float) / np.asarray(shape, dtype=float)[:, None]
    longest = float(np.linalg.norm(steps, axis=1).max())
    offsets = []
    for o in itertools.product((-1, 0, 1), repeat=3):
        if o == (0, 0, 0):
            continue
        if sum(map(abs, o)) == 1 or np.linalg.norm(np.asarray(o, float) @ steps) <= longest * (1 + 1e-6):
            offsets.append(o)
    return offsets


@dataclass
class _Components:
    """Components of a mask on the periodic grid (the torus of the cell)."""

    labels: np.ndarray          # int32 grid, 0 = outside the mask, else ndimage label
    root: np.ndarray            # (n_labels + 1,) label -> label of its periodic component
    size: np.ndarray            # (n_labels + 1,) voxels per root label (0 for non-roots)
    rank: dict[int, int]        # root -> rank of its wrapping translations (absent: 0)
    along: dict[int, np.ndarray]  # root -> bool (3,): wraps with a non-zero a / b / c part

    def percolating(self) -> np.ndarray:
        """Bool per label: does its periodic component wrap around the cell?"""
        wraps = np.zeros(len(self.root), dtype=bool)
        for r, k in self.rank.items():
            if k > 0:
                wraps[r] = True
        return wraps[self.root]


def _components(mask: np.ndarray, offsets: Sequence[tuple[int, int, int]]) -> _Components:
    """Label ``mask`` on the periodic grid and find which components wrap, and how.

    ndimage labels the grid as a box; components that touch across a cell face
    are then merged with a union-find that keeps, for every label, the lattice
    translation of its copy relative to its root's copy.  An edge between two
    labels already in one set whose translations disagree closes a loop that
    wraps around the cell by the (non-zero) difference.
    """
    from scipy import ndimage

    shape = mask.shape
    struct = np.zeros((3, 3, 3), dtype=bool)
    struct[1, 1, 1] = True
    for o in offsets:
        struct[o[0] + 1, o[1] + 1, o[2] + 1] = True
    labels, n = ndimage.label(mask, structure=struct)

    # edges across the faces: voxel `src` in cell 0 touches voxel `tgt` in cell `shift`
    edges = []
    half = [o for o in offsets if o > (0, 0, 0)]  # one of each +-o pair
    for o in half:
        for axis in range(3):
            if o[axis] == 0:
                continue
            idx = [np.arange(m) for m in shape]
            idx[axis] = np.array([shape[axis] - 1 if o[axis] > 0 else 0])
            moved = [idx[k] + o[k] for k in range(3)]
            src = labels[np.ix_(*idx)]
            tgt = labels[np.ix_(*[moved[k] % shape[k] for k in range(3)])]
            sh = np.broadcast_arrays(*np.ix_(*[moved[k] // shape[k] for k in range(3)]))
            both = (src > 0) & (tgt > 0)
            if both.any():
                edges.append(np.stack([src[both], tgt[both]] + [s[both] for s in sh], axis=1))
    parent = np.arange(n + 1)
    root = parent.copy()
    rank: dict[int, int] = {}
    along: dict[int, np.ndarray] = {}
    if edges:
        e = np.unique(np.concatenate(edges).astype(np.int64), axis=0)
        root, loops = _union_find(n, e)
        by_root: dict[int, list[np.ndarray]] = {}
        for lab, vec in loops:
            by_root.setdefault(int(root[lab]), []).append(vec)
        for r, vecs in by_root.items():
            m = np.array(vecs)
            rank[r] = int(np.linalg.matrix_rank(m))
            along[r] = np.any(m != 0, axis=0)
    size = np.bincount(root[labels.ravel()], minlength=n + 1)
    size[0] = 0
    return _Components(labels=labels, root=root, size=size, rank=rank, along=along)


def _union_find(n: int, edges: np.ndarray) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """Union labels ``1..n`` along ``edges`` rows ``(u, v, sa, sb, sc)``.

    Returns ``root`` per label and the wrapping loops ``(label, translation)``.
    Only labels on an edge enter the Python loop; the rest are their own roots.
    """
    parent: dict[int, int] = {}
    pot: dict[int, np.ndarray] = {}  # translation of a label's copy relative to its parent's

    def find(x: int) -> tuple[int, np.ndarray]:
        path = []
        while parent.setdefault(x, x) != x:
            path.append(x)
            x = parent[x]
        r, acc = x, np.zeros(3, dtype=np.int64)
        for y in reversed(path):  # compress: point each node on the path at the root
            acc = acc + pot[y]
            pot[y] = acc.copy()
            parent[y] = r
        return r, (pot[path[0]] if path else np.zeros(3, dtype=np.int64))

    loops: list[tuple[int, np.ndarray]] = []
    for row in edges:
        u, v, s = int(row[0]), int(row[1]), row[2:]
        ru, pu = find(u)
        rv, pv = find(v)
        if ru == rv:
            loop = pu + s - pv  # v reached at pu + s, already known at pv
            if loop.any():
                loops.append((u, loop))
        else:
            parent[rv] = ru
            pot[rv] = pu + s - pv
    root = np.arange(n + 1)
    for x in list(parent):
        root[x] = find(x)[0]
    return root, loops


# --------------------------------------------------------------------------
# percolation and the pore profile


@dataclass(frozen=True)
class Percolation:
    """Result of :func:`percolation_radius`.

    Attributes
    ----------
    radius:
        Largest grid value ``r`` such that ``{d >= r}`` wraps around the cell
        (A); ``2 * radius`` estimates the pore-limiting diameter.  Negative when
        even a point cannot pass between the van der Waals spheres.
    along:
        ``(a, b, c)``: whether the wrapping component at ``radius`` crosses the
        cell along that lattice vector (a loop translation with a non-zero
        component there).  Depends on the chosen basis.
    dimensionality:
        Rank of the loop translations at ``radius`` (1: channels, 2: layers,
        3: a 3-D network); basis-independent.
    """

    radius: float
    along: tuple[bool, bool, bool]
    dimensionality: int

    @property
    def diameter(self) -> float:
        """``2 * radius``: our estimate of the pore-limiting diameter (A)."""
        return 2.0 * self.radius


def _wrapping(comps: _Components) -> tuple[bool, tuple[bool, bool, bool], int]:
    if not comps.rank or max(comps.rank.values()) == 0:
        return False, (False, False, False), 0
    along = np.zeros(3, dtype=bool)
    for r, k in comps.rank.items():
        if k > 0:
            along |= comps.along[r]
    return True, tuple(bool(v) for v in along), max(comps.rank.values())


def percolation_radius(grid: np.ndarray, lattice) -> Percolation:
    """Largest probe radius whose free region ``{grid >= r}`` percolates through the cell.

    ``grid`` is a :func:`distance_grid` of a cell with ``lattice`` (a pymatgen
    ``Lattice`` or its 3x3 matrix, rows a, b, c; it sets which voxels are
    adjacent, see :func:`_neighbour_offsets`).  The threshold is found by
    bisection over the sorted distinct grid values, so the answer is exact for
    the grid; against the continuous structure it is off by about half a grid
    step (a 0.5 A grid: within about +-0.25 A).

    >>> from pymatgen.core import Lattice, Structure
    >>> s = Structure(Lattice.cubic(6.0), ["C"], [[0, 0, 0]])
    >>> p = percolation_radius(distance_grid(s), s.lattice)
    >>> round(p.radius, 3), p.along, p.dimensionality     # window: 6/sqrt(2) - 1.7
    (2.543, (True, True, True), 3)
    """
    grid = np.asarray(grid)
    offsets = _neighbour_offsets(lattice, grid.shape)
    values = np.unique(grid)

    def wraps_at(i: int):
        return _wrapping(_components(grid >= values[i], offsets))

    lo, hi = 0, len(values) - 1
    best = wraps_at(lo)  # the whole grid: wraps in every direction
    top = wraps_at(hi)
    if top[0]:
        lo, best = hi, top
    else:
        while hi - lo > 1:  # invariant: values[lo] percolates, values[hi] does not
            mid = (lo + hi) // 2
            res = wraps_at(mid)
            if res[0]:
                lo, best = mid, res
            else:
                hi = mid
    return Percolation(radius=float(values[lo]), along=best[1], dimensionality=best[2])


@dataclass(frozen=True)
class PoreProfile:
    """Result of :func:`pore_profile`; every array has one entry per probe radius.

    Attributes
    ----------
    radii:
        The probe radii (A).
    accessible:
        Fraction of the cell in a percolating component of ``{d >= r}``.
    total:
        Fraction of the cell with ``d >= r`` (closed cages included).
    dimensionality:
        Rank of the wrapping translations of the percolating components (0-3).
    along:
        ``(K, 3)`` bool: the percolating region crosses the cell along a / b / c.
    surface:
        Accessible surface per volume (1/A), averaged over probe radii in
        ``[r, r + h]``: the volume fraction of the accessible region with
        ``r <= d < r + h`` divided by ``h`` (the longest grid step).
    """

    radii: np.ndarray
    accessible: np.ndarray
    total: np.ndarray
    dimensionality: np.ndarray
    along: np.ndarray
    surface: np.ndarray


def pore_profile(grid: np.ndarray, lattice, probe_radii: Sequence[float]) -> PoreProfile:
    """Accessible and total volume fractions (and more) for each probe radius.

    >>> from pymatgen.core import Lattice, Structure
    >>> s = Structure(Lattice.cubic(6.0), ["C"], [[0, 0, 0]])
    >>> prof = pore_profile(distance_grid(s), s.lattice, [0.0, 3.0])
    >>> prof.accessible.round(3).tolist(), prof.total.round(3).tolist(), prof.dimensionality.tolist()
    ([0.901, 0.0], [0.901, 0.004], [3, 0])

    (The C sphere fills 4/3 pi 1.7^3 / 6^3 = 9.5 % of the cell; at r = 3 A only
    the isolated cages round the body centre are left.)
    """
    grid = np.asarray(grid)
    lat = _lattice(lattice)
    offsets = _neighbour_offsets(lat, grid.shape)
    h = float(np.max(np.asarray(lat.abc) / np.asarray(grid.shape)))
    radii = np.asarray(probe_radii, dtype=np.float64)
    k = len(radii)
    n = grid.size
    accessible, total, surface = np.zeros(k), np.zeros(k), np.zeros(k)
    dim = np.zeros(k, dtype=np.int64)
    along = np.zeros((k, 3), dtype=bool)
    top = float(grid.max())
    for i, r in enumerate(radii):
        if r > top:
            continue
        mask = grid >= r
        total[i] = mask.sum() / n
        comps = _components(mask, offsets)
        ok, dirs, rank = _wrapping(comps)
        if not ok:
            continue
        inside = comps.percolating()[comps.labels]
        accessible[i] = inside.sum() / n
        surface[i] = (inside & (grid < r + h)).sum() / (n * h)
        dim[i] = rank
        along[i] = dirs
    return PoreProfile(radii, accessible, total, dim, along, surface)


def pore_diameters(structure, spacing: float = 0.5, radii="vdw", *, grid: np.ndarray | None = None) -> dict:
    """Our PLD, LCD and LFPD estimates (A) of ``structure``, from its atoms.

    ``pld`` = 2 x :func:`percolation_radius`; ``lcd`` = 2 max(d); ``lfpd`` =
    2 max(d) over the region that percolates at the percolation radius (the
    largest sphere met along the free path).  Also ``along`` (a, b, c) and
    ``dimensionality`` of the channels at the percolation radius, and the grid
    ``shape``.  ``grid``: a :func:`distance_grid` of ``structure`` already
    computed (then ``spacing`` and ``radii`` are not used).

    >>> from pymatgen.core import Lattice, Structure
    >>> s = Structure(Lattice.cubic(6.0), ["C"], [[0, 0, 0]])
    >>> {k: round(v, 2) for k, v in pore_diameters(s).items() if k in ("pld", "lcd", "lfpd")}
    {'pld': 5.09, 'lcd': 6.99, 'lfpd': 6.99}
    """
    if grid is None:
        grid = distance_grid(structure, spacing, radii)
    perc = percolation_radius(grid, structure.lattice)
    comps = _components(grid >= perc.radius, _neighbour_offsets(structure.lattice, grid.shape))
    inside = comps.percolating()[comps.labels]
    return {
        "pld": perc.diameter,
        "lcd": 2.0 * float(grid.max()),
        "lfpd": 2.0 * float(grid[inside].max()),
        "along": perc.along,
        "dimensionality": perc.dimensionality,
        "shape": grid.shape,
    }


#: Pore sizes are divided by this (A) in :func:`pore_size_planes` (and clipped at 1).
PORE_SIZE_SCALE = 20.0


def pore_size_planes(pores: dict, image_size: int) -> np.ndarray:
    """The 3 pore-size channels, float32 ``(3, S, S)``: constant planes of our PLD, LCD and LFPD / 20 A.

    ``pores``: :func:`pore_diameters` of the structure (or the ``porespace``
    part of a cache record, which holds the same numbers).  The pore profile
    already holds these sizes, but only at the resolution of its probe radii
    (8 A / (S - 1)); the planes give them exactly.

    >>> p = pore_size_planes({"pld": 5.0, "lcd": 8.0, "lfpd": 30.0}, 4)
    >>> p.shape, [round(float(v), 3) for v in p[:, 0, 0]]
    ((3, 4, 4), [0.25, 0.4, 1.0])
    """
    values = np.array([pores["pld"], pores["lcd"], pores["lfpd"]], dtype=np.float64) / PORE_SIZE_SCALE
    values = np.clip(values, 0.0, 1.0).astype(np.float32)
    return np.ascontiguousarray(np.broadcast_to(values[:, None, None], (3, image_size, image_size)))


def porespace_channels(
    structure,
    image_size: int = 32,
    *,
    max_radius: float = DEFAULT_MAX_RADIUS,
    spacing: float = 0.5,
    radii="vdw",
    grid: np.ndarray | None = None,
) -> np.ndarray:
    """Pore-profile image channels, float32 ``(len(CHANNELS), S, S)`` (see the module doc).

    Column ``j`` is the probe radius ``j * max_radius / (S - 1)``; rows repeat
    the column value.  ``grid``: a :func:`distance_grid` of ``structure``
    already computed (then ``spacing`` and ``radii`` are not used).  Deterministic, and independent of atom order (the same
    atoms give the same grid) and, up to the grid resolution, of an origin
    shift or an equivalent choice of cell.

    >>> from pymatgen.core import Lattice, Structure
    >>> s = Structure(Lattice.cubic(6.0), ["C"], [[0, 0, 0]])
    >>> ch = porespace_channels(s, 9)          # probe radii 0, 1, ..., 8 A
    >>> ch[CHANNELS.index("channel_dimensionality"), 0].round(2).tolist()
    [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    if image_size < 2:
        raise ValueError("image_size must be at least 2 (one column per probe radius)")
    probe = np.linspace(0.0, max_radius, image_size)
    if grid is None:
        grid = distance_grid(structure, spacing, radii)
    prof = pore_profile(grid, structure.lattice, probe)
    rows = np.stack(
        [
            prof.accessible,
            prof.total,
            prof.dimensionality / 3.0,
            np.minimum(prof.surface / SURFACE_SCALE, 1.0),
        ]
    )
    rows = np.clip(rows, 0.0, 1.0).astype(np.float32)
    return np.ascontiguousarray(np.broadcast_to(rows[:, None, :], (len(CHANNELS), image_size, image_size)))

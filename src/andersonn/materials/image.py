"""Fixed-size node-neighbour image of a periodic atom-bond graph.

The image has shape ``(C, S, S)`` for ``S = image_size``: row ``r`` describes
atom ``r`` of a crop of ``S`` atoms, column ``0`` is that atom itself and
columns ``1..`` are the other atoms of the crop ordered by bond hops from it
(then by distance, then by crop index).  Pixel channels (:data:`GRAPH_CHANNELS`),
all scaled to ``[0, 1]``, describe the *column* atom and its relation to the
row atom:

====================  ==========================================================
``atomic_number``     element: Z / 100
``electronegativity`` element: Pauling electronegativity / 4 (0 if undefined)
``metal``             element: 1 for a metal, else 0
``coordination``      coordination: number of bonds in the full periodic graph / 12
``bond_hops``         bonds between row and column atom inside the crop / S (1 if
                      not connected inside the crop)
``distance``          Cartesian distance between the two atoms / 20 A (clipped)
``atoms_within_6A``   coordination shells: atoms of the periodic structure within
                      6 A of the column atom / 100 (clipped)
``atoms_within_10A``  atoms within 10 A / 500 (clipped): the local number density on
                      the scale of a pore
``void_distance``     distance from the column atom to the nearest atom more than
                      3 bonds away from it / 10 A (clipped): how far the atom
                      looks across empty space, i.e. how open its pore wall is
====================  ==========================================================

The last three channels are per-atom environment features (like the
coordination number, but counting further shells); they give the image the
local packing that a bond-only crop of ~S atoms cannot see.

Empty pixels (crop smaller than ``S``) are all zero; a real atom always has a
non-zero ``atomic_number``.

**Structures larger than the image** (almost every MOF: a unit cell has
100-5000 atoms) are represented by a *deterministic crop of the unfolded
periodic net*: starting at a canonical root atom -- the heaviest metal (ties:
higher coordination, then smaller wrapped fractional coordinates) -- atoms are
visited breadth-first along bonds, *following bonds across cell faces into
neighbouring images*, and the first ``S`` atoms visited form the crop.
Neighbours are visited in order of bond length, then canonical atom rank, then
image, so the crop, and hence the image, depends only on the structure.  The
crop is the metal node and its linkers out to about ``S`` atoms: the local
chemistry that sets the pore, not the whole cell.  A structure *smaller* than
the image is not padded while its net goes on: the crop keeps unfolding into
periodic images (a 2-atom chain fills all ``S`` rows).  Only a finite component
(a discrete molecule) that is exhausted starts again from the next unvisited
atom by canonical rank; when every atom is used the rest is zero padding.

**The task image** (:func:`structure_image`) is ``(16, S, S)``: these 9
graph channels, the 4 pore-profile channels of
:func:`andersonn.materials.porespace.porespace_channels`
(:data:`PORE_CHANNELS`; column ``j`` there is a probe radius, not an atom),
and 3 constant planes of our own PLD, LCD and LFPD estimates
(:func:`andersonn.materials.porespace.pore_size_planes`); the cache stores
the first 13 and the pore sizes in its record.
The crop sees ~S atoms around one metal; the pore profile is measured over the
whole periodic cell, which is where the pore-limiting window is.  The names of
all 16 are :data:`CHANNELS` (defined in :mod:`andersonn.materials.channels`).

>>> from andersonn.materials.cif import read_structure
>>> from andersonn.materials.examples import example_cif_path
>>> from andersonn.materials.graph import structure_to_graph
>>> img = graph_to_image(structure_to_graph(read_structure(example_cif_path("NaCl"))), 16)
>>> img.shape, img.dtype, round(float(img[0, 0, 0]), 4)   # root: Na (Z=11)
((9, 16, 16), dtype('float32'), 0.11)
"""

from __future__ import annotations

from collections import deque
from functools import lru_cache

import numpy as np

from andersonn.materials.channels import CHANNELS, GRAPH_CHANNELS, PORE_CHANNELS
from andersonn.materials.graph import PeriodicGraph

__all__ = [
    "CHANNELS",
    "GRAPH_CHANNELS",
    "PORE_CHANNELS",
    "crop_atoms",
    "environment_features",
    "graph_to_image",
    "structure_image",
]

_MAX_COORDINATION = 12.0
_MAX_DISTANCE = 20.0
_SHELL_RADIUS = 6.0
_SHELL_NORM = 100.0
_WIDE_NORM = 500.0
_VOID_RADIUS = 10.0
_VOID_HOPS = 3


@lru_cache(maxsize=None)
def _element_features(symbol: str) -> tuple[float, float, float]:
    import warnings

    from pymatgen.core import Element

    el = Element(symbol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chi = el.X
    chi = 0.0 if chi is None or not np.isfinite(chi) else float(chi)
    return min(el.Z / 100.0, 1.0), min(chi / 4.0, 1.0), 1.0 if el.is_metal else 0.0


def _canonical_rank(graph: PeriodicGraph) -> np.ndarray:
    """Rank of every atom: metals first, heavier first, more bonds first, then position."""
    metal = np.array([_element_features(s)[2] for s in graph.symbols])
    frac = np.round(np.mod(graph.frac_coords, 1.0), 4) % 1.0
    order = np.lexsort(
        (frac[:, 2], frac[:, 1], frac[:, 0], -graph.coordination, -graph.numbers, -metal)
    )
    rank = np.empty(graph.n_atoms, dtype=np.int64)
    rank[order] = np.arange(graph.n_atoms)
    return rank


def crop_atoms(graph: PeriodicGraph, size: int) -> list[tuple[int, tuple[int, int, int]]]:
    """The deterministic crop: up to ``size`` ``(atom, lattice_image)`` pairs in BFS order.

    >>> from andersonn.materials.cif import read_structure
    >>> from andersonn.materials.examples import example_cif_path
    >>> from andersonn.materials.graph import structure_to_graph
    >>> g = structure_to_graph(read_structure(example_cif_path("chain")))
    >>> [g.symbols[a] for a, _ in crop_atoms(g, 4)]
    ['O', 'C', 'C', 'O']
    """
    rank = _canonical_rank(graph)
    by_rank = np.argsort(rank)
    visited: dict[tuple[int, tuple[int, int, int]], int] = {}
    order: list[tuple[int, tuple[int, int, int]]] = []
    used_atoms: set[int] = set()

    def visit(node: tuple[int, tuple[int, int, int]]) -> None:
        visited[node] = len(order)
        order.append(node)
        used_atoms.add(node[0])

    for root in by_rank:
        if len(order) >= size:
            break
        if int(root) in used_atoms:
            continue
        start = (int(root), (0, 0, 0))
        visit(start)
        queue = deque([start])
        while queue and len(order) < size:
            atom, img = queue.popleft()
            nbrs = sorted(graph.neighbors(atom), key=lambda t: (round(t[2], 3), rank[t[0]], t[1]))
            for b, off, _ in nbrs:
                node = (b, (img[0] + off[0], img[1] + off[1], img[2] + off[2]))
                if node in visited:
                    continue
                visit(node)
                queue.append(node)
                if len(order) >= size:
                    break
    return order


def _hops(graph: PeriodicGraph, nodes: list[tuple[int, tuple[int, int, int]]]) -> np.ndarray:
    """All-pairs bond hops inside the crop (``inf`` where not connected)."""
    index = {node: i for i, node in enumerate(nodes)}
    adj: list[list[int]] = [[] for _ in nodes]
    for i, (atom, img) in enumerate(nodes):
        for b, off, _ in graph.neighbors(atom):
            j = index.get((b, (img[0] + off[0], img[1] + off[1], img[2] + off[2])))
            if j is not None:
                adj[i].append(j)
    m = len(nodes)
    hops = np.full((m, m), np.inf)
    for s in range(m):
        hops[s, s] = 0
        queue = deque([s])
        while queue:
            u = queue.popleft()
            for v in adj[u]:
                if hops[s, v] == np.inf:
                    hops[s, v] = hops[s, u] + 1
                    queue.append(v)
    return hops


def _within_hops(graph: PeriodicGraph, node: tuple[int, tuple[int, int, int]], hops: int) -> set:
    """Unfolded ``(atom, image)`` nodes at most ``hops`` bonds from ``node``."""
    seen = {node}
    frontier = [node]
    for _ in range(hops):
        nxt = []
        for atom, img in frontier:
            for b, off, _ in graph.neighbors(atom):
                n = (b, (img[0] + off[0], img[1] + off[1], img[2] + off[2]))
                if n not in seen:
                    seen.add(n)
                    nxt.append(n)
        frontier = nxt
    return seen


def environment_features(
    graph: PeriodicGraph, nodes: list[tuple[int, tuple[int, int, int]]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Atoms within 6 A, within 10 A, and distance to the nearest atom > 3 bonds away.

    Searched over the periodic structure (pymatgen's cell-list neighbour search),
    so both see beyond the crop.  The void distance is capped at 10 A.

    >>> from andersonn.materials.cif import read_structure
    >>> from andersonn.materials.examples import example_cif_path
    >>> from andersonn.materials.graph import structure_to_graph
    >>> g = structure_to_graph(read_structure(example_cif_path("chain")))
    >>> n, wide, void = environment_features(g, [(0, (0, 0, 0))])
    >>> int(n[0]), round(float(void[0]), 2)   # 4 chain atoms each way; 4 bonds = 5.6 A
    (8, 5.6)
    """
    from pymatgen.optimization.neighbors import find_points_in_spheres

    m = len(nodes)
    counts = np.zeros(m)
    wide = np.zeros(m)
    void = np.full(m, _VOID_RADIUS)
    if m == 0:
        return counts, wide, void
    all_cart = np.ascontiguousarray(graph.frac_coords @ graph.lattice, dtype=float)
    centers = np.ascontiguousarray([graph.cart(a, img) for a, img in nodes], dtype=float)
    ci, nj, off, dist = find_points_in_spheres(
        all_cart, centers, _VOID_RADIUS, np.array([1, 1, 1], dtype=np.int64),
        np.ascontiguousarray(graph.lattice, dtype=float), 1e-8,
    )
    off = np.rint(off).astype(np.int64)
    order = np.lexsort((nj, np.round(dist, 6), ci))
    ci, nj, off, dist = ci[order], nj[order], off[order], dist[order]
    bounds = np.searchsorted(ci, np.arange(m + 1))
    for k in range(m):
        lo, hi = bounds[k], bounds[k + 1]
        d = dist[lo:hi]
        real = d > 1e-6
        counts[k] = int((real & (d <= _SHELL_RADIUS)).sum())
        wide[k] = int(real.sum())
        near = _within_hops(graph, nodes[k], _VOID_HOPS)
        for t in np.nonzero(real)[0]:
            j, o = int(nj[lo + t]), off[lo + t]
            if (j, (int(o[0]), int(o[1]), int(o[2]))) not in near:
                void[k] = float(d[t])
                break
    return counts, wide, void


def graph_to_image(graph: PeriodicGraph, image_size: int = 32) -> np.ndarray:
    """Node-neighbour image ``float32 (len(GRAPH_CHANNELS), image_size, image_size)``.

    >>> from pymatgen.core import Lattice, Structure
    >>> from andersonn.materials.graph import structure_to_graph
    >>> s = Structure(Lattice.cubic(1.5), ["C"], [[0, 0, 0]])
    >>> img = graph_to_image(structure_to_graph(s), 8)
    >>> bool((img[0] == 0.06).all())  # every pixel is a C atom of the unfolded net
    True
    """
    if image_size < 1:
        raise ValueError("image_size must be positive")
    nodes = crop_atoms(graph, image_size)
    m = len(nodes)
    out = np.zeros((len(GRAPH_CHANNELS), image_size, image_size), dtype=np.float32)
    if m == 0:
        return out
    atoms = np.array([a for a, _ in nodes])
    pos = np.array([graph.cart(a, img) for a, img in nodes])
    feats = np.array([_element_features(graph.symbols[a]) for a in atoms])  # (m, 3)
    coord = np.minimum(graph.coordination[atoms] / _MAX_COORDINATION, 1.0)
    hops = _hops(graph, nodes)
    shell, wide, void = environment_features(graph, nodes)
    shell = np.minimum(shell / _SHELL_NORM, 1.0)
    wide = np.minimum(wide / _WIDE_NORM, 1.0)
    void = np.minimum(void / _VOID_RADIUS, 1.0)
    dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    idx = np.arange(m)
    for r in range(m):
        h = np.where(np.isfinite(hops[r]), hops[r], 10.0 * image_size)
        cols = np.lexsort((idx, np.round(dist[r], 3), h))  # itself first (0 hops, 0 A)
        out[0:3, r, :m] = feats[cols].T
        out[3, r, :m] = coord[cols]
        out[4, r, :m] = np.minimum(h[cols] / image_size, 1.0)
        out[5, r, :m] = np.minimum(dist[r, cols] / _MAX_DISTANCE, 1.0)
        out[6, r, :m] = shell[cols]
        out[7, r, :m] = wide[cols]
        out[8, r, :m] = void[cols]
    return out


def structure_image(structure, image_size: int = 32, *, graph: PeriodicGraph | None = None,
                    grid: np.ndarray | None = None, pores: dict | None = None) -> np.ndarray:
    """The task image ``float32 (len(CHANNELS), S, S)``: graph, pore-profile, then pore-size channels.

    ``[:9]`` is ``graph_to_image(structure_to_graph(structure), S)``, ``[9:13]``
    is ``porespace_channels(structure, S)``, ``[13:]`` is
    ``pore_size_planes(pore_diameters(structure), S)``.  ``graph`` / ``grid`` /
    ``pores``: the bond graph, the
    :func:`~andersonn.materials.porespace.distance_grid` or the
    :func:`~andersonn.materials.porespace.pore_diameters` of ``structure`` if
    already computed (the cache computes the grid and the diameters once).
    ``image_size`` must be at least 2 (one column per probe radius).

    >>> from andersonn.materials.cif import read_structure
    >>> from andersonn.materials.examples import example_cif_path
    >>> img = structure_image(read_structure(example_cif_path("chain")), 4)
    >>> img.shape, [round(float(v), 3) for v in img[CHANNELS.index("void_fraction"), 0]]
    ((16, 4, 4), [0.92, 0.417, 0.002, 0.0])

    (The void fraction of the chains' 10 x 10 A box at probe radii 0, 2.7, 5.3
    and 8 A: little room is left more than 5 A from a chain.)
    """
    from andersonn.materials.graph import structure_to_graph
    from andersonn.materials.porespace import distance_grid, pore_diameters, pore_size_planes, porespace_channels

    if graph is None:
        graph = structure_to_graph(structure)
    if grid is None:
        grid = distance_grid(structure)
    if pores is None:
        pores = pore_diameters(structure, grid=grid)
    return np.concatenate([graph_to_image(graph, image_size), porespace_channels(structure, image_size, grid=grid),
                           pore_size_planes(pores, image_size)], axis=0)

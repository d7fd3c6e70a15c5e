"""Pore space from atoms: distance grid, percolation radius, pore profile, image channels.

All structures are built here by hand with pymatgen, small enough for a 0.5 A
grid to take milliseconds.
"""

import itertools
import math

import numpy as np
import pytest

pytest.importorskip("pymatgen")
pytest.importorskip("scipy")

from pymatgen.core import Lattice, Structure  # noqa: E402
from scipy.ndimage import maximum_filter1d, minimum_filter1d  # noqa: E402

from andersonn.materials.porespace import (  # noqa: E402
    CHANNELS,
    distance_grid,
    grid_shape,
    percolation_radius,
    pore_diameters,
    pore_profile,
    porespace_channels,
    vdw_radius,
)

R_C = 1.7  # van der Waals radius of C in pymatgen's table


def _resolution(structure, spacing=0.5):
    """Farthest any point lies from its nearest grid point: half the voxel diagonal (bound)."""
    steps = structure.lattice.matrix / np.array(grid_shape(structure.lattice, spacing))[:, None]
    signs = np.array([[1, a, b] for a in (1, -1) for b in (1, -1)])
    return 0.5 * float(np.linalg.norm(signs @ steps, axis=1).max())


def _walls(length, axes, step=1.4, c=None):
    """Carbon walls (atoms every ``step`` A) in the planes x_axis = 0 for each axis in ``axes``.

    The wall is solid for a probe: the biggest gap, at the centre of a square of
    four atoms, is step / sqrt(2) = 0.99 A from them, inside their 1.7 A radius.
    """
    c = length if c is None else c
    lat = Lattice.tetragonal(length, c)
    n_ab, n_c = round(length / step), round(c / step)
    pts = set()
    for i, j, k in itertools.product(range(n_ab), range(n_ab), range(n_c)):
        idx = (i, j, k)
        if any(idx[a] == 0 for a in axes):
            pts.add((i / n_ab, j / n_ab, k / n_c))
    pts = sorted(pts)
    return Structure(lat, ["C"] * len(pts), pts)


def _pcu(a=8.0, b=9.0, c=7.5):
    """Toy framework: Zn nodes at the corners joined by O-C-O rods along a, b and c."""
    sp, fc = ["Zn"], [[0.0, 0.0, 0.0]]
    for ax, L in enumerate((a, b, c)):
        for el, x in (("O", 1.9), ("C", L / 2), ("O", L - 1.9)):
            p = [0.0, 0.0, 0.0]
            p[ax] = x / L
            sp.append(el)
            fc.append(p)
    return Structure(Lattice.orthorhombic(a, b, c), sp, fc)


#: Sampling tolerance per channel: volume fractions, dimensionality (a step
#: function: exact up to the column shift), and the surface, a derivative of a
#: volume fraction and so the noisiest.
ATOL = {"accessible_fraction": 0.03, "void_fraction": 0.03, "channel_dimensionality": 0.0,
        "accessible_surface": 0.06}


def _assert_profiles_close(x, y, columns=1):
    """Channels agree up to a shift of the probe radius by ``columns`` columns, plus ``ATOL``.

    A grid that starts elsewhere moves each threshold (where a profile steps) by
    up to the grid resolution, about one column at S = 32 and a 0.5 A grid.
    """
    assert x.shape == y.shape
    for ch in range(x.shape[0]):
        atol = ATOL[CHANNELS[ch]]
        u, v = x[ch, 0].astype(float), y[ch, 0].astype(float)
        for p, q in ((u, v), (v, u)):
            lo = minimum_filter1d(q, 2 * columns + 1, mode="nearest")
            hi = maximum_filter1d(q, 2 * columns + 1, mode="nearest")
            bad = (p < lo - atol) | (p > hi + atol)
            assert not bad.any(), f"{CHANNELS[ch]}: columns {np.nonzero(bad)[0]}: {p[bad]} vs {q[bad]}"


# ---------------------------------------------------------------- distance grid


@pytest.mark.parametrize(
    "params",
    [(4.1, 5.3, 4.6, 68.0, 103.0, 117.0), (3.0, 3.2, 7.0, 90.0, 90.0, 25.0)],
    ids=["triclinic", "very-oblique"],
)
def test_distance_grid_matches_brute_force_over_periodic_images(params):
    s = Structure(
        Lattice.from_parameters(*params),
        ["Zn", "O", "C"],
        [[0.1, 0.2, 0.3], [0.6, 0.1, 0.8], [0.35, 0.75, 0.55]],
    )
    spacing = 0.7
    d = distance_grid(s, spacing=spacing)
    shape = grid_shape(s.lattice, spacing)
    assert d.shape == shape and d.dtype == np.float32
    frac = np.stack(np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij"), -1).reshape(-1, 3)
    points = s.lattice.get_cartesian_coords(frac)
    shifts = np.array(list(itertools.product(range(-5, 6), repeat=3)))
    best = np.full(len(points), np.inf)
    for site in s:
        images = s.lattice.get_cartesian_coords(site.frac_coords + shifts)
        dist = np.linalg.norm(points[:, None, :] - images[None, :, :], axis=-1).min(axis=1)
        best = np.minimum(best, dist - vdw_radius(site.specie.symbol))
    np.testing.assert_allclose(d.ravel(), best, atol=1e-4)


def test_grid_spacing_and_minimum_points():
    lat = Lattice.from_parameters(12.3, 2.0, 7.0, 80, 95, 105)
    shape = grid_shape(lat, 0.5)
    assert shape == (25, 8, 14)
    assert all(L / n <= 0.5 for L, n in zip(lat.abc, shape))


def test_voxel_adjacency_follows_the_lattice():
    """Face neighbours always; a diagonal only where it is no longer than a voxel edge."""
    from andersonn.materials.porespace import _neighbour_offsets

    cubic = _neighbour_offsets(Lattice.cubic(10.0), (20, 20, 20))
    faces = [o for o in itertools.product((-1, 0, 1), repeat=3) if sum(map(abs, o)) == 1]
    assert sorted(cubic) == sorted(faces)
    hexagonal = Lattice.hexagonal(10.0, 10.0)  # gamma = 120 deg: |a + b| = |a|
    offsets = _neighbour_offsets(hexagonal, grid_shape(hexagonal, 0.5))
    assert len(offsets) == 8 and (1, 1, 0) in offsets and (-1, -1, 0) in offsets


# ---------------------------------------------------- percolation radius, pores


@pytest.mark.parametrize("length", [6.0, 6.3])
def test_simple_cubic_cavity_and_window(length):
    """One C atom per cubic cell: cavity at the body centre, window at the face centre."""
    s = Structure(Lattice.cubic(length), ["C"], [[0, 0, 0]])
    tol = _resolution(s)
    cavity = length * math.sqrt(3) / 2 - R_C
    window = length / math.sqrt(2) - R_C
    d = distance_grid(s)
    assert cavity - tol <= d.max() <= cavity + 1e-5
    p = percolation_radius(d, s.lattice)
    assert abs(p.radius - window) <= tol
    assert p.along == (True, True, True) and p.dimensionality == 3
    if length == 6.0:  # body and face centres lie on the 0.5 A grid: exact
        assert d.max() == pytest.approx(cavity, abs=1e-5)
        assert p.radius == pytest.approx(window, abs=1e-5)


def test_one_dimensional_channel_percolates_along_c_only():
    s = _walls(9.8, axes=(0, 1), c=2.8)  # walls x = 0 and y = 0: square channels along c
    p = percolation_radius(distance_grid(s), s.lattice)
    assert p.along == (False, False, True)
    assert p.dimensionality == 1
    # channel axis at (4.9, 4.9): nearest wall atoms 4.95 - 5.0 A away
    assert 4.95 - R_C - _resolution(s) <= p.radius <= 5.0 - R_C + 1e-5
    prof = pore_profile(distance_grid(s), s.lattice, [0.5, 2.0, 3.0, 3.4])
    assert prof.along[:3].tolist() == [[False, False, True]] * 3
    assert prof.dimensionality.tolist() == [1, 1, 1, 0]
    dim = porespace_channels(s, 9)[CHANNELS.index("channel_dimensionality"), 0]  # r = 0, 1, .. 8 A
    np.testing.assert_allclose(dim, [1 / 3] * 4 + [0] * 5, atol=1e-7)


@pytest.mark.parametrize("origin", [0.0, 0.5], ids=["cage-inside-cell", "cage-across-faces"])
def test_closed_cage_does_not_percolate(origin):
    """A cubic cage closed by solid walls: a big cavity, no way through."""
    s = _walls(9.8, axes=(0, 1, 2))
    s = Structure(s.lattice, s.species, s.frac_coords + origin)
    d = distance_grid(s)
    cage = 4.9 - R_C  # wall-to-centre distance minus the atom radius
    assert 2 * d.max() == pytest.approx(2 * cage, abs=2 * _resolution(s))
    p = percolation_radius(d, s.lattice)
    assert p.radius < 0.0 < cage - 1.0  # even a point probe cannot pass the walls
    prof = pore_profile(d, s.lattice, [0.0, 1.0, 2.0])
    assert prof.accessible.tolist() == [0.0, 0.0, 0.0]
    assert prof.total[0] > 0.25 and (prof.total > 0).all() and prof.dimensionality.tolist() == [0, 0, 0]
    dia = pore_diameters(s)
    assert dia["pld"] < 0 < dia["lcd"] - 5.0


def test_pore_profile_volume_fractions():
    length = 6.3
    s = Structure(Lattice.cubic(length), ["C"], [[0, 0, 0]])
    d = distance_grid(s)
    window = length / math.sqrt(2) - R_C
    tol = _resolution(s)
    radii = np.linspace(0.0, 4.0, 41)
    prof = pore_profile(d, s.lattice, radii)
    # r = 0: all but the van der Waals sphere
    assert prof.total[0] == pytest.approx(1 - 4 / 3 * math.pi * R_C**3 / length**3, abs=0.01)
    assert np.all(np.diff(prof.total) <= 0) and np.all(np.diff(prof.accessible) <= 0)
    assert np.all(prof.accessible <= prof.total)
    below, above = radii < window - tol, radii > window + tol
    np.testing.assert_array_equal(prof.accessible[below], prof.total[below])
    assert (prof.accessible[above] == 0).all() and prof.total[above][0] > 0  # the closed cage
    assert (prof.surface[below] > 0).all() and (prof.surface[above] == 0).all()
    # surface at r = 0: area of the sphere of radius R + t averaged over t in [0, h]
    h = length / grid_shape(s.lattice, 0.5)[0]
    shell = 4 / 3 * math.pi * ((R_C + h) ** 3 - R_C**3) / (h * length**3)
    assert prof.surface[0] == pytest.approx(shell, rel=0.1)


# ------------------------------------------------------------------ channels


def test_channels_shape_range_and_rows():
    s = _pcu()
    ch = porespace_channels(s, 16)
    assert ch.shape == (len(CHANNELS), 16, 16) and ch.dtype == np.float32
    assert ch.min() >= 0.0 and ch.max() <= 1.0
    assert (ch == ch[:, :1, :]).all()  # constant down the rows
    assert np.array_equal(ch, porespace_channels(s, 16))  # deterministic
    assert ch[CHANNELS.index("channel_dimensionality"), 0, 0] == 1.0  # 3-D net for a point
    assert ch[CHANNELS.index("accessible_fraction"), 0, -1] == 0.0   # nothing at 8 A


def test_channels_invariant_to_atom_order():
    s = _pcu()
    ref = porespace_channels(s, 32)
    rng = np.random.default_rng(0)
    for _ in range(2):
        perm = rng.permutation(len(s))
        shuffled = Structure(s.lattice, [s[i].specie for i in perm], [s[i].frac_coords for i in perm])
        assert np.array_equal(ref, porespace_channels(shuffled, 32))


@pytest.mark.parametrize("shift", [(0.137, 0.291, 0.443), (0.5, 0.5, 0.5), (0.031, 0.0, 0.77)])
def test_channels_invariant_to_origin_shift(shift):
    s = _pcu()
    moved = Structure(s.lattice, s.species, s.frac_coords + np.array(shift))
    _assert_profiles_close(porespace_channels(s, 32), porespace_channels(moved, 32))
    assert abs(pore_diameters(s)["pld"] - pore_diameters(moved)["pld"]) <= 2 * _resolution(s)


def test_channels_invariant_to_supercell():
    s = _pcu()
    big = s.copy()
    big.make_supercell([2, 1, 1])
    # 8 A -> 16 points, 16 A -> 32: the supercell grid holds the same points
    np.testing.assert_allclose(porespace_channels(s, 32), porespace_channels(big, 32), atol=1e-5)


def test_triclinic_setting_agrees_with_orthogonal_setting():
    """The same crystal in the basis (a, a + b, c), gamma = 48 deg."""
    s = _pcu()
    m = s.lattice.matrix
    oblique = Structure(Lattice([m[0], m[0] + m[1], m[2]]), s.species, s.cart_coords,
                        coords_are_cartesian=True)
    assert oblique.lattice.gamma < 50
    _assert_profiles_close(porespace_channels(s, 32), porespace_channels(oblique, 32))
    ref, obl = pore_diameters(s), pore_diameters(oblique)
    assert abs(ref["pld"] - obl["pld"]) <= 2 * max(_resolution(s), _resolution(oblique))
    assert abs(ref["lcd"] - obl["lcd"]) <= 2 * max(_resolution(s), _resolution(oblique))
    assert ref["dimensionality"] == obl["dimensionality"] == 1

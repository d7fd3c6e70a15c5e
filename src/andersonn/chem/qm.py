"""Quantum-chemistry dipole moments of one geometry: GFN2-xTB (tblite) and DFT (PySCF).

Both take atomic numbers and Cartesian positions in Angstrom and return
``(energy in Hartree, dipole vector in Debye)``.

>>> import numpy as np
>>> z = np.array([8, 1, 1]); r = np.array([[0, 0, 0.117], [0, 0.757, -0.467], [0, -0.757, -0.467]])
>>> e, mu = xtb_dipole(z, r)
>>> 1.5 < float(np.linalg.norm(mu)) < 3.0
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["AU_TO_DEBYE", "ANGSTROM_TO_BOHR", "xtb_dipole", "xtb_optimize", "dft_dipole", "tblite_version", "pyscf_version"]

AU_TO_DEBYE = 2.541746473  # e*bohr -> Debye
ANGSTROM_TO_BOHR = 1.0 / 0.529177210903


def tblite_version() -> str:
    from importlib.metadata import version

    return version("tblite")


def pyscf_version() -> str:
    import pyscf

    return str(pyscf.__version__)


def xtb_dipole(
    numbers: np.ndarray, positions_ang: np.ndarray, charge: int = 0, uhf: int = 0, method: str = "GFN2-xTB"
) -> tuple[float, np.ndarray]:
    """GFN2-xTB single point with tblite: ``(energy / Eh, dipole / D)``."""
    from tblite.interface import Calculator

    calc = Calculator(method, np.asarray(numbers), np.asarray(positions_ang) * ANGSTROM_TO_BOHR, charge=charge, uhf=uhf)
    calc.set("verbosity", 0)
    calc.set("max-iter", 250)
    res = calc.singlepoint()
    return float(res.get("energy")), np.asarray(res.get("dipole"), dtype=float) * AU_TO_DEBYE


def dft_dipole(
    numbers: np.ndarray,
    positions_ang: np.ndarray,
    charge: int = 0,
    spin: int = 0,
    xc: str = "B3LYP",
    basis: str = "def2-SVP",
    density_fit: bool = True,
) -> tuple[float, np.ndarray]:
    """Kohn-Sham DFT single point with PySCF (RKS/UKS, density fitting by default).

    Raises ``RuntimeError`` when the SCF does not converge.
    """
    from pyscf import dft, gto, lib

    lib.num_threads(1)
    atom = [(int(z), tuple(map(float, r))) for z, r in zip(numbers, positions_ang)]
    mol = gto.M(atom=atom, basis=basis, charge=charge, spin=spin, unit="Angstrom", verbose=0)
    mf = dft.RKS(mol) if spin == 0 else dft.UKS(mol)
    mf.xc = xc
    if density_fit:
        mf = mf.density_fit()
    mf.conv_tol = 1e-8
    mf.max_cycle = 100
    energy = mf.kernel()
    if not mf.converged:
        mf = mf.newton()
        energy = mf.kernel()
        if not mf.converged:
            raise RuntimeError("SCF did not converge")
    mu = mf.dip_moment(unit="Debye", verbose=0)
    return float(energy), np.asarray(mu, dtype=float)


def xtb_optimize(
    numbers: np.ndarray,
    positions_ang: np.ndarray,
    charge: int = 0,
    uhf: int = 0,
    gtol: float = 1e-3,
    max_steps: int = 300,
    method: str = "GFN2-xTB",
) -> tuple[np.ndarray, float, np.ndarray, int]:
    """Relax a geometry with GFN2-xTB (L-BFGS on tblite energies and gradients).

    Returns ``(positions / Angstrom, energy / Eh, dipole / D, steps)``.
    ``gtol`` is the largest gradient component (Eh/bohr) accepted as converged.
    """
    from scipy.optimize import minimize
    from tblite.interface import Calculator

    x0 = np.asarray(positions_ang, dtype=float) * ANGSTROM_TO_BOHR
    calc = Calculator(method, np.asarray(numbers), x0, charge=charge, uhf=uhf)
    calc.set("verbosity", 0)
    calc.set("max-iter", 250)
    state: dict[str, object] = {}

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        calc.update(flat.reshape(-1, 3))
        res = calc.singlepoint(state.get("res"))  # restart from the previous wavefunction
        state["res"] = res
        return float(res.get("energy")), np.asarray(res.get("gradient"), dtype=float).ravel()

    opt = minimize(fun, x0.ravel(), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_steps, "gtol": gtol, "maxcor": 30})
    calc.update(opt.x.reshape(-1, 3))
    res = calc.singlepoint()
    pos = opt.x.reshape(-1, 3) / ANGSTROM_TO_BOHR
    return pos, float(res.get("energy")), np.asarray(res.get("dipole"), dtype=float) * AU_TO_DEBYE, int(opt.nit)

"""Deep AndersoNN: deep equilibrium networks with Anderson-accelerated fixed-point solves.

Example:
    >>> import torch, andersonn
    >>> r = andersonn.solve(lambda z: 0.5 * z + 1.0, torch.zeros(3, 4), method="anderson", tol=1e-6)
    >>> r.status.name, round(float(r.z.mean()), 4)
    ('SUCCESS', 2.0)
"""

from .solvers import (
    SolverInputError,
    SolverResult,
    SolverStatus,
    Workspace,
    available_solvers,
    register_solver,
    solve,
)
from .deq import DEQ
from .jacobian import spectral_radius
from .runtime import tune_cpu_allocator

__version__ = "0.1.0"
__all__ = [
    "solve", "SolverResult", "SolverStatus", "SolverInputError", "register_solver",
    "available_solvers", "DEQ", "Workspace", "tune_cpu_allocator", "spectral_radius", "__version__",
]

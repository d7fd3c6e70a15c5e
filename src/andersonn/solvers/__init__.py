"""Fixed-point solvers: a registry of batched methods behind one :func:`solve`."""

from .loop import run_fixed_point
from .method import FixedPointMethod
from .options import SolverInputError, SolverOptions, StopRule
from .registry import available_solvers, get_solver, register_solver, solve
from .result import SolverResult, SolverStatus
from .workspace import Workspace
from . import forward as _forward  # noqa: F401  (registers "forward")
from . import anderson as _anderson  # noqa: F401  (registers "anderson")
from . import broyden as _broyden  # noqa: F401  (registers "broyden")
from .anderson import Anderson, AndersonOptions
from .broyden import Broyden, BroydenOptions
from .forward import ForwardIteration, ForwardOptions

__all__ = [
    "solve", "SolverResult", "SolverStatus", "SolverInputError", "register_solver", "available_solvers",
    "get_solver", "FixedPointMethod", "SolverOptions", "StopRule", "run_fixed_point",
    "Anderson", "AndersonOptions", "Broyden", "BroydenOptions", "ForwardIteration", "ForwardOptions", "Workspace",
]

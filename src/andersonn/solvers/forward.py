"""Forward (Picard) iteration: z_{k+1} = f(z_k, x), the poster's "standard" solver."""

from __future__ import annotations

import dataclasses

from .method import FixedPointMethod
from .options import SolverInputError, SolverOptions
from .registry import register_solver

__all__ = ["ForwardIteration", "ForwardOptions"]


@dataclasses.dataclass(frozen=True)
class ForwardOptions(SolverOptions):
    """Options of forward iteration.

    Attributes:
        damping: z_{k+1} = (1 - damping) z_k + damping f(z_k); 1.0 is plain iteration.
    """

    damping: float = 1.0

    def validate(self) -> None:
        if not 0.0 < self.damping <= 1.0:
            raise SolverInputError(f"damping must be in (0, 1], got {self.damping!r}")


@register_solver("forward")
class ForwardIteration(FixedPointMethod):
    """Plain fixed-point iteration; cheap per step, slow (or divergent) when f is barely contractive."""

    Options = ForwardOptions
    can_restart = False

    def step(self, z, fz, g, k, reject):
        if self.options.damping == 1.0:
            return fz, None  # no safeguard of its own: None = nothing fired
        return z + self.options.damping * g, None

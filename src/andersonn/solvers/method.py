"""The protocol of a fixed-point method: it proposes the next iterate, the loop does the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from .options import SolverOptions

if TYPE_CHECKING:
    from .workspace import Workspace

__all__ = ["FixedPointMethod"]


class FixedPointMethod:
    """A fixed-point method: proposes z_{k+1} from (z_k, f(z_k)).

    Subclasses set ``name``, ``Options`` (a :class:`SolverOptions` dataclass) and
    ``can_restart``, and implement :meth:`start`, :meth:`step` and :meth:`keep`.
    State tensors are batch-first over the *active* samples, flattened to (B, n).
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type[SolverOptions]] = SolverOptions
    can_restart: ClassVar[bool] = False
    # Names of the method's own restart causes: step() may report cause i as code i + 1.
    restart_causes: ClassVar[tuple[str, ...]] = ()
    # Set by the loop before start(): buffers a method may reuse across solves (or None).
    workspace: "Workspace | None" = None
    # Set by the loop before start(): whether CPU-only shortcuts may be taken while nothing needs the
    # general path (False: run what accelerators run, to check both give the same answers).
    cpu_shortcuts: bool = True

    def __init__(self, options: SolverOptions) -> None:
        self.options = options

    def start(self, z: torch.Tensor, max_iter: int) -> None:
        """Allocate state for a solve starting at ``z`` (B, n)."""

    def residual(self, z: torch.Tensor, fz: torch.Tensor, k: int) -> torch.Tensor:
        """Return f(z) - z; methods may write it straight into their history."""
        return fz - z

    def residual_norm(self, g: torch.Tensor) -> torch.Tensor:
        """Per-sample 2-norm of the residual from :meth:`residual` (methods may have it for free)."""
        return torch.linalg.vector_norm(g, dim=1)

    def current(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """After :meth:`keep`, the compacted (f(z), residual) if the method stores them, else None.

        Lets the loop skip copying the two state-sized tensors when samples retire.
        """
        return None

    def stores_current(self) -> bool:
        """Whether :meth:`current` is overridden (the loop then takes f(z) and the residual from it)."""
        return type(self).current is not FixedPointMethod.current

    def step(
        self, z: torch.Tensor, fz: torch.Tensor, g: torch.Tensor, k: int, reject: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Next iterate and which samples' safeguard fired (restarted their history).

        The second value is None (none fired), a bool (B,) mask (counted under the cause
        ``"other"``), or an integer (B,) tensor of cause codes: 0 for none, ``i + 1`` for
        ``restart_causes[i]`` (counted per cause in :attr:`SolverResult.restarts_by_cause`).

        ``g`` is the residual from :meth:`residual`; rows in ``reject`` hold
        non-finite values and must not enter the history (the loop replaces
        their next iterate by their best one).
        """
        raise NotImplementedError

    def keep(self, rows: torch.Tensor, runs: list[tuple[int, int, int]] | None) -> None:
        """Keep only the given rows of the state (samples that are still active).

        ``runs`` (CPU only) describes ``rows`` as block copies for
        :func:`~andersonn.solvers.rows.compact_rows_` / :func:`~andersonn.solvers.rows.take_rows`;
        None means use ``index_select``.
        """

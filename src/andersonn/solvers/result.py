"""The typed outcome of a fixed-point solve.

Every solver in the registry returns a :class:`SolverResult`, so code that
plots residuals or logs compute never needs to know which solver ran.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from enum import IntEnum

import torch

__all__ = ["SolverStatus", "SolverResult"]


class SolverStatus(IntEnum):
    """Why a sample (or a whole solve) stopped.

    Ordered by severity, so the status of a batch is the maximum over its samples.
    """

    SUCCESS = 0
    """The relative (or absolute) residual reached ``tol``."""
    MAX_ITER = 1
    """``max_iter`` evaluations were spent without reaching ``tol``."""
    DIVERGED = 2
    """The residual grew past ``divergence_factor`` times its initial value."""
    NONFINITE = 3
    """f returned NaN/Inf and restarts from the best iterate did not recover."""


@dataclass
class SolverResult:
    """Result of :func:`andersonn.solve`.

    Attributes:
        z: the best iterate of every sample (lowest residual seen), shape of ``z0``.
        nfe: evaluations of f spent on each sample, ``LongTensor (B,)``.
        converged: ``BoolTensor (B,)``, residual below ``tol``.
        residual: final residual of each returned iterate, ``(B,)``, in the solve's
            ``stop_mode``: ``||f(z) - z|| / ||f(z)||`` for ``"rel"``, ``||f(z) - z||`` for
            ``"abs"`` (``residual_kind`` says which). ``rel_residual`` is a deprecated alias.
        trace: residual at every iteration, ``(iterations, B)``; NaN once a
            sample has stopped (it no longer costs evaluations).
        sample_status: :class:`SolverStatus` code of each sample, ``LongTensor (B,)``.
        iterations: iterations run (calls of f).
        sample_evals: total sample-evaluations of f actually computed; with
            per-sample stopping and batch ``args`` this is below ``iterations * B``
            (a closure over the whole batch computes every row, done or not).
        restarts: history restarts per sample (safeguards that fired), all causes together.
        restarts_by_cause: the same, per cause: ``{cause: LongTensor (B,)}`` summing to
            ``restarts``. Every solve has ``"nonfinite_evaluation"`` (f returned NaN/Inf;
            the sample restarts from its best iterate) and ``"other"`` (a method's safeguard
            that names no cause); Anderson adds ``"singular_system"`` (the bordered
            least-squares system could not be solved), ``"nonfinite_coefficients"`` and
            ``"large_coefficients"`` (sum |alpha_i| above ``max_coeff``). See
            :attr:`restart_counts` for batch totals.
        method: the solver's registry name.
        options: the solver options in force.
        residual_kind: ``"relative"`` or ``"absolute"``: what ``residual`` and ``trace`` hold.
        snapshots: with ``solve(..., snapshot_at=(k, ...))``, ``{k: iterate}``: the whole batch's
            iterate after ``k`` iterations, shaped like ``z0``. A sample that stopped before ``k``
            contributes its answer (its row of ``z``), as does every sample when the solve ended
            before iteration ``k``. Empty otherwise.

    Example:
        >>> import torch, andersonn
        >>> A = 0.5 * torch.eye(3)
        >>> r = andersonn.solve(lambda z: z @ A.T + 1.0, torch.zeros(2, 3), tol=1e-6)
        >>> r.status.name, bool(r.converged.all())
        ('SUCCESS', True)
    """

    z: torch.Tensor
    nfe: torch.Tensor
    converged: torch.Tensor
    residual: torch.Tensor
    trace: torch.Tensor
    sample_status: torch.Tensor
    iterations: int
    sample_evals: int
    restarts: torch.Tensor
    method: str
    options: dict = field(default_factory=dict)
    residual_kind: str = "relative"
    restarts_by_cause: dict = field(default_factory=dict)
    snapshots: dict = field(default_factory=dict)

    @property
    def restart_counts(self) -> dict[str, int]:
        """Restarts of the whole batch per cause, as Python ints (one host read per cause)."""
        return {cause: int(n.sum()) for cause, n in self.restarts_by_cause.items()}

    @property
    def rel_residual(self) -> torch.Tensor:
        """Deprecated alias of :attr:`residual` (which is absolute with ``stop_mode="abs"``,
        so the old name was misleading); kept so existing code keeps working."""
        warnings.warn(
            "SolverResult.rel_residual is deprecated: use .residual (absolute or relative, "
            "see .residual_kind)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.residual

    @property
    def status(self) -> SolverStatus:
        """The batch's status: the most severe status among its samples."""
        if self.sample_status.numel() == 0:
            return SolverStatus.SUCCESS
        return SolverStatus(int(self.sample_status.max()))

    @property
    def success(self) -> bool:
        """True when every sample converged."""
        return self.status == SolverStatus.SUCCESS

    @property
    def mean_nfe(self) -> float:
        """Mean evaluations of f per sample."""
        return float(self.nfe.float().mean()) if self.nfe.numel() else 0.0

    @property
    def message(self) -> str:
        """A one-line human summary that names the cause of any failure."""
        counts = {s: int((self.sample_status == s).sum()) for s in SolverStatus}
        b = self.sample_status.numel()
        text = (
            f"{self.method}: {counts[SolverStatus.SUCCESS]}/{b} samples converged in "
            f"{self.iterations} iterations (mean NFE {self.mean_nfe:.1f}, "
            f"max residual {float(self.residual.max()) if b else 0.0:.2e})"
        )
        causes = {
            SolverStatus.MAX_ITER: "hit max_iter",
            SolverStatus.DIVERGED: "diverged (residual blew up; is f contractive?)",
            SolverStatus.NONFINITE: "produced NaN/Inf (check the input and f for non-finite values)",
        }
        extra = [f"{counts[s]} {why}" for s, why in causes.items() if counts[s]]
        return text + ("; " + "; ".join(extra) if extra else "")

    def mean_trace(self) -> torch.Tensor:
        """Mean residual over the samples still iterating at each step (for plots)."""
        return torch.nanmean(self.trace, dim=1) if self.trace.numel() else self.trace

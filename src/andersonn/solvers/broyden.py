"""Broyden's method for z = f(z), batched and safeguarded, with limited memory.

Root finding on the residual g(z) = f(z) - z. The inverse of its Jacobian is approximated by

    H = -I + sum_i u_i v_i^T

(H0 = -I makes the first step z - H0 g = f(z), a forward step), each step is z+ = z - H g, and after it
"good" Broyden's rank-one update makes H satisfy the secant condition H dg = dz:

    u = (dz - H dg) / (dz^T H dg),    v^T = dz^T H.

This is the update TorchDEQ's ``broyden`` solver makes (without its line search). The pairs (u_i, v_i)
live in two buffers of ``memory`` columns each, so applying H
costs two batched mat-vecs; when the buffers are full the history starts again (overwriting only the
oldest pair instead made one sample of a 40-dimensional linear problem diverge). Each sample has its own history: an update whose denominator is tiny
against |dz| |H dg| (the secant condition would blow H up) is skipped and the sample's history
restarts (cause ``small_denominator``), and a sample whose evaluation was non-finite forgets its
whole history. On a linear map an exact-arithmetic good Broyden converges in at most 2n steps (Gay, 1979).
"""

from __future__ import annotations

import dataclasses

import torch

from .method import FixedPointMethod
from .options import SolverInputError, SolverOptions
from .registry import register_solver
from .rows import compact_rows_, maybe_any, take_rows

__all__ = ["Broyden", "BroydenOptions"]


@dataclasses.dataclass(frozen=True)
class BroydenOptions(SolverOptions):
    """Options of Broyden's method.

    Attributes:
        memory: rank-one updates kept before the history starts again from H = -I, >= 1; at most
            ``max_iter`` are ever used.
        min_denominator: an update with |dz^T H dg| <= min_denominator * |dz| |H dg| is skipped and
            the sample's history restarts.
    """

    memory: int = 30
    min_denominator: float = 1e-8

    def validate(self) -> None:
        if not isinstance(self.memory, int) or isinstance(self.memory, bool) or self.memory < 1:
            raise SolverInputError(f"Broyden memory must be an integer >= 1, got {self.memory!r}")
        if not 0.0 <= self.min_denominator < 1.0:
            raise SolverInputError(f"min_denominator must be in [0, 1), got {self.min_denominator!r}")


@register_solver("broyden")
class Broyden(FixedPointMethod):
    """Batched, per-sample safeguarded limited-memory good Broyden (see module docstring).

    Example:
        >>> import torch
        >>> from andersonn.solvers import solve
        >>> A = torch.tensor([[0.9, 0.2], [-0.3, 0.8]])  # spectral radius 0.87: forward iteration is slow
        >>> r = solve(lambda z: z @ A.T + 1.0, torch.zeros(1, 2), method="broyden", tol=1e-6)
        >>> torch.allclose(r.z, torch.linalg.solve(torch.eye(2) - A, torch.ones(2)), atol=1e-4), int(r.nfe)
        (True, 5)
    """

    Options = BroydenOptions
    can_restart = True
    restart_causes = ("small_denominator",)

    def start(self, z: torch.Tensor, max_iter: int) -> None:
        b, n = z.shape
        self.memory = min(self.options.memory, max_iter)
        self.U = z.new_zeros(b, self.memory, n)
        self.V = z.new_zeros(b, self.memory, n)
        self.z_prev: torch.Tensor | None = None
        self.g_prev: torch.Tensor | None = None
        self.no_prev = torch.zeros(b, dtype=torch.bool, device=z.device)
        self.filled = 0

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        """H x = -x + U^T (V x), per sample."""
        return torch.baddbmm(-x.unsqueeze(2), self.U.transpose(1, 2), torch.bmm(self.V, x.unsqueeze(2))).squeeze(2)

    def _apply_left(self, x: torch.Tensor) -> torch.Tensor:
        """x^T H = -x^T + (x^T U^T) V, per sample (returned as a vector)."""
        return torch.baddbmm(-x.unsqueeze(2), self.V.transpose(1, 2), torch.bmm(self.U, x.unsqueeze(2))).squeeze(2)

    def step(self, z, fz, g, k, reject):
        cause = None
        if self.z_prev is not None:
            dz, dg = z - self.z_prev, g - self.g_prev
            h_dg = self._apply(dg)
            v = self._apply_left(dz)
            den = (v * dg).sum(1)
            scale = torch.linalg.vector_norm(dz, dim=1) * torch.linalg.vector_norm(h_dg, dim=1)
            usable = ~reject & ~self.no_prev  # a row whose previous point was rejected has no secant pair
            ok = usable & torch.isfinite(den) & (den.abs() > self.options.min_denominator * scale)
            j = self.filled % self.memory
            if j == 0 and self.filled:  # memory full: start again from H = -I (overwriting the oldest
                self.U.zero_()          # pair instead leaves an H that can diverge, measured on n = 40)
                self.V.zero_()
            self.U[:, j] = torch.where(ok[:, None], (dz - h_dg) / torch.where(ok, den, 1.0)[:, None], 0.0)
            self.V[:, j] = torch.where(ok[:, None], v, 0.0)
            self.filled += 1
            fired = usable & ~ok
            if maybe_any(fired):  # a skipped update: that sample starts again from H = -I
                self._forget(fired)
            cause = fired.to(torch.int64)
        if maybe_any(reject):  # a non-finite evaluation: the sample forgets its history
            self._forget(reject)
        self.no_prev = reject.clone()
        nxt = z - self._apply(g)
        self.z_prev, self.g_prev = z.clone(), g.clone()
        return nxt, cause

    def _forget(self, rows: torch.Tensor) -> None:
        keep = (~rows)[:, None, None]
        self.U = torch.where(keep, self.U, 0.0)
        self.V = torch.where(keep, self.V, 0.0)

    def keep(self, rows: torch.Tensor, runs: list[tuple[int, int, int]] | None) -> None:
        self.U = compact_rows_(self.U, rows, runs)
        self.V = compact_rows_(self.V, rows, runs)
        self.no_prev = self.no_prev.index_select(0, rows)
        if self.z_prev is not None:
            self.z_prev = take_rows(self.z_prev, rows, runs)
            self.g_prev = take_rows(self.g_prev, rows, runs)

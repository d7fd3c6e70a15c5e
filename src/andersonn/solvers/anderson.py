"""Anderson acceleration as the poster writes it, batched and safeguarded.

With the last m iterates z_i and residuals g_i = f(z_i) - z_i as columns of G,
each step solves the bordered system (poster eq. 3)

    [[0, 1^T], [1, G^T G + lam I]] [nu; alpha] = [1; 0]

and mixes (poster eq. 4)

    z+ = (1 - beta) sum_i alpha_i z_i + beta sum_i alpha_i f(z_i).

Implementation notes (what makes it fast and robust):

* history lives in two preallocated ring buffers F = [f(z_i)] and G = [g_i]
  (2m copies of the state); z_i is never stored since z_i = f(z_i) - g_i;
* the Gram matrix G^T G is updated incrementally: one new row/column per step
  (a single batched mat-vec), never recomputed;
* the small (m+1)x(m+1) systems of the whole batch are solved at once in
  float64 with ``torch.linalg.solve_ex`` (no host synchronisation);
* each sample has its own mask of valid history columns, so a restart of one
  sample (ill-conditioned system, huge coefficients, a non-finite value)
  touches no other sample; a restart falls back to a plain mixing step.
"""

from __future__ import annotations

import dataclasses

import torch

from .base import FixedPointMethod, SolverInputError, SolverOptions, compact_rows_, maybe_any
from .registry import register_solver

__all__ = ["Anderson", "AndersonOptions"]


@dataclasses.dataclass(frozen=True)
class AndersonOptions(SolverOptions):
    """Options of Anderson acceleration.

    Attributes:
        m: history window (number of past iterates combined), >= 1.
        lam: Tikhonov regularisation lambda of the bordered system.
        beta: mixing between extrapolated iterates (0) and their images (1); > 0.
        lam_mode: ``"relative"`` scales lam by the mean diagonal of G^T G so the
            regularisation is invariant to the scale of the residuals (recommended);
            ``"absolute"`` adds lam * I literally, as in the poster and the
            implicit-layers tutorial.
        max_coeff: a step whose coefficients have sum |alpha_i| above this is
            treated as ill-conditioned: the sample's history restarts and it
            takes a plain mixing step instead.
    """

    m: int = 5
    lam: float = 1e-4
    beta: float = 1.0
    lam_mode: str = "relative"
    max_coeff: float = 1e4

    def validate(self) -> None:
        if not isinstance(self.m, int) or isinstance(self.m, bool) or self.m < 1:
            raise SolverInputError(f"Anderson window m must be an integer >= 1, got {self.m!r}")
        if not self.lam >= 0:
            raise SolverInputError(f"lam must be >= 0, got {self.lam!r}")
        if not self.beta > 0:
            raise SolverInputError(f"beta must be > 0, got {self.beta!r}")
        if self.lam_mode not in ("relative", "absolute"):
            raise SolverInputError(f"lam_mode must be 'relative' or 'absolute', got {self.lam_mode!r}")
        if not self.max_coeff > 1:
            raise SolverInputError(f"max_coeff must be > 1, got {self.max_coeff!r}")


@register_solver("anderson")
class Anderson(FixedPointMethod):
    """Batched, per-sample safeguarded Anderson acceleration (see module docstring)."""

    Options = AndersonOptions
    can_restart = True

    def start(self, z: torch.Tensor, max_iter: int) -> None:
        b, n = z.shape
        m = min(self.options.m, max_iter)
        self.m = m
        self.F = z.new_zeros(b, m, n)
        self.G = z.new_zeros(b, m, n)
        self.H = z.new_zeros(b, m, m)  # Gram matrix G^T G, float of the state
        self.valid = torch.zeros(b, m, dtype=torch.bool, device=z.device)
        self.eye = torch.eye(m, dtype=torch.float64, device=z.device)
        self.zero = z.new_zeros(())

    def residual(self, z, fz, k):
        self.j = j = k % self.m
        g = self.G[:, j]
        torch.sub(fz, z, out=g)
        self.F[:, j].copy_(fz)
        # New Gram row/column, computed here so that its diagonal entry ||g||^2 gives the
        # residual norm without another pass over g. (g^T G^T is ~3x faster on CPU than
        # G g: a row-times-matrix product instead of a batched mat-vec.)
        self.row = torch.bmm(g.unsqueeze(1), self.G.transpose(1, 2)).squeeze(1)  # (B, m)
        return g

    def residual_norm(self, g):
        return self.row[:, self.j].sqrt()

    def current(self):
        return self.F[:, self.j], self.G[:, self.j]

    def step(self, z, fz, g, k, reject):
        o = self.options
        j = k % self.m
        rej = reject[:, None]
        g = self.G[:, j]  # the residual() view, also valid after the loop compacted the batch
        row = self.row
        if maybe_any(reject):
            # Sanitise the new column: a non-finite sample must not poison its history.
            self.F[:, j].masked_fill_(rej, 0.0)
            g.masked_fill_(rej, 0.0)
            row = row.masked_fill(rej, 0.0)  # the Gram row of a zero column
        # Incremental Gram update: only row/column j changes.
        self.H[:, j, :] = row
        self.H[:, :, j] = row
        onehot = torch.zeros_like(self.valid)
        onehot[:, j] = True
        self.valid[:, j] = True
        self.valid = torch.where(rej, onehot, self.valid)

        alpha, ok = self._coefficients()
        fired = ~ok & ~reject
        # Fallback: restart the history at the newest column and take a plain step.
        self.valid = torch.where(fired[:, None], onehot, self.valid)
        alpha = torch.where(ok[:, None], alpha, onehot.to(alpha.dtype)).to(fz.dtype)
        z_next = torch.bmm(alpha.unsqueeze(1), self.F).squeeze(1)
        if o.beta != 1.0:
            z_next = z_next - (1.0 - o.beta) * torch.bmm(alpha.unsqueeze(1), self.G).squeeze(1)
        return z_next, fired

    def _coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Solve the bordered systems of the whole batch in float64, without a host sync."""
        o = self.options
        b, m = self.valid.shape
        v = self.valid.to(torch.float64)
        H = self.H.to(torch.float64) * (v[:, :, None] * v[:, None, :])
        if o.lam_mode == "relative":
            scale = (H.diagonal(dim1=1, dim2=2).sum(1) / v.sum(1).clamp_min(1.0)).clamp_min(1e-30)
            lam = o.lam * scale
        else:
            lam = torch.full((b,), o.lam, dtype=torch.float64, device=H.device)
        A = H.new_zeros(b, m + 1, m + 1)
        # Invalid columns become identity rows with a zero border, forcing alpha_i = 0.
        A[:, 1:, 1:] = H + self.eye * (lam[:, None, None] * v[:, :, None] + (1.0 - v)[:, :, None])
        A[:, 0, 1:] = v
        A[:, 1:, 0] = v
        rhs = H.new_zeros(b, m + 1)
        rhs[:, 0] = 1.0
        sol, info = torch.linalg.solve_ex(A, rhs)
        alpha = sol[:, 1:]
        ok = (info == 0) & torch.isfinite(alpha).all(1) & (alpha.abs().sum(1) <= o.max_coeff)
        return torch.nan_to_num(alpha), ok

    def keep(self, rows: torch.Tensor, runs=None) -> None:
        # The history is ours: compact it in place (block copies on the CPU, no new 2m-state buffers).
        self.F = compact_rows_(self.F, rows, runs)
        self.G = compact_rows_(self.G, rows, runs)
        self.H = self.H.index_select(0, rows)
        self.row = self.row.index_select(0, rows)
        self.valid = self.valid.index_select(0, rows)

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
* the bordered matrix is kept in float64 and the small (m+1)x(m+1) systems of
  the whole batch are solved at once with ``torch.linalg.solve_ex`` (no host
  synchronisation);
* each sample has its own mask of valid history columns, so a restart of one
  sample (ill-conditioned system, huge coefficients, a non-finite value)
  touches no other sample; a restart falls back to a plain mixing step, and a
  sample whose evaluation was non-finite forgets its whole window;
* on the CPU, where reading a flag costs nothing, the masks are skipped while
  every sample's window holds the same columns (the usual case): each step then
  solves the leading block of the kept matrix, about half the tensor operations
  of the masked step, which is what small states pay for. Accelerators always
  run the masked step.
"""

from __future__ import annotations

import dataclasses

import torch

from .method import FixedPointMethod
from .options import SolverInputError, SolverOptions
from .rows import compact_rows_, maybe_any
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
    # Why a sample's history restarts (codes 1, 2, 3 of step()'s second value).
    restart_causes = ("singular_system", "nonfinite_coefficients", "large_coefficients")

    def start(self, z: torch.Tensor, max_iter: int) -> None:
        b, n = z.shape
        m = min(self.options.m, max_iter)
        self.m = m
        self.dtype = z.dtype
        fast = self.cpu_shortcuts and z.device.type == "cpu"
        ws = self.workspace
        if ws is None and fast:
            # Uninitialised, like reused buffers: the uniform window reads only the columns this
            # solve writes, and _enter_masked clears the rest. That skips a zero fill of 2m states.
            self.F = z.new_empty(b, m, n)
            self.G = z.new_empty(b, m, n)
            self._stale = True
        elif ws is None:
            self.F = z.new_zeros(b, m, n)
            self.G = z.new_zeros(b, m, n)
            self._stale = False
        else:  # reused buffers skip the zero fill and first-touch page faults (~5% of a solve)
            self.F, new_f = ws.get("anderson.F", (b, m, n), z.dtype, z.device)
            self.G, new_g = ws.get("anderson.G", (b, m, n), z.dtype, z.device)
            self._stale = not (new_f and new_g)
            if self._stale and not fast:  # the masked path reads every column from the first step
                self.F.zero_()
                self.G.zero_()
                self._stale = False
        # While the buffers hold an earlier solve's values (or none), only columns 0..min(k, m-1) are this
        # solve's: the uniform window reads only those, the masked path clears the rest on entry.
        self.k = -1
        # The bordered matrix [[0, 1^T], [1, G^T G]] in float64, one row/column written per step;
        # the regularisation is added to a copy at each solve.
        self.A = torch.zeros(b, m + 1, m + 1, dtype=torch.float64, device=z.device)
        self.row3 = z.new_zeros(b, 1, m)  # the newest Gram row g^T G^T
        self.filled = 0  # history columns written so far (they fill 0, 1, ..., m-1, then wrap)
        # Per-sample masks of valid columns, or None while every sample has columns 0..filled-1
        # (the uniform window: only the CPU can know that for free).
        self.valid = None if fast else torch.zeros(b, m, dtype=torch.bool, device=z.device)
        reg = torch.eye(m + 1, dtype=torch.float64, device=z.device)
        reg[0, 0] = 0.0
        self.reg = [reg[: s + 1, : s + 1] for s in range(m + 1)]  # where lambda goes: diag(0, 1, ..., 1)
        e0 = torch.zeros(m + 1, dtype=torch.float64, device=z.device)
        e0[0] = 1.0
        self.rhs = [e0[: s + 1] for s in range(m + 1)]
        self.eye = torch.eye(m, dtype=torch.float64, device=z.device)
        self._views()

    def _views(self) -> None:
        """Reset the views of the buffers used every step; they are made on first use and
        reused until the next compaction (a retirement every few iterations must stay cheap)."""
        self.GT = self.G.transpose(1, 2)
        self.row = self.row3[:, 0]
        self._cols: dict[int, tuple[torch.Tensor, ...]] = {}
        self._subs: dict[int, tuple[torch.Tensor, ...]] = {}

    def _col(self, j: int) -> tuple[torch.Tensor, ...]:
        """Views of history column j: g_j, g_j as (B, 1, n), f(z_j), Gram diagonal entry, A row, A column."""
        c = self._cols.get(j)
        if c is None:
            G, A = self.G, self.A
            c = (G[:, j], G[:, j : j + 1], self.F[:, j], self.row[:, j], A[:, 1 + j, 1:], A[:, 1:, 1 + j])
            self._cols[j] = c
        return c

    def _sub(self, s: int) -> tuple[torch.Tensor, ...]:
        """Views for a window of the first s columns: bordered matrix, Gram diagonal, F, G."""
        v = self._subs.get(s)
        if v is None:
            A = self.A
            v = (A[:, : s + 1, : s + 1], A.diagonal(dim1=1, dim2=2)[:, 1 : s + 1], self.F[:, :s], self.G[:, :s])
            self._subs[s] = v
        return v

    def residual(self, z, fz, k):
        self.k = k
        self.j = j = k % self.m
        g, g3, f_j, self.g_norm2, _, _ = self._col(j)
        torch.sub(fz, z, out=g)
        f_j.copy_(fz)
        # New Gram row/column, computed here so that its diagonal entry ||g||^2 gives the
        # residual norm without another pass over g. (g^T G^T is ~3x faster on CPU than
        # G g: a row-times-matrix product instead of a batched mat-vec.)
        torch.bmm(g3, self.GT, out=self.row3)
        return g

    def residual_norm(self, g):
        return self.g_norm2.sqrt()

    def current(self):
        g, _, f_j, _, _, _ = self._col(self.j)
        return f_j, g

    def _write_column(self, j: int, row: torch.Tensor) -> None:
        """Incremental Gram update: only row/column j of G^T G changes (and its border, once)."""
        _, _, _, _, a_row, a_col = self._col(j)
        a_row.copy_(row)
        a_col.copy_(row)
        if self.filled < self.m:
            self.A[:, 0, 1 + j] = 1.0
            self.A[:, 1 + j, 0] = 1.0
            self.filled += 1

    def _mix(self, alpha: torch.Tensor, s: int) -> torch.Tensor:
        """z+ = sum_i alpha_i f(z_i) - (1 - beta) sum_i alpha_i g_i over the first s columns."""
        _, _, F, G = self._sub(s)
        a = alpha.to(self.dtype).unsqueeze(1)
        z_next = torch.bmm(a, F).squeeze(1)
        if self.options.beta != 1.0:
            z_next = z_next - (1.0 - self.options.beta) * torch.bmm(a, G).squeeze(1)
        return z_next

    def step(self, z, fz, g, k, reject):
        j = k % self.m
        if self.valid is None and bool(reject.any()):  # uniform window only on the CPU: free read
            self._enter_masked(self.filled)
        if self.valid is not None:
            return self._step_masked(j, reject)
        # Uniform window: every sample combines columns 0..s-1, one (s+1)x(s+1) system each.
        self._write_column(j, self.row)
        s = self.filled
        o = self.options
        A, h_diag, _, _ = self._sub(s)
        if o.lam_mode == "relative":
            lam = h_diag.sum(1).mul_(o.lam / s).clamp_min_(o.lam * 1e-30)
            A = torch.addcmul(A, lam.view(-1, 1, 1), self.reg[s])
        else:
            A = A + o.lam * self.reg[s]
        sol, info = torch.linalg.solve_ex(A, self.rhs[s])
        alpha = sol[:, 1:]
        ok = (alpha.abs().sum(1) <= o.max_coeff) & (info == 0)
        if bool(ok.all()):
            return self._mix(alpha, s), None
        # Some systems are ill-conditioned: those samples restart (masked path from here on).
        b = z.shape[0]
        full = alpha.new_zeros(b, self.m)
        full[:, :s] = alpha
        self._enter_masked(s)
        return self._fallback(full, ok, info, j, reject)

    def _enter_masked(self, s: int) -> None:
        """Switch to per-sample masks, starting from the uniform window of columns 0..s-1."""
        if self._stale:
            # Reused or uninitialised buffers: the masked solve and mix read every column (with
            # weight 0 for the invalid ones, and 0 x an old NaN is NaN), so columns this solve
            # never wrote, and their Gram entries, become what zeroed buffers would have held.
            c = min(self.k + 1, self.m)  # columns written by residual() so far
            self.F[:, c:].zero_()
            self.G[:, c:].zero_()
            self.row3[:, :, c:].zero_()
            self.A[:, 1 + c :, :].zero_()
            self.A[:, :, 1 + c :].zero_()
            self._stale = False
        self.valid = torch.arange(self.m, device=self.A.device).expand(self.A.shape[0], -1) < s

    def _step_masked(self, j: int, reject: torch.Tensor):
        """The general step: each sample has its own window (after restarts; always on accelerators)."""
        rej = reject[:, None]
        row = self.row
        if maybe_any(reject):
            # Sanitise the new column: a non-finite sample must not poison its history.
            g_j, _, f_j, _, _, _ = self._col(j)
            f_j.masked_fill_(rej, 0.0)
            g_j.masked_fill_(rej, 0.0)
            row = row.masked_fill(rej, 0.0)  # the Gram row of a zero column
        self._write_column(j, row)
        self.valid[:, j] = True
        alpha, ok, info = self._coefficients()
        return self._fallback(alpha, ok, info, j, reject)

    def _fallback(self, alpha: torch.Tensor, ok: torch.Tensor, info: torch.Tensor, j: int, reject: torch.Tensor):
        """Samples whose system failed restart at the newest column and take a plain step;
        rejected samples (the loop restarts them from their best iterate) forget their whole
        window, the zeroed newest column included. Returns the step and each sample's restart
        cause code (0: none; else 1 + its index in ``restart_causes``), computed on the device."""
        b = alpha.shape[0]
        fired = ~ok & ~reject
        cause = torch.where(info != 0, 1, torch.where(torch.isfinite(alpha).all(1), 3, 2))
        cause = cause.masked_fill(~fired, 0)
        onehot = torch.zeros(b, self.m, dtype=torch.bool, device=alpha.device)
        onehot[:, j] = True
        valid = torch.where(fired[:, None], onehot, self.valid)
        self.valid = valid & ~reject[:, None]
        alpha = torch.where(ok[:, None], torch.nan_to_num(alpha), onehot.to(alpha.dtype))
        if self.cpu_shortcuts and alpha.device.type == "cpu" and bool(self.valid.all()):
            self.valid = None  # every window is whole again
        return self._mix(alpha, self.m), cause

    def _coefficients(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Solve the masked bordered systems of the whole batch in float64, without a host sync."""
        o = self.options
        b, m = self.valid.shape
        v = self.valid.to(torch.float64)
        H = self.A[:, 1:, 1:] * (v[:, :, None] * v[:, None, :])
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
        sol, info = torch.linalg.solve_ex(A, self.rhs[m])
        alpha = sol[:, 1:]
        ok = (info == 0) & torch.isfinite(alpha).all(1) & (alpha.abs().sum(1) <= o.max_coeff)
        return alpha, ok, info

    def keep(self, rows: torch.Tensor, runs: list[tuple[int, int, int]] | None) -> None:
        # The history is ours: compact it in place (block copies on the CPU, no new 2m-state buffers).
        self.F = compact_rows_(self.F, rows, runs)
        self.G = compact_rows_(self.G, rows, runs)
        self.A = self.A.index_select(0, rows)
        self.row3 = self.row3.index_select(0, rows)
        if self.valid is not None:
            self.valid = self.valid.index_select(0, rows)
        self._views()

"""The solver-independent fixed-point loop.

A solver method (forward iteration, Anderson, ...) only proposes the next iterate from the current one and
its image under f. This module owns everything else, identically for all methods: residuals, the
per-sample best iterate, stopping, divergence and non-finite safeguards, the residual trace, and
per-sample convergence (samples that are done are compacted out of the batch, so they stop costing
evaluations of f).

One solve is a :class:`_Loop`: the rows still active live in an :class:`_Active` (compacted together
when samples retire), the finished samples' answers in a :class:`_Finished` (written once, at
retirement), and each iteration is four named steps: evaluate, measure, maybe retire, advance.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Callable, Sequence

import torch

from .method import FixedPointMethod
from .options import SolverInputError, StopRule
from .result import SolverResult, SolverStatus
from .rows import maybe_any, row_runs, take_rows

if TYPE_CHECKING:
    from .workspace import Workspace

__all__ = ["run_fixed_point"]

_EPS = 1e-12


def run_fixed_point(
    f: Callable[..., torch.Tensor],
    z0: torch.Tensor,
    method: FixedPointMethod,
    stop: StopRule,
    args: Sequence[torch.Tensor] = (),
    store_trace: bool = True,
    workspace: "Workspace | None" = None,
    cpu_shortcuts: bool = True,
    snapshot_at: Sequence[int] = (),
) -> SolverResult:
    """Run ``method`` on ``z = f(z, *args)`` from ``z0``; see :func:`andersonn.solve`.

    With ``args`` (batch-first tensors), done samples are compacted out of the batch and f is called
    on the active rows only. Without them f is a closure over the whole batch, so it is called on the
    full batch with done samples frozen (their result no longer changes, but their evaluations still
    cost). A ``workspace`` lends the method buffers kept from earlier solves (unless another solve
    holds it: then this one allocates its own). ``cpu_shortcuts=False`` runs on the CPU the general
    path accelerators run (safeguard bookkeeping and per-sample masks every iteration), which gives
    the same answers more slowly: it exists to check exactly that. ``snapshot_at`` (iteration counts in
    1..max_iter) keeps a copy of the whole batch's iterate after each of those iterations in
    :attr:`SolverResult.snapshots` (see there).

    Example:
        >>> import torch
        >>> from andersonn.solvers import ForwardIteration, ForwardOptions, StopRule, run_fixed_point
        >>> r = run_fixed_point(lambda z: 0.5 * z + 1, torch.zeros(2, 3), ForwardIteration(ForwardOptions()),
        ...                     StopRule(tol=1e-6))
        >>> r.status.name, round(float(r.z[0, 0]), 4)
        ('SUCCESS', 2.0)
    """
    method.cpu_shortcuts = cpu_shortcuts
    if workspace is None or not workspace.acquire():
        return _Loop(f, z0, method, stop, args, store_trace, snapshot_at).run()
    try:
        method.workspace = workspace
        return _Loop(f, z0, method, stop, args, store_trace, snapshot_at).run()
    finally:
        method.workspace = None
        workspace.release()


def _validate_z0(z0: object) -> None:
    if not isinstance(z0, torch.Tensor):
        raise SolverInputError(f"z0 must be a torch.Tensor, got {type(z0).__name__}")
    if z0.ndim < 1 or z0.shape[0] == 0:
        raise SolverInputError(f"z0 must be batch-first with at least one sample, got shape {tuple(z0.shape)}")
    if not z0.is_floating_point():
        raise SolverInputError(f"z0 must be floating point, got {z0.dtype}")
    # One reduction instead of a boolean copy of z0; a sum that overflows gets the exact check.
    if not math.isfinite(float(z0.sum())) and not bool(torch.isfinite(z0).all()):
        raise SolverInputError("z0 contains NaN or Inf")


def _validate_snapshots(snapshot_at: object, max_iter: int) -> tuple[int, ...]:
    try:
        its = tuple(snapshot_at)  # type: ignore[arg-type]
    except TypeError:
        raise SolverInputError(f"snapshot_at must be a sequence of iteration counts, got {snapshot_at!r}") from None
    for k in its:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max_iter:
            raise SolverInputError(f"snapshot_at: every entry must be an integer in 1..max_iter={max_iter}, got {k!r}")
    return tuple(sorted(set(its)))


def _validate_args(args: Sequence[torch.Tensor], batch: int) -> None:
    for i, a in enumerate(args):
        if not isinstance(a, torch.Tensor) or a.ndim < 1 or a.shape[0] != batch:
            raise SolverInputError(
                f"args[{i}] must be a tensor with the batch size {batch} first, "
                f"got {type(a).__name__} {tuple(getattr(a, 'shape', ()))}"
            )


@dataclasses.dataclass
class _Active:
    """State of the samples still in the batch, one row each: row i is sample ``rows[i]``.

    ``causes`` counts every safeguard event per cause (columns as :attr:`_Finished.causes`);
    ``failures`` the non-finite evaluations; ``div_limit`` is divergence_factor x the first residual.
    ``best_z`` is never written in place, only replaced (so it may alias ``z``).
    """

    rows: torch.Tensor
    z: torch.Tensor
    args: tuple[torch.Tensor, ...]
    best_z: torch.Tensor
    best_res: torch.Tensor
    causes: torch.Tensor
    failures: torch.Tensor
    exhausted: torch.Tensor
    diverged: torch.Tensor
    div_limit: torch.Tensor | None = None
    fz: torch.Tensor | None = None
    g: torch.Tensor | None = None

    def keep(self, keep: torch.Tensor, runs: list[tuple[int, int, int]] | None, method: FixedPointMethod) -> None:
        """Keep rows ``keep`` of every tensor, the method's state included."""
        z = take_rows(self.z, keep, runs)
        self.best_z = z if self.best_z is self.z else take_rows(self.best_z, keep, runs)
        self.z = z
        self.args = tuple(take_rows(a, keep, runs) for a in self.args)
        self.best_res = self.best_res.index_select(0, keep)
        self.causes = self.causes.index_select(0, keep)
        self.failures = self.failures.index_select(0, keep)
        self.exhausted, self.diverged = self.exhausted.index_select(0, keep), self.diverged.index_select(0, keep)
        if self.div_limit is not None:
            self.div_limit = self.div_limit.index_select(0, keep)
        self.rows = self.rows.index_select(0, keep)
        stored = method.stores_current()
        if not stored:  # copy before keep(): g may be a view of a buffer that keep() compacts in place
            self.fz, self.g = take_rows(self.fz, keep, runs), take_rows(self.g, keep, runs)
        method.keep(keep, runs)
        if stored:
            self.fz, self.g = method.current()


class _Finished:
    """Per-sample answers over the whole batch, written when a sample retires.

    ``causes`` columns: 0 = none (step()'s code 0 lands there), 1..C = the method's restart_causes,
    C + 1 = "other" (a bool mask from step()), C + 2 = a non-finite evaluation of f.
    """

    def __init__(self, z: torch.Tensor, n_causes: int) -> None:
        batch, device = z.shape[0], z.device
        self.z = z.clone()
        self.residual = torch.full((batch,), math.inf, device=device, dtype=z.dtype)
        self.nfe = torch.zeros(batch, dtype=torch.long, device=device)
        self.status = torch.full((batch,), int(SolverStatus.MAX_ITER), dtype=torch.long, device=device)
        self.causes = torch.zeros(batch, n_causes, dtype=torch.long, device=device)

    def write(self, active: _Active, idx: torch.Tensor, k: int, tol: float) -> None:
        """Record the active rows ``idx`` as finished after iteration ``k``."""
        orig = active.rows.index_select(0, idx)
        best_res = active.best_res.index_select(0, idx)
        self.z.index_copy_(0, orig, active.best_z.index_select(0, idx))
        self.residual.index_copy_(0, orig, best_res)
        self.nfe.index_fill_(0, orig, k + 1)
        self.causes.index_copy_(0, orig, active.causes.index_select(0, idx))
        code = torch.where(
            best_res < tol,
            int(SolverStatus.SUCCESS),
            torch.where(
                active.exhausted.index_select(0, idx),
                int(SolverStatus.NONFINITE),
                torch.where(active.diverged.index_select(0, idx), int(SolverStatus.DIVERGED),
                            int(SolverStatus.MAX_ITER)),
            ),
        )
        self.status.index_copy_(0, orig, code)


class _Loop:
    """One solve: the stopping rule applied to the proposals of ``method``, sample by sample."""

    def __init__(self, f: Callable[..., torch.Tensor], z0: torch.Tensor, method: FixedPointMethod, stop: StopRule,
                 args: Sequence[torch.Tensor], store_trace: bool, snapshot_at: Sequence[int] = ()) -> None:
        _validate_z0(z0)
        stop.validate()
        self.snapshot_at = _validate_snapshots(snapshot_at, stop.max_iter)
        self.snapshots: dict[int, torch.Tensor] = {}
        self.shape = z0.shape
        self.batch = batch = z0.shape[0]
        device = z0.device
        _validate_args(args, batch)
        self.f, self.method, self.stop, self.args = f, method, stop, tuple(args)
        self.closure = not args  # f sees the whole batch; done samples stay in it, frozen
        self.cpu = device.type == "cpu"
        self.check_every = stop.check_every or (1 if self.cpu else 4)
        self.relative = stop.stop_mode == "rel"
        # On the CPU a clean iteration (every residual finite) skips the safeguard bookkeeping until one
        # is not; accelerators always do it rather than read a flag back every iteration.
        self.shortcut_clean = self.cpu and method.cpu_shortcuts
        self.safeguarded = not self.shortcut_clean
        self.cause_names = tuple(method.restart_causes) + ("other", "nonfinite_evaluation")
        self.col_other = len(method.restart_causes) + 1
        self.col_nonfinite = len(method.restart_causes) + 2
        self.restart_budget = stop.max_restarts if method.can_restart else 0

        z = z0.detach().reshape(batch, -1).clone()
        method.start(z, stop.max_iter)
        self.finished = _Finished(z, len(self.cause_names) + 1)
        self.all_active = True
        self.active = _Active(
            rows=torch.arange(batch, device=device), z=z, args=self.args, best_z=z,
            best_res=torch.full((batch,), math.inf, device=device, dtype=z.dtype),
            causes=torch.zeros_like(self.finished.causes),
            failures=torch.zeros(batch, dtype=torch.long, device=device),
            exhausted=torch.zeros(batch, dtype=torch.bool, device=device),
            diverged=torch.zeros(batch, dtype=torch.bool, device=device))
        self.trace = torch.full((stop.max_iter, batch) if store_trace else (0, batch), math.nan, device=device,
                                dtype=z.dtype)
        self.store_trace = store_trace
        self.ones = torch.ones(batch, 1, dtype=torch.long, device=device)
        self.no_reject = torch.zeros(batch, dtype=torch.bool, device=device)
        self.sample_evals = 0
        self.iterations = 0

    def run(self) -> SolverResult:
        for k in range(self.stop.max_iter):
            self.iterations = k + 1
            self.evaluate()
            bad = self.measure(k)
            if self.due(k):
                kept = self.maybe_retire(k)
                if kept is not None:
                    if kept.numel() == 0:
                        break
                    if bad is not None:
                        bad = bad.index_select(0, kept)
            self.advance(k, bad)
            if self.snapshot_at and k + 1 in self.snapshot_at:
                self.snapshots[k + 1] = self.whole_iterate()
        return self.result()

    def evaluate(self) -> None:
        """f at the active iterates: ``active.fz``."""
        a = self.active
        if self.all_active:
            zin = a.z.view(self.shape)
        elif not self.closure:  # the args were compacted along with the state when samples retired
            zin = a.z.view((-1,) + tuple(self.shape[1:]))
        else:  # in place: the finished z's active rows are only read after a retirement overwrites them
            zin = self.finished.z.index_copy_(0, a.rows, a.z).view(self.shape)
        out = self.f(zin, *a.args)
        if not isinstance(out, torch.Tensor):
            raise SolverInputError(f"f must return a tensor, got {type(out).__name__}")
        if out.shape != zin.shape:
            raise SolverInputError(
                f"f(z) has shape {tuple(out.shape)} but z has shape {tuple(zin.shape)}: "
                "a fixed-point map must return a tensor shaped like its input"
            )
        out = out.reshape(out.shape[0], -1)
        frozen_rows_too = self.closure and not self.all_active
        a.fz = out.index_select(0, a.rows) if frozen_rows_too else out
        self.sample_evals += self.batch if frozen_rows_too else a.z.shape[0]  # a closure pays for frozen rows

    def measure(self, k: int) -> torch.Tensor | None:
        """Residuals, the trace, the safeguards and the best iterate; returns the non-finite rows (None: none)."""
        a, stop = self.active, self.stop
        a.g = self.method.residual(a.z, a.fz, k)
        res_abs = self.method.residual_norm(a.g)
        res = res_abs / (torch.linalg.vector_norm(a.fz, dim=1) + _EPS) if self.relative else res_abs
        if self.store_trace:
            if self.all_active:
                self.trace[k].copy_(res)
            else:
                self.trace[k].index_copy_(0, a.rows, res)
        if self.shortcut_clean and math.isfinite(float(res.sum())):
            bad = None
            improved = res < a.best_res
            a.best_res = torch.minimum(a.best_res, res)
        else:
            self.safeguarded = True
            bad = ~torch.isfinite(res)
            if k == 0:
                a.exhausted = bad.clone()  # f(z0) non-finite: nothing to restart from
            else:
                a.failures = a.failures + bad.long()
                a.causes[:, self.col_nonfinite] += bad.long()
                a.exhausted = a.exhausted | (a.failures > self.restart_budget)
            improved = (~bad) & (res < a.best_res)
            a.best_res = torch.where(improved, res, a.best_res)
        if stop.divergence_factor is not None:
            if k == 0:  # a non-finite first residual gets limit 0 (it is exhausted anyway)
                a.div_limit = stop.divergence_factor * (res_abs if bad is None else torch.where(bad, 0.0, res_abs))
            else:
                a.diverged = a.diverged | (res_abs > a.div_limit)
        if self.cpu and bool(improved.all()):
            a.best_z = a.z  # every sample improved: keep a reference, no copy (z is never written in place)
        elif maybe_any(improved):
            a.best_z = torch.where(improved[:, None], a.z, a.best_z)
        return bad

    def due(self, k: int) -> bool:
        """Whether iteration ``k`` checks for done samples (a host synchronisation)."""
        return k == self.stop.max_iter - 1 or (k + 1) % self.check_every == 0

    def maybe_retire(self, k: int) -> torch.Tensor | None:
        """Retire the done samples once they are enough of the batch; returns the kept rows (None: none retired)."""
        a, stop = self.active, self.stop
        done = a.best_res < stop.tol
        if self.safeguarded:
            done = done | a.exhausted
        if a.div_limit is not None:
            done = done | a.diverged
        if k == stop.max_iter - 1:
            done = torch.ones_like(done)
        # Compacting copies the whole history, so wait until enough samples are done
        # (a done sample keeps its best iterate meanwhile; it only costs evaluations).
        n_done = int(done.sum())
        if not n_done or (n_done < done.numel() and n_done < stop.compact_fraction * done.numel()):
            return None
        self.finished.write(a, done.nonzero().squeeze(1), k, stop.tol)
        keep = (~done).nonzero().squeeze(1)
        if keep.numel() == 0:
            a.rows = keep
            return keep
        a.keep(keep, row_runs(keep.tolist()) if self.cpu else None, self.method)
        self.all_active = False
        return keep

    def advance(self, k: int, bad: torch.Tensor | None) -> None:
        """The method's next iterate; rows whose evaluation was non-finite restart from their best one."""
        a = self.active
        reject = bad if bad is not None else self.no_reject[: a.z.shape[0]]
        z_next, fired = self.method.step(a.z, a.fz, a.g, k, reject)
        if fired is not None:
            code = fired.long() * self.col_other if fired.dtype == torch.bool else fired.long()
            a.causes.scatter_add_(1, code[:, None], self.ones[: code.shape[0]])
        a.z = torch.where(bad[:, None], a.best_z, z_next) if bad is not None and maybe_any(bad) else z_next

    def whole_iterate(self) -> torch.Tensor:
        """The whole batch's current iterate: active rows where they are, retired ones at their answer."""
        a = self.active
        if self.all_active:
            return a.z.view(self.shape).clone()
        z = self.finished.z.clone()  # in closure mode its active rows are stale: overwritten next
        if a.rows.numel():
            z.index_copy_(0, a.rows, a.z)
        return z.view(self.shape)

    def result(self) -> SolverResult:
        out = self.finished
        final = out.z.view(self.shape)
        # iterations the solve never reached (every sample done before): the answer
        snapshots = {k: self.snapshots.get(k, final) for k in self.snapshot_at}
        return SolverResult(
            z=final,
            nfe=out.nfe,
            converged=out.status == int(SolverStatus.SUCCESS),
            residual=out.residual,
            trace=self.trace[: self.iterations],
            sample_status=out.status,
            iterations=self.iterations,
            sample_evals=self.sample_evals,
            restarts=out.causes[:, 1:].sum(1),
            method=self.method.name,
            options=dataclasses.asdict(self.method.options) | dataclasses.asdict(self.stop),
            residual_kind="relative" if self.relative else "absolute",
            restarts_by_cause={name: out.causes[:, 1 + i] for i, name in enumerate(self.cause_names)},
            snapshots=snapshots,
        )

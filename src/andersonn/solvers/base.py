"""The solver-independent fixed-point loop.

A solver method (forward iteration, Anderson, ...) only proposes the next
iterate from the current one and its image under f.  This module owns
everything else, identically for all methods: residuals, the per-sample best
iterate, stopping, divergence and non-finite safeguards, the residual trace,
and per-sample convergence (samples that are done are compacted out of the
batch, so they stop costing evaluations of f).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import numbers
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

import torch

if TYPE_CHECKING:
    from .workspace import Workspace

from .result import SolverResult, SolverStatus

__all__ = ["SolverOptions", "FixedPointMethod", "StopRule", "run_fixed_point", "SolverInputError"]

_EPS = 1e-12
# Below this many bytes per tensor, index_select is as fast as block copies.
_BLOCK_COPY_BYTES = 1 << 20
# On the CPU, skip the safeguard bookkeeping in iterations where every residual is finite
# (tests set this False to check the general path gives the same answers).
_CPU_FAST_PATH = True
# Compact the batch args once when samples retire (False: gather the active rows of every arg at
# every evaluation, as before; benchmarks/ablations.py measures the difference).
_ARGS_COMPACTED_AT_RETIREMENT = True
# For a closure f, write the active rows into the frozen full batch in place (False: a new
# full-batch tensor per evaluation, as before; measured by benchmarks/ablations.py).
_CLOSURE_IN_PLACE = True


def _runs(keep: list[int]) -> list[tuple[int, int, int]]:
    """(source start, destination start, length) of the runs of consecutive kept rows."""
    runs: list[tuple[int, int, int]] = []
    dst = 0
    for i in keep:
        if runs and runs[-1][0] + runs[-1][2] == i:
            s, d, n = runs[-1]
            runs[-1] = (s, d, n + 1)
        else:
            runs.append((i, dst, 1))
        dst += 1
    return runs


def _gather(t: torch.Tensor, runs: list[tuple[int, int, int]] | None) -> bool:
    """Whether ``index_select`` is the way to take rows of ``t`` (off the CPU, no runs, or small)."""
    return runs is None or t.device.type != "cpu" or t.numel() * t.element_size() < _BLOCK_COPY_BYTES


def take_rows(t: torch.Tensor, keep: torch.Tensor, runs: list[tuple[int, int, int]] | None) -> torch.Tensor:
    """``t.index_select(0, keep)`` into a new tensor.

    On the CPU, ``index_select`` of large rows is a slow element-wise gather
    (about 20x slower than memcpy for the solver history), so with ``runs``
    (from :func:`_runs`) each run of consecutive kept rows is one block copy.
    """
    if _gather(t, runs):
        return t.index_select(0, keep)
    out = t.new_empty((keep.numel(),) + tuple(t.shape[1:]))
    for s, d, n in runs:
        out[d : d + n].copy_(t[s : s + n])
    return out


def compact_rows_(t: torch.Tensor, keep: torch.Tensor, runs: list[tuple[int, int, int]] | None) -> torch.Tensor:
    """Keep rows ``keep`` of a buffer the caller owns; in place on the CPU.

    Kept rows move down within the same storage (no allocation, no page faults)
    and the result is the leading slice; elsewhere this is ``index_select``.
    """
    if _gather(t, runs):
        return t.index_select(0, keep)
    for s, d, n in runs:
        shift = s - d
        if shift == 0:
            continue
        for i in range(0, n, shift):  # chunks no longer than the shift never overlap
            c = min(shift, n - i)
            t[d + i : d + i + c].copy_(t[s + i : s + i + c])
    return t[: keep.numel()]


def maybe_any(mask: torch.Tensor) -> bool:
    """False only when ``mask`` is known to be all False without an accelerator sync.

    On the CPU reading a flag is free, so work guarded by it can be skipped; on
    an accelerator this returns True (do the masked work) rather than stall the
    device queue with a host synchronisation inside the loop.
    """
    return mask.device.type != "cpu" or bool(mask.any())


class SolverInputError(ValueError):
    """Raised for invalid solver inputs or options, with a message naming the culprit."""


def check_finite(owner: str, name: str, value: Any) -> None:
    """Raise :class:`SolverInputError` unless ``value`` is a finite real number (not a bool).

    Range checks such as ``lam >= 0`` let ``inf`` through, and NaN fails them with a
    message about the range rather than about NaN; this names the option and the problem.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SolverInputError(f"{owner} option {name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise SolverInputError(f"{owner} option {name} must be finite, got {value!r}")


@dataclasses.dataclass(frozen=True)
class SolverOptions:
    """Base of every method's typed options; unknown keys are an error, never ignored."""

    @classmethod
    def from_kwargs(cls, method: str, **kwargs: Any) -> "SolverOptions":
        names = [f.name for f in dataclasses.fields(cls)]
        for key in kwargs:
            if key not in names:
                near = difflib.get_close_matches(key, names, n=1)
                hint = f" Did you mean {near[0]!r}?" if near else ""
                valid = ", ".join(names) if names else "none"
                raise SolverInputError(
                    f"unknown option {key!r} for solver {method!r}.{hint} Valid options: {valid}."
                )
        opts = cls(**kwargs)
        opts.check_floats(f"solver {method!r}")
        opts.validate()
        return opts

    def check_floats(self, owner: str) -> None:
        """Every option declared ``float`` must be a finite number (inf/NaN named and refused)."""
        for f in dataclasses.fields(self):
            if f.type in ("float", float):
                check_finite(owner, f.name, getattr(self, f.name))

    def validate(self) -> None:
        """Check option values; raise :class:`SolverInputError` on a bad one."""


@dataclasses.dataclass(frozen=True)
class StopRule:
    """When the loop stops, common to all methods."""

    tol: float = 1e-4
    max_iter: int = 50
    stop_mode: str = "rel"
    divergence_factor: float | None = 1e5
    max_restarts: int = 3
    check_every: int | None = None
    compact_fraction: float = 0.1

    def validate(self) -> None:
        check_finite("solve", "tol", self.tol)
        if not self.tol > 0:
            raise SolverInputError(f"tol must be a finite number > 0, got {self.tol!r}")
        if not isinstance(self.max_iter, int) or isinstance(self.max_iter, bool) or self.max_iter < 1:
            raise SolverInputError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if self.stop_mode not in ("rel", "abs"):
            raise SolverInputError(f"stop_mode must be 'rel' or 'abs', got {self.stop_mode!r}")
        if self.divergence_factor is not None:
            if isinstance(self.divergence_factor, numbers.Real) and math.isinf(self.divergence_factor):
                raise SolverInputError(
                    f"divergence_factor must be finite, got {self.divergence_factor!r} "
                    "(pass divergence_factor=None to disable the divergence check)"
                )
            check_finite("solve", "divergence_factor", self.divergence_factor)
        if self.divergence_factor is not None and not self.divergence_factor > 1:
            raise SolverInputError(
                f"divergence_factor must be > 1 or None, got {self.divergence_factor!r}"
            )
        if not isinstance(self.max_restarts, int) or self.max_restarts < 0:
            raise SolverInputError(f"max_restarts must be an integer >= 0, got {self.max_restarts!r}")
        check_finite("solve", "compact_fraction", self.compact_fraction)
        if not 0.0 <= self.compact_fraction <= 1.0:
            raise SolverInputError(f"compact_fraction must be in [0, 1], got {self.compact_fraction!r}")
        if self.check_every is not None and (not isinstance(self.check_every, int) or self.check_every < 1):
            raise SolverInputError(f"check_every must be an integer >= 1 or None, got {self.check_every!r}")


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

    def keep(self, rows: torch.Tensor, runs: list[tuple[int, int, int]] | None = None) -> None:
        """Keep only the given rows of the state (samples that are still active).

        ``runs`` (CPU only) describes ``rows`` as block copies for
        :func:`compact_rows_` / :func:`take_rows`; None means use ``index_select``.
        """


def _validate_z0(z0: Any) -> None:
    if not isinstance(z0, torch.Tensor):
        raise SolverInputError(f"z0 must be a torch.Tensor, got {type(z0).__name__}")
    if z0.ndim < 1 or z0.shape[0] == 0:
        raise SolverInputError(f"z0 must be batch-first with at least one sample, got shape {tuple(z0.shape)}")
    if not z0.is_floating_point():
        raise SolverInputError(f"z0 must be floating point, got {z0.dtype}")
    # One reduction instead of a boolean copy of z0; a sum that overflows gets the exact check.
    if not math.isfinite(float(z0.sum())) and not bool(torch.isfinite(z0).all()):
        raise SolverInputError("z0 contains NaN or Inf")


def run_fixed_point(
    f: Callable[..., torch.Tensor],
    z0: torch.Tensor,
    method: FixedPointMethod,
    stop: StopRule,
    args: Sequence[torch.Tensor] = (),
    store_trace: bool = True,
    workspace: "Workspace | None" = None,
) -> SolverResult:
    """Run ``method`` on ``z = f(z, *args)`` from ``z0``; see :func:`andersonn.solve`.

    With ``args`` (batch-first tensors), done samples are compacted out of the
    batch and f is called on the active rows only.  Without them f is a closure
    over the whole batch, so it is called on the full batch with done samples
    frozen (their result no longer changes, but their evaluations still cost).
    A ``workspace`` lends the method buffers kept from earlier solves (unless another
    solve holds it: then this one allocates its own).
    """
    if workspace is None or not workspace.acquire():
        return _run(f, z0, method, stop, args, store_trace)
    try:
        method.workspace = workspace
        return _run(f, z0, method, stop, args, store_trace)
    finally:
        method.workspace = None
        workspace.release()


def _run(
    f: Callable[..., torch.Tensor],
    z0: torch.Tensor,
    method: FixedPointMethod,
    stop: StopRule,
    args: Sequence[torch.Tensor],
    store_trace: bool,
) -> SolverResult:
    _validate_z0(z0)
    stop.validate()
    shape = z0.shape
    batch = shape[0]
    device = z0.device
    for i, a in enumerate(args):
        if not isinstance(a, torch.Tensor) or a.ndim < 1 or a.shape[0] != batch:
            raise SolverInputError(
                f"args[{i}] must be a tensor with the batch size {batch} first, "
                f"got {type(a).__name__} {tuple(getattr(a, 'shape', ()))}"
            )
    compact = len(args) > 0
    active_args = tuple(args)
    keep_takes_runs = len(inspect.signature(method.keep).parameters) >= 2
    has_current = type(method).current is not FixedPointMethod.current
    check_every = stop.check_every or (1 if device.type == "cpu" else 4)
    rel = stop.stop_mode == "rel"

    z = z0.detach().reshape(batch, -1).clone()
    method.start(z, stop.max_iter)
    rows = torch.arange(batch, device=device)
    all_active = True
    # Per-sample outputs, written when a sample retires.
    out_z = z.clone()
    out_res = torch.full((batch,), math.inf, device=device, dtype=z.dtype)
    out_nfe = torch.zeros(batch, dtype=torch.long, device=device)
    out_status = torch.full((batch,), int(SolverStatus.MAX_ITER), dtype=torch.long, device=device)
    # Restarts per sample and cause, on the device (no host read per iteration). Columns:
    # 0 = none (step()'s code 0 lands there), 1..C = the method's restart_causes (code i),
    # C + 1 = "other" (a bool mask from step()), C + 2 = non-finite evaluation of f.
    cause_names = tuple(method.restart_causes) + ("other", "nonfinite_evaluation")
    n_method_causes = len(method.restart_causes)
    col_other, col_nonfinite = n_method_causes + 1, n_method_causes + 2
    out_causes = torch.zeros(batch, n_method_causes + 3, dtype=torch.long, device=device)
    ones = torch.ones(batch, 1, dtype=torch.long, device=device)
    trace = torch.full(
        (stop.max_iter, batch) if store_trace else (0, batch), math.nan, device=device, dtype=z.dtype
    )
    # Active-row state.
    best_z = z  # never written in place, only replaced
    best_res = torch.full((batch,), math.inf, device=device, dtype=z.dtype)
    div_limit: torch.Tensor | None = None  # per sample: divergence_factor x the first residual
    causes = torch.zeros_like(out_causes)  # every safeguard event, by cause (columns as out_causes)
    failures = torch.zeros(batch, dtype=torch.long, device=device)  # non-finite evaluations
    exhausted = torch.zeros(batch, dtype=torch.bool, device=device)
    diverged = torch.zeros(batch, dtype=torch.bool, device=device)
    sample_evals = 0
    iterations = 0
    restart_budget = stop.max_restarts if method.can_restart else 0
    cpu = device.type == "cpu"
    cpu_fast = cpu and _CPU_FAST_PATH
    args_at_retirement, closure_in_place = _ARGS_COMPACTED_AT_RETIREMENT, _CLOSURE_IN_PLACE
    safeguarded = not cpu_fast  # True once some iteration needed the safeguards (always off the CPU)

    def evaluate(zk: torch.Tensor) -> torch.Tensor:
        masked = not all_active and not compact
        if all_active:
            zin, a = zk.view(shape), tuple(args)
        elif compact:  # the args were compacted along with the state when samples retired
            zin = zk.view((-1,) + tuple(shape[1:]))
            a = active_args if args_at_retirement else tuple(t.index_select(0, rows) for t in args)
        else:  # closure over the whole batch: done samples stay frozen in out_z
            # (in place: out_z's active rows are only read after retire() overwrites them)
            full = out_z.index_copy_(0, rows, zk) if closure_in_place else out_z.index_copy(0, rows, zk)
            zin, a = full.view(shape), tuple(args)
        out = f(zin, *a)
        if not isinstance(out, torch.Tensor):
            raise SolverInputError(f"f must return a tensor, got {type(out).__name__}")
        if out.shape != zin.shape:
            raise SolverInputError(
                f"f(z) has shape {tuple(out.shape)} but z has shape {tuple(zin.shape)}: "
                "a fixed-point map must return a tensor shaped like its input"
            )
        out = out.reshape(out.shape[0], -1)
        return out.index_select(0, rows) if masked else out

    def retire(done: torch.Tensor, k: int) -> torch.Tensor:
        nonlocal active_args, z, fz, g, best_z, best_res, div_limit, causes, failures, exhausted, diverged, rows, all_active
        idx = done.nonzero().squeeze(1)
        orig = rows.index_select(0, idx)
        out_z.index_copy_(0, orig, best_z.index_select(0, idx))
        out_res.index_copy_(0, orig, best_res.index_select(0, idx))
        out_nfe.index_fill_(0, orig, k + 1)
        out_causes.index_copy_(0, orig, causes.index_select(0, idx))
        code = torch.where(
            best_res.index_select(0, idx) < stop.tol,
            int(SolverStatus.SUCCESS),
            torch.where(
                exhausted.index_select(0, idx),
                int(SolverStatus.NONFINITE),
                torch.where(diverged.index_select(0, idx), int(SolverStatus.DIVERGED), int(SolverStatus.MAX_ITER)),
            ),
        )
        out_status.index_copy_(0, orig, code)
        keep = (~done).nonzero().squeeze(1)
        if keep.numel() == 0:
            rows = keep
            return keep
        runs = _runs(keep.tolist()) if cpu else None
        z_new = take_rows(z, keep, runs)
        best_z = z_new if best_z is z else take_rows(best_z, keep, runs)
        z = z_new
        best_res = best_res.index_select(0, keep)
        if args_at_retirement:
            active_args = tuple(take_rows(a, keep, runs) for a in active_args)
        causes = causes.index_select(0, keep)
        if div_limit is not None:
            div_limit = div_limit.index_select(0, keep)
        failures = failures.index_select(0, keep)
        exhausted, diverged = exhausted.index_select(0, keep), diverged.index_select(0, keep)
        rows = rows.index_select(0, keep)
        if not has_current:  # copy before keep(): g may be a view of a buffer that keep() compacts in place
            fz, g = take_rows(fz, keep, runs), take_rows(g, keep, runs)
        if keep_takes_runs:
            method.keep(keep, runs)
        else:  # a method written against the one-argument keep(rows)
            method.keep(keep)
        if has_current:
            fz, g = method.current()
        all_active = False
        return keep

    no_reject = torch.zeros(batch, dtype=torch.bool, device=device)
    for k in range(stop.max_iter):
        fz = evaluate(z)
        sample_evals += z.shape[0] if (compact or all_active) else batch  # a closure pays for frozen rows too
        iterations = k + 1
        g = method.residual(z, fz, k)
        res_abs = method.residual_norm(g)
        res = res_abs / (torch.linalg.vector_norm(fz, dim=1) + _EPS) if rel else res_abs
        if store_trace:
            if all_active:
                trace[k].copy_(res)
            else:
                trace[k].index_copy_(0, rows, res)
        # On the CPU one read of the residual sum tells whether any sample needs the
        # safeguards; if none does (the usual case) their bookkeeping is skipped.
        clean = cpu_fast and math.isfinite(float(res.sum()))
        if clean:
            bad = None
            improved = res < best_res
            best_res = torch.minimum(best_res, res)
        else:
            safeguarded = True
            bad = ~torch.isfinite(res)
            if k == 0:
                exhausted = bad.clone()  # f(z0) non-finite: nothing to restart from
            else:
                failures = failures + bad.long()
                causes[:, col_nonfinite] += bad.long()
                exhausted = exhausted | (failures > restart_budget)
            improved = (~bad) & (res < best_res)
            best_res = torch.where(improved, res, best_res)
        if stop.divergence_factor is not None:
            if k == 0:  # a non-finite first residual gets limit 0 (it is exhausted anyway)
                div_limit = stop.divergence_factor * (res_abs if bad is None else torch.where(bad, 0.0, res_abs))
            else:
                diverged = diverged | (res_abs > div_limit)
        if cpu and bool(improved.all()):
            best_z = z  # every sample improved: keep a reference, no copy (z is never written in place)
        elif maybe_any(improved):
            best_z = torch.where(improved[:, None], z, best_z)

        last = k == stop.max_iter - 1
        if last or (k + 1) % check_every == 0:
            done = best_res < stop.tol
            if safeguarded:
                done = done | exhausted
            if div_limit is not None:
                done = done | diverged
            if last:
                done = torch.ones_like(done)
            # Compacting copies the whole history, so wait until enough samples are done
            # (a done sample keeps its best iterate meanwhile; it only costs evaluations).
            n_done = int(done.sum())
            if n_done and (n_done == done.numel() or n_done >= stop.compact_fraction * done.numel()):
                keep = retire(done, k)
                if keep.numel() == 0:
                    break
                if bad is not None:
                    bad = bad.index_select(0, keep)
        reject = bad if bad is not None else no_reject[: z.shape[0]]
        z_next, fired = method.step(z, fz, g, k, reject)
        if fired is not None:
            code = fired.long() * col_other if fired.dtype == torch.bool else fired.long()
            causes.scatter_add_(1, code[:, None], ones[: code.shape[0]])
        z = torch.where(bad[:, None], best_z, z_next) if bad is not None and maybe_any(bad) else z_next

    return SolverResult(
        z=out_z.view(shape),
        nfe=out_nfe,
        converged=out_status == int(SolverStatus.SUCCESS),
        residual=out_res,
        trace=trace[:iterations],
        sample_status=out_status,
        iterations=iterations,
        sample_evals=sample_evals,
        restarts=out_causes[:, 1:].sum(1),
        method=method.name,
        options=dataclasses.asdict(method.options) | dataclasses.asdict(stop),
        residual_kind="relative" if rel else "absolute",
        restarts_by_cause={name: out_causes[:, 1 + i] for i, name in enumerate(cause_names)},
    )

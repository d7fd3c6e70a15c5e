"""Solver registry and the single entry point :func:`solve`."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence, TypeVar

import torch

from .loop import run_fixed_point
from .method import FixedPointMethod
from .options import SolverInputError, StopRule
from .result import SolverResult
from .workspace import Workspace

__all__ = ["register_solver", "available_solvers", "get_solver", "solve"]

_REGISTRY: dict[str, type[FixedPointMethod]] = {}
M = TypeVar("M", bound=type[FixedPointMethod])


def register_solver(name: str, *, replace: bool = False) -> Callable[[M], M]:
    """Class decorator that makes a :class:`FixedPointMethod` available to :func:`solve` by name.

    A name that is already registered is refused (two plug-ins picking the same name would
    otherwise silently shadow each other, built-ins included) unless ``replace=True``.

    Example:
        >>> import torch
        >>> from andersonn.solvers import FixedPointMethod, register_solver, solve
        >>> @register_solver("halfstep", replace=True)  # replace: re-running this example is fine
        ... class HalfStep(FixedPointMethod):
        ...     def step(self, z, fz, g, k, reject):
        ...         return z + 0.5 * g, torch.zeros_like(reject)
        >>> solve(lambda z: 0.5 * z + 1, torch.zeros(1, 2), method="halfstep", tol=1e-8).z
        tensor([[2.0000, 2.0000]])
        >>> register_solver("anderson")(HalfStep)
        Traceback (most recent call last):
        ...
        andersonn.solvers.options.SolverInputError: a solver named 'anderson' is already registered (...)
    """

    def deco(cls: M) -> M:
        if not isinstance(name, str) or not name:
            raise ValueError("a solver name must be a non-empty string")
        old = _REGISTRY.get(name)
        if old is not None and not replace:
            raise SolverInputError(
                f"a solver named {name!r} is already registered ({old.__module__}.{old.__qualname__}); "
                f"pick another name, or pass replace=True to replace it with {cls.__qualname__}"
            )
        try:  # the loop calls keep(rows, runs): refuse now a method that cannot take them
            inspect.signature(cls.keep).bind(None, None, None)
        except TypeError:
            raise SolverInputError(f"{cls.__qualname__}.keep must take (self, rows, runs), "
                                   f"got {cls.keep.__qualname__}{inspect.signature(cls.keep)}") from None
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def available_solvers() -> list[str]:
    """Names accepted by ``solve(method=...)``."""
    return sorted(_REGISTRY)


def get_solver(name: str) -> type[FixedPointMethod]:
    """The method class registered under ``name``; a clear error for an unknown one."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SolverInputError(
            f"unknown solver {name!r}; available: {', '.join(available_solvers())}"
        ) from None


def solve(
    f: Callable[..., torch.Tensor],
    z0: torch.Tensor,
    method: str = "anderson",
    *,
    args: Sequence[torch.Tensor] = (),
    tol: float = StopRule.tol,
    max_iter: int = StopRule.max_iter,
    stop_mode: str = StopRule.stop_mode,
    divergence_factor: float | None = StopRule.divergence_factor,
    max_restarts: int = StopRule.max_restarts,
    check_every: int | None = StopRule.check_every,
    compact_fraction: float = StopRule.compact_fraction,
    store_trace: bool = True,
    workspace: Workspace | None = None,
    cpu_shortcuts: bool = True,
    snapshot_at: Sequence[int] = (),
    **options: Any,
) -> SolverResult:
    """Find z* = f(z*, *args) for every sample of a batch.

    Args:
        f: the map; called as ``f(z, *args)`` with ``z`` shaped like ``z0`` (or a
            subset of its rows, see ``args``) and must return the same shape.
        z0: batch-first starting point, any shape per sample.
        method: a registered solver name (``available_solvers()``): ``"anderson"``, ``"forward"``, ...
        args: batch-first tensors passed to f. When given, samples that are
            done are compacted out and f sees only the active rows; when f is
            a closure instead, it always sees the whole batch.
        tol: stop a sample when its residual ``||f(z)-z|| / ||f(z)||`` (``stop_mode="rel"``)
            or ``||f(z)-z||`` (``"abs"``) is below ``tol``.
        max_iter: evaluations of f at most.
        divergence_factor: a sample whose absolute residual exceeds this multiple of
            its initial residual is stopped as DIVERGED (None disables).
        max_restarts: non-finite evaluations tolerated per sample (each restarts
            the history from the best iterate) before it is stopped as NONFINITE.
        check_every: iterations between host synchronisations that retire done
            samples; default 1 on CPU, 4 on accelerators.
        compact_fraction: done samples leave the batch once they are at least this
            fraction of it (compaction copies the solver history, so retiring one
            sample at a time would cost more than it saves); 0 retires at once.
        store_trace: keep the residual of every iteration (for plots).
        workspace: a :class:`Workspace` whose buffers (Anderson's history) are reused by
            later solves with the same shapes, saving their allocation, zero fill and
            page faults (a DEQ layer keeps one); None allocates afresh.
        cpu_shortcuts: on the CPU, skip work nothing needs while every residual is finite and
            every window whole (safeguard bookkeeping, Anderson's per-sample masks); False runs the
            general path accelerators run, which gives the same answers: it exists to check that.
        snapshot_at: iteration counts (1..max_iter) after which to keep a copy of the whole batch's
            iterate, in ``result.snapshots`` (the intermediate states of a fixed-point correction loss).
        **options: the method's own options (e.g. ``m``, ``lam``, ``beta`` for Anderson);
            an unknown one raises :class:`SolverInputError`.

    Returns:
        A :class:`SolverResult` with the best iterate of each sample and its statistics.

    Example:
        >>> import torch, andersonn
        >>> A = torch.tensor([[0.9, 0.0], [0.0, 0.5]])
        >>> r = andersonn.solve(lambda z: z @ A.T + 1.0, torch.zeros(4, 2), method="anderson", tol=1e-8)
        >>> torch.allclose(r.z, torch.tensor([10.0, 2.0]).expand(4, 2), atol=1e-4), r.status.name
        (True, 'SUCCESS')
    """
    cls = get_solver(method)
    opts = cls.Options.from_kwargs(method, **options)
    stop = StopRule(
        tol=tol,
        max_iter=max_iter,
        stop_mode=stop_mode,
        divergence_factor=divergence_factor,
        max_restarts=max_restarts,
        check_every=check_every,
        compact_fraction=compact_fraction,
    )
    with torch.no_grad():
        return run_fixed_point(f, z0, cls(opts), stop, args=args, store_trace=store_trace, workspace=workspace,
                               cpu_shortcuts=cpu_shortcuts, snapshot_at=snapshot_at)

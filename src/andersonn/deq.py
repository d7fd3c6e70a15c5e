"""The deep equilibrium layer: z* = f(z*, x), differentiated by the implicit function theorem."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch
from torch import nn

from .solvers import SolverInputError, SolverResult, Workspace, get_solver, solve
from .solvers.options import StopRule
from .state import State, StateLayout, is_tuple_state, packed_map

__all__ = ["DEQ"]

_BACKWARD_MODES = ("ift", "jfb", "phantom")
#: The stopping options :func:`andersonn.solve` takes (their defaults live in :class:`StopRule`).
STOP_OPTIONS = tuple(f.name for f in dataclasses.fields(StopRule))


def check_correction_states(n: Any, max_iter: int) -> None:
    """Raise :class:`SolverInputError` unless ``n`` is an integer in 0..max_iter - 1."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < max_iter:
        raise SolverInputError(f"correction_states must be an integer in 0..max_iter - 1 = {max_iter - 1}, got {n!r}")


def correction_iterations(n: int, max_iter: int) -> tuple[int, ...]:
    """The iteration counts of ``n`` fixed-point-correction states: evenly spaced below ``max_iter``.

    >>> correction_iterations(2, 30)
    (10, 20)
    """
    return tuple(sorted({max(1, round(max_iter * i / (n + 1))) for i in range(1, n + 1)}))


def check_phantom_options(steps: Any, damping: Any) -> None:
    """Raise :class:`SolverInputError` unless ``steps`` is an integer >= 1 and ``damping`` a number in (0, 1]."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise SolverInputError(f"phantom_steps must be an integer >= 1, got {steps!r}")
    if isinstance(damping, bool) or not isinstance(damping, (int, float)) or not 0 < damping <= 1:
        raise SolverInputError(f"phantom_damping must be in (0, 1], got {damping!r}")


class _ImplicitBackward(torch.autograd.Function):
    """Identity in the forward pass; in the backward pass it turns the incoming
    gradient u = dl/dz* into g solving the adjoint fixed point g = (df/dz)^T g + u,
    so that autograd, continuing through one application of f, yields
    dl/dtheta = u (I - df/dz)^-1 df/dtheta (the implicit function theorem).

    With ``deq.backward_compact`` the adjoint solve gets (u, z*, x) as batch
    arguments, so samples whose adjoint has converged are compacted out like in
    the forward solve: each time the solver drops rows, f is re-applied once to
    the remaining rows to rebuild a smaller graph, and later vector-Jacobian
    products cost only the active rows.  This relies on f treating samples
    independently and deterministically (the same requirement as the forward
    compaction)."""

    @staticmethod
    def forward(ctx, fz: torch.Tensor, z_leaf: torch.Tensor, x: torch.Tensor, deq: "DEQ",  # type: ignore[override]
                f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        ctx.deq, ctx.f = deq, f
        ctx.save_for_backward(fz, z_leaf, x)
        return fz.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        fz, z_leaf, x = ctx.saved_tensors
        deq: DEQ = ctx.deq
        f = ctx.f
        options = dict(method=deq.backward_solver, **deq.backward_stop_options, **deq.backward_options)
        if not deq.backward_compact:
            def adjoint_map(g: torch.Tensor) -> torch.Tensor:
                (vjp,) = torch.autograd.grad(fz, z_leaf, g, retain_graph=True)
                return vjp + grad

            result = solve(adjoint_map, torch.zeros_like(grad), workspace=deq.workspace, **options)
        else:
            # graph[0] is the z-rows tensor the current graph was built from; the solver hands
            # the same tensor object back until it compacts the batch, so identity marks staleness.
            graph = [z_leaf, fz, z_leaf]

            def adjoint_map(g: torch.Tensor, u: torch.Tensor, zs: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
                if zs is not graph[0]:
                    with torch.enable_grad():
                        leaf = zs.detach().requires_grad_()
                        graph[:] = [zs, f(leaf, xs), leaf]
                (vjp,) = torch.autograd.grad(graph[1], graph[2], g, retain_graph=True)
                return vjp + u

            result = solve(adjoint_map, torch.zeros_like(grad), args=(grad, z_leaf, x.detach()),
                           workspace=deq.workspace, **options)
            graph.clear()
        deq.last_backward = result
        return result.z, None, None, None, None


class DEQ(nn.Module):
    """A deep equilibrium layer around ``f(z, x)``.

    The forward pass solves z* = f(z*, x) without building a graph, then applies
    f once more with autograd on; gradients come from the implicit function
    theorem (``backward="ift"``, an adjoint fixed point solved by its own solver
    and tolerance), from that single step (``backward="jfb"``, Jacobian-free), or from
    ``phantom_steps`` damped steps unrolled from z* (``backward="phantom"``, the phantom
    gradient of Geng et al., 2021, TorchDEQ's default family).
    Statistics of the last solves are kept in :attr:`last_forward` and
    :attr:`last_backward` (:class:`andersonn.SolverResult`).

    Args:
        f: a module or callable ``f(z, x) -> z`` preserving the shape of z.
            It must treat samples independently (e.g. GroupNorm, not BatchNorm),
            since converged samples are dropped from the batch during the solve.
        solver: forward solver name (``"anderson"`` or ``"forward"``, or any registered one).
        backward: ``"ift"`` (default), ``"jfb"`` or ``"phantom"``.
        phantom_steps, phantom_damping: with ``backward="phantom"``, the output is k =
            ``phantom_steps`` steps z <- (1 - d) z + d f(z, x) from z* (d = ``phantom_damping``),
            back-propagated through by autograd: the gradient is the IFT's with (I - J)^-1
            replaced by the first k terms of its damped Neumann series, so it tends to the IFT
            gradient as k grows (for a contractive f) and equals JFB's at k = 1, d = 1.
        backward_solver: the adjoint solver; ``None`` (default): the forward solver, with the
            forward solver's options.
        backward_options: the adjoint solver's own options; ``None`` (default): the forward
            solver's options when the adjoint uses the same solver, else that solver's defaults.
        backward_tol, backward_max_iter: the adjoint's stopping rule; ``None`` (default) follows
            ``tol`` and ``max_iter``. Every other stopping option applies to both solves.
        backward_compact: drop samples whose adjoint has converged from the adjoint solve
            (f is re-applied to the remaining rows at each compaction); ``False`` keeps the
            whole batch in every vector-Jacobian product.
        correction_states: fixed-point correction (Bai et al., 2022; TorchDEQ's ``n_states``): in
            training (autograd on), also keep this many intermediate iterates of the forward solve,
            evenly spaced over ``max_iter`` (:func:`correction_iterations`; a sample that converged
            earlier gives its answer), each followed by one step of f with autograd on (its gradient
            is the one-step phantom gradient), in :attr:`last_correction_states`; a trainer adds a
            loss on each of them, which pushes the early iterates towards the answer. 0 (default):
            none. It costs one more evaluation of f with a graph per state and step.
        jacobian_penalty: in training (autograd on), also estimate ||df/dz||_F^2 / dim at z*
            with one Hutchinson probe (Bai et al., 2021) and keep it, differentiable, in
            :attr:`last_jacobian`; a trainer adds a multiple of it to the loss, which keeps f
            contractive so that the solves converge in fewer iterations. It costs one more
            vector-Jacobian product with a graph per step.
        reuse_buffers: keep the solvers' history buffers in :attr:`workspace` between calls
            (the forward and adjoint solves share them), so repeated solves of the same
            shapes skip allocating, zeroing and page-faulting them; the memory (2m state
            copies for Anderson) stays held until ``deq.workspace.clear()``. ``False``
            allocates afresh every solve.
        **options: the stopping options of :func:`andersonn.solve` (:data:`STOP_OPTIONS`: ``tol``,
            ``max_iter``, ``stop_mode``, ``divergence_factor``, ``max_restarts``, ``check_every``,
            ``compact_fraction``; defaults as there) and the forward solver's own options (e.g.
            ``m=5, lam=1e-4, beta=1.0``). All are validated here, so a typo or a bad value fails at
            construction rather than mid-epoch.

    Tuple states (multi-scale DEQs): ``x`` and ``z0`` may each be a tuple of batch-first tensors, and
    ``f(z, x)`` then takes and returns the tuples (a tuple ``z`` for a tuple ``z0``; without ``z0`` the
    state is shaped like ``x``, zeros). They are packed into one row per sample for the solvers
    (:class:`andersonn.state.StateLayout`), so per-sample stopping and compaction apply to the whole
    state; ``deq(x)`` returns the tuple, while :attr:`last_forward` holds the packed rows and
    :attr:`state_layout` the layout that unpacks them (``None`` for a tensor state).

    Warm starts: ``deq(x, z0)`` starts the solve at ``z0`` (default zeros). Reusing a fixed point
    from an earlier call, e.g. ``deq(x, z0=deq.last_forward.z)`` for the same or a slightly changed
    ``x`` (the previous epoch's sample, the previous frame, a parameter step later), saves most of
    the iterations; the answer does not depend on ``z0`` beyond the tolerance, and no gradient flows
    into ``z0``.

    Example:
        >>> import torch
        >>> from andersonn import DEQ
        >>> lin = torch.nn.Linear(4, 4)
        >>> deq = DEQ(lambda z, x: torch.tanh(0.5 * lin(z) + x), solver="anderson", m=3)
        >>> z = deq(torch.randn(2, 4))
        >>> z.sum().backward()
        >>> deq.last_forward.status.name, lin.weight.grad.shape
        ('SUCCESS', torch.Size([4, 4]))
        >>> x = torch.randn(2, 4)
        >>> cold = deq(x).detach(); n_cold = deq.last_forward.mean_nfe
        >>> warm = deq(x, z0=cold).detach()
        >>> deq.last_forward.mean_nfe < n_cold, torch.allclose(warm, cold, atol=1e-3)
        (True, True)
        >>> two = DEQ(lambda z, x: (torch.tanh(0.5 * z[0] + x[0]), 0.5 * z[1] + z[0].mean(1, keepdim=True)))
        >>> fine, coarse = two((torch.randn(2, 4), torch.randn(2, 1)))
        >>> fine.shape, coarse.shape, two.state_layout.sizes
        (torch.Size([2, 4]), torch.Size([2, 1]), (4, 1))
    """

    def __init__(
        self,
        f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        solver: str = "anderson",
        *,
        backward: str = "ift",
        backward_solver: str | None = None,
        backward_options: dict[str, Any] | None = None,
        backward_tol: float | None = None,
        backward_max_iter: int | None = None,
        backward_compact: bool = True,
        reuse_buffers: bool = True,
        jacobian_penalty: bool = False,
        correction_states: int = 0,
        phantom_steps: int = 5,
        phantom_damping: float = 0.8,
        **options: Any,
    ) -> None:
        super().__init__()
        if backward not in _BACKWARD_MODES:
            raise SolverInputError(f"backward must be one of {_BACKWARD_MODES}, got {backward!r}")
        check_phantom_options(phantom_steps, phantom_damping)
        self.phantom_steps, self.phantom_damping = phantom_steps, float(phantom_damping)
        self.f = f
        self.solver = solver
        self.stop_options = {k: options.pop(k) for k in list(options) if k in STOP_OPTIONS}
        self.solver_options = options
        self.backward = backward
        self.backward_solver = solver if backward_solver is None else backward_solver
        if backward_options is not None:
            self.backward_options = dict(backward_options)
        else:
            self.backward_options = dict(options) if self.backward_solver == solver else {}
        self.backward_stop_options = dict(self.stop_options)
        if backward_tol is not None:
            self.backward_stop_options["tol"] = backward_tol
        if backward_max_iter is not None:
            self.backward_stop_options["max_iter"] = backward_max_iter
        self.backward_compact = backward_compact
        self.jacobian_penalty = jacobian_penalty
        check_correction_states(correction_states, self.max_iter)
        self.correction_states = correction_states
        # Validate eagerly: a typo in an option should fail at construction, not mid-epoch.
        StopRule(**self.stop_options).validate()
        StopRule(**self.backward_stop_options).validate()
        get_solver(solver).Options.from_kwargs(solver, **self.solver_options)
        get_solver(self.backward_solver).Options.from_kwargs(self.backward_solver, **self.backward_options)
        self.last_forward: SolverResult | None = None
        self.last_backward: SolverResult | None = None
        self.last_jacobian: torch.Tensor | None = None
        self.last_correction_states: list[torch.Tensor] | None = None
        self.last_spectral_radius: torch.Tensor | None = None
        self.state_layout: StateLayout | None = None
        self.workspace: Workspace | None = Workspace() if reuse_buffers else None

    def _replicate_for_data_parallel(self) -> "DEQ":
        # nn.DataParallel runs replicas in threads: each gets its own buffers (with a shared
        # Workspace all but one concurrent solve would allocate afresh).
        replica = super()._replicate_for_data_parallel()
        replica.workspace = Workspace() if self.workspace is not None else None
        return replica

    def _packed(self, x: State, z0: State | None):
        """``f`` on packed rows, the packed ``x`` and ``z0`` (``None``: zeros), and the state's layout."""
        x_layout = StateLayout.of(x, "x") if is_tuple_state(x) else None
        if not is_tuple_state(x) and not isinstance(x, torch.Tensor):
            raise SolverInputError(f"DEQ input must be a tensor or a tuple of tensors, got {type(x).__name__}")
        if z0 is None:
            z_layout = x_layout
        elif is_tuple_state(z0):
            z_layout = StateLayout.of(z0, "z0")
        elif isinstance(z0, torch.Tensor):
            z_layout = None
        else:
            raise SolverInputError(f"z0 must be a tensor or a tuple of tensors, got {type(z0).__name__}")
        x_rows = x if x_layout is None else x_layout.pack(x)
        z_rows = None if z0 is None else z0 if z_layout is None else z_layout.pack(z0)
        self.state_layout = z_layout
        return packed_map(self.f, z_layout, x_layout), x_rows, z_rows, z_layout

    def solve_forward(self, x: State, z0: State | None = None, snapshot_at: tuple[int, ...] = ()) -> SolverResult:
        """Solve z* = f(z*, x) without gradients and return the full :class:`SolverResult`
        (with the iterates after the ``snapshot_at`` iterations in its ``snapshots``; for a tuple
        state, packed rows that :attr:`state_layout` unpacks)."""
        f, x_rows, z_rows, _ = self._packed(x, z0)
        return self._solve(f, x_rows, z_rows, snapshot_at)

    def _solve(self, f: Callable, x: torch.Tensor, z0: torch.Tensor | None, snapshot_at: tuple[int, ...]) -> SolverResult:
        if not bool(torch.isfinite(x).all()):
            raise SolverInputError(
                f"DEQ input x of shape {tuple(x.shape)} contains NaN or Inf; refusing to solve"
            )
        if z0 is None:
            z0 = torch.zeros_like(x)
        elif z0.shape[0] != x.shape[0]:
            raise SolverInputError(f"z0 batch {z0.shape[0]} differs from x batch {x.shape[0]}")
        result = solve(
            f, z0.detach(), method=self.solver, args=(x.detach(),), workspace=self.workspace,
            snapshot_at=snapshot_at, **self.stop_options, **self.solver_options,
        )
        self.last_forward = result
        return result

    def forward(self, x: State, z0: State | None = None) -> State:
        training = torch.is_grad_enabled()
        snapshot_at = correction_iterations(self.correction_states, self.max_iter) if training and self.correction_states else ()
        f, x, z0, layout = self._packed(x, z0)
        unpack = (lambda rows: rows) if layout is None else layout.unpack
        result = self._solve(f, x, z0, snapshot_at)
        z_star = result.z
        self.last_correction_states = [unpack(f(z, x)) for z in result.snapshots.values()] if snapshot_at else None
        if not training:
            self.last_jacobian = None
            return unpack(z_star)
        self.last_backward = None
        z_leaf = z_star.detach().requires_grad_()
        fz = f(z_leaf, x)
        self.last_jacobian = self._jacobian_estimate(fz, z_leaf) if self.jacobian_penalty else None
        if self.backward == "jfb":
            return unpack(fz)
        if self.backward == "phantom":
            return unpack(self._phantom_steps(f, z_leaf, fz, x))
        return unpack(_ImplicitBackward.apply(fz, z_leaf, x, self, f))

    def _phantom_steps(self, f: Callable, z: torch.Tensor, fz: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        d = self.phantom_damping
        for step in range(self.phantom_steps):
            if step:
                fz = f(z, x)
            z = fz if d == 1.0 else torch.lerp(z, fz, d)
        return z

    @staticmethod
    def _jacobian_estimate(fz: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        # E_v ||v^T J||^2 = ||J||_F^2 for v ~ N(0, I); divided by the elements of z so that the
        # penalty's scale does not depend on the batch or the state's size.
        v = torch.randn_like(fz)
        (vjp,) = torch.autograd.grad(fz, z, v, create_graph=True)
        return vjp.pow(2).sum() / vjp.numel()

    def spectral_radius(self, x: State, z0: State | None = None, iters: int = 30) -> torch.Tensor:
        """Per-sample spectral radius of df/dz at this layer's fixed point for ``x`` (power iteration,
        :func:`andersonn.jacobian.spectral_radius`): below 1 the map contracts there, and the closer
        it is to 1 the more iterations forward iteration needs. Kept in :attr:`last_spectral_radius`
        (and :meth:`stats`).

        >>> import torch
        >>> from andersonn import DEQ
        >>> deq = DEQ(lambda z, x: 0.5 * torch.tanh(z) + x, tol=1e-8)
        >>> rho = deq.spectral_radius(torch.zeros(2, 3))   # at z* = 0, df/dz = 0.5 I
        >>> [round(float(r), 4) for r in rho]
        [0.5, 0.5]
        """
        from .jacobian import spectral_radius

        f, x_rows, z_rows, _ = self._packed(x, z0)
        z_star = self._solve(f, x_rows, z_rows, ()).z
        rho = spectral_radius(f, z_star, (x_rows,), iters=iters)
        self.last_spectral_radius = rho
        return rho

    def stats(self) -> dict[str, float]:
        """NFE and residuals of the last forward and backward solves, for logging."""
        out: dict[str, float] = {}
        for tag, r in (("forward", self.last_forward), ("backward", self.last_backward)):
            if r is not None:
                out[f"{tag}_nfe"] = r.mean_nfe
                out[f"{tag}_residual"] = float(r.residual.max())
                out[f"{tag}_converged"] = float(r.converged.float().mean())
        if self.last_jacobian is not None:
            out["jacobian_fro2"] = float(self.last_jacobian.detach())
        if self.last_spectral_radius is not None:
            out["spectral_radius_mean"] = float(self.last_spectral_radius.mean())
            out["spectral_radius_max"] = float(self.last_spectral_radius.max())
        return out

    def extra_repr(self) -> str:
        return (
            f"solver={self.solver!r}, tol={self.tol}, max_iter={self.max_iter}, "
            f"backward={self.backward!r}, options={self.solver_options}"
        )

    @property
    def tol(self) -> float:
        """The forward solve's tolerance (``StopRule``'s default unless given)."""
        return self.stop_options.get("tol", StopRule.tol)

    @property
    def max_iter(self) -> int:
        """The forward solve's iteration limit (``StopRule``'s default unless given)."""
        return self.stop_options.get("max_iter", StopRule.max_iter)

    @property
    def backward_tol(self) -> float:
        """The adjoint solve's tolerance: ``backward_tol`` if given, else the forward one."""
        return self.backward_stop_options.get("tol", StopRule.tol)

    @property
    def backward_max_iter(self) -> int:
        """The adjoint solve's iteration limit: ``backward_max_iter`` if given, else the forward one."""
        return self.backward_stop_options.get("max_iter", StopRule.max_iter)

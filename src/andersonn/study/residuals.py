"""Relative residual against iteration on a random input: forward iteration vs Anderson for several m."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch

from ..solvers import solve


def residual_study(
    f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    ms: Sequence[int] = (1, 2, 3, 5, 8),
    tol: float = 1e-4,
    max_iter: int = 60,
    repeats: int = 1,
) -> list[dict[str, Any]]:
    """Solve z = f(z, x) from zeros with forward iteration and Anderson(m) for each m.

    Returns one record per solver with the mean relative residual at every
    iteration (``trace``), the iterations and wall time to reach ``tol`` for the
    whole batch, and the final residual. The residual of every iteration is
    recorded (no early stop) so the curves cover all ``max_iter`` steps; time
    and NFE to tolerance come from separate solves that stop at ``tol``.

    Example:
        >>> import torch
        >>> from andersonn.models import ImplicitConvBlock
        >>> rows = residual_study(ImplicitConvBlock(8, 8, 4), torch.randn(2, 8, 6, 6), ms=(2,), max_iter=10)
        >>> [r["solver"] for r in rows]
        ['forward', 'anderson m=2']
    """
    runs = [("forward", "forward", {})] + [(f"anderson m={m}", "anderson", {"m": m}) for m in ms]
    rows = []
    with torch.no_grad():
        for label, method, opts in runs:
            full = solve(f, torch.zeros_like(x), method=method, args=(x,), tol=1e-30, max_iter=max_iter,
                         divergence_factor=None, **opts)
            times, nfe, ok = [], 0.0, False
            for _ in range(repeats):
                t = time.perf_counter()
                r = solve(f, torch.zeros_like(x), method=method, args=(x,), tol=tol, max_iter=max_iter,
                          store_trace=False, **opts)
                times.append(time.perf_counter() - t)
                nfe, ok = r.mean_nfe, r.success
            rows.append({
                "solver": label, "method": method, "m": opts.get("m"),
                "trace": [float(v) for v in full.mean_trace()],
                "final_residual": float(full.residual.mean()),
                "nfe_to_tol": nfe, "time_to_tol_s": min(times), "reached_tol": ok,
            })
    return rows

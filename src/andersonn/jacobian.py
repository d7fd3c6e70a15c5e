"""How contractive a fixed-point map is at its fixed point: the spectral radius of df/dz at z*.

A solve converges linearly with rate about rho(df/dz) for forward iteration, and Anderson's advantage is
largest when rho is close to 1; the Jacobian penalty of training (``DEQ(jacobian_penalty=True)``)
pushes it down. :func:`spectral_radius` estimates it per sample by power iteration on vector-Jacobian
products (the spectral radius of J and of J^T are the same), so it never forms J.

>>> import torch
>>> A = torch.tensor([[0.9, 0.0], [0.0, 0.5]])
>>> rho = spectral_radius(lambda z: z @ A.T + 1.0, torch.zeros(3, 2), iters=60)
>>> [round(float(r), 3) for r in rho]
[0.9, 0.9, 0.9]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["spectral_radius"]


def spectral_radius(f: Callable[..., torch.Tensor], z: torch.Tensor, args: Sequence[torch.Tensor] = (), *,
                    iters: int = 30, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample estimate of the spectral radius of ``df/dz`` at ``z`` (batch-first), shape ``(B,)``.

    ``f(z, *args)`` must treat samples independently (as a DEQ's map does), so one batched product gives
    every sample's own ``J_b^T v_b``. Power iteration from a random start: the estimate is the geometric
    mean of the growth ``||J^T v_k|| / ||v_k||`` over the second half of ``iters`` steps, which converges
    to ``|lambda_max|`` for a real dominant eigenvalue and for a complex pair alike (where the ratio
    itself oscillates). Costs ``iters`` vector-Jacobian products; no graph is kept.

    >>> import math, torch
    >>> c, s = 0.8 * math.cos(1.0), 0.8 * math.sin(1.0)
    >>> R = torch.tensor([[c, -s], [s, c]])   # eigenvalues 0.8 e^{+-i}: a complex pair
    >>> round(float(spectral_radius(lambda z: z @ R.T, torch.ones(1, 2))[0]), 4)
    0.8
    """
    if iters < 2:
        raise ValueError(f"iters must be >= 2, got {iters}")
    with torch.enable_grad():
        leaf = z.detach().requires_grad_()
        fz = f(leaf, *[a.detach() for a in args])
        flat = lambda t: t.reshape(t.shape[0], -1)  # noqa: E731
        v = torch.randn(z.shape, generator=generator, dtype=z.dtype).to(z.device)
        v = v / flat(v).norm(dim=1).clamp_min(1e-30).view(-1, *([1] * (z.dim() - 1)))
        log_growth = torch.zeros(z.shape[0], dtype=torch.float64, device=z.device)
        counted = 0
        for k in range(iters):
            (u,) = torch.autograd.grad(fz, leaf, v, retain_graph=True)
            norm = flat(u).norm(dim=1)
            if k >= iters // 2:
                log_growth += norm.double().clamp_min(1e-300).log()
                counted += 1
            v = u / norm.clamp_min(1e-30).view(-1, *([1] * (z.dim() - 1)))
    return torch.exp(log_growth / counted).to(z.dtype)

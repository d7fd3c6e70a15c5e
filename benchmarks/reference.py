"""A plain "standard Anderson" as the implicit-layers tutorial writes it, from the poster's equations.

This is the reference the suite compares against, deliberately without any of
andersonn's engineering: the Gram matrix G^T G is recomputed from scratch every
step, lambda is absolute (``G^T G + lam I``, poster eq. 3), the mixing is poster
eq. 4 with beta, and the whole batch iterates until its *worst* sample is below
tol (a batch-wide stopping rule: converged samples keep costing evaluations).
"""

from __future__ import annotations

from typing import Callable

import torch


def tutorial_anderson(f: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor, m: int = 5,
                      lam: float = 1e-4, beta: float = 1.0, tol: float = 1e-4, max_iter: int = 50):
    """Batch-wide Anderson; returns (z, iterations) where iterations counts evaluations of f."""
    b = z0.shape[0]
    X = z0.new_zeros(b, m, z0[0].numel())
    F = z0.new_zeros(b, m, z0[0].numel())
    X[:, 0] = z0.reshape(b, -1)
    F[:, 0] = f(z0).reshape(b, -1)
    X[:, 1] = F[:, 0]
    F[:, 1] = f(F[:, 0].view_as(z0)).reshape(b, -1)
    H = z0.new_zeros(b, m + 1, m + 1)
    H[:, 0, 1:] = H[:, 1:, 0] = 1
    y = z0.new_zeros(b, m + 1, 1)
    y[:, 0] = 1
    nfe, k = 2, 1
    for k in range(2, max_iter):
        n = min(k, m)
        G = F[:, :n] - X[:, :n]
        H[:, 1:n + 1, 1:n + 1] = torch.bmm(G, G.transpose(1, 2)) + lam * torch.eye(n, dtype=z0.dtype, device=z0.device)[None]
        alpha = torch.linalg.solve(H[:, :n + 1, :n + 1], y[:, :n + 1])[:, 1:n + 1, 0]
        X[:, k % m] = beta * (alpha[:, None] @ F[:, :n])[:, 0] + (1 - beta) * (alpha[:, None] @ X[:, :n])[:, 0]
        F[:, k % m] = f(X[:, k % m].view_as(z0)).reshape(b, -1)
        nfe += 1
        g = F[:, k % m] - X[:, k % m]
        res = g.norm(dim=1) / (F[:, k % m].norm(dim=1) + 1e-12)
        if float(res.max()) < tol:  # batch-wide: every sample must be below tol
            break
    return F[:, k % m].view_as(z0).clone(), nfe

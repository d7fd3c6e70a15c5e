"""Warm starts: each training sample's last fixed point, kept to start its next solve from.

Between epochs the weights move a little, so last epoch's z* of a sample is usually much closer to its
new fixed point than zeros are, and the forward solve needs fewer evaluations of f. The cache holds at
most ``max_bytes`` (samples past that index always start from zeros), on the CPU, in float32 or float16.

Example:
    >>> import torch
    >>> cache = WarmStartCache(n=4, max_bytes=2 * 3 * 4)     # room for two samples of 3 float32 values
    >>> cache.get(torch.tensor([0, 3])) is None              # nothing stored yet: start from zeros
    True
    >>> cache.put(torch.tensor([0, 3]), torch.ones(2, 3))
    >>> cache.get(torch.tensor([3, 0])).tolist()             # sample 3 is past the capacity: zeros
    [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["WarmStartCache"]


class WarmStartCache:
    """Per-sample fixed points by dataset index, bounded in memory (see the module docstring)."""

    def __init__(self, n: int, *, max_bytes: int = 2**30, dtype: torch.dtype = torch.float32) -> None:
        if n < 1 or max_bytes < 1:
            raise ValueError(f"a warm-start cache needs n >= 1 and max_bytes >= 1, got {n} and {max_bytes}")
        self.n, self.max_bytes, self.dtype = n, int(max_bytes), dtype
        self.store: torch.Tensor | None = None  # (capacity, *state shape), allocated at the first put
        self.seen: torch.Tensor | None = None
        self.hits = self.lookups = 0

    @property
    def capacity(self) -> int:
        return 0 if self.store is None else self.store.shape[0]

    def get(self, idx: torch.Tensor) -> torch.Tensor | None:
        """float32 starting points for the samples ``idx`` (zeros where none is stored), or ``None`` if
        none of them has one."""
        self.lookups += idx.numel()
        if self.store is None:
            return None
        known = idx < self.capacity
        known[known.clone()] = self.seen[idx[known]]
        hits = int(known.sum())
        if not hits:
            return None
        self.hits += hits
        z0 = torch.zeros((idx.numel(), *self.store.shape[1:]), dtype=torch.float32)
        z0[known] = self.store[idx[known]].float()
        return z0

    def put(self, idx: torch.Tensor, z: torch.Tensor) -> None:
        """Store the fixed points ``z`` (batch-first, in the order of ``idx``)."""
        z = z.detach()
        if self.store is None:
            per_sample = z[0].numel() * torch.empty((), dtype=self.dtype).element_size()
            capacity = min(self.n, self.max_bytes // per_sample)
            self.store = torch.zeros((capacity, *z.shape[1:]), dtype=self.dtype)
            self.seen = torch.zeros(capacity, dtype=torch.bool)
        keep = idx < self.capacity
        self.store[idx[keep]] = z[keep.to(z.device)].to("cpu", self.dtype)
        self.seen[idx[keep]] = True

    def state_dict(self) -> dict[str, Any]:
        return {"store": self.store, "seen": self.seen, "hits": self.hits, "lookups": self.lookups}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.store, self.seen, self.hits, self.lookups = state["store"], state["seen"], state["hits"], state["lookups"]

"""Buffers a solver may keep from one solve to the next.

A DEQ layer solves the same shapes at every step of training and inference. On the
CPU, a fresh Anderson history (2m state-sized tensors) costs a zero fill and the
page faults of first touch every solve (what reusing them saves is measured by
``benchmarks/ablations.py``, results in ``benchmarks/results/README.md``). A :class:`Workspace` hands the same
buffers back when the shapes repeat, so that cost is paid once.

The buffers hold the previous solve's values, not zeros; a method that needs zeros
(e.g. Anderson's masked path) clears what it reads. Nothing a solve returns aliases
them. One solve at a time uses a workspace: a solve that finds it in use (a nested
solve, or another thread running the same DEQ layer) allocates its own buffers, as
without a workspace.
"""

from __future__ import annotations

import threading

import torch

__all__ = ["Workspace"]


class Workspace:
    """Named buffers reused across solves with the same shapes (one set per name).

    Pass one to :func:`andersonn.solve` (``workspace=``); a :class:`andersonn.DEQ`
    layer keeps its own (``reuse_buffers=True``). :meth:`clear` frees the memory.

    Example:
        >>> import torch, andersonn
        >>> ws = andersonn.Workspace()
        >>> f = lambda z, b: 0.5 * torch.tanh(z) + b
        >>> b = torch.randn(8, 16)
        >>> r1 = andersonn.solve(f, torch.zeros(8, 16), args=(b,), workspace=ws)
        >>> r2 = andersonn.solve(f, torch.zeros(8, 16), args=(b,), workspace=ws)
        >>> torch.equal(r1.z, r2.z), ws.nbytes > 0
        (True, True)
        >>> ws.clear(); ws.nbytes
        0
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype,
            device: torch.device) -> tuple[torch.Tensor, bool]:
        """A buffer of this shape, dtype and device, and whether it is new (then zero-filled).

        A reused buffer holds whatever the last solve left in it.
        """
        shape = tuple(int(s) for s in shape)
        t = self._buffers.get(name)
        # A buffer made under torch.inference_mode() cannot be written outside it.
        usable = t is not None and not (t.is_inference() and not torch.is_inference_mode_enabled())
        if usable and tuple(t.shape) == shape and t.dtype == dtype and t.device == torch.device(device):
            return t, False
        self._buffers.pop(name, None)  # free the old one before allocating its replacement
        t = torch.zeros(shape, dtype=dtype, device=device)
        self._buffers[name] = t
        return t, True

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(t.numel() * t.element_size() for t in self._buffers.values())

    def clear(self) -> None:
        """Drop every buffer (the next solve allocates afresh)."""
        self._buffers.clear()

    def acquire(self) -> bool:
        """Take the workspace for one solve; False if another solve holds it (never blocks)."""
        return self._lock.acquire(blocking=False)

    def release(self) -> None:
        self._lock.release()

    # A copied or pickled layer gets an empty workspace: buffers are a cache, not state.
    def __deepcopy__(self, memo: dict) -> "Workspace":
        return Workspace()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def __repr__(self) -> str:
        return f"Workspace({len(self._buffers)} buffers, {self.nbytes / 2**20:.1f} MiB)"

"""Taking the rows of samples that are still active, fast on the CPU.

When samples converge the loop keeps only the others' rows of every state-sized tensor. On the CPU
``index_select`` of large rows is an element-wise gather, so runs of consecutive kept rows are moved
as block copies instead; on accelerators (and for small tensors) ``index_select`` is used.
"""

from __future__ import annotations

import torch

__all__ = ["row_runs", "take_rows", "compact_rows_", "maybe_any"]

# Below this many bytes per tensor, index_select is as fast as block copies.
_BLOCK_COPY_BYTES = 1 << 20


def row_runs(keep: list[int]) -> list[tuple[int, int, int]]:
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


def _index_select_is_best(t: torch.Tensor, runs: list[tuple[int, int, int]] | None) -> bool:
    """Whether ``index_select`` is the way to take rows of ``t`` (off the CPU, no runs, or small)."""
    return runs is None or t.device.type != "cpu" or t.numel() * t.element_size() < _BLOCK_COPY_BYTES


def take_rows(t: torch.Tensor, keep: torch.Tensor, runs: list[tuple[int, int, int]] | None) -> torch.Tensor:
    """``t.index_select(0, keep)`` into a new tensor.

    On the CPU, ``index_select`` of large rows is a slow element-wise gather
    (about 20x slower than memcpy for the solver history), so with ``runs``
    (from :func:`row_runs`) each run of consecutive kept rows is one block copy.
    """
    if _index_select_is_best(t, runs):
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
    if _index_select_is_best(t, runs):
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

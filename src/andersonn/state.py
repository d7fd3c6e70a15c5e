"""Tuple states: several batch-first tensors (a multi-scale DEQ's resolutions) packed into one row per sample.

The solvers see one ``(batch, features)`` tensor, so per-sample stopping, compaction and the Anderson
history work unchanged; a :class:`StateLayout` remembers each part's trailing shape and converts both
ways. Packing and unpacking are differentiable views and one concatenation, so gradients reach every part.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence, Union

import torch

from .solvers import SolverInputError

__all__ = ["StateLayout", "State"]

#: A DEQ state or input: one batch-first tensor, or a tuple (or list) of them with the same batch size.
State = Union[torch.Tensor, Sequence[torch.Tensor]]


class StateLayout:
    """The trailing shapes of a tuple of batch-first tensors, to pack them into ``(batch, sum of sizes)``.

    Every part must be a floating tensor of the same dtype and device with the same batch size; the
    batch size itself is not part of the layout (a compacted solve packs and unpacks fewer rows).

    Example:
        >>> import torch
        >>> parts = (torch.randn(2, 3, 4, 4), torch.randn(2, 5))
        >>> layout = StateLayout.of(parts, "z")
        >>> flat = layout.pack(parts)
        >>> flat.shape, layout.sizes
        (torch.Size([2, 53]), (48, 5))
        >>> all(torch.equal(a, b) for a, b in zip(layout.unpack(flat), parts))
        True
    """

    def __init__(self, shapes: tuple[tuple[int, ...], ...], name: str) -> None:
        self.shapes, self.name = shapes, name
        self.sizes = tuple(math.prod(s) for s in shapes)

    @classmethod
    def of(cls, parts: Sequence[torch.Tensor], name: str) -> "StateLayout":
        """The layout of ``parts``, checked (``name`` says which argument, in errors)."""
        parts = tuple(parts)
        if not parts:
            raise SolverInputError(f"{name} is an empty tuple; a tuple state needs at least one tensor")
        for i, p in enumerate(parts):
            if not isinstance(p, torch.Tensor):
                raise SolverInputError(f"{name}[{i}] must be a tensor, got {type(p).__name__}")
            if p.dim() < 1:
                raise SolverInputError(f"{name}[{i}] must be batch-first with at least one dimension, got a scalar")
        first = parts[0]
        for i, p in enumerate(parts[1:], 1):
            if p.shape[0] != first.shape[0]:
                raise SolverInputError(f"{name}[{i}] has batch {p.shape[0]}, {name}[0] has {first.shape[0]}")
            if p.dtype != first.dtype or p.device != first.device:
                raise SolverInputError(f"{name}[{i}] is {p.dtype} on {p.device}, {name}[0] is {first.dtype} on "
                                       f"{first.device}; the parts of a tuple state must share dtype and device")
        return cls(tuple(tuple(p.shape[1:]) for p in parts), name)

    def pack(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(batch, sum(sizes))``: each part flattened per sample, concatenated in order."""
        parts = tuple(parts)
        if len(parts) != len(self.shapes) or any(tuple(p.shape[1:]) != s for p, s in zip(parts, self.shapes)):
            got = [tuple(p.shape[1:]) for p in parts]
            raise SolverInputError(f"f must return a state shaped like {self.name}: per-sample shapes "
                                   f"{list(self.shapes)}, got {got}")
        return torch.cat([p.reshape(p.shape[0], -1) for p in parts], dim=1)

    def unpack(self, flat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The parts of a packed ``(batch, sum(sizes))`` tensor, as views."""
        return tuple(c.view(flat.shape[0], *s) for c, s in zip(flat.split(self.sizes, dim=1), self.shapes))


def is_tuple_state(value: object) -> bool:
    """Whether ``value`` is a tuple or list (a tuple state) rather than one tensor."""
    return isinstance(value, (tuple, list))


def packed_map(f: Callable, z_layout: StateLayout | None, x_layout: StateLayout | None) -> Callable:
    """``f`` on packed rows: ``g(z_flat, x_flat) = pack(f(unpack(z_flat), unpack(x_flat)))``; a ``None``
    layout passes that argument through as one tensor."""
    if z_layout is None and x_layout is None:
        return f

    def g(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = f(z if z_layout is None else z_layout.unpack(z), x if x_layout is None else x_layout.unpack(x))
        if z_layout is None:
            return out
        if not is_tuple_state(out):
            raise SolverInputError(f"f returned a {type(out).__name__} for a tuple state; it must return a tuple "
                                   f"shaped like z ({len(z_layout.shapes)} tensors)")
        return z_layout.pack(out)

    return g

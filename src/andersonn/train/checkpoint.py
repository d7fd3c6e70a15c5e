"""Atomic checkpoints: a kill at any moment leaves either the old file or the new one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..fileio import atomic_open


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` atomically (:func:`andersonn.fileio.atomic_open`: a temporary file in the
    same folder, flushed, mode following the umask, renamed over ``path``; removed if saving fails)."""
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``; an unreadable or truncated file is a :class:`ConfigError` naming it."""
    from .config import ConfigError

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for a bad file
        raise ConfigError(f"cannot resume from {path}: not a readable checkpoint ({type(exc).__name__}: {exc}). "
                          "Start a new run with another --out (the file is left as it is).") from None
    if not isinstance(state, dict) or "config" not in state:
        raise ConfigError(f"cannot resume from {path}: not a checkpoint written by andersonn train")
    return state

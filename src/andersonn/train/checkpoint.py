"""Atomic checkpoints: a kill at any moment leaves either the old file or the new one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _public(fd: int) -> None:
    """Give a ``mkstemp`` file (always 0600) the mode a plain ``open`` would: 0666 less the umask."""
    os.fchmod(fd, 0o666 & ~current_umask())


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    _public(fd)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(text: str, path: Path) -> None:
    """Write text atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    _public(fd)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


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

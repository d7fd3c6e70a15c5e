"""Data-parallel plumbing: torchrun environment -> process group, device, sharding, reductions."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(device_flag: str = "auto", local_rank: int = 0) -> torch.device:
    """The device ``--device`` names on this machine; a :class:`~andersonn.train.ConfigError` for an
    unknown name or for ``cuda`` where PyTorch sees no CUDA device (checked before any data is read).

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    from .config import ConfigError

    if device_flag not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"--device must be 'auto', 'cpu' or 'cuda', got {device_flag!r}")
    if device_flag == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: this machine has no CUDA device that PyTorch can use")
    use_cuda = device_flag == "cuda" or (device_flag == "auto" and torch.cuda.is_available())
    return torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")


def setup(device_flag: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun (gloo on CPU, NCCL on GPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_flag, info.local_rank)
    use_cuda = device.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(device)
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info, device


_BACKEND_TAGS = ("gloo", "NCCL", "Connection closed by peer")


@contextlib.contextmanager
def peer_failures_raise(error: Callable[[str], Exception], info: DistInfo) -> Iterator[None]:
    """Inside, a data-parallel peer that stops is an ``error(cause)`` on this rank, not a silent kill.

    When one rank dies, torchrun sends SIGTERM to the others (and SIGKILL after a grace period),
    so a survivor would vanish without saying why or what to do; a collective may instead fail
    first with a backend error. Both become ``error(cause)`` (the CLI prints it as one line).
    After a collective's failure SIGTERM stays ignored, so that the launcher's signal cannot cut
    the error off before it is reported. Nothing changes for a single process, or off the main
    thread (signal handlers live there).
    """
    if not info.enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: object) -> None:
        raise error("stopped by the launcher (SIGTERM): another rank failed, or the job was cancelled")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    peer_failed = False
    try:
        yield
    except RuntimeError as exc:
        # DistError is a RuntimeError; gloo's transport errors are plain RuntimeErrors that name gloo
        text = str(exc)
        if not isinstance(exc, dist.DistError) and not any(tag in text for tag in _BACKEND_TAGS):
            raise
        peer_failed = True
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise error(f"a collective with the other ranks failed ({first[:200]}): a peer has probably stopped") from None
    finally:
        # The launcher's SIGTERM usually follows a collective's failure within milliseconds; under the
        # default handler it would kill this rank before the error is printed. Ignore it: the process is
        # on its way out with the error, and the launcher's SIGKILL after its grace period still stops a hang.
        signal.signal(signal.SIGTERM, signal.SIG_IGN if peer_failed else previous)


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: list[float], device: torch.device, info: DistInfo) -> list[float]:
    """Sum a few scalars over all ranks (identity on a single process)."""
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
